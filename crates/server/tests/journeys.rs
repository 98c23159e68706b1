//! Journeys over a real socket with a real SMTP server (scripts/smtp-sink.sh, aiosmtpd), on
//! SQLite and PostgreSQL, time driven by the journeys' test clock: the built-in abandoned-cart
//! journey end to end (the reminder at today's prices, the discount under the margin floor, a
//! sold-out item replaced by a similar one in stock), a purchase ends it, a cart change
//! restarts the wait, consent withdrawn before the send is recorded as a skip, quiet hours wait
//! for the customer's morning; bad definitions are refused naming the field.

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::{SmtpSink, TestServer};

/// 2026-12-01T15:00:00Z: mid-morning in New York, past midnight in Tokyo.
const T0: i64 = 1_796_137_200_000;
const HOUR: i64 = 3_600_000;

async fn shop(s: &TestServer) -> SmtpSink {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(
        &file,
        "id,title,price,category,currency\nA,Apples,2.00,FRUIT,USD\nB,Pears,3.00,FRUIT,USD\nC,Plums,1.50,FRUIT,USD\nD,Soup,2.50,CANNED,USD\n",
    )
    .expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone,latitude,longitude\nS1,North,store,N,UTC,52.52,13.40\n")
        .expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    for sku in ["A", "B", "C", "D"] {
        set_stock(s, sku, 5).await;
    }
    let sink = SmtpSink::start();
    s.engine.set_channels(sink.channels());
    s.engine.journey_clock().set(T0);
    let (status, mut def) = s.get("/v1/builtin-journeys/abandoned_cart").await;
    assert_eq!(status, 200, "{def}");
    // No holdout: these tests follow each customer's messages (tests/journey_report.rs
    // measures the holdout).
    def["holdout"] = json!(0);
    let (status, body) = s.call("PUT", "/v1/journeys/abandoned_cart", &s.admin_key, Some(&def)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 1);
    sink
}

async fn set_stock(s: &TestServer, sku: &str, n: i64) {
    let adj = json!({"sku": sku, "locationId": "S1", "mode": "set", "onHand": n, "reason": "count"});
    let (status, body) = s.call("POST", "/v1/inventory/adjustments", &s.admin_key, Some(&adj)).await;
    assert_eq!(status, 200, "{body}");
}

/// A customer with an e-mail address and marketing consent; returns their profile id.
async fn customer(s: &TestServer, user: &str, zone: &str) -> String {
    let traits = json!({"email": format!("{user}@example.com"), "firstName": "Sam", "timezone": zone,
        "consent": {"marketing_email": true, "personalization": true}});
    let (status, body) = s.send("/v1/identify", &json!({"userId": user, "traits": traits})).await;
    assert_eq!(status, 200, "{body}");
    let (status, found) = s.get_until(&format!("/v1/profiles/lookup?userId={user}"), |st, _| st == 200).await;
    assert_eq!(status, 200, "{found}");
    found["id"].as_str().expect("id").to_string()
}

async fn track(s: &TestServer, user: &str, event: &str, properties: Value) {
    let (status, body) =
        s.send_trusted("/v1/track", &json!({"userId": user, "event": event, "properties": properties})).await;
    assert_eq!(status, 200, "{body}");
}

async fn add(s: &TestServer, user: &str, sku: &str, price: f64) {
    track(s, user, "Product Added", json!({"product_id": sku, "quantity": 1, "price": price})).await;
}

/// Waits until the customer's decisions hold `n` with `outcome`, and returns them all.
async fn decisions_until(s: &TestServer, id: &str, outcome: &str, n: usize) -> Vec<Value> {
    let (_, body) = s
        .get_until(&format!("/v1/messages/decisions?user={id}"), |_, b| {
            b["items"].as_array().is_some_and(|a| a.iter().filter(|d| d["outcome"] == outcome).count() >= n)
        })
        .await;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    assert!(items.iter().filter(|d| d["outcome"] == outcome).count() >= n, "no {outcome} x{n}: {body}");
    items
}

async fn sends(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("/v1/messages/sends?user={id}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// A customer's sends once none is pending: a message the SMTP server accepted is recorded
/// `sent` right after, by the scheduler's recorder.
async fn settled_sends(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, body) = s
        .get_until(&format!("/v1/messages/sends?user={id}"), |st, b| {
            st == 200 && b["items"].as_array().is_some_and(|items| items.iter().all(|x| x["status"] != "pending"))
        })
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn to(m: &str) -> String {
    m.lines().find_map(|l| l.strip_prefix("To: ")).unwrap_or_default().to_string()
}

async fn abandoned_cart_reminds_at_todays_prices_then_discounts_under_the_floor_with_a_similar_item(s: TestServer) {
    let sink = shop(&s).await;
    // Someone else bought plums: the similar-item source has something to offer.
    customer(&s, "other", "UTC").await;
    track(
        &s,
        "other",
        "Order Completed",
        json!({"order_id": "o-1", "total": 3.0, "products": [{"product_id": "C", "quantity": 2, "price": 1.5}]}),
    )
    .await;
    // Pears cost 2.70: at a 5% margin their floor is 2.84, above 10% off (2.70).
    let rails = json!({"unitCostCents": 270, "minMargin": 0.05});
    let (status, body) = s.call("PUT", "/v1/pricing/guardrails/B", &s.admin_key, Some(&rails)).await;
    assert_eq!(status, 200, "{body}");
    let id = customer(&s, "sam", "America/New_York").await;
    add(&s, "sam", "A", 2.0).await;
    add(&s, "sam", "B", 3.0).await;
    // The second add restarts the wait: once it has, both are in the cart the message reads.
    decisions_until(&s, &id, "restarted", 1).await;
    assert!(sink.messages().is_empty(), "nothing before the hour");

    s.engine.journey_clock().advance(HOUR + 1000);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "the reminder arrives once");
    let m = &got[0];
    assert_eq!(to(m), "sam@example.com");
    assert!(m.contains("Subject: Sam, your cart at Tailor Shop is waiting"), "{m}");
    assert!(m.contains("List-Unsubscribe: <http"), "{m}");
    assert!(m.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{m}");
    assert!(m.contains("multipart/alternative") && m.contains("text/html") && m.contains("text/plain"), "{m}");
    let (status, prices) = s.get(&format!("/v1/prices?sku=A,B&channel=web&user={id}")).await;
    assert_eq!(status, 200, "{prices}");
    for (q, name) in prices["items"].as_array().expect("items").iter().zip(["Apples", "Pears"]) {
        let line = format!("- {name}: 1 x {}", money(q["priceCents"].as_i64().expect("cents")));
        assert!(m.contains(&line), "{line} in {m}");
    }

    // Apples sell out before the second message: plums (same category, in stock) stand in.
    set_stock(&s, "A", 0).await;
    s.engine.journey_clock().advance(23 * HOUR);
    let got = sink.wait_for(2).await;
    assert_eq!(got.len(), 2, "the discount arrives once");
    let m = &got[1];
    assert!(m.contains("Subject: 10% off your cart at Tailor Shop"), "{m}");
    assert!(m.contains("- Plums (instead of Apples, sold out): $1.35 (was $1.50)"), "{m}");
    assert!(m.contains("- Pears: $2.84 (was $3.00)"), "held at the margin floor (cost 2.70 + 5%): {m}");
    let sent = settled_sends(&s, &id).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|x| x["status"] == "sent" && x["consentPurpose"] == "marketing_email"), "{sent:?}");
    let why = sent[0]["reason"].as_str().unwrap_or_default();
    assert!(why.contains("margin floor") && why.contains("replaced by similar C"), "{why}");
    let (_, journey) = s.get("/v1/journeys/abandoned_cart").await;
    assert!(journey["steps"].to_string().contains("completed"), "{journey}");
}

