//! The console's journey report in a real browser: headless Chromium (Debian's package) driven by
//! playwright-core renders a journey's funnel, its lift chart with both intervals, and the channel
//! and hour mix; every rendered number equals the report's (`GET /v1/journeys/{id}/report`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod browser;

use browser::{browser, key, serve, BIN};

/// The report, polled until `done` holds (bounded: the scheduler runs in the background).
async fn report_until(http: &reqwest::Client, base: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r: Value = http
            .get(format!("{base}/v1/journeys/welcome/report"))
            .bearer_auth(key)
            .send()
            .await
            .expect("report")
            .json()
            .await
            .expect("json");
        if done(&r) || Instant::now() > deadline {
            assert!(done(&r), "the report never got there: {r}");
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A number as the page wrote it into a data attribute (`null` for an open bound).
fn num(s: &Value) -> Option<f64> {
    s.as_str().and_then(|s| s.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_renders_a_journeys_funnel_and_lift_with_the_reports_numbers() {
    let Some(tests) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price,category,currency\nA,Apples,2.00,FRUIT,USD\n").expect("write");
    let out = Command::new(BIN)
        .args(["import", "products"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("import");
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    let (admin, source, write, read) =
        (key(dir.path(), "admin"), key(dir.path(), "source"), key(dir.path(), "write"), key(dir.path(), "read"));
    let (mut server, base) = serve(dir.path());
    let http = reqwest::Client::new();

    let put = |path: &str, body: Value| http.put(format!("{base}{path}")).bearer_auth(&admin).json(&body).send();
    let rails = json!({"perDay": 10, "perWeek": 50, "quietFromHour": 0, "quietUntilHour": 0, "defaultTimeZone": "UTC"});
    assert!(put("/v1/messaging/guardrails", rails).await.expect("rails").status().is_success());
    let def = json!({"name": "Welcome", "trigger": {"event": "Product Added"},
        "steps": [{"id": "hello", "type": "send", "channel": "onsite", "template": "cart_reminder"}],
        "exitOn": ["Order Completed"], "holdout": 50});
    assert!(put("/v1/journeys/welcome", def).await.expect("journey").status().is_success());
    let customers = 40;
    let mut batch = Vec::new();
    for i in 0..customers {
        let user = format!("w{i}");
        batch.push(json!({"type": "identify", "userId": user, "traits": {"consent": {"personalization": true}}}));
        batch.push(json!({"type": "track", "userId": user, "event": "Product Added",
            "properties": {"product_id": "A", "quantity": 1, "price": 2.0}}));
    }
    let res = http.post(format!("{base}/v1/batch")).basic_auth(&write, Some("")).json(&json!({"batch": batch}));
    assert_eq!(res.send().await.expect("batch").status().as_u16(), 200);
    report_until(&http, &base, &read, |r| {
        let f = &r["funnel"][1];
        n(&f["sent"]) + n(&f["heldOut"]) == customers
    })
    .await;
    // Each side's customers, from what they were sent; 6 in 10 recipients buy, 2 in 10 held out.
    let (mut sent, mut held) = (Vec::new(), Vec::new());
    for i in 0..customers {
        let user = format!("w{i}");
        let found: Value = http
            .get(format!("{base}/v1/profiles/lookup?userId={user}"))
            .bearer_auth(&read)
            .send()
            .await
            .expect("lookup")
            .json()
            .await
            .expect("json");
        let id = found["id"].as_str().expect("id").to_string();
        let sends: Value = http
            .get(format!("{base}/v1/messages/sends?user={id}&journey=welcome"))
            .bearer_auth(&read)
            .send()
            .await
            .expect("sends")
            .json()
            .await
            .expect("json");
        if sends["items"][0]["status"] == "sent" { &mut sent } else { &mut held }.push(user);
    }
    let buyers: Vec<&String> = sent
        .iter()
        .enumerate()
        .filter(|(k, _)| k % 10 < 6)
        .chain(held.iter().enumerate().filter(|(k, _)| k % 10 < 2))
        .map(|(_, u)| u)
        .collect();
    let orders: Vec<Value> = buyers
        .iter()
        .enumerate()
        .map(|(k, u)| json!({"type": "track", "userId": u, "event": "Order Completed",
            "properties": {"order_id": format!("w-{k}"), "total": 12.0, "products": [{"product_id": "A", "quantity": 6, "price": 2.0}]}}))
        .collect();
    let res = http.post(format!("{base}/v1/batch")).basic_auth(&source, Some("")).json(&json!({"batch": orders}));
    assert_eq!(res.send().await.expect("orders").status().as_u16(), 200);
    let report = report_until(&http, &base, &read, |r| {
        n(&r["overall"]["recipients"]["converted"]) + n(&r["overall"]["holdout"]["converted"]) == buyers.len() as u64
    })
    .await;

    let shot = dir.path().join("journey.png");
    let out = Command::new("node")
        .arg(tests.join("journeys.mjs"))
        .args([&base, &read, "welcome"])
        .arg(&shot)
        .output()
        .expect("run node");
    server.kill().expect("stop server");
    let _ = server.wait();
    assert!(out.status.success(), "browser run failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(out.stdout.trim_ascii()).expect("json");

    // The funnel: every cell as the report says.
    let funnel: Vec<Value> = report["funnel"]
        .as_array()
        .expect("funnel")
        .iter()
        .map(|f| {
            json!([
                f["step"],
                f["reached"].to_string(),
                f["sent"].to_string(),
                f["heldOut"].to_string(),
                f["skipped"].to_string(),
                f["converted"].to_string()
            ])
        })
        .collect();
    assert_eq!(seen["funnel"], json!(funnel), "{seen}");
    assert_eq!(seen["funnel"][1][2], sent.len().to_string());
    // The lift chart: overall, the step, the channel, each with its estimate and both intervals.
    let lifts = [&report["overall"], &report["steps"][0], &report["channels"][0]];
    assert_eq!(seen["lift"].as_array().map(Vec::len), Some(3), "{seen}");
    for (row, l) in seen["lift"].as_array().expect("rows").iter().zip(lifts) {
        let c = &l["conversion"];
        // Equal up to the last bit serde_json's default float parser may lose.
        let same = |page: &str, report: &Value| match (num(&row[page]), report.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-12,
            (a, b) => a.is_none() && b.is_none(),
        };
        assert!(same("estimate", &c["estimate"]), "{row} vs {c}");
        assert!(same("lo", &c["interval"][0]) && same("hi", &c["interval"][1]), "{row} vs {c}");
        assert!(same("avLo", &c["alwaysValid"][0]) && same("avHi", &c["alwaysValid"][1]), "{row} vs {c}");
        assert_eq!(row["verdict"], c["verdict"]);
    }
    assert_eq!(seen["lift"][1]["label"], "step hello");
    assert_eq!(seen["lift"][2]["label"], "channel onsite");
    // The table's rates, to the tenth of a point, and the group sizes.
    let overall = &seen["table"][0];
    let rate = |v: &Value| (v.as_f64().unwrap_or(f64::NAN) * 1000.0).round() / 10.0;
    let r = &report["overall"];
    assert_eq!(
        overall[1],
        format!("{:.1}% of {}", rate(&r["recipients"]["conversionRate"]), r["recipients"]["customers"])
    );
    assert_eq!(overall[2], format!("{:.1}% of {}", rate(&r["holdout"]["conversionRate"]), r["holdout"]["customers"]));
    assert_eq!(overall[3], format!("{:.1}", rate(&r["conversion"]["estimate"])));
    assert_eq!(seen["channels"], json!([["onsite", sent.len().to_string()]]));
    let hours: Vec<Value> = report["hourMix"]
        .as_array()
        .expect("hours")
        .iter()
        .map(|h| json!([h["key"], h["sends"].to_string()]))
        .collect();
    assert_eq!(seen["hours"], json!(hours));
    assert!(
        seen["summary"].as_str().unwrap_or("").starts_with(&format!("{customers} entries, 50% held out")),
        "{seen}"
    );
    if let Ok(keep) = std::env::var("TAILOR_KEEP_JOURNEY_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was taken");
}
