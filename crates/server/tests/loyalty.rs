//! Loyalty over a real socket: an order's points, redemption with an Idempotency-Key, and bad
//! input answered with problem+json naming the field, changing nothing.

use serde_json::{json, Value};
use tailor_testkit::TestServer;

async fn redemption_and_bad_input_over_http(s: TestServer) {
    // Bought 40 days ago: past the 30-day return window, so the points are active.
    let when = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let (status, body) = s
        .send_trusted(
            "/v1/track",
            &json!({"userId": "lp-1", "event": "Order Completed", "messageId": "lp-o1", "timestamp": when,
                "properties": {"order_id": "lp-o1", "total": 120.0}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.engine.sync().await.expect("project");
    let (_, found) = s.get("/v1/profiles/lookup?userId=lp-1").await;
    let id = found["id"].as_str().expect("profile").to_string();
    let (status, account) = s.get(&format!("/v1/loyalty/{id}")).await;
    assert_eq!((status, account["balance"]["active"].as_i64()), (200, Some(120)), "{account}");
    let redeem = |key: &str, body: Value| {
        s.http
            .post(s.url(&format!("/v1/loyalty/{id}/redeem")))
            .bearer_auth(&s.admin_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first: Value = redeem("till-7", json!({"points": 100})).await.expect("send").json().await.expect("json");
    assert_eq!(
        (first["discountCents"].as_i64(), first["balance"]["active"].as_i64()),
        (Some(100), Some(20)),
        "{first}"
    );
    let retry: Value = redeem("till-7", json!({"points": 100})).await.expect("send").json().await.expect("json");
    assert_eq!(retry, first, "a retry gets the first answer");
    let cases: Vec<(Value, &str, u16, &str)> = vec![
        (json!({"points": 100}), "till-8", 409, ""),
        (json!({"points": 2.5}), "till-9", 400, "points"),
        (json!({"points": -3}), "till-10", 400, "points"),
        (json!({"points": 5}), "till-7", 400, "Idempotency-Key"),
    ];
    for (body, key, status, field) in cases {
        let res = redeem(key, body.clone()).await.expect("send");
        assert_eq!(res.status().as_u16(), status, "{body}");
        let problem: Value = res.json().await.expect("json");
        if !field.is_empty() {
            assert_eq!(problem["field"], field, "{problem}");
        }
    }
    // The same key for another customer is another request: refused, nothing spent.
    s.send("/v1/identify", &json!({"userId": "lp-2", "traits": {"email": "lp2@example.com"}})).await;
    s.engine.sync().await.expect("project");
    let (_, other) = s.get("/v1/profiles/lookup?userId=lp-2").await;
    let other = other["id"].as_str().expect("profile").to_string();
    let res = s
        .http
        .post(s.url(&format!("/v1/loyalty/{other}/redeem")))
        .bearer_auth(&s.admin_key)
        .header("Idempotency-Key", "till-7")
        .json(&json!({"points": 100}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 400, "a key is bound to its customer");
    let (status, problem) =
        s.call("POST", "/v1/loyalty/nobody/redeem", &s.admin_key, Some(&json!({"points": 1}))).await;
    assert_eq!((status, problem["field"].as_str()), (404, Some("profileId")), "{problem}");
    let (_, account) = s.get(&format!("/v1/loyalty/{id}")).await;
    assert_eq!((account["balance"]["active"].as_i64(), account["balance"]["used"].as_i64()), (Some(20), Some(100)));
    // The order's earning is in the event feed for journeys.
    let (status, page) = s.get("/v1/loyalty/events?limit=10").await;
    assert_eq!(status, 200, "{page}");
    let earned = page["items"].as_array().expect("events").iter().find(|e| e["kind"] == "points_earned").cloned();
    assert_eq!(earned.expect("points_earned")["details"]["points"], 120, "{page}");
    let (status, problem) = s.get("/v1/loyalty/events?limit=lots").await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("limit")), "{problem}");
    let rewards = json!([{"name": "Review", "trigger": "event", "event": "Product Reviewed", "points": 25}]);
    let (status, saved) = s.call("PUT", "/v1/loyalty/rewards", &s.admin_key, Some(&rewards)).await;
    assert_eq!((status, saved[0]["points"].as_i64()), (200, Some(25)), "{saved}");
    let bad = json!([{"name": "Poem", "trigger": "sonnet", "points": 25}]);
    let (status, problem) = s.call("PUT", "/v1/loyalty/rewards", &s.admin_key, Some(&bad)).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("trigger")), "{problem}");
    let (_, kept) = s.get("/v1/loyalty/rewards").await;
    assert_eq!(kept, saved, "a wrong set changes nothing");
}

tailor_testkit::http_both_backends!(redemption_and_bad_input_over_http,);