async fn a_purchase_ends_the_journey_and_a_cart_change_restarts_the_wait(s: TestServer) {
    let sink = shop(&s).await;
    let id = customer(&s, "kim", "UTC").await;
    add(&s, "kim", "A", 2.0).await;
    decisions_until(&s, &id, "entered", 1).await;
    s.engine.journey_clock().advance(HOUR / 2);
    add(&s, "kim", "B", 3.0).await;
    decisions_until(&s, &id, "restarted", 1).await;
    // An hour after the first add, but only half an hour after the change: nothing is due.
    s.engine.journey_clock().advance(HOUR / 2 + 1000);
    s.engine.run_journeys().await.expect("round");
    assert!(sends(&s, &id).await.is_empty(), "the wait restarted");
    assert!(sink.messages().is_empty());
    s.engine.journey_clock().advance(HOUR / 2);
    assert_eq!(sink.wait_for(1).await.len(), 1, "the reminder an hour after the change");
    track(&s, "kim", "Order Completed", json!({"order_id": "k-1", "total": 5.0,
        "products": [{"product_id": "A", "quantity": 1, "price": 2.0}, {"product_id": "B", "quantity": 1, "price": 3.0}]}))
    .await;
    let log = decisions_until(&s, &id, "exited", 1).await;
    assert!(log
        .iter()
        .any(|d| d["outcome"] == "exited" && d["reason"].as_str().unwrap_or("").contains("Order Completed")));
    s.engine.journey_clock().advance(48 * HOUR);
    s.engine.run_journeys().await.expect("round");
    assert_eq!(sends(&s, &id).await.len(), 1, "no discount after the purchase");
    assert_eq!(sink.messages().len(), 1);
}

async fn withdrawn_consent_is_a_recorded_skip_and_quiet_hours_wait_for_morning(s: TestServer) {
    let sink = shop(&s).await;
    let lee = customer(&s, "lee", "UTC").await;
    let aki = customer(&s, "aki", "Asia/Tokyo").await;
    add(&s, "lee", "A", 2.0).await;
    add(&s, "aki", "A", 2.0).await;
    decisions_until(&s, &lee, "entered", 1).await;
    decisions_until(&s, &aki, "entered", 1).await;
    let (status, body) = s
        .call(
            "PUT",
            &format!("/v1/profiles/{lee}/consent"),
            &s.admin_key,
            Some(&json!({"purpose": "marketing_email", "granted": false})),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    // 16:00 UTC: Lee's send is judged (and skipped); in Tokyo it is 01:00, quiet until 08:00.
    s.engine.journey_clock().advance(HOUR + 1000);
    let log = decisions_until(&s, &lee, "skipped", 1).await;
    let skip = log.iter().find(|d| d["outcome"] == "skipped").expect("skip");
    assert_eq!(skip["reason"], "no marketing_email consent at send time");
    assert_eq!(skip["consentPurpose"], "marketing_email");
    let sent = sends(&s, &lee).await;
    assert_eq!((sent.len(), sent[0]["status"].as_str()), (1, Some("skipped")), "{sent:?}");
    let log = decisions_until(&s, &aki, "deferred", 1).await;
    let wait = log.iter().find(|d| d["outcome"] == "deferred").expect("deferred");
    assert!(wait["reason"].as_str().unwrap_or("").contains("2026-12-01T23:00:00"), "08:00 in Tokyo: {wait}");
    assert!(sink.messages().is_empty(), "nothing at night, nothing without consent");
    s.engine.journey_clock().set(T0 + 8 * HOUR);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(to(&got[0]), "aki@example.com");
}

async fn one_click_unsubscribe_withdraws_consent_at_once(s: TestServer) {
    let sink = shop(&s).await;
    let id = customer(&s, "max", "UTC").await;
    add(&s, "max", "A", 2.0).await;
    decisions_until(&s, &id, "entered", 1).await;
    s.engine.journey_clock().advance(HOUR + 1000);
    let got = sink.wait_for(1).await;
    let link = got[0]
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.strip_suffix('>'))
        .expect("List-Unsubscribe")
        .to_string();
    let path = &link[link.find("/v1/").expect("path")..];
    // RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, with no key.
    let res = s
        .http
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 200);
    let (_, profile) = s.call("GET", &format!("/v1/profiles/{id}"), &s.admin_key, None).await;
    let consent =
        profile["consent"].as_array().expect("consent").iter().find(|c| c["purpose"] == "marketing_email").cloned();
    assert_eq!(
        consent.as_ref().map(|c| (c["granted"].clone(), c["source"].clone())),
        Some((json!(false), json!("unsubscribe"))),
        "{profile}"
    );
    // A forged token changes nothing.
    let forged = path.replace("marketing_email.", "marketing_email.0");
    let res = s.http.post(s.url(&forged)).send().await.expect("post");
    assert_eq!(res.status().as_u16(), 400);
    // The next message is not sent, and the skip says why.
    add(&s, "max", "B", 3.0).await;
    decisions_until(&s, &id, "restarted", 1).await;
    s.engine.journey_clock().advance(HOUR + 1000);
    let log = decisions_until(&s, &id, "skipped", 1).await;
    assert!(log.iter().any(|d| d["reason"] == "no marketing_email consent at send time"));
    assert_eq!(sink.messages().len(), 1);
}

