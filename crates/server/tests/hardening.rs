//! The reproductions of the hardening review, over a real socket: a poison event cannot stop
//! the projection, a browser key cannot mint points or move stock, overflowing numbers are
//! refused before anything is written, keys carry only the power their integration needs.

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

async fn profile_of(s: &TestServer, user: &str) -> Option<String> {
    let (status, body) = s.get(&format!("/v1/profiles/lookup?userId={user}")).await;
    (status == 200).then(|| body["id"].as_str().expect("id").to_string())
}

async fn account(s: &TestServer, id: &str) -> Value {
    let (status, body) = s.get(&format!("/v1/loyalty/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_poison_event_becomes_a_dead_letter_and_the_projection_moves_on(s: TestServer) {
    // Finding 1: an amount no order can have is refused at the door, naming the field.
    let (status, body) = s
        .send(
            "/v1/track",
            &json!({"userId": "x", "event": "Order Completed", "properties": {"order_id": "o1", "total": 1e300}}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("properties.total")), "{body}");
    // An order that passes the door but that a rule makes overflow the ledger: 9,000,000.00 at
    // 1,000 points a dollar is past the most points one entry may carry.
    let (status, body) =
        s.call("PUT", "/v1/loyalty/rules", &s.admin_key, Some(&json!([{"name": "rich", "pointsPerUnit": 1000}]))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .send_trusted(
            "/v1/track",
            &json!({"userId": "poison-1", "event": "Order Completed", "messageId": "m-poison",
                "properties": {"order_id": "big-1", "total": 9000000}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        s.send("/v1/identify", &json!({"userId": "later-1", "traits": {"email": "later@example.com"}})).await;
    assert_eq!(status, 200);
    s.engine.sync().await.expect("the projection is not stuck");
    let later = profile_of(&s, "later-1").await.expect("an identify after the poison event resolves");
    let (status, _) = s.call("GET", &format!("/v1/profiles/{later}/export"), &s.admin_key, None).await;
    assert_eq!(status, 200, "export does not wait on a stuck projection");
    let (_, health) = s.get("/healthz").await;
    assert_eq!((health["deadLetters"].as_i64(), health["projectionLag"].as_i64()), (Some(1), Some(0)), "{health}");
    let metrics = s.http.get(s.url("/metrics")).bearer_auth(&s.admin_key).send().await.expect("metrics");
    assert!(metrics.text().await.expect("text").contains("tailor_dead_letters_total"), "dead letters are counted");
    let (status, page) = s.call("GET", "/v1/dead-letters", &s.admin_key, None).await;
    assert_eq!(status, 200, "{page}");
    let letter = &page["items"][0];
    assert_eq!((letter["field"].as_str(), letter["source"].as_str()), (Some("points"), Some("test server")), "{page}");
    assert_eq!(letter["event"]["properties"]["order_id"], "big-1");
    let seq = letter["seq"].as_i64().expect("seq");
    assert!(!health.to_string().contains("rror"), "the public health view carries no error text: {health}");
    let (status, _) = s.call("POST", "/v1/dead-letters/-9223372036854775808/replay", &s.admin_key, None).await;
    assert_eq!(status, 404, "the smallest position is no dead letter, not an overflow");
    // Replaying before the cause is fixed changes nothing.
    let (status, body) = s.call("POST", &format!("/v1/dead-letters/{seq}/replay"), &s.admin_key, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(profile_of(&s, "poison-1").await.is_none(), "a failed event leaves nothing half-written");
    // The operator fixes the rule and replays: the order earns by the new rule.
    s.call("PUT", "/v1/loyalty/rules", &s.admin_key, Some(&json!([{"name": "rich", "pointsPerUnit": 1}]))).await;
    let (status, body) = s.call("POST", &format!("/v1/dead-letters/{seq}/replay"), &s.admin_key, None).await;
    assert_eq!(status, 200, "{body}");
    let id = profile_of(&s, "poison-1").await.expect("the replay applied the event");
    assert_eq!(account(&s, &id).await["balance"]["pending"], 9_000_000);
    let (_, page) = s.call("GET", "/v1/dead-letters", &s.admin_key, None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{page}");
}

async fn a_browser_key_records_behaviour_but_never_mints_points(s: TestServer) {
    // Finding 2: a client-side order is behaviour: on the timeline, no points, no sale.
    let order = |id: &str| {
        json!({"userId": "shopper-1", "event": "Order Completed", "messageId": id,
            "properties": {"order_id": id, "total": 25000}})
    };
    assert_eq!(s.send("/v1/track", &order("web-1")).await.0, 200);
    s.engine.sync().await.expect("project");
    let id = profile_of(&s, "shopper-1").await.expect("profile");
    let acc = account(&s, &id).await;
    assert_eq!(
        (acc["balance"]["pending"].as_i64(), acc["qualifying"]["spendCents"].as_i64()),
        (Some(0), Some(0)),
        "{acc}"
    );
    let (_, timeline) = s.get(&format!("/v1/profiles/{id}/timeline")).await;
    assert!(timeline.to_string().contains("Order Completed"), "the client's order is on the timeline: {timeline}");
    let (_, profile) = s.get(&format!("/v1/profiles/{id}")).await;
    assert_eq!(profile["features"]["orderCount"], 0, "not a sale: {profile}");
    // The shop's server reports the same order with its source key: now it is a sale.
    assert_eq!(s.send_trusted("/v1/track", &order("web-1")).await.0, 200);
    s.engine.sync().await.expect("project");
    assert_eq!(account(&s, &id).await["balance"]["pending"], 25_000);
    let (_, profile) = s.get(&format!("/v1/profiles/{id}")).await;
    assert_eq!(profile["features"]["orderCount"], 1, "a sale: {profile}");
    // Finding 10: a messageId is unique per source, so the server's copy was not dropped as a
    // duplicate of the browser's; a repeat from the same source is.
    assert_eq!(s.engine.log().count().await.expect("count"), 2);
    assert_eq!(s.send_trusted("/v1/track", &order("web-1")).await.0, 200);
    assert_eq!(s.engine.log().count().await.expect("count"), 2);
}

async fn overflowing_points_are_refused_before_anything_is_written(s: TestServer) {
    let when = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    s.send_trusted(
        "/v1/track",
        &json!({"userId": "lp-9", "event": "Order Completed", "timestamp": when, "properties": {"order_id": "lp-9", "total": 120}}),
    )
    .await;
    s.engine.sync().await.expect("project");
    let id = profile_of(&s, "lp-9").await.expect("profile");
    assert_eq!(account(&s, &id).await["balance"]["active"], 120);
    // Finding 4: the adjustment that overflowed and poisoned the account is refused.
    let adjust = |points: Value| {
        let path = format!("/v1/loyalty/{id}/adjust");
        let admin = s.admin_key.clone();
        let s = &s;
        async move { s.call("POST", &path, &admin, Some(&json!({"points": points, "reason": "typo"}))).await }
    };
    let (status, body) = adjust(json!(i64::MAX)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("points")), "{body}");
    assert_eq!(account(&s, &id).await["balance"]["active"], 120, "nothing was written");
    assert_eq!(adjust(json!(-20)).await.0, 200, "the account still takes corrections");
    assert_eq!(account(&s, &id).await["balance"]["active"], 100);
    let (status, body) =
        s.call("POST", &format!("/v1/loyalty/{id}/redeem"), &s.admin_key, Some(&json!({"points": i64::MAX}))).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("points")), "{body}");
    // The same through rules, tier multipliers and reward points.
    for (path, body, field) in [
        ("/v1/loyalty/rules", json!([{"name": "r", "pointsPerUnit": 1e308}]), "rules[0].pointsPerUnit"),
        ("/v1/loyalty/rules", json!([{"name": "r", "multiplier": 1e308}]), "rules[0].multiplier"),
        ("/v1/loyalty/tiers", json!([{"name": "T", "minPoints": 1, "multiplier": 1e308}]), "tiers[0].multiplier"),
        (
            "/v1/loyalty/rewards",
            json!([{"name": "w", "trigger": "event", "event": "X", "points": i64::MAX, "limit": "once"}]),
            "rewards[0].points",
        ),
    ] {
        let (status, answer) = s.call("PUT", path, &s.admin_key, Some(&body)).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{path}: {answer}");
    }
}

async fn stocked(s: &TestServer) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price\nA,Apple,1\nB,Box,1\nKIT,Kit,2\n").expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone,latitude,longitude\nS1,North,store,N,UTC,52.52,13.40\n")
        .expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    for sku in ["A", "B"] {
        let body = json!({"sku": sku, "locationId": "S1", "mode": "set", "onHand": 10, "reason": "count"});
        assert_eq!(s.call("POST", "/v1/inventory/adjustments", &s.admin_key, Some(&body)).await.0, 200);
    }
}

async fn stock_quantities_cannot_wrap_or_reach_the_database_unchecked(s: TestServer) {
    stocked(&s).await;
    let put_bundle = |components: Value| {
        let s = &s;
        async move {
            s.call("PUT", "/v1/inventory/bundles/KIT", &s.admin_key, Some(&json!({"components": components}))).await
        }
    };
    // Finding 5: a component quantity that wraps when multiplied.
    let (status, body) = put_bundle(json!([{"sku": "A", "quantity": 67280421310721i64}])).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("components[0].quantity")), "{body}");
    // Finding 9: a duplicated component is named, not a database error.
    let (status, body) = put_bundle(json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}])).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("components[1].sku")), "{body}");
    assert_eq!(put_bundle(json!([{"sku": "A", "quantity": 2}])).await.0, 204);
    let reserve = |lines: Value| {
        let s = &s;
        async move { s.call("POST", "/v1/reservations", &s.admin_key, Some(&json!({"lines": lines, "store": "S1"}))).await }
    };
    let (status, body) = reserve(json!([{"sku": "KIT", "quantity": 274177}])).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("lines[0].quantity")), "{body}");
    let many: Vec<Value> = (0..100_000).map(|_| json!({"sku": "A", "quantity": 1})).collect();
    let (status, body) = reserve(Value::Array(many)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("lines")), "{body}");
    let (status, body) = s
        .call(
            "POST",
            "/v1/inventory/adjustments",
            &s.admin_key,
            Some(&json!({"sku": "A", "locationId": "S1", "mode": "delta", "onHand": i64::MAX, "reason": "typo"})),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("onHand")), "{body}");
    let (_, avail) = s.get("/v1/availability?sku=A&store=S1").await;
    assert_eq!(avail["items"][0]["available"], 10, "nothing was held or changed: {avail}");
    // A kit of two A within range is held as two units of A.
    let (status, body) = reserve(json!([{"sku": "KIT", "quantity": 3}])).await;
    assert_eq!(status, 201, "{body}");
    let (_, avail) = s.get("/v1/availability?sku=A&store=S1").await;
    assert_eq!(avail["items"][0]["available"], 4);
}

