//! `tailor pricing`: the simulator runs the default scenario and refuses a scenario file with an
//! error naming the field; the elasticity report says where the data should be, and stores its
//! category estimates where new price experiments read them as priors.

use std::path::Path;
use std::process::Command;

use tailor_engine::import::{ImportKind, Silent};
use tailor_engine::{Engine, EngineConfig, Storage};
use tailor_pricing::live::ExperimentInput;

const BIN: &str = env!("CARGO_BIN_EXE_tailor");

fn tailor(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).env("RUST_BACKTRACE", "0").output().expect("run tailor");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_simulator_reports_every_policy_against_the_oracle() {
    let (ok, out, err) = tailor(&["pricing", "simulate"]);
    assert!(ok, "{err}");
    for policy in ["oracle", "static list price", "ε-greedy", "Thompson (const. elast.)", "Tailor"] {
        assert!(out.contains(policy), "{policy} missing from:\n{out}");
    }
    assert!(out.contains("120 products, 365 periods, 5 candidate prices"), "{out}");
}

#[test]
fn a_scenario_with_errors_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("scenario.json");
    let (ok, _, err) = tailor(&["pricing", "simulate", "--export-default", file.to_str().expect("path")]);
    assert!(ok, "{err}");
    let mut scenario: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    scenario["products"][3]["demand"]["elasticity"] = serde_json::json!(0.5);
    std::fs::write(&file, scenario.to_string()).expect("write");
    let (ok, out, err) = tailor(&["pricing", "simulate", "--scenario", file.to_str().expect("path")]);
    assert!(!ok && out.is_empty(), "nothing runs: {out}");
    assert!(err.contains("products[3].demand.elasticity"), "{err}");
    std::fs::write(&file, "{\"periods\": 365, \"pricePoints\": [1.0], \"products\": [], \"colour\": 1}")
        .expect("write");
    let (ok, _, err) = tailor(&["pricing", "simulate", "--scenario", file.to_str().expect("path")]);
    assert!(!ok && err.contains("colour") && err.contains("docs/pricing-scenario.md"), "{err}");
}

#[test]
fn the_elasticity_report_says_where_the_data_should_be() {
    let (ok, _, err) = tailor(&["pricing", "elasticity", "--shared", "/nonexistent/shared"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/shared") && err.contains("--shared"), "{err}");
}

/// `tailor pricing elasticity` on The Complete Journey stores each category's shrunk mean and
/// spread; a price experiment started afterwards on a product of that category starts from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elasticity_report_stores_category_priors_that_new_experiments_start_from() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.join("data/completejourney/transactions.parquet").exists() {
        eprintln!("skipping: {} holds no Complete Journey (the shared folder sits beside the clone)", shared.display());
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args(["pricing", "elasticity", "--top", "1", "--shared", shared.to_str().expect("path"), "--data-dir"])
        .arg(&data)
        .env("TAILOR_LOG", "warn")
        .output()
        .expect("run tailor");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).expect("utf8");
    let stored = printed.lines().find(|l| l.starts_with("Stored ")).unwrap_or_else(|| panic!("{printed}"));
    let n: usize = stored.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("count");
    assert!(n >= 100, "{stored}");
    // The report's category table: "  COLD CEREAL  sales  products  own  raw  mean ± sd  tau  DL tau".
    let cereal =
        printed.lines().find(|l| l.trim_start().starts_with("COLD CEREAL ")).expect("COLD CEREAL in the report");
    let cols: Vec<&str> = cereal.split_whitespace().collect();
    let at = cols.iter().position(|c| *c == "±").expect("mean ± sd");
    let (mean, sd): (f64, f64) = (cols[at - 1].parse().expect("mean"), cols[at + 1].parse().expect("sd"));

    let engine =
        Engine::open(EngineConfig { storage: Storage::Embedded(data.clone()), background: false, retrain_every: None })
            .await
            .expect("open");
    let estimate = engine.category_elasticity("COLD CEREAL").await.expect("stored");
    assert!((estimate.mean - mean).abs() < 0.006 && (estimate.mean_sd - sd).abs() < 0.006, "{estimate:?} vs {cereal}");
    assert!(estimate.mean < 0.0 && estimate.tau >= 0.0 && estimate.products >= 100, "{estimate:?}");
    let products = dir.path().join("products.csv");
    std::fs::write(&products, "id,title,price,category,currency\nFLAKES,Corn flakes,3.49,COLD CEREAL,USD\n")
        .expect("write");
    engine.import(ImportKind::Products, &products, &Silent).await.expect("import");
    let input = ExperimentInput {
        prices_cents: vec![319, 349, 379],
        objective: Default::default(),
        min_exposure: None,
        period_hours: None,
        alpha: None,
        volume_floor: None,
    };
    let e = engine.start_price_experiment("FLAKES", &input).await.expect("experiment");
    let prior = e.prior.expect("prior");
    assert_eq!(prior.mean, estimate.mean, "{prior:?}");
    assert!(prior.source.contains("COLD CEREAL"), "{prior:?}");
    engine.close().await;
}
