//! The console in a real browser: headless Chromium (Debian's package) driven by playwright-core
//! looks a customer up by e-mail and sees the unified profile across channels.

use std::process::Command;

use serde_json::{json, Value};

mod browser;

use browser::{browser, key, serve, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_finds_a_customer_and_shows_every_channel() {
    let Some(tests) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let key = |scope: &str| key(dir.path(), scope);
    // The orders are sales, so they come from a server-side source key (a browser key's are behaviour only).
    let (admin, source) = (key("admin"), key("source"));
    let (mut server, base) = serve(dir.path());

    let http = reqwest::Client::new();
    let tiers = json!([{"name": "Bronze", "minPoints": 10, "multiplier": 1.0}, {"name": "Silver", "minPoints": 100, "multiplier": 1.5}]);
    let res =
        http.put(format!("{base}/v1/loyalty/tiers")).bearer_auth(&admin).json(&tiers).send().await.expect("tiers");
    assert_eq!(res.status().as_u16(), 200);
    let events = json!({"batch": [
        {"type": "track", "event": "Product Viewed", "anonymousId": "web-9", "context": {"channel": "web"}, "properties": {"product_id": "p1"}},
        {"type": "identify", "anonymousId": "web-9", "context": {"channel": "app"}, "traits": {"email": "rita@example.com", "firstName": "Rita", "lastName": "Moss", "loyalty_card": "LC-9"}},
        {"type": "track", "event": "Order Completed", "userId": "pos-9", "context": {"channel": "store", "traits": {"loyalty_card": "LC-9"}},
         "properties": {"order_id": "o-9", "store_id": "S3", "total": 18.5, "products": [{"product_id": "p1", "price": 18.5, "category": "Rainwear"}]}}
    ]});
    let res =
        http.post(format!("{base}/v1/batch")).basic_auth(&source, Some("")).json(&events).send().await.expect("batch");
    assert_eq!(res.status().as_u16(), 200);
    let shot = dir.path().join("console.png");
    let out = Command::new("node")
        .arg(tests.join("console.mjs"))
        .args([&base, &admin, "rita@example.com"])
        .arg(&shot)
        .output()
        .expect("run node");
    server.kill().expect("stop server");
    let _ = server.wait();
    assert!(out.status.success(), "browser run failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("json");
    assert_eq!(seen["name"], "Rita Moss");
    let mut channels: Vec<&str> =
        seen["channels"].as_array().expect("channels").iter().filter_map(Value::as_str).collect();
    channels.sort();
    assert_eq!(channels, ["app", "store", "web"]);
    assert_eq!(seen["timelineRows"], 3);
    // The 18.50 store order earned 18 points, pending through the return window.
    assert_eq!(seen["loyalty"]["pending points"], "18", "{seen}");
    let lines: Vec<&str> = seen["loyaltyLines"].as_array().expect("lines").iter().filter_map(Value::as_str).collect();
    assert_eq!(lines, ["Bronze member", "82 points to Silver"], "{seen}");
    // No model is trained in this store yet: the card says what to do.
    assert!(seen["suggestionsNote"].as_str().unwrap_or("").contains("tailor train"), "{seen}");
    assert!(seen["stats"].as_array().expect("stats").iter().any(|s| s == "customers"));
    assert!(seen["identifiers"].as_array().expect("ids").iter().any(|k| k == "loyalty_card"));
    assert!(seen["notFoundMessage"].as_str().unwrap_or("").contains("No customer"));
    assert_eq!(seen["failedRequests"], json!([]), "every asset is served by Tailor");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
    if let Ok(keep) = std::env::var("TAILOR_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_stock_and_its_live_feed() {
    let Some(tests) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let admin = {
        let out = Command::new(BIN)
            .args(["keys", "create", "--scope", "admin", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("keys");
        String::from_utf8(out.stdout).expect("utf8").trim().to_string()
    };
    for (kind, name, body) in [
        ("products", "products.csv", "id,title,price\numbrella-7,Umbrella,12\n"),
        ("locations", "stores.csv", "id,name,kind,region,timezone\nS1,North,store,N,UTC\nS2,South,store,S,UTC\n"),
        ("stock", "stock.csv", "sku,location_id,on_hand\numbrella-7,S1,5\numbrella-7,S2,9\n"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, body).expect("write");
        let out = Command::new(BIN)
            .args(["import", kind])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("import");
        assert!(out.status.success(), "import {kind}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (mut server, base) = serve(dir.path());
    let shot = dir.path().join("stock.png");
    let out = Command::new("node")
        .arg(tests.join("stock.mjs"))
        .args([&base, &admin, "umbrella-7", "S1"])
        .arg(&shot)
        .output()
        .expect("run node");
    server.kill().expect("stop server");
    let _ = server.wait();
    assert!(out.status.success(), "browser run failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("json");
    assert_eq!(seen["availability"], json!([["umbrella-7", "S1", "5"], ["umbrella-7", "S2", "9"]]));
    assert_eq!(seen["feed"][0], json!(["out of stock", "umbrella-7", "S1"]), "{seen}");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_prices_per_channel_and_the_decisions_chart() {
    let Some(tests) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let admin = {
        let out = Command::new(BIN)
            .args(["keys", "create", "--scope", "admin", "--data-dir"])
            .arg(dir.path())
            .output()
            .expect("keys");
        String::from_utf8(out.stdout).expect("utf8").trim().to_string()
    };
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price,category\nsoup-3,Tomato soup,2.00,CANNED\ntea-9,Green tea,3.00,TEA\n")
        .expect("write");
    let out = Command::new(BIN)
        .args(["import", "products"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("import");
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    let (mut server, base) = serve(dir.path());
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}")).bearer_auth(&admin).json(&body).send()
    };
    let ok = |r: reqwest::Response| assert!(r.status().is_success(), "{}", r.status());
    ok(call(reqwest::Method::PUT, "/v1/pricing/guardrails/soup-3", json!({"maxDailyChange": 0.1}))
        .await
        .expect("rails"));
    ok(call(reqwest::Method::PUT, "/v1/prices/soup-3", json!({"currency": "USD", "cents": 190})).await.expect("price"));
    ok(call(reqwest::Method::PUT, "/v1/prices/soup-3", json!({"currency": "USD", "cents": 300})).await.expect("price"));
    let promo = json!({"id": "web-soup", "name": "Web saver", "discount": {"type": "amount", "cents": 10}, "skus": ["soup-3"], "channels": ["web"]});
    ok(call(reqwest::Method::PUT, "/v1/promotions/web-soup", promo).await.expect("promo"));
    let experiment = json!({"pricesCents": [279, 299, 319]});
    ok(call(reqwest::Method::PUT, "/v1/pricing/experiments/tea-9", experiment).await.expect("experiment"));
    let shot = dir.path().join("pricing.png");
    let out = Command::new("node")
        .arg(tests.join("pricing.mjs"))
        .args([&base, &admin, "soup-3"])
        .arg(&shot)
        .arg("tea-9")
        .output()
        .expect("run node");
    server.kill().expect("stop server");
    let _ = server.wait();
    assert!(out.status.success(), "browser run failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("json");
    // 1.90, then 3.00 proposed but held to +10% of the day before (the catalog's 2.00): 2.20.
    // The same list price on every channel.
    assert_eq!(seen["channels"][0], json!(["web", "$2.20", "$2.10", "Web saver (web only)"]), "{seen}");
    assert_eq!(seen["channels"][2], json!(["store", "$2.20", "$2.20", ""]), "{seen}");
    assert_eq!(seen["points"], json!(["false", "true"]), "the clamped decision is marked: {seen}");
    assert_eq!(seen["decisions"][0], json!(["$2.20", "$3.00", "max daily change"]), "{seen}");
    assert_eq!(seen["experiment"]["status"], "running", "{seen}");
    // The list price (the catalog's 3.00) joins the arms and is played first: the experiment
    // earns at least what leaving the price alone would before it tries another.
    assert_eq!(seen["experiment"]["arms"], json!(["$2.79", "$2.99", "$3.19", "$3.00 (on the shelf)"]), "{seen}");
    if let Ok(keep) = std::env::var("TAILOR_KEEP_PRICING_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_charts_models_and_why_suggestions_were_made() {
    let Some(tests) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let key = |scope: &str| key(dir.path(), scope);
    // The orders are sales, so they come from a server-side source key (a browser key's are behaviour only).
    let (admin, source) = (key("admin"), key("source"));
    let (mut server, base) = serve(dir.path());
    let http = reqwest::Client::new();
    // Two taste groups of twelve shoppers; each buys four of their group's five products, weekly.
    let day = 86_400_000i64;
    let start = chrono::Utc::now().timestamp_millis() - 120 * day;
    let mut batch = vec![
        json!({"type": "identify", "userId": "u0", "traits": {"email": "ada@example.com", "consent": {"personalization": true}}}),
    ];
    for u in 0..24 {
        let group = if u < 12 { "tea" } else { "coffee" };
        for week in 0..8 {
            let item = format!("{group}-{}", (u + week) % 5);
            if (u + week) % 5 == u % 5 {
                continue;
            }
            let at =
                chrono::DateTime::from_timestamp_millis(start + (week * 7 + u % 3) * day).expect("time").to_rfc3339();
            batch.push(json!({"type": "track", "event": "Order Completed", "userId": format!("u{u}"), "timestamp": at,
                "properties": {"order_id": format!("o{u}-{week}"), "total": 4.0, "products": [{"product_id": item, "price": 4.0, "quantity": 1}]}}));
        }
    }
    let res = http
        .post(format!("{base}/v1/batch"))
        .basic_auth(&source, Some(""))
        .json(&json!({"batch": batch}))
        .send()
        .await
        .expect("batch");
    assert_eq!(res.status().as_u16(), 200);
    let res = http.post(format!("{base}/v1/models/train")).bearer_auth(&admin).send().await.expect("train");
    assert_eq!(res.status().as_u16(), 202);
    // Training runs in the background: wait for the stored version (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let models: Value = http
            .get(format!("{base}/v1/models"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("models")
            .json()
            .await
            .expect("json");
        if models["items"].as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no model after 120 s");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let shot = dir.path().join("models.png");
    let out = Command::new("node")
        .arg(tests.join("models.mjs"))
        .args([&base, &admin, "ada@example.com"])
        .arg(&shot)
        .output()
        .expect("run node");
    server.kill().expect("stop server");
    let _ = server.wait();
    assert!(out.status.success(), "browser run failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("json");
    assert_eq!(seen["versions"][0], "v1 (serving)", "{seen}");
    assert!(seen["suggestions"].as_i64().unwrap_or(0) >= 1, "{seen}");
    assert!(
        seen["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "the reasons behind the suggestions are charted: {seen}"
    );
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
    if let Ok(keep) = std::env::var("TAILOR_KEEP_MODELS_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
        eprintln!("{seen}");
    }
}