/// A webhook endpoint that answers 500 to everything, counting calls and keeping signatures.
async fn failing_endpoint() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let sig = text.lines().find_map(|l| l.strip_prefix("x-tailor-signature: ")).unwrap_or("").to_string();
                record.lock().expect("lock").push(sig);
                let _ = sock
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}/sms"), seen)
}

async fn a_failing_sms_webhook_is_retried_then_dead_lettered_without_blocking_email(s: TestServer) {
    let sink = shop(&s).await;
    let (url, seen) = failing_endpoint().await;
    let mut channels = sink.channels();
    channels.sms = Some(
        tailor_engine::Engine::webhook_channel("sms", &url, b"secret", std::time::Duration::from_secs(5))
            .expect("hook"),
    );
    s.engine.set_channels(channels);
    let sms = json!({"name": "SMS reminder", "trigger": {"event": "Product Added"},
        "steps": [{"id": "text", "type": "send", "channel": "sms", "template": "cart_reminder"}], "holdout": 0});
    let (status, body) = s.call("PUT", "/v1/journeys/sms_now", &s.admin_key, Some(&sms)).await;
    assert_eq!(status, 200, "{body}");
    let traits = json!({"email": "ana@example.com", "phone": "+4915112345678", "timezone": "UTC",
        "consent": {"marketing_email": true, "marketing_sms": true}});
    let (status, _) = s.send("/v1/identify", &json!({"userId": "ana", "traits": traits})).await;
    assert_eq!(status, 200);
    let (_, found) = s.get_until("/v1/profiles/lookup?userId=ana", |st, _| st == 200).await;
    let id = found["id"].as_str().expect("id").to_string();
    add(&s, "ana", "A", 2.0).await;
    decisions_until(&s, &id, "retrying", 1).await;
    // Each retry waits longer; the e-mail journey's reminder is not held up by it.
    for _ in 0..6 {
        s.engine.journey_clock().advance(HOUR + 1000);
        s.engine.run_journeys().await.expect("round");
    }
    assert_eq!(sink.wait_for(1).await.len(), 1, "the e-mail went out");
    let (_, sends) = s.get(&format!("/v1/messages/sends?user={id}&journey=sms_now")).await;
    let sms = &sends["items"][0];
    assert_eq!(sms["status"], "failed", "{sends}");
    assert_eq!(sms["attempts"], 5, "{sends}");
    assert!(sms["reason"].as_str().unwrap_or("").contains("dead-lettered after 5 attempts"), "{sends}");
    let calls = seen.lock().expect("lock").clone();
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert!(calls.iter().all(|c| c.starts_with("sha256=") && c.len() == 71), "signed: {calls:?}");
}

async fn bad_journeys_and_guardrails_are_refused_naming_the_field(s: TestServer) {
    let (_, good) = s.get("/v1/builtin-journeys/abandoned_cart").await;
    let mut cycle = good.clone();
    cycle["steps"][5] = json!({"id": "end", "type": "wait", "seconds": 60, "next": "still_there"});
    let mut trigger = good.clone();
    trigger["trigger"]["event"] = json!("Product Teleported");
    let mut hook = good.clone();
    hook["steps"][0] = json!({"id": "wait_1h", "type": "webhook", "url": "ftp://example.com/x"});
    let mut template = good.clone();
    template["steps"][1]["template"] = json!("nope");
    for (body, field) in
        [(cycle, "steps[5]"), (trigger, "trigger.event"), (hook, "steps[0].url"), (template, "steps[1].template")]
    {
        let (status, problem) = s.call("PUT", "/v1/journeys/bad", &s.admin_key, Some(&body)).await;
        assert_eq!(status, 400, "{problem}");
        assert!(problem["field"].as_str().unwrap_or("").starts_with(field), "{field}: {problem}");
    }
    let (status, _) = s.get("/v1/journeys/bad").await;
    assert_eq!(status, 404, "nothing half-saved");
    for (body, field) in [
        (
            json!({"perDay": 0, "perWeek": 5, "quietFromHour": 21, "quietUntilHour": 8, "defaultTimeZone": "UTC"}),
            "perDay",
        ),
        (
            json!({"perDay": 2, "perWeek": 0, "quietFromHour": 21, "quietUntilHour": 8, "defaultTimeZone": "UTC"}),
            "perWeek",
        ),
    ] {
        let (status, problem) = s.call("PUT", "/v1/messaging/guardrails", &s.admin_key, Some(&body)).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{problem}");
    }
}

async fn the_welcome_journey_greets_a_new_customer_whose_cart_is_empty(s: TestServer) {
    let sink = shop(&s).await;
    let (status, mut def) = s.get("/v1/builtin-journeys/welcome").await;
    assert_eq!(status, 200, "{def}");
    def["holdout"] = json!(0);
    let (status, body) = s.call("PUT", "/v1/journeys/welcome", &s.admin_key, Some(&def)).await;
    assert_eq!(status, 200, "{body}");
    let id = customer(&s, "ada", "UTC").await;
    track(&s, "ada", "Signed Up", json!({})).await;
    decisions_until(&s, &id, "entered", 1).await;
    s.engine.journey_clock().advance(1000);
    let got = sink.wait_for(1).await;
    let welcome: Vec<&String> = got.iter().filter(|m| m.contains("Welcome to")).collect();
    assert_eq!(welcome.len(), 1, "one welcome, though the cart is empty: {got:?}");
    assert_eq!(to(welcome[0]), "ada@example.com");
    assert!(welcome[0].contains("Hi Sam,"), "{}", welcome[0]);
    assert!(!welcome[0].contains("cart"), "{}", welcome[0]);
    let sent = settled_sends(&s, &id).await;
    assert!(sent.iter().any(|x| x["journey"] == "welcome" && x["status"] == "sent"), "{sent:?}");
}

/// A delivered message with quoted-printable soft line breaks joined.
fn unfolded(m: &str) -> String {
    m.replace("=\r\n", "").replace("=\n", "")
}

/// The number in "would earn you N points" of a delivered message.
fn points_shown(m: &str) -> Option<i64> {
    let m = unfolded(m);
    let rest = &m[m.find("would earn you ")? + "would earn you ".len()..];
    rest.split(' ').next()?.parse().ok()
}

/// An order placed on the web shop (the channel earning rules match on).
async fn web_order(s: &TestServer, user: &str, properties: Value) {
    let event = json!({"userId": user, "event": "Order Completed", "properties": properties,
        "context": {"channel": "web"}});
    let (status, body) = s.send_trusted("/v1/track", &event).await;
    assert_eq!(status, 200, "{body}");
}

