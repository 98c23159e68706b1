//! Inventory over a real socket: reservations and availability, idempotency keys, and bad input
//! answered with problem+json naming the field, changing nothing.

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

async fn stocked(s: TestServer) -> TestServer {
    let dir = tempfile::tempdir().expect("dir");
    let mut products = String::from("id,title,price\n");
    for i in 0..20 {
        products.push_str(&format!("P{i},Product {i},1\n"));
    }
    let file = dir.path().join("products.csv");
    std::fs::write(&file, products).expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(
        &file,
        "id,name,kind,region,timezone,latitude,longitude\nS1,North,store,N,UTC,52.52,13.40\nS2,South,store,S,UTC,48.14,11.58\n",
    )
    .expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    for i in 0..20 {
        for (store, n) in [("S1", i), ("S2", 2)] {
            let (status, body) = s
                .call(
                    "POST",
                    "/v1/inventory/adjustments",
                    &s.admin_key,
                    Some(&json!({"sku": format!("P{i}"), "locationId": store, "mode": "set", "onHand": n, "reason": "count"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    s
}

async fn available(s: &TestServer, sku: &str, store: &str) -> i64 {
    let (status, body) = s.get(&format!("/v1/availability?sku={sku}&store={store}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"][0]["available"].as_i64().expect("available")
}

async fn reservations_hold_stock_and_availability_answers_for_many_skus(s: TestServer) {
    let s = stocked(s).await;
    let skus: Vec<String> = (0..20).map(|i| format!("P{i}")).collect();
    let (status, body) = s.get(&format!("/v1/availability?sku={}&near=52.5,13.4", skus.join(","))).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 40, "every SKU at both stores: {body}");
    assert_eq!(items[0]["locationId"], "S1", "the nearest store first");
    // P3: 3 at S1 (the pickup store), so 4 there is refused and nothing is held.
    let (status, body) = s
        .call(
            "POST",
            "/v1/reservations",
            &s.admin_key,
            Some(&json!({"lines": [{"sku": "P3", "quantity": 4}], "store": "S1"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(available(&s, "P3", "S1").await, 3);
    let (status, held) = s
        .call(
            "POST",
            "/v1/reservations",
            &s.admin_key,
            Some(&json!({"lines": [{"sku": "P3", "quantity": 2}], "store": "S1"})),
        )
        .await;
    assert_eq!(status, 201, "{held}");
    assert_eq!(available(&s, "P3", "S1").await, 1);
    let id = held["id"].as_str().expect("id");
    let (status, body) = s.call("POST", &format!("/v1/reservations/{id}/release"), &s.admin_key, None).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("released")), "{body}");
    assert_eq!(available(&s, "P3", "S1").await, 3);
    // Without a store, 4 units split over both stores.
    let (status, split) =
        s.call("POST", "/v1/reservations", &s.admin_key, Some(&json!({"lines": [{"sku": "P3", "quantity": 4}]}))).await;
    assert_eq!(status, 201, "{split}");
    let total: i64 =
        split["lines"].as_array().expect("lines").iter().map(|l| l["quantity"].as_i64().unwrap_or(0)).sum();
    assert_eq!((total, split["lines"].as_array().map(Vec::len)), (4, Some(2)), "{split}");
}

async fn bad_input_is_named_and_changes_nothing(s: TestServer) {
    let s = stocked(s).await;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/v1/reservations", json!({"lines": [{"sku": "P5", "quantity": 1.5}]}), 400, "lines[0].quantity"),
        ("/v1/reservations", json!({"lines": [{"sku": "P5", "quantity": -2}]}), 400, "lines[0].quantity"),
        ("/v1/reservations", json!({"lines": [{"sku": "NOPE", "quantity": 1}]}), 404, "lines[0].sku"),
        ("/v1/reservations", json!({"lines": [{"sku": "P5", "quantity": 1}], "store": "S9"}), 404, "store"),
        ("/v1/reservations", json!({"lines": []}), 400, "lines"),
        ("/v1/reservations", json!({"lines": [{"sku": "P5", "quantity": 1}], "ttlSeconds": 0}), 400, "ttlSeconds"),
        (
            "/v1/inventory/adjustments",
            json!({"sku": "P5", "locationId": "S1", "mode": "delta", "onHand": 0.5, "reason": "x"}),
            400,
            "onHand",
        ),
        (
            "/v1/inventory/adjustments",
            json!({"sku": "P5", "locationId": "S9", "mode": "set", "onHand": 1, "reason": "x"}),
            404,
            "locationId",
        ),
        (
            "/v1/inventory/adjustments",
            json!({"sku": "P5", "locationId": "S1", "mode": "delta", "onHand": -99, "reason": "x"}),
            400,
            "onHand",
        ),
        (
            "/v1/inventory/adjustments",
            json!({"sku": "P5", "locationId": "S1", "mode": "set", "onHand": 1}),
            400,
            "reason",
        ),
    ];
    for (path, body, status, field) in cases {
        let (got, answer) = s.call("POST", path, &s.admin_key, Some(&body)).await;
        assert_eq!((got, answer["field"].as_str()), (status, Some(field)), "{path} {body}: {answer}");
    }
    assert_eq!(available(&s, "P5", "S1").await, 5, "nothing changed");
    // Releasing more than held.
    let (_, held) = s
        .call(
            "POST",
            "/v1/reservations",
            &s.admin_key,
            Some(&json!({"lines": [{"sku": "P5", "quantity": 2}], "store": "S1"})),
        )
        .await;
    let id = held["id"].as_str().expect("id");
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/reservations/{id}/release"),
            &s.admin_key,
            Some(&json!({"sku": "P5", "quantity": 3})),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("quantity")), "{body}");
    assert_eq!(available(&s, "P5", "S1").await, 3);
    // An Idempotency-Key: a retry gets the same reservation; another body under it is refused.
    let reserve = |body: Value| {
        s.http
            .post(s.url("/v1/reservations"))
            .bearer_auth(&s.admin_key)
            .header("Idempotency-Key", "cart-42")
            .json(&body)
            .send()
    };
    let first: Value = reserve(json!({"lines": [{"sku": "P5", "quantity": 1}], "store": "S1"}))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let again: Value = reserve(json!({"lines": [{"sku": "P5", "quantity": 1}], "store": "S1"}))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(first["id"], again["id"], "{first} {again}");
    assert_eq!(available(&s, "P5", "S1").await, 2, "held once");
    let other = reserve(json!({"lines": [{"sku": "P5", "quantity": 2}], "store": "S1"})).await.expect("send");
    assert_eq!(other.status().as_u16(), 400);
    let other: Value = other.json().await.expect("json");
    assert_eq!(other["field"], "Idempotency-Key", "{other}");
    assert_eq!(available(&s, "P5", "S1").await, 2, "nothing changed");
}

async fn the_live_feed_tells_when_a_sku_runs_out(s: TestServer) {
    let s = stocked(s).await;
    let mut feed = s.http.get(s.url("/v1/inventory/events")).bearer_auth(&s.read_key).send().await.expect("feed");
    assert_eq!(feed.status(), 200);
    let (status, body) = s
        .call(
            "POST",
            "/v1/inventory/adjustments",
            &s.admin_key,
            Some(&json!({"sku": "P7", "locationId": "S2", "mode": "delta", "onHand": -2, "reason": "breakage"})),
        )
        .await;
    assert_eq!((status, body["available"].as_i64()), (200, Some(0)), "{body}");
    let mut seen = String::new();
    let read = async {
        while !seen.contains("out_of_stock") {
            match feed.chunk().await.expect("chunk") {
                Some(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                None => break,
            }
        }
    };
    tokio::time::timeout(tailor_testkit::EVENT_WAIT, read).await.expect("the out-of-stock event never came");
    assert!(
        seen.contains("event: out_of_stock")
            && seen.contains("\"sku\":\"P7\"")
            && seen.contains("\"locationId\":\"S2\""),
        "{seen}"
    );
}

async fn the_server_releases_a_hold_when_its_time_runs_out(s: TestServer) {
    let s = stocked(s).await;
    let (status, held) = s
        .call(
            "POST",
            "/v1/reservations",
            &s.admin_key,
            Some(&json!({"lines": [{"sku": "P9", "quantity": 4}], "store": "S1", "ttlSeconds": 1})),
        )
        .await;
    assert_eq!(status, 201, "{held}");
    assert_eq!(available(&s, "P9", "S1").await, 5);
    let id = held["id"].as_str().expect("id");
    // The background job runs every second: wait for the expiry it makes.
    let (_, r) = s.get_until(&format!("/v1/reservations/{id}"), |_, r| r["state"] == "expired").await;
    assert_eq!(r["state"], "expired", "the hold never expired: {r}");
    assert_eq!(available(&s, "P9", "S1").await, 9);
}

tailor_testkit::http_both_backends!(
    reservations_hold_stock_and_availability_answers_for_many_skus,
    bad_input_is_named_and_changes_nothing,
    the_live_feed_tells_when_a_sku_runs_out,
    the_server_releases_a_hold_when_its_time_runs_out,
);
