//! Campaign intelligence over a real socket on SQLite and PostgreSQL, time driven by the
//! journeys' test clock: a journey's random holdout and its report measuring a known effect
//! (recipients convert at 70%, the holdout at 10%); a holdout outside 0–50% refused naming the
//! field; customers who answer only by SMS converge to SMS while a customer without SMS consent
//! never gets one and the weekly cap holds. SMS and push go to a recorded outbox (no SMS
//! gateway in tests); e-mail to a real SMTP server.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tailor_campaigns::outbox::Outbox;
use tailor_core::time::{format_millis, now_millis};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::{SmtpSink, TestServer};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A month ago on the hour: events may not lie in the future, and the test clock moves ahead.
fn start_time() -> i64 {
    now_millis() / HOUR * HOUR - 30 * DAY
}

async fn products(s: &TestServer) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price,category,currency\nA,Apples,2.00,FRUIT,USD\n").expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
}

async fn put(s: &TestServer, path: &str, body: &Value) -> Value {
    let (status, body) = s.call("PUT", path, &s.admin_key, Some(body)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn batch(s: &TestServer, events: Vec<Value>, trusted: bool) {
    for chunk in events.chunks(100) {
        let body = json!({"batch": chunk});
        let (status, answer) =
            if trusted { s.send_trusted("/v1/batch", &body).await } else { s.send("/v1/batch", &body).await };
        assert_eq!(status, 200, "{answer}");
    }
}

async fn profile_id(s: &TestServer, user: &str) -> String {
    let (status, found) = s.get_until(&format!("/v1/profiles/lookup?userId={user}"), |st, _| st == 200).await;
    assert_eq!(status, 200, "{found}");
    found["id"].as_str().expect("id").to_string()
}

async fn report_until(s: &TestServer, journey: &str, done: impl Fn(&Value) -> bool) -> Value {
    let (status, report) = s.get_until(&format!("/v1/journeys/{journey}/report"), |st, b| st == 200 && done(b)).await;
    assert_eq!(status, 200, "{report}");
    assert!(done(&report), "the report never got there: {report}");
    report
}

fn funnel<'a>(report: &'a Value, step: &str) -> &'a Value {
    report["funnel"].as_array().and_then(|f| f.iter().find(|x| x["step"] == step)).unwrap_or(&Value::Null)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

const N: usize = 200;

async fn the_report_measures_a_known_effect_against_the_holdout(s: TestServer) {
    products(&s).await;
    let t0 = start_time();
    s.engine.journey_clock().set(t0);
    let rails = json!({"perDay": 10, "perWeek": 50, "quietFromHour": 0, "quietUntilHour": 0, "defaultTimeZone": "UTC"});
    put(&s, "/v1/messaging/guardrails", &rails).await;
    let def = json!({"name": "Measured reminder", "trigger": {"event": "Product Added"},
        "steps": [{"id": "reminder", "type": "send", "channel": "onsite", "template": "cart_reminder"}],
        "exitOn": ["Order Completed"], "holdout": 50, "attributionHours": 72});
    let saved = put(&s, "/v1/journeys/measured", &def).await;
    assert_eq!(saved["definition"]["holdout"], 50.0);

    let mut events = Vec::new();
    for i in 0..N {
        let user = format!("m{i}");
        events.push(json!({"type": "identify", "userId": user, "timestamp": format_millis(t0 - HOUR),
            "traits": {"email": format!("{user}@example.com"), "consent": {"personalization": true}}}));
        events.push(json!({"type": "track", "userId": user, "event": "Product Added", "timestamp": format_millis(t0),
            "properties": {"product_id": "A", "quantity": 1, "price": 2.0}}));
    }
    batch(&s, events, false).await;
    let report = report_until(&s, "measured", |r| {
        let f = funnel(r, "reminder");
        f["sent"].as_u64().unwrap_or(0) + f["heldOut"].as_u64().unwrap_or(0) == N as u64
    })
    .await;
    assert_eq!(report["entries"], N, "{report}");

    // Each customer's side, from what they were (not) sent.
    let mut held = Vec::new();
    let mut sent = Vec::new();
    for i in 0..N {
        let user = format!("m{i}");
        let id = profile_id(&s, &user).await;
        let (status, sends) = s.get(&format!("/v1/messages/sends?user={id}&journey=measured")).await;
        assert_eq!(status, 200, "{sends}");
        match sends["items"][0]["status"].as_str() {
            Some("sent") => sent.push((user, id)),
            Some("held_out") => held.push((user, id)),
            other => panic!("{user}: {other:?} {sends}"),
        }
    }
    // About half held out, each side big enough to measure.
    assert!(held.len() >= 60 && sent.len() >= 60, "{} held out, {} sent", held.len(), sent.len());
    for (_, id) in held.iter().take(5) {
        let (_, inbox) = s.get(&format!("/v1/messages?user={id}")).await;
        assert_eq!(inbox["items"].as_array().map(Vec::len), Some(0), "a held-out customer got a message: {inbox}");
    }
    let (_, why) = s.get(&format!("/v1/messages/sends?user={}&journey=measured", held[0].1)).await;
    assert!(why["items"][0]["reason"].as_str().unwrap_or("").contains("50% holdout"), "{why}");

    // The known effect: 7 in 10 recipients buy within the window, 1 in 10 of the holdout.
    let buys = |side: &[(String, String)], per_ten: usize| -> Vec<String> {
        side.iter().enumerate().filter(|(k, _)| k % 10 < per_ten).map(|(_, (u, _))| u.clone()).collect()
    };
    let (r_buy, h_buy) = (buys(&sent, 7), buys(&held, 1));
    let mut orders = Vec::new();
    for (k, user) in r_buy.iter().chain(&h_buy).enumerate() {
        orders.push(json!({"type": "track", "userId": user, "event": "Order Completed",
            "timestamp": format_millis(t0 + 2 * HOUR),
            "properties": {"order_id": format!("o-{k}"), "total": 20.0,
                "products": [{"product_id": "A", "quantity": 10, "price": 2.0}]}}));
    }
    // One purchase after the window counts for nobody.
    orders.push(json!({"type": "track", "userId": held[1].0, "event": "Order Completed",
        "timestamp": format_millis(t0 + 80 * HOUR),
        "properties": {"order_id": "late", "total": 20.0, "products": [{"product_id": "A", "quantity": 10, "price": 2.0}]}}));
    batch(&s, orders, true).await;
    let expected = r_buy.len() + h_buy.len() - usize::from(h_buy.contains(&held[1].0));
    let report = report_until(&s, "measured", |r| {
        r["overall"]["recipients"]["converted"].as_u64().unwrap_or(0)
            + r["overall"]["holdout"]["converted"].as_u64().unwrap_or(0)
            == expected as u64
    })
    .await;

    let o = &report["overall"];
    assert_eq!(o["recipients"]["customers"], sent.len(), "{o}");
    assert_eq!(o["holdout"]["customers"], held.len(), "{o}");
    assert_eq!(o["recipients"]["converted"], r_buy.len(), "{o}");
    let h_conv = h_buy.iter().filter(|u| **u != held[1].0).count();
    assert_eq!(o["holdout"]["converted"], h_conv, "{o}");
    let (r_rate, h_rate) = (r_buy.len() as f64 / sent.len() as f64, h_conv as f64 / held.len() as f64);
    let c = &o["conversion"];
    assert!((f(&c["estimate"]) - (r_rate - h_rate)).abs() < 1e-9, "{c}");
    // The true lift (0.7 − 0.1, up to rounding of the sides) lies in the 95% interval, the
    // always-valid interval is wider, and only it gives the verdict.
    let truth = 0.6;
    assert!(f(&c["interval"][0]) <= truth && truth <= f(&c["interval"][1]), "{c}");
    assert!(f(&c["alwaysValid"][0]) < f(&c["interval"][0]) && f(&c["alwaysValid"][1]) > f(&c["interval"][1]), "{c}");
    assert_eq!(c["verdict"], "better", "{c}");
    let rev = &o["revenuePerCustomer"];
    assert!((f(&rev["estimate"]) - 20.0 * (r_rate - h_rate)).abs() < 1e-6, "{rev}");
    assert!((f(&o["recipients"]["revenuePerCustomer"]) - 20.0 * r_rate).abs() < 1e-6, "{o}");

    // Per step and per channel: every entry reached the one step, on the one channel.
    assert_eq!(report["steps"][0]["step"], "reminder");
    assert_eq!(report["steps"][0]["conversion"], o["conversion"], "{report}");
    assert_eq!(report["channels"][0]["channel"], "onsite");
    assert_eq!(report["channels"][0]["recipients"], o["recipients"]);
    let step = funnel(&report, "reminder");
    assert_eq!((step["sent"].as_u64(), step["heldOut"].as_u64()), (Some(sent.len() as u64), Some(held.len() as u64)));
    assert_eq!(report["channelMix"], json!([{"key": "onsite", "sends": sent.len()}]));
    let hours: u64 =
        report["hourMix"].as_array().expect("hours").iter().map(|h| h["sends"].as_u64().unwrap_or(0)).sum();
    assert_eq!(hours, sent.len() as u64);
}

async fn a_holdout_outside_0_to_50_percent_is_refused_naming_the_field(s: TestServer) {
    let base = json!({"name": "x", "trigger": {"event": "Product Added"},
        "steps": [{"id": "a", "type": "send", "channel": "email", "template": "cart_reminder"}]});
    for (extra, field) in [
        (json!({"holdout": 51}), "holdout"),
        (json!({"holdout": -1}), "holdout"),
        (json!({"attributionHours": 0}), "attributionHours"),
        (json!({"bestHourWithinHours": 200}), "bestHourWithinHours"),
        (json!({"goal": "Teleported"}), "goal"),
    ] {
        let mut body = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, problem) = s.call("PUT", "/v1/journeys/bad", &s.admin_key, Some(&body)).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{problem}");
    }
    let (status, _) = s.get("/v1/journeys/bad").await;
    assert_eq!(status, 404, "nothing saved");
    let (status, _) = s.get("/v1/journeys/bad/report").await;
    assert_eq!(status, 404);
    let mut ok = base.clone();
    ok["holdout"] = json!(50);
    put(&s, "/v1/journeys/edge", &ok).await;
    ok["holdout"] = json!(0);
    put(&s, "/v1/journeys/edge", &ok).await;
}

