//! The HTTP API over a real socket: intake, look-up, auth on every route, bad input, docs.

use serde_json::{json, Value};
use tailor_testkit::TestServer;

async fn a_track_then_an_identify_are_visible_by_email(s: TestServer) {
    let (status, body) = s
        .send(
            "/v1/track",
            &json!({"anonymousId": "anon-42", "event": "Product Viewed", "properties": {"product_id": "p1"}}),
        )
        .await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    let (status, _) = s
        .send(
            "/v1/identify",
            &json!({"anonymousId": "anon-42", "traits": {"email": "Jo@Example.com", "firstName": "Jo"}}),
        )
        .await;
    assert_eq!(status, 200);
    // The background projection makes it visible: wait for that, not for a deadline.
    let (status, profile) = s.get_until("/v1/profiles/lookup?email=jo@example.com", |status, _| status == 200).await;
    assert_eq!(status, 200, "never visible: {profile}");
    assert_eq!(profile["traits"]["firstName"], "Jo");
    let id = profile["id"].as_str().expect("id").to_string();
    let (status, timeline) = s.get(&format!("/v1/profiles/{id}/timeline")).await;
    assert_eq!(status, 200);
    assert_eq!(timeline["items"].as_array().map(Vec::len), Some(2));
    let (status, by_anon) = s.get("/v1/profiles/lookup?anonymousId=anon-42").await;
    assert_eq!((status, by_anon["id"].as_str()), (200, Some(id.as_str())));
}

async fn a_batch_accepts_the_good_events_and_names_the_bad_ones(s: TestServer) {
    let batch = json!({"batch": [
        {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "b-1"},
        {"type": "track", "event": "Product Viewed", "messageId": "b-2"},
        {"type": "identify", "userId": "u2", "traits": {"email": "not-an-email"}, "messageId": "b-3"},
        {"type": "page", "anonymousId": "a9", "name": "Home", "messageId": "b-4"},
        {"type": "launch", "userId": "u3", "messageId": "b-5"}
    ], "context": {"channel": "web"}});
    let (status, body) = s.send("/v1/batch", &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    let rejected: Vec<(u64, String)> = body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| (r["index"].as_u64().unwrap_or(99), r["field"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "batch[1].userId".to_string()),
            (2, "batch[2].traits.email".to_string()),
            (4, "batch[4].type".to_string())
        ]
    );
    // The same batch again stores nothing new.
    let (status, _) = s.send("/v1/batch", &batch).await;
    assert_eq!(status, 200);
    assert_eq!(s.engine.log().count().await.expect("count"), 2);
    s.engine.sync().await.expect("sync");
    let (_, profile) = s.get("/v1/profiles/lookup?anonymousId=a9").await;
    assert_eq!(profile["features"]["channels"][0]["channel"], "web", "batch context applies to each event");
}

async fn assert_problem(s: &TestServer, path: &str, body: Vec<u8>, status: u16, field: &str) {
    let res = s
        .http
        .post(s.url(path))
        .basic_auth(&s.write_key, Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), status, "{path} {field}");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.expect("json");
    assert_eq!(problem["field"], field, "{problem}");
    assert_eq!(problem["status"], status);
    assert!(problem["type"].as_str().unwrap_or("").starts_with("/docs/errors#"));
    assert!(!problem["detail"].as_str().unwrap_or("").is_empty());
}

