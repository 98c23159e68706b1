//! `tailor import`: CSV and Parquet, rejects with reasons, idempotent re-runs, customers and
//! orders resolving to profiles.

use std::path::Path;
use std::process::Command;

use tailor_core::{Identifier, IdentifierKind};
use tailor_engine::{Engine, EngineConfig, Storage};

const BIN: &str = env!("CARGO_BIN_EXE_tailor");

fn import(kind: &str, file: &Path, data: &Path, rejects: &Path) -> String {
    let out = Command::new(BIN)
        .args(["import", kind])
        .arg(file)
        .arg("--data-dir")
        .arg(data)
        .arg("--rejects")
        .arg(rejects)
        .env("TAILOR_LOG", "warn")
        .output()
        .expect("run tailor import");
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

async fn engine(data: &Path) -> Engine {
    Engine::open(EngineConfig {
        storage: Storage::Embedded(data.to_path_buf()),
        background: false,
        retrain_every: None,
    })
    .await
    .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_imports_report_rejects_and_are_idempotent() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let products = dir.path().join("products.csv");
    std::fs::write(
        &products,
        "id,title,brand,category,price,currency,available\n\
         p1,Rain boots,Acme,Shoes,49.90,USD,true\n\
         ,No id,Acme,Shoes,1.00,USD,true\n\
         p3,Cheap,Acme,Shoes,-2,USD,true\n\
         p4,Odd money,Acme,Shoes,2.00,DOLLARS,true\n\
         p5,Umbrella,Acme,Rain,12.00,usd,no\n",
    )
    .expect("write");
    let rejects = dir.path().join("products.rejects.csv");
    for _ in 0..2 {
        let out = import("products", &products, &data, &rejects);
        assert!(out.contains("5 rows read, 2 accepted, 3 rejected"), "{out}");
    }
    let rejected = std::fs::read_to_string(&rejects).expect("rejects file");
    assert!(rejected.starts_with("row,column,reason"));
    for needle in ["2,id,", "3,price,", "4,currency,"] {
        assert!(rejected.contains(needle), "{needle} missing from {rejected}");
    }
    let e = engine(&data).await;
    assert_eq!(e.stats().await.expect("stats").products, 2);
    let umbrella = e.product("p5").await.expect("p5");
    assert_eq!(
        (umbrella.available, umbrella.currency.as_str(), umbrella.price.as_deref()),
        (false, "USD", Some("12.00"))
    );
    e.close().await;

    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "customer_id,email,loyalty_card,first_name,phone\n\
         c1,Kim@Example.com,LC-1,Kim,+4420 7946 0958\n\
         c2,not-an-email,LC-2,Lee,\n",
    )
    .expect("write");
    let out = import("customers", &customers, &data, &dir.path().join("c.rejects.csv"));
    assert!(out.contains("2 rows read, 1 accepted, 1 rejected"), "{out}");

    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,loyalty_card,store_id,product_id,quantity,price,timestamp\n\
         o1,LC-1,S1,p1,1,49.90,2026-05-01T10:00:00Z\n\
         o1,LC-1,S1,p5,2,12.00,2026-05-01T10:00:00Z\n\
         o2,LC-1,S2,p5,0,12.00,2026-05-03T10:00:00Z\n\
         o3,LC-1,S1,p5,1,12.00,2026-05-04T10:00:00Z\n",
    )
    .expect("write");
    for _ in 0..2 {
        let out = import("orders", &orders, &data, &dir.path().join("o.rejects.csv"));
        assert!(out.contains("4 rows read, 3 accepted, 1 rejected"), "{out}");
    }
    let e = engine(&data).await;
    let card = Identifier::parse(IdentifierKind::LoyaltyCard, "LC-1", "q").expect("id");
    let id = e.lookup(&card).await.expect("lookup").expect("the card's customer");
    let p = e.profile(&id).await.expect("profile");
    assert_eq!(p.traits["first_name"], "Kim");
    assert_eq!(p.features.order_count, 2, "re-running the import adds no order");
    assert_eq!(p.features.spend, "85.90");
    assert_eq!(p.features.preferred_store.as_deref(), Some("S1"));
    assert_eq!(p.features.top_categories.first().map(String::as_str), Some("Rain"));
    assert!(p.identifiers.iter().any(|i| i.kind == "phone" && i.value == "+442079460958"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complete_journey_products_import_from_parquet() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/completejourney/products.parquet");
    if !file.exists() {
        eprintln!("skipping: {} is absent (the shared data folder sits beside the clone)", file.display());
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let out = import("products", &file, &dir.path().join("data"), &dir.path().join("r.csv"));
    assert!(out.contains("92331 rows read, 92331 accepted, 0 rejected"), "{out}");
    let e = engine(&dir.path().join("data")).await;
    let p = e.product("25671").await.expect("product 25671");
    assert_eq!((p.department.as_deref(), p.category.as_deref()), (Some("GROCERY"), Some("FRZN ICE")));
    assert_eq!(p.title, "Ice - Crushed/cubed Frzn Ice 22 Lb");
}
