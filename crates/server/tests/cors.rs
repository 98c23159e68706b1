//! Cross-origin access over real sockets: a shop's page may call intake and the assistant's
//! conversations from the browser (preflight answered, `Access-Control-Allow-Origin` on answers,
//! 429s included), no other route answers a browser from another origin, and with
//! `allowed_origins` set only those origins get in.
//!
//! SQLite only: the headers live in the server, in front of any storage.

use serde_json::json;
use tailor_server::{Bucket, RateLimits, ServerLimits};
use tailor_testkit::TestServer;

const SHOP: &str = "https://shop.example";

async fn preflight(s: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    s.http
        .request(reqwest::Method::OPTIONS, s.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, x-conversation-token")
        .send()
        .await
        .expect("send")
}

/// A conversation started from the shop's page with the write key.
async fn start_from_shop(s: &TestServer) -> reqwest::Response {
    s.http
        .post(s.url("/v1/conversations"))
        .header("Origin", SHOP)
        .bearer_auth(&s.write_key)
        .json(&json!({"anonymousId": "a1"}))
        .send()
        .await
        .expect("send")
}

fn allow_origin(res: &reqwest::Response) -> Option<String> {
    res.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shops_page_may_call_the_browser_routes_and_nothing_else() {
    let s = TestServer::start().await;
    for path in ["/v1/track", "/v1/batch", "/v1/conversations", "/v1/conversations/cv_1/messages"] {
        let res = preflight(&s, path, SHOP).await;
        assert_eq!(res.status().as_u16(), 204, "{path}");
        assert_eq!(allow_origin(&res).as_deref(), Some("*"), "{path}");
        let headers = res.headers()["access-control-allow-headers"].to_str().expect("text").to_string();
        assert!(headers.contains("authorization") && headers.contains("x-conversation-token"), "{headers}");
    }
    let res = start_from_shop(&s).await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(allow_origin(&res).as_deref(), Some("*"));
    // Read and admin routes never answer another origin's page.
    let res = preflight(&s, "/v1/profiles/p1", SHOP).await;
    assert_eq!(allow_origin(&res), None, "{}", res.status());
    let res =
        s.http.get(s.url("/v1/stats")).header("Origin", SHOP).bearer_auth(&s.read_key).send().await.expect("send");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(allow_origin(&res), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_allowed_origins_only_those_get_in_and_429s_reach_the_page() {
    let limits = ServerLimits {
        allowed_origins: vec![SHOP.into()],
        rate: RateLimits { chat_per_ip: Some(Bucket { burst: 1.0, per_second: 0.001 }), ..RateLimits::off() },
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let res = preflight(&s, "/v1/track", SHOP).await;
    assert_eq!((res.status().as_u16(), allow_origin(&res).as_deref()), (204, Some(SHOP)));
    let res = preflight(&s, "/v1/track", "https://evil.example").await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(allow_origin(&res), None);
    let problem: serde_json::Value = res.json().await.expect("json");
    assert!(problem["detail"].as_str().unwrap_or("").contains("allowed_origins"), "{problem}");
    for expected in [201, 429] {
        let res = start_from_shop(&s).await;
        assert_eq!(res.status().as_u16(), expected);
        assert_eq!(allow_origin(&res).as_deref(), Some(SHOP), "the page can read a {expected}");
    }
    let bad = ServerLimits { allowed_origins: vec!["shop.example/path".into()], ..Default::default() };
    assert!(bad.validate().expect_err("not an origin").contains("allowed_origins"));
}
