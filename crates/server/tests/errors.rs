//! One error format over a real socket: every 4xx and 5xx the server can give — unmatched routes,
//! wrong methods, extractor rejections, bodies over the limit, trailing data, compressed bodies —
//! is RFC 9457 problem+json with a stable `code` and the `field` at fault.

use std::io::Write;

use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use serde_json::{json, Value};
use tailor_testkit::TestServer;

/// Checks that `res` is problem+json with `status` and `code` (and `field` when given); returns it.
async fn problem(res: reqwest::Response, status: u16, code: &str, field: Option<&str>) -> Value {
    assert_eq!(res.status().as_u16(), status, "{:?}", res.url().path());
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = res.text().await.expect("text");
    assert_eq!(ct, "application/problem+json", "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("/docs/errors#{code}"), "{body}");
    assert!(!body["title"].as_str().unwrap_or("").is_empty(), "{body}");
    assert!(!body["detail"].as_str().unwrap_or("").is_empty(), "{body}");
    if let Some(f) = field {
        assert_eq!(body["field"], f, "{body}");
    }
    body
}

async fn routing_and_extractor_errors_are_problem_json_naming_the_field(s: TestServer) {
    let read = |path: &str| s.http.get(s.url(path)).bearer_auth(&s.read_key);
    // Unmatched routes were an empty 404.
    let body = problem(read("/v1/nothing-here").send().await.expect("send"), 404, "not_found", None).await;
    assert!(body["detail"].as_str().unwrap_or("").contains("/v1/nothing-here"));
    problem(s.http.get(s.url("/no/such/page")).send().await.expect("send"), 404, "not_found", None).await;
    // A known route with another method.
    let res = s.http.delete(s.url("/v1/stats")).bearer_auth(&s.admin_key).send().await.expect("send");
    let allow = res.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(allow.contains("GET"), "405 keeps its Allow header: {allow}");
    let body = problem(res, 405, "method_not_allowed", None).await;
    assert!(body["detail"].as_str().unwrap_or("").contains("DELETE"), "{body}");
    // Query and path rejections were text/plain.
    problem(
        read("/v1/profiles/p1/timeline?limit=abc").send().await.expect("send"),
        400,
        "invalid_field",
        Some("limit"),
    )
    .await;
    problem(read("/v1/profiles/%FF%FE/timeline").send().await.expect("send"), 400, "invalid_field", Some("id")).await;
    // A body over the general limit, on an admin route that reads raw bytes.
    let huge = vec![b' '; 4 * 1024 * 1024 + 10 * 1024];
    let res = s
        .http
        .put(s.url("/v1/recommendations/rules"))
        .bearer_auth(&s.admin_key)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("send");
    problem(res, 413, "payload_too_large", Some("body")).await;
}

async fn trailing_data_after_json_is_refused_everywhere(s: TestServer) {
    let send = |method: reqwest::Method, path: &str, key: &str, body: &str| {
        s.http
            .request(method, s.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let cases = [
        (reqwest::Method::POST, "/v1/track", s.write_key.clone(), r#"{"userId":"u","event":"E"} {"x":1}"#),
        (reqwest::Method::POST, "/v1/batch", s.write_key.clone(), r#"{"batch":[]}garbage"#),
        (reqwest::Method::PUT, "/v1/recommendations/rules", s.admin_key.clone(), r#"{} ]"#),
        (reqwest::Method::POST, "/v1/loyalty/p1/adjust", s.admin_key.clone(), r#"{"points":5,"reason":"r"}x"#),
        (reqwest::Method::POST, "/v1/inventory/adjustments", s.admin_key.clone(), r#"{"sku":"A"} 1"#),
    ];
    for (method, path, key, body) in cases {
        let res = send(method, path, &key, body).send().await.expect("send");
        let status = res.status().as_u16();
        assert_eq!(status, 400, "{path} accepted trailing data");
        let p = problem(res, 400, "malformed_json", Some("body")).await;
        if path.starts_with("/v1/track") || path.starts_with("/v1/batch") {
            assert_eq!(p["message"], p["detail"], "intake errors carry message");
        }
    }
    assert_eq!(s.engine.log().count().await.expect("count"), 0, "nothing was written");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

async fn post_encoded(s: &TestServer, path: &str, encoding: &str, body: Vec<u8>) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .basic_auth(&s.write_key, Some(""))
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .expect("send")
}

async fn intake_takes_gzip_and_deflate_and_refuses_other_encodings_with_415(s: TestServer) {
    let batch = serde_json::to_vec(&json!({"batch": [
        {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "gz-1"},
        {"type": "identify", "userId": "u1", "traits": {"email": "gz@example.com"}, "messageId": "gz-2"}
    ]}))
    .expect("json");
    let res = post_encoded(&s, "/v1/batch", "gzip", gzip(&batch)).await;
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);
    let track = serde_json::to_vec(&json!({"userId": "u2", "event": "E", "messageId": "df-1"})).expect("json");
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&track).expect("zlib");
    let res = post_encoded(&s, "/v1/track", "deflate", zlib.finish().expect("zlib")).await;
    assert_eq!(res.status().as_u16(), 200);
    let track = serde_json::to_vec(&json!({"userId": "u3", "event": "E", "messageId": "df-2"})).expect("json");
    let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
    raw.write_all(&track).expect("deflate");
    let res = post_encoded(&s, "/v1/track", "deflate", raw.finish().expect("deflate")).await;
    assert_eq!(res.status().as_u16(), 200, "raw deflate, as some clients send it");
    assert_eq!(s.engine.log().count().await.expect("count"), 4);

    // br was read as plain bytes; now any coding we do not decode is a 415 naming the header.
    let p = problem(
        post_encoded(&s, "/v1/track", "br", b"\x1b\x03\x00".to_vec()).await,
        415,
        "unsupported_media_type",
        Some("Content-Encoding"),
    )
    .await;
    assert_eq!(p["message"], p["detail"], "intake errors carry message: {p}");
    // A body that is not what its header says.
    let p = problem(
        post_encoded(&s, "/v1/track", "gzip", b"{\"userId\":\"u\"}".to_vec()).await,
        400,
        "invalid_field",
        Some("body"),
    )
    .await;
    assert!(p["message"].is_string());
    assert_eq!(s.engine.log().count().await.expect("count"), 4);
}

async fn size_limits_apply_after_decompression_and_a_bomb_is_stopped_early(s: TestServer) {
    // One event of 40 KB of properties compresses to almost nothing, yet is over 32 KB.
    let big = serde_json::to_vec(&json!({"userId": "u", "event": "E", "properties": {"pad": "a".repeat(40 * 1024)}}))
        .expect("json");
    let compressed = gzip(&big);
    assert!(compressed.len() < 1024);
    let p =
        problem(post_encoded(&s, "/v1/track", "gzip", compressed).await, 413, "payload_too_large", Some("body")).await;
    assert_eq!(p["message"], p["detail"]);
    // 1 GB of spaces in about 1 MB of gzip: refused once 500 KB came out.
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&chunk).expect("gzip");
    }
    let bomb = e.finish().expect("gzip");
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    // (The unit test of `encoding` shows decoding stops at the limit rather than after the end.)
    problem(post_encoded(&s, "/v1/batch", "gzip", bomb).await, 413, "payload_too_large", Some("body")).await;
    assert_eq!(s.engine.log().count().await.expect("count"), 0);
}

tailor_testkit::http_both_backends!(
    routing_and_extractor_errors_are_problem_json_naming_the_field,
    trailing_data_after_json_is_refused_everywhere,
    intake_takes_gzip_and_deflate_and_refuses_other_encodings_with_415,
    size_limits_apply_after_decompression_and_a_bomb_is_stopped_early,
);
