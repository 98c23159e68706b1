//! Request rate limits over real sockets: failed authentications, per address, per key. Clients
//! bind to 127.0.0.1 or 127.0.0.2 to act as two addresses.
//!
//! SQLite only: the limits live in the server's memory, in front of any storage.

use std::net::IpAddr;

use serde_json::{json, Value};
use tailor_server::{Bucket, RateLimits, ServerLimits};
use tailor_testkit::TestServer;

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().expect("ip")).build().expect("client")
}

async fn answer(res: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{status} {body}");
    }
    (status, retry, body)
}

/// Issue 11 finding 7: 5,000 bad-key requests in 1.3 s got no 429. Now an address that keeps
/// failing authentication is cut off after the burst, concurrent tries included, with 429 and
/// `Retry-After`; a good client elsewhere is unaffected, and so is a known good key from the
/// attacking address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_keys_gets_429_with_retry_after_and_a_good_client_is_unaffected() {
    // Only the failed-authentication limit, so that nothing else answers 429.
    let limits =
        ServerLimits { rate: RateLimits { per_ip: None, per_key: None, ..Default::default() }, ..Default::default() };
    let s = TestServer::start_with(limits).await;
    let burst = RateLimits::default().failed_auth_per_ip.expect("on").burst as usize;
    let attacker = client_from("127.0.0.1");
    let visitor = client_from("127.0.0.2");
    // A good key used from the attacking address before the attack is known to be valid.
    let (status, _, _) =
        answer(attacker.get(s.url("/v1/stats")).bearer_auth(&s.read_key).send().await.expect("send")).await;
    assert_eq!(status, 200);

    // 500 guesses, 50 at a time (the address may hold 256 connections).
    let mut answers = Vec::new();
    for round in 0..10 {
        let mut tries = Vec::new();
        for i in 0..50 {
            let req = attacker
                .post(s.url("/v1/track"))
                .basic_auth(format!("tk_write_guess_{round}_{i}"), Some(""))
                .json(&json!({"userId": "u", "event": "E"}));
            tries.push(tokio::spawn(async move { answer(req.send().await.expect("send")).await }));
        }
        for t in tries {
            answers.push(t.await.expect("join"));
        }
    }
    let (mut unauthorized, mut limited) = (0, 0);
    let mut example = Value::Null;
    for (status, retry, body) in answers {
        match status {
            401 => unauthorized += 1,
            429 => {
                limited += 1;
                let secs: u64 = retry.expect("Retry-After").parse().expect("seconds");
                assert!(secs >= 1);
                example = body;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(unauthorized <= burst, "{unauthorized} bad keys were checked; the burst is {burst}");
    assert_eq!(unauthorized + limited, 500);
    assert_eq!(example["code"], "rate_limited");
    assert_eq!(example["status"], 429);
    assert_eq!(example["message"], example["detail"], "intake errors carry `message`: {example}");

    // Another address is not affected, nor a key already known to be good.
    for _ in 0..50 {
        let (status, _, body) = answer(
            visitor
                .post(s.url("/v1/track"))
                .basic_auth(&s.write_key, Some(""))
                .json(&json!({"userId": "u", "event": "E"}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, _) =
        answer(attacker.get(s.url("/v1/stats")).bearer_auth(&s.read_key).send().await.expect("send")).await;
    assert_eq!(status, 200, "a known good key from the attacking address still works");
    // A new bad key from the attacking address is still refused without being checked.
    let (status, _, _) =
        answer(attacker.get(s.url("/v1/stats")).bearer_auth("tk_read_guess").send().await.expect("send")).await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_per_address_limit_get_429_and_other_addresses_go_on() {
    let limits = ServerLimits {
        rate: RateLimits { per_ip: Some(Bucket { burst: 10.0, per_second: 0.5 }), per_key: None, ..RateLimits::off() },
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let (busy, calm) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(answer(busy.get(s.url("/healthz")).send().await.expect("send")).await);
    }
    assert!(statuses[..10].iter().all(|(s, _, _)| *s == 200));
    let (status, retry, body) = &statuses[11];
    assert_eq!(*status, 429, "{body}");
    assert!(matches!(retry.as_deref(), Some("1" | "2")), "one token comes back in 2 s: {retry:?}");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(answer(calm.get(s.url("/healthz")).send().await.expect("send")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_limit_gets_429_and_another_key_goes_on() {
    let limits = ServerLimits {
        rate: RateLimits { per_ip: None, per_key: Some(Bucket { burst: 5.0, per_second: 0.1 }), ..RateLimits::off() },
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let c = client_from("127.0.0.1");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(answer(c.get(s.url("/v1/stats")).bearer_auth(&s.read_key).send().await.expect("send")).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    let other = answer(c.get(s.url("/v1/stats")).bearer_auth(&s.admin_key).send().await.expect("send")).await.0;
    assert_eq!(other, 200, "another key has its own bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit_and_others_cannot_spoof_one() {
    let limits = ServerLimits {
        trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
        rate: RateLimits { per_ip: Some(Bucket { burst: 3.0, per_second: 0.1 }), per_key: None, ..RateLimits::off() },
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let (proxy, direct) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let through = |client: &str| proxy.get(s.url("/healthz")).header("x-forwarded-for", format!("{client}, 127.0.0.1"));
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(answer(through("203.0.113.7").send().await.expect("send")).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429], "one forwarded client is limited");
    assert_eq!(answer(through("203.0.113.8").send().await.expect("send")).await.0, 200, "another is not");
    // An untrusted peer's X-Forwarded-For is ignored: it is limited as itself.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let req = direct.get(s.url("/healthz")).header("x-forwarded-for", format!("198.51.100.{i}"));
        statuses.push(answer(req.send().await.expect("send")).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

/// Starts a browser conversation as `anon` from `client`; returns (status, id, token).
async fn start_chat(s: &TestServer, client: &reqwest::Client, anon: &str) -> (u16, String, String) {
    let res = client
        .post(s.url("/v1/conversations"))
        .bearer_auth(&s.write_key)
        .json(&json!({"anonymousId": anon}))
        .send()
        .await
        .expect("send");
    let (status, _, body) = answer(res).await;
    let id = body["conversation"]["id"].as_str().unwrap_or("").to_string();
    (status, id, body["token"].as_str().unwrap_or("").to_string())
}

async fn chat_message(
    s: &TestServer,
    client: &reqwest::Client,
    key: &str,
    id: &str,
    token: &str,
) -> (u16, Option<String>, Value) {
    let res = client
        .post(s.url(&format!("/v1/conversations/{id}/messages")))
        .bearer_auth(key)
        .header("X-Conversation-Token", token)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("send");
    answer(res).await
}

/// The shopper-facing chat routes take the write key, which every visitor's page holds: starts
/// and messages from browsers are limited per shopper (anonymousId) and per address, answered
/// 429 with `Retry-After`; another address goes on, and the shop's own server (a source key) is
/// limited only per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_chat_is_limited_per_shopper_and_per_address() {
    let slow = |burst| Some(Bucket { burst, per_second: 0.001 });
    let rate = RateLimits { chat_per_ip: slow(6.0), chat_per_shopper: slow(3.0), ..RateLimits::off() };
    let s = TestServer::start_with(ServerLimits { rate, ..Default::default() }).await;
    let here = client_from("127.0.0.1");
    let there = client_from("127.0.0.2");

    // anon-a: its start and two messages, then its shopper limit (address tokens used: 4).
    let (status, a, token_a) = start_chat(&s, &here, "anon-a").await;
    assert_eq!(status, 201);
    for _ in 0..2 {
        let (status, _, body) = chat_message(&s, &here, &s.write_key, &a, &token_a).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = chat_message(&s, &here, &s.write_key, &a, &token_a).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert!(body["detail"].as_str().unwrap_or("").contains("this shopper"), "{body}");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|r| r >= 1));

    // anon-b from the same address: its start and one message, then the address's limit.
    let (status, b, token_b) = start_chat(&s, &here, "anon-b").await;
    assert_eq!(status, 201);
    let (status, _, body) = chat_message(&s, &here, &s.write_key, &b, &token_b).await;
    assert_eq!(status, 200, "{body}");
    let (status, retry, body) = chat_message(&s, &here, &s.write_key, &b, &token_b).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("this address"), "{body}");
    assert!(retry.is_some());
    let (status, _, _) = start_chat(&s, &here, "anon-z").await;
    assert_eq!(status, 429, "a new anonymousId does not get around the address's limit");

    // Another address goes on; the shop's server continues anon-a's conversation.
    let (status, c, token_c) = start_chat(&s, &there, "anon-c").await;
    assert_eq!(status, 201);
    let (status, _, body) = chat_message(&s, &there, &s.write_key, &c, &token_c).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = chat_message(&s, &here, &s.source_key, &a, "").await;
    assert_eq!(status, 200, "{body}");
}