async fn keys_carry_only_the_power_their_integration_needs_and_revocation_is_immediate(s: TestServer) {
    stocked(&s).await;
    let new_key = |scope: &str| {
        let s = &s;
        let body = json!({"scope": scope, "name": format!("{scope} integration")});
        async move {
            let (status, key) = s.call("POST", "/v1/keys", &s.admin_key, Some(&body)).await;
            assert_eq!(status, 201, "{key}");
            (key["key"]["id"].as_str().expect("id").to_string(), key["secret"].as_str().expect("secret").to_string())
        }
    };
    for (body, field) in [
        (json!({"scope": "root", "name": "x"}), "scope"),
        (json!({"scope": "read", "name": ""}), "name"),
        (json!({"scope": "read", "name": "x".repeat(101)}), "name"),
        (json!({"scope": "read", "name": "x", "source": ""}), "source"),
        (json!({"scope": "read", "name": "x", "owner": "me"}), "owner"),
    ] {
        let (status, answer) = s.call("POST", "/v1/keys", &s.admin_key, Some(&body)).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    // Only an admin key makes keys: a key shipped in a browser cannot mint one.
    let (status, _) = s.call("POST", "/v1/keys", &s.write_key, Some(&json!({"scope": "admin", "name": "x"}))).await;
    assert_eq!(status, 403);
    let (checkout_id, checkout) = new_key("checkout").await;
    let (pos_id, pos) = new_key("pos").await;
    // A checkout holds stock and reads availability, and can do nothing else.
    let hold = json!({"lines": [{"sku": "A", "quantity": 1}], "store": "S1"});
    assert_eq!(s.call("POST", "/v1/reservations", &checkout, Some(&hold)).await.0, 201);
    assert_eq!(s.call("GET", "/v1/availability?sku=A", &checkout, None).await.0, 200);
    let adjust = json!({"sku": "A", "locationId": "S1", "mode": "set", "onHand": 0, "reason": "x"});
    assert_eq!(s.call("POST", "/v1/inventory/adjustments", &checkout, Some(&adjust)).await.0, 403);
    assert_eq!(s.call("DELETE", "/v1/profiles/p1", &checkout, None).await.0, 403);
    assert_eq!(s.call("PUT", "/v1/prices/A", &checkout, Some(&json!({"cents": 1}))).await.0, 403);
    // A till's sales are trusted and it redeems; it cannot read profiles.
    let sale = json!({"userId": "till-1", "event": "Order Completed", "properties": {"order_id": "t-1", "total": 30}});
    let res = s.http.post(s.url("/v1/track")).basic_auth(&pos, Some("")).json(&sale).send().await.expect("send");
    assert_eq!(res.status(), 200);
    s.engine.sync().await.expect("project");
    let id = profile_of(&s, "till-1").await.expect("profile");
    assert_eq!(account(&s, &id).await["balance"]["pending"], 30, "a till's sale earns points");
    let (status, body) = s.call("POST", &format!("/v1/loyalty/{id}/redeem"), &pos, Some(&json!({"points": 1}))).await;
    assert_eq!(status, 409, "allowed, but nothing is active yet: {body}");
    assert_eq!(s.call("GET", &format!("/v1/profiles/{id}"), &pos, None).await.0, 403);
    // Keys are listed without secrets; a revoked key is refused on the very next request.
    let (_, keys) = s.call("GET", "/v1/keys", &s.admin_key, None).await;
    assert!(keys["items"]
        .as_array()
        .expect("keys")
        .iter()
        .any(|k| k["id"] == checkout_id.as_str() && k["scope"] == "checkout"));
    assert!(!keys.to_string().contains(&checkout), "no secret is listed");
    assert_eq!(s.call("POST", &format!("/v1/keys/{checkout_id}/revoke"), &s.admin_key, None).await.0, 200);
    assert_eq!(s.call("POST", "/v1/reservations", &checkout, Some(&hold)).await.0, 401);
    // Rotation: the new secret works at once, the old one no longer, the source is kept.
    let (status, rotated) = s.call("POST", &format!("/v1/keys/{pos_id}/rotate"), &s.admin_key, None).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(rotated["key"]["source"], "pos integration");
    let new_pos = rotated["secret"].as_str().expect("secret");
    let path = format!("/v1/loyalty/{id}");
    assert_eq!(s.call("GET", &path, &pos, None).await.0, 401);
    assert_eq!(s.call("GET", &path, new_pos, None).await.0, 200);
}

async fn bodies_that_cannot_be_meant_are_refused_and_change_nothing(s: TestServer) {
    let put = |body: &'static str| {
        let s = &s;
        async move {
            let res = s
                .http
                .put(s.url("/v1/pricing/guardrails/*"))
                .bearer_auth(&s.admin_key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(put(r#"{"unitCostCents": 40, "minMargin": 0.2}"#).await.0, 200);
    // Finding 9: `[]` read as "no settings" wiped the floor; trailing data was accepted.
    let (status, body) = put("[]").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("body")), "{body}");
    let (status, body) = put(r#"{"unitCostCents": 1} trailing"#).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("body")), "{body}");
    let (_, g) = s.get("/v1/pricing/guardrails/*").await;
    assert_eq!(g["unitCostCents"], 40, "the guardrails are as they were: {g}");
    // A misspelt channel would make a rule or policy that never applies: a typed name.
    let rule = json!([{"name": "web bonus", "channel": "wbe", "pointsPerUnit": 2}]);
    let (status, body) = s.call("PUT", "/v1/loyalty/rules", &s.admin_key, Some(&rule)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("rules[0].channel")), "{body}");
    let policy = json!({"policy": "reserve_on_cart"});
    let (status, body) = s.call("PUT", "/v1/inventory/policies/wbe", &s.admin_key, Some(&policy)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("channel")), "{body}");
    // An order's count must be whole unless its unit says it is weighed.
    let weighed = json!({"userId": "w", "event": "Order Completed", "properties": {"order_id": "w1",
        "products": [{"product_id": "A", "quantity": 2.5}]}});
    let (status, body) = s.send_trusted("/v1/track", &weighed).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("properties.products[0].quantity")), "{body}");
    let weighed = json!({"userId": "w", "event": "Order Completed", "properties": {"order_id": "w1",
        "products": [{"product_id": "A", "quantity": 2.5, "unit": "kg", "price": 3}]}});
    assert_eq!(s.send_trusted("/v1/track", &weighed).await.0, 200);
}

tailor_testkit::http_both_backends!(
    a_poison_event_becomes_a_dead_letter_and_the_projection_moves_on,
    a_browser_key_records_behaviour_but_never_mints_points,
    overflowing_points_are_refused_before_anything_is_written,
    stock_quantities_cannot_wrap_or_reach_the_database_unchecked,
    keys_carry_only_the_power_their_integration_needs_and_revocation_is_immediate,
    bodies_that_cannot_be_meant_are_refused_and_change_nothing,
);
