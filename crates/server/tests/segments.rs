//! Segments over a real socket on SQLite and PostgreSQL, time driven by the journeys' test
//! clock: a new segment is filled from every customer, membership follows events as they arrive
//! (a customer who now qualifies enters, one whose trait changed leaves), time alone moves people
//! out of an event window, members page by page, an erased customer leaves, and a bad segment
//! is refused naming the field with nothing saved.

use serde_json::{json, Value};
use tailor_core::time::{format_millis, now_millis};
use tailor_testkit::TestServer;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

async fn batch(s: &TestServer, events: Vec<Value>) {
    for chunk in events.chunks(100) {
        let (status, answer) = s.send_trusted("/v1/batch", &json!({"batch": chunk})).await;
        assert_eq!(status, 200, "{answer}");
    }
}

async fn members_until(s: &TestServer, id: &str, n: i64) -> Value {
    let (status, seg) = s.get_until(&format!("/v1/segments/{id}"), |st, b| st == 200 && b["members"] == n).await;
    assert_eq!((status, seg["members"].as_i64()), (200, Some(n)), "{seg}");
    seg
}

async fn all_members(s: &TestServer, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = s.get(&format!("/v1/segments/{id}/members?limit=3&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        out.extend(
            page["items"].as_array().expect("items").iter().map(|m| m["profileId"].as_str().expect("id").to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
}

async fn entered(s: &TestServer, customer: &str, journey: &str) -> bool {
    let (status, log) = s.get(&format!("/v1/messages/decisions?user={customer}")).await;
    assert_eq!(status, 200, "{log}");
    log["items"].as_array().is_some_and(|d| d.iter().any(|x| x["journey"] == journey && x["outcome"] == "entered"))
}

async fn entered_until(s: &TestServer, customer: &str, journey: &str) {
    let deadline = std::time::Instant::now() + tailor_testkit::EVENT_WAIT;
    while !entered(s, customer, journey).await {
        assert!(std::time::Instant::now() < deadline, "{customer} never entered {journey}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn profile_id(s: &TestServer, user: &str) -> String {
    let (status, found) = s.get_until(&format!("/v1/profiles/lookup?userId={user}"), |st, _| st == 200).await;
    assert_eq!(status, 200, "{found}");
    found["id"].as_str().expect("id").to_string()
}

/// `user` with `tier`, `orders` orders and `views` product views, `ago` before `t`.
fn customer(user: &str, tier: &str, orders: usize, views: usize, t: i64) -> Vec<Value> {
    let mut out = vec![json!({"type": "identify", "userId": user, "timestamp": format_millis(t - 10 * DAY),
        "traits": {"tier": tier}})];
    for k in 0..orders {
        out.push(json!({"type": "track", "userId": user, "event": "Order Completed",
            "timestamp": format_millis(t - 9 * DAY),
            "properties": {"order_id": format!("{user}-{k}"), "total": 25.0,
                "products": [{"product_id": "A", "quantity": 1, "price": 25.0}]}}));
    }
    for _ in 0..views {
        out.push(json!({"type": "track", "userId": user, "event": "Product Viewed",
            "timestamp": format_millis(t - DAY), "properties": {"product_id": "A"}}));
    }
    out
}

async fn membership_follows_events_and_time(s: TestServer) {
    let t0 = now_millis() / HOUR * HOUR - 20 * DAY;
    s.engine.journey_clock().set(t0);
    // Engaged gold: tier gold, an order, two views in the last week.
    let mut events = Vec::new();
    for i in 0..12 {
        let (tier, orders, views) = match i % 4 {
            0 => ("gold", 1, 2),   // in
            1 => ("gold", 0, 3),   // no order
            2 => ("silver", 2, 2), // not gold
            _ => ("gold", 2, 1),   // one view only
        };
        events.extend(customer(&format!("c{i}"), tier, orders, views, t0));
    }
    batch(&s, events).await;
    s.engine.sync().await.expect("project");
    let def = json!({"name": "Engaged gold", "conditions": [
        {"type": "trait", "name": "tier", "equals": "gold"},
        {"type": "orders", "min": 1},
        {"type": "eventCount", "event": "Product Viewed", "min": 2, "withinDays": 7}]});
    let (status, seg) = s.call("PUT", "/v1/segments/engaged-gold", &s.admin_key, Some(&def)).await;
    assert_eq!(status, 200, "{seg}");
    assert_eq!(seg["members"], 3, "filled from every customer at once: {seg}");
    let mut expected = Vec::new();
    for i in [0, 4, 8] {
        expected.push(profile_id(&s, &format!("c{i}")).await);
    }
    expected.sort();
    assert_eq!(all_members(&s, "engaged-gold").await, expected, "three pages of up to three");

    // Journeys start when a customer enters or leaves (not for those already inside).
    let journey = |event: &str| {
        json!({"name": event, "trigger": {"event": event, "segment": "engaged-gold"}, "holdout": 0,
            "steps": [{"id": "pause", "type": "wait", "seconds": 86_400},
                {"id": "hello", "type": "send", "channel": "onsite", "template": "cart_reminder"}]})
    };
    for (id, event) in [("vip-welcome", "Segment Entered"), ("vip-lost", "Segment Exited")] {
        let (status, saved) = s.call("PUT", &format!("/v1/journeys/{id}"), &s.admin_key, Some(&journey(event))).await;
        assert_eq!(status, 200, "{saved}");
    }
    for (trigger, why) in [
        (json!({"event": "Segment Entered"}), "no segment"),
        (json!({"event": "Segment Entered", "segment": "nope"}), "an unknown segment"),
        (json!({"event": "Product Added", "segment": "engaged-gold"}), "a segment on another trigger"),
    ] {
        let mut bad = journey("Segment Entered");
        bad["trigger"] = trigger;
        let (status, problem) = s.call("PUT", "/v1/journeys/bad", &s.admin_key, Some(&bad)).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("trigger.segment")), "{why}: {problem}");
    }

    // c3 views again: now two views, so they enter; c4 becomes silver: they leave.
    batch(
        &s,
        vec![
            json!({"type": "track", "userId": "c3", "event": "Product Viewed", "timestamp": format_millis(t0 - HOUR),
                "properties": {"product_id": "A"}}),
            json!({"type": "identify", "userId": "c4", "timestamp": format_millis(t0 - HOUR), "traits": {"tier": "silver"}}),
        ],
    )
    .await;
    let c3 = profile_id(&s, "c3").await;
    let c4 = profile_id(&s, "c4").await;
    let (_, members) = s
        .get_until("/v1/segments/engaged-gold/members", |_, b| {
            b["items"].as_array().is_some_and(|m| {
                m.iter().any(|x| x["profileId"] == c3.as_str()) && !m.iter().any(|x| x["profileId"] == c4.as_str())
            })
        })
        .await;
    members_until(&s, "engaged-gold", 3).await;
    let ids: Vec<&str> =
        members["items"].as_array().expect("items").iter().filter_map(|m| m["profileId"].as_str()).collect();
    assert!(ids.contains(&c3.as_str()) && !ids.contains(&c4.as_str()), "{members}");
    entered_until(&s, &c3, "vip-welcome").await;
    entered_until(&s, &c4, "vip-lost").await;
    let c0 = profile_id(&s, "c0").await;
    assert!(!entered(&s, &c0, "vip-welcome").await, "already a member when the journey started");

    // An erased member leaves at once.
    let (status, _) = s.call("DELETE", &format!("/v1/profiles/{c3}"), &s.admin_key, None).await;
    assert_eq!(status, 200);
    members_until(&s, "engaged-gold", 2).await;

    // A week later the views have left the window: time alone empties the segment.
    s.engine.journey_clock().set(t0 + 7 * DAY);
    members_until(&s, "engaged-gold", 0).await;
    entered_until(&s, &c0, "vip-lost").await;
    let (status, listed) = s.get("/v1/segments").await;
    assert_eq!((status, listed["items"][0]["id"].as_str()), (200, Some("engaged-gold")), "{listed}");
}

async fn a_bad_segment_is_refused_naming_the_field_and_nothing_is_saved(s: TestServer) {
    for (body, field) in [
        (json!({"name": "x", "conditions": []}), "conditions"),
        (json!({"name": "x", "conditions": [{"type": "orders", "min": 0}]}), "conditions[0].min"),
        (
            json!({"name": "x", "conditions": [{"type": "eventCount", "event": "E", "min": 1, "withinDays": 1000}]}),
            "conditions[0].withinDays",
        ),
        (json!({"name": "", "conditions": [{"type": "orders", "min": 1}]}), "name"),
    ] {
        let (status, problem) = s.call("PUT", "/v1/segments/bad", &s.admin_key, Some(&body)).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{problem}");
    }
    let (status, problem) = s
        .call("PUT", "/v1/segments/bad", &s.admin_key, Some(&json!({"name": "x", "conditions": [{"type": "age"}]})))
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = s
        .call(
            "PUT",
            "/v1/segments/bad%20id",
            &s.admin_key,
            Some(&json!({"name": "x", "conditions": [{"type": "orders", "min": 1}]})),
        )
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("id")), "{problem}");
    let (status, _) = s.get("/v1/segments/bad").await;
    assert_eq!(status, 404, "nothing saved");
    let (status, _) = s.get("/v1/segments/bad/members").await;
    assert_eq!(status, 404);
    let (status, problem) = s.get("/v1/segments/bad/members?limit=0").await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("limit")), "{problem}");
}

tailor_testkit::http_both_backends!(
    membership_follows_events_and_time,
    a_bad_segment_is_refused_naming_the_field_and_nothing_is_saved,
);