async fn loyalty_setup(s: &TestServer) {
    // Fruit bought on the web earns 3 points a dollar; Silver members (any spend) earn double.
    let rules = json!([{"name": "fruit on the web", "channel": "web", "category": "FRUIT", "pointsPerUnit": 3.0}]);
    let (status, body) = s.call("PUT", "/v1/loyalty/rules", &s.admin_key, Some(&rules)).await;
    assert_eq!(status, 200, "{body}");
    let tiers = json!([{"name": "Silver", "minSpendCents": 100, "multiplier": 2.0}]);
    let (status, body) = s.call("PUT", "/v1/loyalty/tiers", &s.admin_key, Some(&tiers)).await;
    assert_eq!(status, 200, "{body}");
}

async fn the_cart_reminder_shows_the_points_the_order_would_earn_as_loyalty_grants_them(s: TestServer) {
    let sink = shop(&s).await;
    loyalty_setup(&s).await;
    let id = customer(&s, "pat", "UTC").await;
    // A first order makes Pat a Silver member; 25 points to spend.
    web_order(
        &s,
        "pat",
        json!({"order_id": "p-1", "total": 1.5,
        "products": [{"product_id": "C", "quantity": 1, "price": 1.5, "category": "FRUIT"}]}),
    )
    .await;
    let (_, account) = s.get_until(&format!("/v1/loyalty/{id}"), |st, b| st == 200 && b["tier"] == "Silver").await;
    assert_eq!(account["tier"], "Silver", "{account}");
    let adjust = json!({"points": 25, "reason": "goodwill"});
    let (status, body) = s.call("POST", &format!("/v1/loyalty/{id}/adjust"), &s.admin_key, Some(&adjust)).await;
    assert_eq!(status, 200, "{body}");
    add(&s, "pat", "A", 2.0).await;
    add(&s, "pat", "B", 3.0).await;
    // The second add restarts the wait: once it has, both are in the cart the message reads.
    decisions_until(&s, &id, "restarted", 1).await;

    s.engine.journey_clock().advance(HOUR + 1000);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let m = unfolded(&got[0]);
    // (2.00 + 3.00) x 3 points a dollar x 2 for Silver.
    assert_eq!(points_shown(&m), Some(30), "{m}");
    assert!(m.contains("You have 25 points to spend as a Silver member."), "{m}");
    let sent = settled_sends(&s, &id).await;
    assert!(sent[0]["reason"].as_str().unwrap_or("").contains("would earn 30 points (Silver: 2x)"), "{sent:?}");

    // Pat orders the cart at the prices the message showed: loyalty grants what it said.
    let (status, prices) = s.get(&format!("/v1/prices?sku=A,B&channel=web&user={id}")).await;
    assert_eq!(status, 200, "{prices}");
    let mut products = Vec::new();
    let mut total = 0;
    for q in prices["items"].as_array().expect("items") {
        let cents = q["priceCents"].as_i64().expect("cents");
        total += cents;
        let sku = q["sku"].as_str().expect("sku");
        let line = format!("- {}: 1 x {}", if sku == "A" { "Apples" } else { "Pears" }, money(cents));
        assert!(m.contains(&line), "{line} in {m}");
        products.push(json!({"product_id": sku, "quantity": 1, "price": cents as f64 / 100.0, "category": "FRUIT"}));
    }
    let order = json!({"order_id": "p-2", "total": total as f64 / 100.0, "products": products});
    web_order(&s, "pat", order).await;
    let (_, account) = s
        .get_until(&format!("/v1/loyalty/{id}"), |_, b| {
            b["history"].as_array().is_some_and(|h| h.iter().any(|e| e["orderId"] == "p-2"))
        })
        .await;
    let earned = account["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["orderId"] == "p-2" && e["kind"] == "earn"))
        .and_then(|e| e["points"].as_i64());
    assert_eq!(earned, points_shown(&m), "the message promised what the order earned: {account}");
}

async fn put_journey(s: &TestServer, id: &str, def: &Value) {
    let (status, body) = s.call("PUT", &format!("/v1/journeys/{id}"), &s.admin_key, Some(def)).await;
    assert_eq!(status, 200, "{body}");
}

fn steps_journey() -> Value {
    json!({
        "name": "After checkout",
        "trigger": {"event": "Checkout Started"},
        "steps": [
            {"id": "order", "type": "waitUntil", "event": "Order Completed", "seconds": 3600,
             "then": "thank", "otherwise": "nudge"},
            {"id": "nudge", "type": "updateTrait", "name": "nudged", "value": true, "next": "end"},
            {"id": "thank", "type": "grantPoints", "points": 50, "reason": "thanks for ordering"},
            {"id": "mark", "type": "updateTrait", "name": "vip_candidate", "value": "yes"},
            {"id": "check", "type": "branch", "condition": {"type": "traitEquals", "name": "vip_candidate", "value": "yes"},
             "then": "bonus", "otherwise": "end"},
            {"id": "bonus", "type": "grantPoints", "points": 5, "reason": "the branch saw the new trait"},
            {"id": "end", "type": "exit"}
        ],
        "holdout": 0
    })
}

async fn journey_entries(s: &TestServer, id: &str) -> Vec<Value> {
    let (_, account) = s.get(&format!("/v1/loyalty/{id}")).await;
    account["history"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["kind"] == "journey").collect()
}

async fn profile_traits(s: &TestServer, id: &str) -> Value {
    let (status, profile) = s.call("GET", &format!("/v1/profiles/{id}"), &s.admin_key, None).await;
    assert_eq!(status, 200, "{profile}");
    profile["traits"].clone()
}

async fn waiting_for_an_event_grants_points_once_and_sets_traits_or_times_out(s: TestServer) {
    let _sink = shop(&s).await;
    put_journey(&s, "after_checkout", &steps_journey()).await;
    let ora = customer(&s, "ora", "UTC").await;
    let tim = customer(&s, "tim", "UTC").await;
    track(&s, "ora", "Checkout Started", json!({})).await;
    track(&s, "tim", "Checkout Started", json!({})).await;
    decisions_until(&s, &ora, "entered", 1).await;
    decisions_until(&s, &tim, "entered", 1).await;

    // Ora orders within the hour: the wait is over, the points and traits follow at once.
    s.engine.journey_clock().advance(HOUR / 2);
    track(
        &s,
        "ora",
        "Order Completed",
        json!({"order_id": "o-9", "total": 2.0,
        "products": [{"product_id": "A", "quantity": 1, "price": 2.0}]}),
    )
    .await;
    let log = decisions_until(&s, &ora, "points_granted", 2).await;
    let resumed = log.iter().find(|d| d["outcome"] == "resumed").expect("resumed");
    assert_eq!(resumed["step"], "order");
    assert!(resumed["reason"].as_str().unwrap_or("").contains("Order Completed"), "{resumed}");
    assert!(log.iter().any(|d| d["outcome"] == "trait_updated" && d["step"] == "mark"), "{log:?}");
    let granted = journey_entries(&s, &ora).await;
    let mut points: Vec<(i64, String)> = granted
        .iter()
        .map(|e| (e["points"].as_i64().unwrap_or(0), e["reason"].as_str().unwrap_or("").to_string()))
        .collect();
    points.sort();
    assert_eq!(
        points,
        vec![(5, "the branch saw the new trait".to_string()), (50, "thanks for ordering".to_string())],
        "{granted:?}"
    );
    assert_eq!(profile_traits(&s, &ora).await["vip_candidate"], "yes");
    let sent = settled_sends(&s, &ora).await;
    let thank = sent.iter().find(|x| x["step"] == "thank").expect("thank recorded");
    assert_eq!((thank["status"].as_str(), thank["channel"].as_str()), (Some("done"), Some("loyalty")), "{sent:?}");
    assert!(thank["reason"].as_str().unwrap_or("").contains("granted 50 points"), "{thank}");

    // Tim never orders: at the timeout he takes the other way (a trait, no points).
    s.engine.journey_clock().advance(HOUR / 2 + 1000);
    // (The timeout is logged as the position moves on, after the trait's own commit.)
    let log = decisions_until(&s, &tim, "timed_out", 1).await;
    assert!(log.iter().any(|d| d["outcome"] == "timed_out" && d["step"] == "order"), "{log:?}");
    assert!(log.iter().any(|d| d["outcome"] == "trait_updated" && d["step"] == "nudge"), "{log:?}");
    assert_eq!(profile_traits(&s, &tim).await["nudged"], true);
    assert!(journey_entries(&s, &tim).await.is_empty(), "no points without an order");

    // More rounds, later: nothing is granted twice.
    for _ in 0..3 {
        s.engine.journey_clock().advance(HOUR);
        s.engine.run_journeys().await.expect("round");
    }
    assert_eq!(journey_entries(&s, &ora).await.len(), 2, "each grant once");
    let (_, journey) = s.get("/v1/journeys/after_checkout").await;
    let active = journey["steps"].as_array().expect("steps").iter().filter(|c| c["status"] == "active").count();
    assert_eq!(active, 0, "both finished: {journey}");
}

async fn bad_steps_are_refused_naming_the_field_and_nothing_is_saved(s: TestServer) {
    let cases = [
        ("/steps/2/points", json!(0), "steps[2].points"),
        ("/steps/2/points", json!(100_001), "steps[2].points"),
        ("/steps/0/event", json!("Order Teleported"), "steps[0].event"),
        ("/steps/0/seconds", json!(0), "steps[0].seconds"),
        ("/steps/0/then", json!("nowhere"), "steps[0].then"),
        ("/steps/1/name", json!("consent"), "steps[1].name"),
        ("/steps/3/value", json!({"nested": 1}), "steps[3].value"),
    ];
    for (pointer, value, field) in cases {
        let mut def = steps_journey();
        *def.pointer_mut(pointer).expect(pointer) = value;
        let (status, problem) = s.call("PUT", "/v1/journeys/bad_steps", &s.admin_key, Some(&def)).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{problem}");
        assert_eq!(problem["type"].as_str().map(|t| !t.is_empty()), Some(true), "problem+json: {problem}");
    }
    let (status, _) = s.get("/v1/journeys/bad_steps").await;
    assert_eq!(status, 404, "nothing half-saved");
}

const DAY: i64 = 24 * HOUR;

/// 15:00 UTC, `days` days from today on the wall clock (loyalty dates its entries by it):
/// waking hours for a customer in UTC.
fn afternoon_in(days: i64) -> i64 {
    (tailor_core::time::now_millis() / DAY + days) * DAY + 15 * HOUR
}

fn date(ms: i64) -> String {
    tailor_core::time::format_millis(ms).chars().take(10).collect()
}

/// Switches a built-in journey on as it comes (without a holdout: these tests follow each
/// customer's messages).
async fn switch_on(s: &TestServer, name: &str) {
    let (status, mut def) = s.get(&format!("/v1/builtin-journeys/{name}")).await;
    assert_eq!(status, 200, "{def}");
    def["holdout"] = json!(0);
    put_journey(s, name, &def).await;
}

fn subjects_to(messages: &[String], address: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| to(m) == address)
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")).map(str::to_string))
        .collect()
}

