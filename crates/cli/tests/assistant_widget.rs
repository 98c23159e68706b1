//! The chat widget and the console's hand-off inbox in a real browser (headless Chromium,
//! Debian's package, driven by playwright-core): a shopper on a shop page asks about
//! availability, reserves after the assistant's offer and asks for a person; the console's inbox
//! shows the conversation with its context, and the person's reply reaches the widget.

use std::process::Command;

use serde_json::Value;

mod browser;

use browser::{browser, key, serve, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_reserves_asks_for_a_person_and_the_persons_reply_reaches_the_widget() {
    let Some(tests) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    for (kind, name, body) in [
        ("products", "products.csv", "id,title,price\nbanana,Bananas,0.59\nmilk,Whole Milk,3.49\n"),
        (
            "locations",
            "stores.csv",
            "id,name,kind,region,timezone,latitude,longitude\n381,Mitte,store,B,UTC,52.52,13.40\n436,Prenzlauer Berg,store,B,UTC,52.54,13.45\n",
        ),
        ("stock", "stock.csv", "sku,location_id,on_hand\nbanana,381,0\nbanana,436,5\n"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, body).expect("write");
        let out = Command::new(BIN).args(["import", kind]).arg(&file).arg("--data-dir").arg(dir.path()).output().expect("import");
        assert!(out.status.success(), "import {kind}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (write, admin) = (key(dir.path(), "write"), key(dir.path(), "admin"));
    let (mut server, base) = serve(dir.path());
    let shot = dir.path().join("assistant");
    let out = Command::new("node")
        .arg(tests.join("assistant.mjs"))
        .args([&base, &write, &admin, "381"])
        .arg(&shot)
        .output()
        .expect("run node");
    // The hold is real: the store near 381 has one banana fewer.
    let avail: Value = reqwest::Client::new()
        .get(format!("{base}/v1/availability?sku=banana&store=436"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("availability")
        .json()
        .await
        .expect("json");
    server.kill().expect("stop server");
    let _ = server.wait();
    assert!(out.status.success(), "browser run failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("json");
    let text = |k: &str| seen[k].as_str().unwrap_or("").to_string();
    assert!(text("availability").contains("sold out at store 381") && text("availability").contains("436"), "{seen}");
    assert!(text("held").contains("held for you at store 436"), "{seen}");
    let origin = seen["origin"].as_str().unwrap_or("");
    assert!(
        origin.starts_with("http://localhost:") && !base.contains(origin),
        "the shop page has its own origin: {seen}"
    );
    assert_eq!(seen["consoleErrors"], serde_json::json!([]), "no call was blocked: {seen}");
    assert!(text("handoff").contains("person"), "{seen}");
    assert_eq!(avail["items"][0]["available"], 4, "{avail}");
    // The inbox shows the whole transcript and the context the assistant had.
    let transcript = seen["transcript"].as_array().expect("transcript");
    assert_eq!(transcript.len(), 6, "{seen}");
    assert!(transcript.iter().any(|r| r[1].as_str().unwrap_or("").contains("do you have bananas")), "{seen}");
    assert_eq!(seen["context"]["store"], "381", "the shopper's store: {seen}");
    assert_eq!(seen["context"]["handed off because"], "asked for a person", "{seen}");
    assert!(seen["context"]["product"].as_str().unwrap_or("").contains("Bananas"), "{seen}");
    assert!(text("agent").contains("Your bananas are waiting"), "{seen}");
    assert_eq!(seen["failedRequests"], serde_json::json!([]), "every asset is served by Tailor");
}