async fn customers_who_answer_only_by_sms_converge_to_sms_within_consent_and_caps(s: TestServer) {
    products(&s).await;
    let sink = SmtpSink::start();
    let outbox = Arc::new(Outbox::new());
    let mut channels = sink.channels();
    channels.sms = Some(outbox.clone());
    channels.push = Some(outbox.clone());
    s.engine.set_channels(channels);
    let t0 = start_time();
    s.engine.journey_clock().set(t0);
    let rails = json!({"perDay": 10, "perWeek": 5, "quietFromHour": 0, "quietUntilHour": 0, "defaultTimeZone": "UTC"});
    put(&s, "/v1/messaging/guardrails", &rails).await;
    let def = json!({"name": "Nudge", "trigger": {"event": "Product Added"},
        "steps": [{"id": "nudge", "type": "send", "channel": "email", "template": "cart_reminder",
                   "options": {"channels": ["email", "sms", "push"]}}],
        "holdout": 0});
    put(&s, "/v1/journeys/nudge", &def).await;
    // Ten customers with every consent; four who never agreed to SMS. Nobody has a push token.
    let users: Vec<(String, bool)> = (0..14).map(|i| (format!("c{i}"), i < 10)).collect();
    let mut events = Vec::new();
    for (user, sms) in &users {
        events.push(json!({"type": "identify", "userId": user, "timestamp": format_millis(t0 - HOUR),
            "traits": {"email": format!("{user}@example.com"), "phone": "+4915100000000", "timezone": "UTC",
                "consent": {"marketing_email": true, "marketing_sms": sms, "marketing_push": true}}}));
    }
    batch(&s, events, false).await;
    let mut ids = HashMap::new();
    for (user, _) in &users {
        ids.insert(user.clone(), profile_id(&s, user).await);
    }
    let rounds = 21;
    // (round, channel, status) per customer.
    let mut log: HashMap<String, Vec<(usize, String, String, String)>> = HashMap::new();
    for round in 0..rounds {
        let now = t0 + round as i64 * DAY;
        s.engine.journey_clock().set(now);
        let adds: Vec<Value> = users
            .iter()
            .map(|(u, _)| {
                json!({"type": "track", "userId": u, "event": "Product Added", "timestamp": format_millis(now),
                "properties": {"product_id": "A", "quantity": 1, "price": 2.0}})
            })
            .collect();
        batch(&s, adds, false).await;
        let want = (users.len() * (round + 1)) as u64;
        // Every send of the round settled (none pending between record and channel).
        report_until(&s, "nudge", |r| {
            let f = funnel(r, "nudge");
            let settled: u64 = ["sent", "skipped", "failed", "heldOut"].iter().filter_map(|k| f[*k].as_u64()).sum();
            settled == want
        })
        .await;
        let mut replies = Vec::new();
        for (user, _) in &users {
            let (status, sends) = s.get(&format!("/v1/messages/sends?user={}&journey=nudge", ids[user])).await;
            assert_eq!(status, 200, "{sends}");
            let latest = &sends["items"][0];
            let (channel, status) = (latest["channel"].as_str().unwrap_or(""), latest["status"].as_str().unwrap_or(""));
            let reason = latest["reason"].as_str().unwrap_or("").to_string();
            log.entry(user.clone()).or_default().push((round, channel.into(), status.into(), reason));
            // They answer SMS, and nothing else.
            if channel == "sms" && status == "sent" {
                replies.push(json!({"type": "track", "userId": user, "event": "SMS Replied",
                    "timestamp": format_millis(now + 60_000), "properties": {}}));
            }
        }
        if !replies.is_empty() {
            batch(&s, replies, false).await;
        }
    }
    let (mut late, mut late_sms) = (0, 0);
    for (user, sms_ok) in &users {
        let rows = &log[user];
        let sent: Vec<&(usize, String, String, String)> = rows.iter().filter(|r| r.2 == "sent").collect();
        // The weekly cap: never more than five sent in any seven days.
        for start in 0..rounds {
            let n = sent.iter().filter(|r| r.0 >= start && r.0 < start + 7).count();
            assert!(n <= 5, "{user}: {n} messages in the week from round {start}: {rows:?}");
        }
        assert!(
            rows.iter().any(|r| r.2 == "skipped" && r.3.contains("frequency cap")),
            "{user}: the cap never held: {rows:?}"
        );
        if !sms_ok {
            assert!(!rows.iter().any(|r| r.1 == "sms"), "{user} has no SMS consent: {rows:?}");
            let why = &sent[0].3;
            assert!(why.contains("sms: no consent") && why.contains("push: not reachable"), "{why}");
            continue;
        }
        for r in sent.iter().filter(|r| r.0 >= rounds - 7) {
            late += 1;
            late_sms += usize::from(r.1 == "sms");
        }
    }
    eprintln!("SMS responders: {late_sms} of {late} sends in the last 7 of {rounds} rounds were SMS");
    assert!(late >= 20, "{late} late sends");
    assert!(late_sms * 10 >= late * 9, "{late_sms} of {late} sends in the last week were SMS");
    let texts = outbox.messages();
    assert!(texts.iter().all(|m| m.to == "+4915100000000" && m.text.contains("your cart")), "{:?}", texts.first());
    assert_eq!(texts.len(), log.values().flatten().filter(|r| r.1 == "sms" && r.2 == "sent").count());
}