async fn points_expiring_warns_whose_points_expire_and_not_once_they_are_spent(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "points_expiring").await;
    let ivy = customer(&s, "ivy", "UTC").await;
    let joe = customer(&s, "joe", "UTC").await;
    let gift = json!({"points": 120, "reason": "welcome gift"});
    let (status, body) = s.call("POST", &format!("/v1/loyalty/{ivy}/adjust"), &s.admin_key, Some(&gift)).await;
    assert_eq!(status, 200, "{body}");
    // A year less two weeks later Ivy's points expire within the warning window; Joe has none.
    let t = afternoon_in(350);
    s.engine.journey_clock().set(t);
    assert!(s.engine.sweep_loyalty(t).await.expect("sweep") >= 1);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = unfolded(&got[0]);
    assert_eq!(to(&m), "ivy@example.com");
    let by = date(t + 30 * DAY);
    assert!(m.contains(&format!("Subject: 120 of your Tailor Shop points expire by {by}")), "{m}");
    assert!(m.contains(&format!("120 points expire by {by} unless you use them")), "{m}");
    assert!(sends(&s, &joe).await.is_empty());

    // Ivy spends them; a week later the reminder has nothing to say and is skipped, recorded.
    let (status, body) =
        s.call("POST", &format!("/v1/loyalty/{ivy}/redeem"), &s.admin_key, Some(&json!({"points": 120}))).await;
    assert_eq!(status, 200, "{body}");
    s.engine.journey_clock().advance(7 * DAY + 1000);
    let log = decisions_until(&s, &ivy, "skipped", 1).await;
    let skip = log.iter().find(|d| d["outcome"] == "skipped").expect("skip");
    assert_eq!(
        (skip["step"].as_str(), skip["reason"].as_str()),
        (Some("again"), Some("no points expire within the warning window now"))
    );
    assert_eq!(sink.messages().len(), 1);
}

