//! What the HTTP fuzzer (`tests/fuzz.rs`) found, as reproductions over a real socket on both
//! backends; each was a 500 or a panic (most on PostgreSQL only) and is now a 400 naming the
//! field, or a success.

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

async fn shop(s: &TestServer) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price,currency\nP1,One,1.49,USD\nP2,Two,2.00,USD\n").expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone\nS1,North,store,N,UTC\n").expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
}

async fn refused(s: &TestServer, method: &str, path: &str, key: &str, body: Option<&Value>, field: &str) {
    let (status, problem) = s.call(method, path, key, body).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{method} {path}: {problem}");
    assert_eq!(problem["code"], "invalid_field", "{problem}");
}

/// PostgreSQL's text cannot hold U+0000: a NUL in a body, an event, a path or a query was a 500
/// (and an event carrying one stopped the projection). Now it is refused on both backends.
async fn a_nul_anywhere_is_refused_naming_where(s: TestServer) {
    shop(&s).await;
    let admin = s.admin_key.clone();
    let body = json!({"productId": "P1", "locationId": "S\u{0}1", "available": false});
    refused(&s, "PUT", "/v1/availability", &admin, Some(&body), "locationId").await;
    refused(&s, "POST", "/v1/reservations/%00/confirm", &admin, Some(&json!({})), "id").await;
    refused(&s, "GET", "/v1/profiles/lookup?email=a%00b", &admin, None, "email").await;
    let event = json!({"userId": "u1", "event": "Product Viewed",
        "properties": {"products": [{"product_id": "P1", "name": "nul\u{0}name"}]}});
    let (status, problem) = s.send("/v1/track", &event).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("properties.products[0].name")), "{problem}");
    let (status, answer) = s
        .send(
            "/v1/batch",
            &json!({"batch": [{"type": "identify", "userId": "u\u{0}"}, {"type": "identify", "userId": "u2"}]}),
        )
        .await;
    assert_eq!((status, answer["accepted"].as_i64()), (200, Some(1)), "{answer}");
    assert_eq!(answer["rejected"][0]["field"], "batch[0].userId", "{answer}");
    s.engine.sync().await.expect("the projection goes on");
}

/// PostgreSQL cannot index a key of thousands of bytes: a long SKU, store, zone, competitor or
/// reward name was a 500 there. An id that keys a row is at most 256 bytes on both backends.
async fn ids_that_key_a_row_are_bounded(s: TestServer) {
    shop(&s).await;
    let admin = s.admin_key.clone();
    let long = "x".repeat(3000);
    refused(
        &s,
        "PUT",
        "/v1/availability",
        &admin,
        Some(&json!({"productId": long, "locationId": "S1", "available": false})),
        "productId",
    )
    .await;
    refused(
        &s,
        "POST",
        "/v1/pricing/market",
        &admin,
        Some(&json!({"sku": "P1", "source": long, "cents": 120})),
        "source",
    )
    .await;
    refused(&s, "PUT", "/v1/prices/P1", &admin, Some(&json!({"zone": long, "currency": "USD", "cents": 150})), "zone")
        .await;
    let rewards = json!([{"name": long, "trigger": "event", "event": "Product Reviewed", "points": 25}]);
    refused(&s, "PUT", "/v1/loyalty/rewards", &admin, Some(&rewards), "rewards[0].name").await;
    refused(&s, "GET", &format!("/v1/prices/{long}/history"), &admin, None, "sku").await;
}