/// Each customer's messages wait for their best hour in their zone (here Tokyo), never inside
/// quiet hours, and never longer than the journey allows.
async fn a_send_waits_for_the_customers_best_hour_outside_quiet_hours_within_the_bound(s: TestServer) {
    products(&s).await;
    let t0 = start_time();
    s.engine.journey_clock().set(t0);
    let local = |t: i64| ((t / HOUR) % 24 + 9) % 24;
    let l0 = local(t0);
    // Eve is busy five hours from now, local; Bo fifteen. Quiet hours start at Eve's hour.
    let eve_hour = (l0 + 5) % 24;
    let rails = json!({"perDay": 10, "perWeek": 50, "quietFromHour": eve_hour, "quietUntilHour": (eve_hour + 2) % 24,
        "defaultTimeZone": "UTC"});
    put(&s, "/v1/messaging/guardrails", &rails).await;
    let def = json!({"name": "Timed", "trigger": {"event": "Product Added"},
        "steps": [{"id": "note", "type": "send", "channel": "onsite", "template": "cart_reminder"}],
        "holdout": 0, "bestHourWithinHours": 12});
    put(&s, "/v1/journeys/timed", &def).await;
    let mut events = Vec::new();
    for (user, ahead) in [("eve", 5), ("bo", 15)] {
        events.push(json!({"type": "identify", "userId": user, "timestamp": format_millis(t0 - 20 * DAY),
            "traits": {"timezone": "Asia/Tokyo", "consent": {"personalization": true}}}));
        for day in 2..10 {
            events.push(json!({"type": "track", "userId": user, "event": "Product Viewed",
                "timestamp": format_millis(t0 - day * DAY + ahead * HOUR + HOUR / 2), "properties": {"product_id": "A"}}));
        }
    }
    batch(&s, events, false).await;
    let eve = profile_id(&s, "eve").await;
    let bo = profile_id(&s, "bo").await;
    let adds: Vec<Value> = ["eve", "bo"]
        .iter()
        .map(|u| {
            json!({"type": "track", "userId": u, "event": "Product Added", "timestamp": format_millis(t0),
            "properties": {"product_id": "A", "quantity": 1, "price": 2.0}})
        })
        .collect();
    batch(&s, adds, false).await;
    // Bo's hour is 15 hours away, past the journey's 12: sent now.
    let (_, sends) = s
        .get_until(&format!("/v1/messages/sends?user={bo}&journey=timed"), |_, b| b["items"][0]["status"] == "sent")
        .await;
    assert_eq!(sends["items"][0]["at"], format_millis(t0), "{sends}");
    // Eve's own hour is quiet: the hour before it, four hours from now.
    let (_, log) = s
        .get_until(&format!("/v1/messages/decisions?user={eve}"), |_, b| {
            b["items"].as_array().is_some_and(|a| a.iter().any(|d| d["outcome"] == "deferred"))
        })
        .await;
    let deferred = log["items"].as_array().and_then(|a| a.iter().find(|d| d["outcome"] == "deferred")).cloned();
    let why = deferred.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or("").to_string();
    let want = format!("{:02}:00 in Asia/Tokyo", (eve_hour + 23) % 24);
    assert!(why.contains("best hour") && why.contains(&want), "{want} in {log}");
    let (_, sends) = s.get(&format!("/v1/messages/sends?user={eve}&journey=timed")).await;
    assert_eq!(sends["items"].as_array().map(Vec::len), Some(0), "nothing before her hour: {sends}");
    s.engine.journey_clock().set(t0 + 4 * HOUR);
    let (_, sends) = s
        .get_until(&format!("/v1/messages/sends?user={eve}&journey=timed"), |_, b| b["items"][0]["status"] == "sent")
        .await;
    assert_eq!(sends["items"][0]["at"], format_millis(t0 + 4 * HOUR), "{sends}");
}