async fn tier_at_risk_tells_the_member_what_keeps_their_tier(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "tier_at_risk").await;
    let tiers = json!([{"name": "Silver", "minSpendCents": 100, "multiplier": 1.0, "graceDays": 30}]);
    let (status, body) = s.call("PUT", "/v1/loyalty/tiers", &s.admin_key, Some(&tiers)).await;
    assert_eq!(status, 200, "{body}");
    let kai = customer(&s, "kai", "UTC").await;
    let lou = customer(&s, "lou", "UTC").await;
    track(
        &s,
        "kai",
        "Order Completed",
        json!({"order_id": "k-7", "total": 1.5,
        "products": [{"product_id": "C", "quantity": 1, "price": 1.5}]}),
    )
    .await;
    let (_, account) = s.get_until(&format!("/v1/loyalty/{kai}"), |st, b| st == 200 && b["tier"] == "Silver").await;
    assert_eq!(account["tier"], "Silver", "{account}");
    // A year and more later the order no longer counts: Silver is held for 30 days of grace.
    let t = afternoon_in(367);
    s.engine.journey_clock().set(t);
    s.engine.sweep_loyalty(t).await.expect("sweep");
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = unfolded(&got[0]);
    assert_eq!(to(&m), "kai@example.com");
    assert!(m.contains("Subject: Keep your Silver status at Tailor Shop"), "{m}");
    let until = date(t + 30 * DAY);
    assert!(
        m.contains(&format!("Your Silver status is yours until {until}. Spend $1.00 more by then to keep it.")),
        "{m}"
    );
    assert!(sends(&s, &lou).await.is_empty(), "no tier, nothing at risk");
}

async fn birthday_greets_with_the_loyalty_reward_only_whose_birthday_it_is(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "birthday").await;
    let rewards = json!([{"name": "birthday treat", "trigger": "birthday", "points": 100}]);
    let (status, body) = s.call("PUT", "/v1/loyalty/rewards", &s.admin_key, Some(&rewards)).await;
    assert_eq!(status, 200, "{body}");
    let t = afternoon_in(10);
    let today = date(t);
    let bea = customer(&s, "bea", "UTC").await;
    let ben = customer(&s, "ben", "UTC").await;
    for (user, born) in [("bea", format!("1990{}", &today[4..])), ("ben", "1990-02-30".to_string())] {
        let (status, body) = s.send("/v1/identify", &json!({"userId": user, "traits": {"birthday": born}})).await;
        assert_eq!(status, 200, "{body}");
    }
    for id in [&bea, &ben] {
        let (_, p) = s.get_until(&format!("/v1/profiles/{id}"), |_, b| b["traits"]["birthday"].is_string()).await;
        assert!(p["traits"]["birthday"].is_string(), "{p}");
    }
    s.engine.journey_clock().set(t);
    s.engine.sweep_loyalty(t).await.expect("sweep");
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = unfolded(&got[0]);
    assert_eq!(to(&m), "bea@example.com");
    assert!(m.contains("Subject: Happy birthday, Sam!"), "{m}");
    assert!(m.contains("We have added 100 points to your account as a gift."), "{m}");
    assert!(m.contains("You have 100 points to spend."), "the reward is in the balance the message shows: {m}");
    assert!(sends(&s, &ben).await.is_empty());
    // The sweep runs hourly: the same day's sweep again grants and greets nothing more.
    s.engine.sweep_loyalty(t + HOUR).await.expect("sweep");
    s.engine.run_journeys().await.expect("round");
    assert_eq!(sink.messages().len(), 1);
}

async fn browse_abandonment_shows_what_was_viewed_unless_it_was_added_or_sold_out(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "browse_abandonment").await;
    let uma = customer(&s, "uma", "UTC").await;
    let vic = customer(&s, "vic", "UTC").await;
    let wes = customer(&s, "wes", "UTC").await;
    track(&s, "uma", "Product Viewed", json!({"product_id": "B"})).await;
    track(&s, "vic", "Product Viewed", json!({"product_id": "C"})).await;
    track(&s, "wes", "Product Viewed", json!({"product_id": "D"})).await;
    for id in [&uma, &vic, &wes] {
        decisions_until(&s, id, "entered", 1).await;
    }
    // Vic adds what he viewed: his wait is over. Soup sells out before Wes's message.
    s.engine.journey_clock().advance(HOUR / 2);
    add(&s, "vic", "C", 1.5).await;
    decisions_until(&s, &vic, "resumed", 1).await;
    set_stock(&s, "D", 0).await;
    s.engine.journey_clock().advance(HOUR / 2 + 1000);
    decisions_until(&s, &uma, "sent", 1).await;
    let log = decisions_until(&s, &wes, "skipped", 1).await;
    assert!(
        log.iter().any(|d| d["outcome"] == "skipped"
            && d["reason"] == "nothing the customer viewed is in stock and out of their cart now"),
        "{log:?}"
    );
    let all = sink.messages();
    let m = all.iter().find(|m| to(m) == "uma@example.com").map(|m| unfolded(m)).expect("uma's message");
    assert!(m.contains("Subject: Still thinking about Pears?"), "{m}");
    let (_, prices) = s.get(&format!("/v1/prices?sku=B&channel=web&user={uma}")).await;
    let cents = prices["items"][0]["priceCents"].as_i64().expect("price");
    assert!(m.contains(&format!("- Pears: 1 x {}", money(cents))), "at today's price: {m}");
    // Vic's only message is the abandoned cart's, not a browse reminder; Wes gets nothing.
    assert!(subjects_to(&all, "vic@example.com").iter().all(|s| !s.contains("Still thinking")), "{all:?}");
    assert!(subjects_to(&all, "wes@example.com").is_empty(), "{all:?}");
}

/// An order of `skus` placed at `at` (unix ms).
async fn order_at(s: &TestServer, user: &str, id: &str, skus: &[(&str, f64)], at: i64) {
    let total: f64 = skus.iter().map(|(_, p)| p).sum();
    let products: Vec<Value> =
        skus.iter().map(|(sku, price)| json!({"product_id": sku, "quantity": 1, "price": price})).collect();
    let event = json!({"userId": user, "event": "Order Completed", "timestamp": tailor_core::time::format_millis(at),
        "properties": {"order_id": id, "total": total, "products": products}});
    let (status, body) = s.send_trusted("/v1/track", &event).await;
    assert_eq!(status, 200, "{body}");
}