async fn bad_input_gets_problem_json_naming_the_field_and_writes_nothing(s: TestServer) {
    let j = |v: Value| serde_json::to_vec(&v).expect("json");
    assert_problem(&s, "/v1/track", b"{\"userId\": \"u\", ".to_vec(), 400, "body").await;
    assert_problem(&s, "/v1/track", j(json!({"userId": 42, "event": "X"})), 400, "userId").await;
    assert_problem(&s, "/v1/track", j(json!({"userId": "u", "event": "X", "properties": [1]})), 400, "properties")
        .await;
    assert_problem(&s, "/v1/track", j(json!({"event": "X"})), 400, "userId").await;
    assert_problem(&s, "/v1/track", j(json!({"userId": "u"})), 400, "event").await;
    assert_problem(
        &s,
        "/v1/track",
        j(json!({"userId": "u", "event": "X", "timestamp": "2999-01-01T00:00:00Z"})),
        400,
        "timestamp",
    )
    .await;
    assert_problem(&s, "/v1/identify", j(json!({"userId": "u", "traits": {"email": "a@b"}})), 400, "traits.email")
        .await;
    assert_problem(&s, "/v1/identify", j(json!({"userId": "u", "traits": {"phone": "555-0100"}})), 400, "traits.phone")
        .await;
    assert_problem(&s, "/v1/alias", j(json!({"userId": "u"})), 400, "previousId").await;
    let big = "x".repeat(33 * 1024);
    assert_problem(&s, "/v1/track", j(json!({"userId": "u", "event": "X", "properties": {"blob": big}})), 413, "body")
        .await;
    let huge: Vec<Value> = (0..20).map(|i| json!({"type": "track", "userId": "u", "event": "X", "messageId": format!("h{i}"), "properties": {"blob": "y".repeat(30 * 1024)}})).collect();
    assert_problem(&s, "/v1/batch", j(json!({"batch": huge})), 413, "body").await;
    let (status, body) = s
        .send(
            "/v1/batch",
            &json!({"batch": [{"type": "track", "userId": "u", "event": "X", "properties": {"blob": big}}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "payload_too_large");
    assert_problem(&s, "/v1/batch", j(json!({"events": []})), 400, "batch").await;
    assert_eq!(s.engine.log().count().await.expect("count"), 0, "nothing was written");
    let (status, body) = s.get("/v1/profiles/lookup?email=nope").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("email")));
    let (status, body) = s.get("/v1/profiles/lookup?shoeSize=9").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("shoeSize")));
    let (status, _) = s.get("/v1/profiles/lookup?email=nobody@example.com").await;
    assert_eq!(status, 404);
    let (status, body) = s.get("/v1/profiles/x/timeline?limit=0").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));
    let (status, body) = s
        .call("PUT", "/v1/profiles/x/consent", &s.admin_key, Some(&json!({"purpose": "mind_reading", "granted": true})))
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("purpose")), "{body}");
}

