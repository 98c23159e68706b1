//! The operations listener: `/metrics` is served there without a key and needs the admin key on
//! the public port; `/healthz` stays public on both; the API is not on the operations port.
//!
//! SQLite only: this tests which listener serves what, not storage.

use serde_json::json;
use tailor_server::ServerLimits;
use tailor_testkit::{TestBackend, TestEngine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_on_the_operations_port_and_behind_the_admin_key_on_the_public_one() {
    let t = TestEngine::new(TestBackend::Sqlite).await.expect("engine");
    let admin = t.engine.create_key(tailor_engine::Scope::Admin, "t").await.expect("key");
    let write = t.engine.create_key(tailor_engine::Scope::Write, "t").await.expect("key");
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (public_addr, ops_addr) = (public.local_addr().expect("addr"), ops.local_addr().expect("addr"));
    let server = tokio::spawn(tailor_server::serve_with(
        t.engine.clone(),
        public,
        Some(ops),
        ServerLimits::without_rate_limits(),
    ));
    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://{public_addr}/v1/track"))
        .basic_auth(&write, Some(""))
        .json(&json!({"userId": "u", "event": "E"}))
        .send()
        .await
        .expect("track");
    assert_eq!(res.status().as_u16(), 200);

    let res = http.get(format!("http://{public_addr}/metrics")).send().await.expect("metrics");
    assert_eq!(res.status().as_u16(), 401, "metrics are not open on the public port");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = http.get(format!("http://{public_addr}/metrics")).bearer_auth(&write).send().await.expect("metrics");
    assert_eq!(res.status().as_u16(), 403, "a write key cannot read metrics");
    let res = http.get(format!("http://{public_addr}/metrics")).bearer_auth(&admin).send().await.expect("metrics");
    assert_eq!(res.status().as_u16(), 200);

    let res = http.get(format!("http://{ops_addr}/metrics")).send().await.expect("metrics");
    assert_eq!(res.status().as_u16(), 200);
    let text = res.text().await.expect("text");
    assert!(text.contains("tailor_http_requests_total") && text.contains("route=\"/v1/track\""), "{text}");
    assert!(text.contains("tailor_http_connections_open"), "connection gauge: {text}");

    for addr in [public_addr, ops_addr] {
        let res = http.get(format!("http://{addr}/healthz")).send().await.expect("healthz");
        assert_eq!(res.status().as_u16(), 200, "{addr}");
    }
    let res = http.get(format!("http://{ops_addr}/v1/stats")).bearer_auth(&admin).send().await.expect("stats");
    assert_eq!(res.status().as_u16(), 404, "the API is not served on the operations port");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    server.abort();
}