async fn replenishment_reminds_of_what_is_due_again_by_the_customers_own_cycle(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "replenishment").await;
    let rio = customer(&s, "rio", "UTC").await;
    let sol = customer(&s, "sol", "UTC").await;
    // Rio buys apples every week (soup once); Sol bought apples once.
    order_at(&s, "rio", "r-1", &[("A", 2.0)], T0 - 21 * DAY).await;
    order_at(&s, "rio", "r-2", &[("A", 2.0)], T0 - 14 * DAY).await;
    order_at(&s, "rio", "r-3", &[("A", 2.0), ("D", 2.5)], T0 - 7 * DAY).await;
    order_at(&s, "sol", "s-1", &[("A", 2.0)], T0 - 3 * DAY).await;
    decisions_until(&s, &rio, "restarted", 2).await;
    decisions_until(&s, &sol, "entered", 1).await;
    // A week on: apples are due for Rio (last bought two weeks ago, every 7 days).
    s.engine.journey_clock().advance(7 * DAY + 1000);
    decisions_until(&s, &rio, "sent", 1).await;
    let log = decisions_until(&s, &sol, "skipped", 1).await;
    assert!(
        log.iter().any(|d| d["outcome"] == "skipped"
            && d["reason"] == "nothing the customer buys again and again is due and in stock now"),
        "{log:?}"
    );
    let got = sink.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = unfolded(&got[0]);
    assert_eq!(to(&m), "rio@example.com");
    assert!(m.contains("Subject: Time for more Apples?"), "{m}");
    let (_, prices) = s.get(&format!("/v1/prices?sku=A&channel=web&user={rio}")).await;
    let cents = prices["items"][0]["priceCents"].as_i64().expect("price");
    assert!(m.contains(&format!("- Apples (every 7 days): {}", money(cents))), "{m}");
    assert!(!m.contains("Soup (every"), "bought once is no habit: {m}");
}

async fn win_back_reaches_whoever_has_not_ordered_for_sixty_days(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "win_back").await;
    let wyn = customer(&s, "wyn", "UTC").await;
    let zed = customer(&s, "zed", "UTC").await;
    order_at(&s, "wyn", "w-1", &[("A", 2.0)], T0 - DAY).await;
    order_at(&s, "zed", "z-1", &[("A", 2.0)], T0 - DAY).await;
    decisions_until(&s, &wyn, "entered", 1).await;
    decisions_until(&s, &zed, "entered", 1).await;
    // Zed orders again a month later: his sixty days start over.
    s.engine.journey_clock().advance(30 * DAY);
    order_at(&s, "zed", "z-2", &[("B", 3.0)], T0 - DAY / 2).await;
    decisions_until(&s, &zed, "restarted", 1).await;
    s.engine.journey_clock().advance(30 * DAY + 1000);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(to(&got[0]), "wyn@example.com");
    assert!(got[0].contains("Subject: We miss you at Tailor Shop, Sam"), "{}", got[0]);
    assert!(sends(&s, &zed).await.is_empty(), "Zed ordered a month ago");
    s.engine.journey_clock().advance(30 * DAY);
    let got = sink.wait_for(2).await;
    assert_eq!(got.iter().map(|m| to(m)).collect::<Vec<_>>(), ["wyn@example.com", "zed@example.com"]);
}

async fn every_builtin_journey_switches_on_as_it_comes(s: TestServer) {
    for name in tailor_engine::BUILTIN_JOURNEYS {
        let (status, def) = s.get(&format!("/v1/builtin-journeys/{name}")).await;
        assert_eq!(status, 200, "{name}: {def}");
        let (status, body) = s.call("PUT", &format!("/v1/journeys/{name}"), &s.admin_key, Some(&def)).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let (status, problem) = s.get("/v1/builtin-journeys/teleport").await;
    assert_eq!(status, 404, "{problem}");
}

/// Lets the projection and one scheduler round read what was sent so far.
async fn settle(s: &TestServer) {
    s.engine.sync().await.expect("sync");
    s.engine.run_journeys().await.expect("round");
}

async fn back_in_stock_tells_whoever_wanted_the_item_while_it_was_sold_out(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "back_in_stock").await;
    let amy = customer(&s, "amy", "UTC").await;
    let bob = customer(&s, "bob", "UTC").await;
    set_stock(&s, "D", 0).await;
    // Amy looks at soup while it is sold out; Bob looks at apples, in stock.
    track(&s, "amy", "Product Viewed", json!({"product_id": "D"})).await;
    track(&s, "bob", "Product Viewed", json!({"product_id": "A"})).await;
    settle(&s).await;
    assert!(sends(&s, &amy).await.is_empty(), "still sold out");
    set_stock(&s, "D", 4).await;
    s.engine.journey_clock().advance(1000);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = unfolded(&got[0]);
    assert_eq!(to(&m), "amy@example.com");
    assert!(m.contains("Subject: Soup is back in stock"), "{m}");
    let (_, prices) = s.get(&format!("/v1/prices?sku=D&channel=web&user={amy}")).await;
    let cents = prices["items"][0]["priceCents"].as_i64().expect("price");
    assert!(m.contains(&format!("- Soup: 1 x {}", money(cents))), "{m}");
    assert!(sends(&s, &bob).await.is_empty());
    // The watch fired once: more rounds and stock changes send nothing more.
    set_stock(&s, "D", 9).await;
    s.engine.journey_clock().advance(HOUR);
    settle(&s).await;
    assert_eq!(sink.messages().len(), 1);
}

async fn price_drop_tells_whoever_viewed_the_item_at_the_higher_price(s: TestServer) {
    let sink = shop(&s).await;
    switch_on(&s, "price_drop").await;
    let cy = customer(&s, "cy", "UTC").await;
    let dee = customer(&s, "dee", "UTC").await;
    track(&s, "cy", "Product Viewed", json!({"product_id": "B"})).await;
    track(&s, "dee", "Product Viewed", json!({"product_id": "C"})).await;
    settle(&s).await;
    // Pears go from 3.00 to 2.50 in the catalog; plums stay.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price,category,currency\nB,Pears,2.50,FRUIT,USD\n").expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    // Eve looks at pears only now, at 2.50: nothing dropped for her.
    let eve = customer(&s, "eve", "UTC").await;
    track(&s, "eve", "Product Viewed", json!({"product_id": "B"})).await;
    s.engine.journey_clock().advance(1000);
    settle(&s).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = unfolded(&got[0]);
    assert_eq!(to(&m), "cy@example.com");
    assert!(sends(&s, &eve).await.is_empty(), "Eve saw today's price");
    assert!(m.contains("Subject: Pears now costs less"), "{m}");
    assert!(m.contains("- Pears: $2.50 (was $3.00)"), "{m}");
    let sent = settled_sends(&s, &cy).await;
    let why = sent[0]["reason"].as_str().unwrap_or_default();
    assert!(why.contains("B down from 300 to 250 cents since viewed"), "{why}");
    assert!(sends(&s, &dee).await.is_empty(), "plums cost what they did");
}