async fn every_route_refuses_a_missing_key_and_a_key_of_the_wrong_scope(s: TestServer) {
    let intake = ["/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch"];
    let read = [
        "/v1/profiles/lookup?email=a@b.co",
        "/v1/profiles/p1",
        "/v1/profiles/p1/timeline",
        "/v1/profiles/p1/merges",
        "/v1/products/1",
        "/v1/stats",
        "/v1/recommendations?userId=u1",
        "/v1/models",
        "/v1/availability?sku=A",
        "/v1/reservations/r1",
        "/v1/inventory/events",
        "/v1/inventory/policies",
        "/v1/loyalty/p1",
        "/v1/loyalty/rules",
        "/v1/loyalty/tiers",
        "/v1/loyalty/rewards",
        "/v1/loyalty/events",
        "/v1/prices?sku=A",
        "/v1/prices/A/history",
        "/v1/pricing/guardrails/A",
        "/v1/promotions",
        "/v1/pricing/experiments/A",
        "/v1/pricing/elasticities/SOUP",
        "/v1/journeys",
        "/v1/journeys/j1",
        "/v1/journeys/j1/report",
        "/v1/builtin-journeys/abandoned_cart",
        "/v1/messaging/guardrails",
        "/v1/messages/sends?user=p1",
        "/v1/messages/decisions?user=p1",
        "/v1/messages?user=p1",
        "/v1/search?q=milk",
        "/v1/uplift-models",
        "/v1/uplift-models/m1",
        "/v1/segments",
        "/v1/segments/s1",
        "/v1/segments/s1/members",
    ];
    // The assistant's shopper routes: any intake key (a browser's write key with the
    // conversation's token), never a read key.
    let chat: [(&str, &str); 5] = [
        ("POST", "/v1/conversations"),
        ("GET", "/v1/conversations/c1"),
        ("POST", "/v1/conversations/c1/messages"),
        ("GET", "/v1/conversations/c1/messages"),
        ("GET", "/v1/conversations/c1/stream"),
    ];
    let admin: [(&str, &str); 55] = [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("POST", "/v1/keys/k1/revoke"),
        ("POST", "/v1/keys/k1/rotate"),
        ("GET", "/v1/dead-letters"),
        ("POST", "/v1/dead-letters/1/replay"),
        ("DELETE", "/v1/profiles/p1"),
        ("POST", "/v1/profiles/p1/unmerge"),
        ("GET", "/v1/profiles/p1/export"),
        ("PUT", "/v1/profiles/p1/consent"),
        ("GET", "/v1/recommendations/rules"),
        ("PUT", "/v1/recommendations/rules"),
        ("PUT", "/v1/availability"),
        ("POST", "/v1/context/weather"),
        ("POST", "/v1/models/train"),
        ("POST", "/v1/inventory/adjustments"),
        ("PUT", "/v1/inventory/bundles/X"),
        ("POST", "/v1/reservations"),
        ("POST", "/v1/reservations/r1/confirm"),
        ("POST", "/v1/reservations/r1/release"),
        ("PUT", "/v1/inventory/policies/web"),
        ("POST", "/v1/inventory/transfers"),
        ("POST", "/v1/inventory/transfers/t1/receive"),
        ("POST", "/v1/inventory/transfers/t1/cancel"),
        ("POST", "/v1/loyalty/p1/redeem"),
        ("POST", "/v1/loyalty/p1/adjust"),
        ("PUT", "/v1/loyalty/rules"),
        ("PUT", "/v1/loyalty/tiers"),
        ("PUT", "/v1/loyalty/rewards"),
        ("PUT", "/v1/prices/A"),
        ("POST", "/v1/prices/A/reprice"),
        ("PUT", "/v1/pricing/guardrails/A"),
        ("PUT", "/v1/promotions/p1"),
        ("DELETE", "/v1/promotions/p1"),
        ("POST", "/v1/pricing/market"),
        ("POST", "/v1/pricing/markdown"),
        ("PUT", "/v1/pricing/experiments/A"),
        ("DELETE", "/v1/pricing/experiments/A"),
        ("POST", "/v1/pricing/experiments/A/step"),
        ("PUT", "/v1/pricing/elasticities/SOUP"),
        ("PUT", "/v1/journeys/j1"),
        ("POST", "/v1/journeys/j1/pause"),
        ("POST", "/v1/journeys/j1/resume"),
        ("PUT", "/v1/messaging/guardrails"),
        ("POST", "/v1/suppressions"),
        ("GET", "/v1/assistant/inbox"),
        ("GET", "/v1/assistant/conversations/c1"),
        ("POST", "/v1/assistant/conversations/c1/replies"),
        ("POST", "/v1/assistant/conversations/c1/close"),
        ("PUT", "/v1/assistant/knowledge/k.md"),
        ("DELETE", "/v1/assistant/knowledge/k.md"),
        ("POST", "/v1/uplift-models"),
        ("DELETE", "/v1/uplift-models/m1"),
        ("PUT", "/v1/segments/s1"),
        ("DELETE", "/v1/segments/s1"),
    ];
    // The unsubscribe link needs no key (its signed token is the credential): a bad token is a
    // 400 naming it, never a 401.
    for method in ["GET", "POST"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let (status, problem) = read_status(s.http.request(m, s.url("/v1/unsubscribe?token=forged"))).await;
        assert!(status == 400 || status == 200, "{method} /v1/unsubscribe: {status} {problem}");
        if method == "POST" {
            assert_eq!((status, problem["field"].as_str()), (400, Some("token")), "{problem}");
        }
    }
    let mut checked = 2;
    let body = json!({"userId": "u", "event": "E", "previousId": "p", "groupId": "g", "batch": []});
    for path in intake {
        let (status, _) = read_status(s.http.post(s.url(path)).json(&body)).await;
        assert_eq!(status, 401, "{path} without a key");
        for key in [&s.read_key, &"tk_write_unknown".to_string()] {
            let (status, _) = read_status(s.http.post(s.url(path)).basic_auth(key, Some("")).json(&body)).await;
            assert!(status == 403 || status == 401, "{path} with a wrong key: {status}");
        }
        checked += 1;
    }
    for path in read {
        assert_eq!(read_status(s.http.get(s.url(path))).await.0, 401, "{path} without a key");
        assert_eq!(
            read_status(s.http.get(s.url(path)).bearer_auth(&s.write_key)).await.0,
            403,
            "{path} with a write key"
        );
        assert_ne!(
            read_status(s.http.get(s.url(path)).bearer_auth(&s.read_key)).await.0,
            403,
            "{path} with a read key"
        );
        checked += 1;
    }
    for (method, path) in chat {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        assert_eq!(read_status(s.http.request(m.clone(), s.url(path))).await.0, 401, "{method} {path} without a key");
        assert_eq!(
            read_status(s.http.request(m.clone(), s.url(path)).bearer_auth(&s.read_key)).await.0,
            403,
            "{method} {path} with a read key"
        );
        let with_write = read_status(s.http.request(m.clone(), s.url(path)).bearer_auth(&s.write_key)).await.0;
        assert!(with_write != 401 && with_write != 403, "{method} {path} with a write key: {with_write}");
        checked += 1;
    }
    for (method, path) in admin {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        assert_eq!(read_status(s.http.request(m.clone(), s.url(path))).await.0, 401, "{method} {path} without a key");
        for key in [&s.write_key, &s.read_key] {
            assert_eq!(
                read_status(s.http.request(m.clone(), s.url(path)).bearer_auth(key)).await.0,
                403,
                "{method} {path}"
            );
        }
        checked += 1;
    }
    // Every API route of the OpenAPI document is covered above.
    let (_, spec) = read_status(s.http.get(s.url("/openapi.json"))).await;
    let api_routes = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(p, item)| {
            item.as_object().into_iter().flat_map(move |m| m.keys().map(move |k| (k.clone(), p.clone())))
        })
        .filter(|(_, p)| p.starts_with("/v1/"))
        .count();
    assert_eq!(checked, api_routes, "a route of the API is missing from this test");
}

