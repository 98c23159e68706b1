//! `tailor pricing`: the simulator runs the default scenario and refuses a scenario file with an
//! error naming the field; the elasticity report says where the data should be.

use std::process::Command;

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