async fn an_offer_step_issues_a_personal_offer_through_pricing_within_its_caps(s: TestServer) {
    let _sink = shop(&s).await;
    let mut def = json!({"name": "Offer at checkout", "trigger": {"event": "Checkout Started"},
        "steps": [{"id": "offer", "type": "issueOffer", "percentOff": 95, "validDays": 7}], "holdout": 0});
    let (status, problem) = s.call("PUT", "/v1/journeys/offer_at_checkout", &s.admin_key, Some(&def)).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("steps[0].percentOff")), "{problem}");
    def["steps"][0]["percentOff"] = json!(10);
    put_journey(&s, "offer_at_checkout", &def).await;
    let oli = customer(&s, "oli", "UTC").await;
    let pia = customer(&s, "pia", "UTC").await;
    let (status, body) = s
        .call(
            "PUT",
            &format!("/v1/profiles/{pia}/consent"),
            &s.admin_key,
            Some(&json!({"purpose": "personalization", "granted": false})),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    // Each checkout is a new entry; the default policy caps an offer at $10 and a customer at
    // $20 a month, so the third is refused by the cap.
    for n in 1..=3 {
        track(&s, "oli", "Checkout Started", json!({})).await;
        decisions_until(&s, &oli, "completed", n).await;
    }
    let log = decisions_until(&s, &oli, "offer_issued", 2).await;
    assert_eq!(log.iter().filter(|d| d["outcome"] == "offer_issued").count(), 2, "{log:?}");
    let refused = log.iter().find(|d| d["outcome"] == "skipped").expect("the third is refused");
    assert!(refused["reason"].as_str().unwrap_or("").contains("per-customer cap is reached: 2000 cents"), "{refused}");
    let (status, prices) = s.get(&format!("/v1/prices?sku=A&channel=web&user={oli}")).await;
    assert_eq!(status, 200, "{prices}");
    let offers = prices["items"][0]["offers"].as_array().cloned().unwrap_or_default();
    assert_eq!(offers.len(), 2, "{prices}");
    assert!(
        offers.iter().all(|o| o["kind"] == "journey" && o["percentOff"] == 10.0 && o["maxDiscountCents"] == 1000),
        "{prices}"
    );
    // Without personalization consent there is no personal offer, and the skip says why.
    track(&s, "pia", "Checkout Started", json!({})).await;
    let log = decisions_until(&s, &pia, "skipped", 1).await;
    assert!(log.iter().any(|d| d["reason"] == "no personalization consent: no personal offer"), "{log:?}");
}

async fn a_held_out_customer_gets_no_points_and_the_record_says_why(s: TestServer) {
    let _sink = shop(&s).await;
    let def = json!({"name": "Points for joining", "trigger": {"event": "Signed Up"},
        "steps": [{"id": "gift", "type": "grantPoints", "points": 10, "reason": "for joining"}], "holdout": 50});
    put_journey(&s, "join_gift", &def).await;
    // One customer on each side of the holdout (a stable hash of journey and customer).
    let (mut held, mut treated) = (None, None);
    for i in 0..64 {
        let user = format!("j{i}");
        let id = customer(&s, &user, "UTC").await;
        let slot =
            if tailor_campaigns::entries::is_held_out("join_gift", &id, 50.0) { &mut held } else { &mut treated };
        if slot.is_none() {
            *slot = Some((user, id));
        }
        if held.is_some() && treated.is_some() {
            break;
        }
    }
    let ((hu, hid), (tu, tid)) = (held.expect("a held-out customer"), treated.expect("a treated customer"));
    track(&s, &hu, "Signed Up", json!({})).await;
    track(&s, &tu, "Signed Up", json!({})).await;
    decisions_until(&s, &tid, "points_granted", 1).await;
    let log = decisions_until(&s, &hid, "held_out", 1).await;
    assert!(log.iter().all(|d| d["outcome"] != "points_granted"), "{log:?}");
    assert_eq!(journey_entries(&s, &tid).await.len(), 1);
    assert!(journey_entries(&s, &hid).await.is_empty(), "held out: not credited");
    let sent = settled_sends(&s, &hid).await;
    assert_eq!(
        (sent[0]["status"].as_str(), sent[0]["channel"].as_str()),
        (Some("held_out"), Some("loyalty")),
        "{sent:?}"
    );
}

tailor_testkit::http_both_backends!(
    the_welcome_journey_greets_a_new_customer_whose_cart_is_empty,
    abandoned_cart_reminds_at_todays_prices_then_discounts_under_the_floor_with_a_similar_item,
    a_purchase_ends_the_journey_and_a_cart_change_restarts_the_wait,
    withdrawn_consent_is_a_recorded_skip_and_quiet_hours_wait_for_morning,
    bad_journeys_and_guardrails_are_refused_naming_the_field,
    one_click_unsubscribe_withdraws_consent_at_once,
    a_failing_sms_webhook_is_retried_then_dead_lettered_without_blocking_email,
    the_cart_reminder_shows_the_points_the_order_would_earn_as_loyalty_grants_them,
    waiting_for_an_event_grants_points_once_and_sets_traits_or_times_out,
    bad_steps_are_refused_naming_the_field_and_nothing_is_saved,
    points_expiring_warns_whose_points_expire_and_not_once_they_are_spent,
    tier_at_risk_tells_the_member_what_keeps_their_tier,
    birthday_greets_with_the_loyalty_reward_only_whose_birthday_it_is,
    browse_abandonment_shows_what_was_viewed_unless_it_was_added_or_sold_out,
    replenishment_reminds_of_what_is_due_again_by_the_customers_own_cycle,
    win_back_reaches_whoever_has_not_ordered_for_sixty_days,
    every_builtin_journey_switches_on_as_it_comes,
    back_in_stock_tells_whoever_wanted_the_item_while_it_was_sold_out,
    price_drop_tells_whoever_viewed_the_item_at_the_higher_price,
    an_offer_step_issues_a_personal_offer_through_pricing_within_its_caps,
    a_held_out_customer_gets_no_points_and_the_record_says_why,
);