/// Live uplift targeting: a journey with a 50% holdout teaches a model that frequent customers
/// buy when sent a reminder and rare ones do not; a second journey targeting the top half by
/// that model sends to frequent customers and leaves rare ones out (recorded `not_targeted` with
/// the predicted uplift), except its random exploration share. Training waits for the
/// attribution windows to close; bad targeting is refused naming the field.
async fn a_journeys_holdout_trains_the_model_the_next_journey_targets_with(s: TestServer) {
    products(&s).await;
    let t0 = start_time();
    s.engine.journey_clock().set(t0);
    let rails = json!({"perDay": 10, "perWeek": 50, "quietFromHour": 0, "quietUntilHour": 0, "defaultTimeZone": "UTC"});
    put(&s, "/v1/messaging/guardrails", &rails).await;
    let step = json!([{"id": "reminder", "type": "send", "channel": "onsite", "template": "cart_reminder"}]);
    put(
        &s,
        "/v1/journeys/learn",
        &json!({"name": "Learn", "trigger": {"event": "Product Added"},
        "steps": step, "holdout": 50, "attributionHours": 72}),
    )
    .await;

    let frequent = |i: usize| i.is_multiple_of(2);
    let mut history = Vec::new();
    let mut added = Vec::new();
    for i in 0..N {
        let user = format!("u{i}");
        history.push(json!({"type": "identify", "userId": user, "timestamp": format_millis(t0 - 200 * DAY),
            "traits": {"consent": {"personalization": true}}}));
        if frequent(i) {
            for k in 0..4 {
                history.push(json!({"type": "track", "userId": user, "event": "Order Completed",
                    "timestamp": format_millis(t0 - (10 + 30 * k) * DAY),
                    "properties": {"order_id": format!("h-{i}-{k}"), "total": 30.0,
                        "products": [{"product_id": "A", "quantity": 15, "price": 2.0}]}}));
            }
        }
        added.push(json!({"type": "track", "userId": user, "event": "Product Added", "timestamp": format_millis(t0),
            "properties": {"product_id": "A", "quantity": 1, "price": 2.0}}));
    }
    batch(&s, history, true).await;
    s.engine.sync().await.expect("project");
    batch(&s, added, false).await;
    let settled = |step: &'static str| {
        move |r: &Value| {
            let f = funnel(r, step);
            ["sent", "heldOut", "notTargeted"].iter().map(|k| f[*k].as_u64().unwrap_or(0)).sum::<u64>() == N as u64
        }
    };
    report_until(&s, "learn", settled("reminder")).await;

    // Frequent customers who were sent the reminder buy; nobody else does.
    let mut buys = Vec::new();
    for i in (0..N).filter(|i| frequent(*i)) {
        let id = profile_id(&s, &format!("u{i}")).await;
        let (_, sends) = s.get(&format!("/v1/messages/sends?user={id}&journey=learn")).await;
        if sends["items"][0]["status"] == "sent" {
            buys.push(json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed",
                "timestamp": format_millis(t0 + 2 * HOUR),
                "properties": {"order_id": format!("b-{i}"), "total": 20.0,
                    "products": [{"product_id": "A", "quantity": 10, "price": 2.0}]}}));
        }
    }
    assert!(buys.len() >= 30, "{} frequent customers were sent the reminder", buys.len());
    batch(&s, buys, true).await;
    s.engine.sync().await.expect("project");

    // Before the attribution windows close there is nothing to learn from yet.
    let train = json!({"name": "reminder-uplift", "journey": "learn"});
    let (status, problem) = s.call("POST", "/v1/uplift-models", &s.admin_key, Some(&train)).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("there are 0 and 0"), "{problem}");
    s.engine.journey_clock().set(t0 + 73 * HOUR);
    let (status, model) = s.call("POST", "/v1/uplift-models", &s.admin_key, Some(&train)).await;
    assert_eq!(status, 201, "{model}");
    assert_eq!(model["control"][0].as_u64().unwrap_or(0) + model["treated"][0].as_u64().unwrap_or(0), N as u64);
    assert_eq!(model["control"][1], 0, "the holdout bought nothing: {model}");
    let (status, listed) = s.get("/v1/uplift-models").await;
    assert_eq!((status, listed["items"][0]["name"].as_str()), (200, Some("reminder-uplift")), "{listed}");

    // Bad targeting is refused naming the field, and nothing is saved.
    let targeted = |targeting: Value| {
        json!({"name": "Targeted", "trigger": {"event": "Product Added"}, "steps": step, "holdout": 10,
            "attributionHours": 72, "targeting": targeting})
    };
    for (targeting, field) in [
        (json!({"model": "nope", "topShare": 0.5}), "targeting.model"),
        (json!({"model": "reminder-uplift", "topShare": 0}), "targeting.topShare"),
        (
            json!({"model": "reminder-uplift", "topShare": 0.5, "valuePerConversion": 5, "costPerMessage": 1}),
            "targeting",
        ),
        (
            json!({"model": "reminder-uplift", "valuePerConversion": 5, "costPerMessage": -1}),
            "targeting.costPerMessage",
        ),
        (json!({"model": "reminder-uplift", "topShare": 0.5, "explorePercent": 60}), "targeting.explorePercent"),
    ] {
        let (status, problem) = s.call("PUT", "/v1/journeys/targeted", &s.admin_key, Some(&targeted(targeting))).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{problem}");
    }
    let (status, _) = s.get("/v1/journeys/targeted").await;
    assert_eq!(status, 404, "nothing saved");
    let (status, problem) = s
        .call("POST", "/v1/uplift-models", &s.admin_key, Some(&json!({"name": "bad name!", "journey": "learn"})))
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("name")), "{problem}");

    // The targeted journey: the top half by predicted uplift, 10% explored at random (the
    // first journey paused, so the next cart reaches only this one).
    let (status, _) = s.call("POST", "/v1/journeys/learn/pause", &s.admin_key, None).await;
    assert_eq!(status, 200);
    put(&s, "/v1/journeys/targeted", &targeted(json!({"model": "reminder-uplift", "topShare": 0.5}))).await;
    let t1 = t0 + 80 * HOUR;
    s.engine.journey_clock().set(t1);
    let carts: Vec<Value> = (0..N)
        .map(|i| {
            json!({"type": "track", "userId": format!("u{i}"), "event": "Product Added",
            "timestamp": format_millis(t1), "properties": {"product_id": "A", "quantity": 1, "price": 2.0}})
        })
        .collect();
    batch(&s, carts, false).await;
    let report = report_until(&s, "targeted", settled("reminder")).await;
    let (mut rare_sent, mut rare_left_out, mut rare_held) = (0, 0, 0);
    for i in 0..N {
        let id = profile_id(&s, &format!("u{i}")).await;
        let (_, sends) = s.get(&format!("/v1/messages/sends?user={id}&journey=targeted")).await;
        let item = &sends["items"][0];
        match (frequent(i), item["status"].as_str()) {
            (true, Some("sent" | "held_out")) => {}
            (true, other) => panic!("a frequent customer was {other:?}: {sends}"),
            (false, Some("sent")) => rare_sent += 1,
            (false, Some("held_out")) => rare_held += 1,
            (false, Some("not_targeted")) => {
                rare_left_out += 1;
                let why = item["reason"].as_str().unwrap_or("");
                assert!(why.contains("predicted uplift") && why.contains("below the top 50%"), "{why}");
            }
            (false, other) => panic!("{other:?}: {sends}"),
        }
    }
    let rare = N / 2 - rare_held;
    assert!(rare_left_out * 10 >= rare * 7, "{rare_left_out} of {rare} rare customers left out");
    assert!(rare_sent > 0, "the exploration share reaches rare customers too");
    let sides: HashMap<String, u64> = report["sides"]
        .as_array()
        .expect("sides")
        .iter()
        .map(|x| (x["side"].as_str().unwrap_or("").to_string(), x["customers"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(sides.values().sum::<u64>(), N as u64, "{sides:?}");
    assert_eq!(sides.get("not_targeted").copied(), Some(rare_left_out as u64), "{sides:?}");
    assert_eq!(funnel(&report, "reminder")["notTargeted"], rare_left_out, "{report}");
}

tailor_testkit::http_both_backends!(
    a_journeys_holdout_trains_the_model_the_next_journey_targets_with,
    a_send_waits_for_the_customers_best_hour_outside_quiet_hours_within_the_bound,
    the_report_measures_a_known_effect_against_the_holdout,
    a_holdout_outside_0_to_50_percent_is_refused_naming_the_field,
    customers_who_answer_only_by_sms_converge_to_sms_within_consent_and_caps,
);