/// A competitor price of i64::MAX was accepted, then repricing panicked on `cents * 2`; and on
/// PostgreSQL a demand signal after a competitor price failed (a NULL float bound as float4).
async fn market_reports_are_bounded_and_any_order_of_them_stores(s: TestServer) {
    shop(&s).await;
    let admin = s.admin_key.clone();
    refused(
        &s,
        "POST",
        "/v1/pricing/market",
        &admin,
        Some(&json!({"sku": "P1", "source": "rival", "cents": i64::MAX})),
        "cents",
    )
    .await;
    refused(
        &s,
        "POST",
        "/v1/pricing/market",
        &admin,
        Some(&json!({"sku": "P1", "source": "demand", "demandIndex": 1e308})),
        "demandIndex",
    )
    .await;
    for report in [
        json!({"sku": "P1", "source": "rival", "cents": 140}),
        json!({"sku": "P1", "source": "demand", "demandIndex": 1.3}),
        json!({"sku": "P1", "source": "rival", "cents": 130}),
        json!({"sku": "P1", "source": "demand", "demandIndex": 1.1}),
    ] {
        let (status, body) = s.call("POST", "/v1/pricing/market", &admin, Some(&report)).await;
        assert_eq!(status, 204, "{report}: {body}");
    }
    let (status, decision) = s.call("POST", "/v1/prices/P1/reprice", &admin, None).await;
    assert_eq!(status, 200, "{decision}");
}

/// A count lower than a hold, then the hold's sale: on hand went below zero and broke the
/// table's CHECK (a 500). The sale goes through and on hand stops at none.
async fn a_sale_confirmed_after_a_lower_count_leaves_none_on_hand(s: TestServer) {
    shop(&s).await;
    let admin = s.admin_key.clone();
    let count = |n: i64| json!({"sku": "P1", "locationId": "S1", "mode": "set", "onHand": n, "reason": "count"});
    let (status, body) = s.call("POST", "/v1/inventory/adjustments", &admin, Some(&count(5))).await;
    assert_eq!(status, 200, "{body}");
    let hold = json!({"lines": [{"sku": "P1", "quantity": 4}], "store": "S1"});
    let (status, held) = s.call("POST", "/v1/reservations", &admin, Some(&hold)).await;
    assert_eq!(status, 201, "{held}");
    let (status, body) = s.call("POST", "/v1/inventory/adjustments", &admin, Some(&count(1))).await;
    assert_eq!(status, 200, "{body}");
    let id = held["id"].as_str().expect("id");
    let (status, done) =
        s.call("POST", &format!("/v1/reservations/{id}/confirm"), &admin, Some(&json!({"orderId": "o-1"}))).await;
    assert_eq!((status, done["state"].as_str()), (200, Some("confirmed")), "{done}");
    let (status, stock) = s.get("/v1/availability?sku=P1&store=S1").await;
    assert_eq!(status, 200, "{stock}");
    assert_eq!(stock["items"][0]["available"], 0, "{stock}");
}

/// A batch refused for a NUL under a 30,000-byte key: the problem named the key's path, grew
/// past what the error middleware read back to add `message`, and reached the client as `{}`.
/// A field or detail is now at most 1,000 characters, and a problem is never cut.
async fn a_problem_naming_a_huge_key_keeps_its_code(s: TestServer) {
    let key = "x".repeat(30_000);
    let event = json!({"type": "identify", "userId": "u1", "traits": {"address": {key: "a\u{0}"}}});
    let (status, problem) = s.send("/v1/batch", &json!({"batch": [event]})).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_field")), "{problem}");
    assert_eq!(problem["message"], problem["detail"]);
    let field = problem["errors"][0]["field"].as_str().expect("the refused event's field");
    assert!(field.starts_with("batch[0].traits.address.xxx") && field.chars().count() <= 1_001, "{field}");
    assert!(problem.to_string().len() < 10_000, "a short answer");
    let huge = json!({"lines": [{"sku": "P1", "quantity": {"pad": "9".repeat(200_000)}}]});
    let (status, problem) = s.call("POST", "/v1/reservations", &s.admin_key, Some(&huge)).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| d.chars().count() <= 1_001), "{problem}");
}

tailor_testkit::http_both_backends!(
    a_problem_naming_a_huge_key_keeps_its_code,
    a_nul_anywhere_is_refused_naming_where,
    ids_that_key_a_row_are_bounded,
    market_reports_are_bounded_and_any_order_of_them_stores,
    a_sale_confirmed_after_a_lower_count_leaves_none_on_hand,
);