async fn read_status(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("send");
    let status = res.status().as_u16();
    // A live feed never ends: its status is the answer.
    if res.headers().get("content-type").is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream")) {
        return (status, Value::Null);
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn docs_health_metrics_and_console_are_served_locally(s: TestServer) {
    let (status, spec) = read_status(s.http.get(s.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/batch"]["post"].is_object());
    for (path, needle) in [
        ("/docs", "openapi.json"),
        ("/console", "console.js"),
        ("/assets/console.js", "lookup"),
        ("/docs/errors", "invalid_field"),
    ] {
        let res = s.http.get(s.url(path)).send().await.expect("get");
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let text = res.text().await.expect("text");
        assert!(text.contains(needle), "{path} lacks {needle}");
        assert!(!text.contains("cdn") && !text.contains("unpkg"), "{path} must not load assets from a CDN");
    }
    assert_eq!(read_status(s.http.get(s.url("/healthz"))).await.0, 200);
    s.send("/v1/track", &json!({"userId": "u", "event": "E"})).await;
    assert_eq!(
        read_status(s.http.get(s.url("/metrics"))).await.0,
        401,
        "metrics need the admin key on the public port"
    );
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(&s.admin_key)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("tailor_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/v1/track\""));
}

async fn merges_can_be_listed_and_undone_over_http(s: TestServer) {
    s.send("/v1/track", &json!({"anonymousId": "w1", "event": "Product Viewed"})).await;
    s.send("/v1/identify", &json!({"userId": "shop-7", "traits": {"email": "m@example.com"}})).await;
    s.send("/v1/identify", &json!({"anonymousId": "w1", "userId": "shop-7"})).await;
    s.engine.sync().await.expect("sync");
    let (_, p) = s.get("/v1/profiles/lookup?userId=shop-7").await;
    let id = p["id"].as_str().expect("id").to_string();
    let (status, merges) = s.get(&format!("/v1/profiles/{id}/merges")).await;
    assert_eq!(status, 200);
    assert_eq!(merges["items"].as_array().map(Vec::len), Some(1));
    let merge_id = merges["items"][0]["id"].as_str().expect("merge id");
    let (status, undone) =
        s.call("POST", &format!("/v1/profiles/{id}/unmerge"), &s.admin_key, Some(&json!({"mergeId": merge_id}))).await;
    assert_eq!(status, 200, "{undone}");
    assert!(undone["undoneAt"].is_string());
    let (status, again) =
        s.call("POST", &format!("/v1/profiles/{id}/unmerge"), &s.admin_key, Some(&json!({"mergeId": merge_id}))).await;
    assert_eq!(status, 409, "{again}");
    let (_, a) = s.get("/v1/profiles/lookup?anonymousId=w1").await;
    let (_, b) = s.get("/v1/profiles/lookup?userId=shop-7").await;
    assert_ne!(a["id"], b["id"]);
    let (status, export) = s.call("GET", &format!("/v1/profiles/{id}/export"), &s.admin_key, None).await;
    assert_eq!(status, 200);
    assert!(export["events"].is_array() && export["merges"].is_array());
    let customer = b["id"].as_str().expect("id");
    let (status, _) = s.call("DELETE", &format!("/v1/profiles/{customer}"), &s.admin_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(s.get("/v1/profiles/lookup?email=m@example.com").await.0, 404);
}

tailor_testkit::http_both_backends!(
    a_track_then_an_identify_are_visible_by_email,
    a_batch_accepts_the_good_events_and_names_the_bad_ones,
    bad_input_gets_problem_json_naming_the_field_and_writes_nothing,
    every_route_refuses_a_missing_key_and_a_key_of_the_wrong_scope,
    docs_health_metrics_and_console_are_served_locally,
    merges_can_be_listed_and_undone_over_http,
);
