//! Connection handling over real sockets: slowloris, per-address and overall connection caps,
//! header, idle and body timeouts, graceful shutdown. Clients bind to 127.0.0.1 or 127.0.0.2
//! (Linux routes all of 127.0.0.0/8 to loopback) to act as two addresses.
//!
//! SQLite only: these test the accept loop (sockets, timeouts, caps), which is the same whatever
//! stores the data; the HTTP suite that touches storage runs on both backends.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tailor_server::{RateLimits, ServerLimits};
use tailor_testkit::{TestBackend, TestEngine, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: &str = "127.0.0.1";
const VISITOR: &str = "127.0.0.2";

async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().expect("ip"), 0))?;
    socket.connect(to).await
}

/// Sends a GET on `stream` (kept alive) and reads the whole answer; returns its status line and body.
async fn get(stream: &mut TcpStream, path: &str) -> std::io::Result<(String, String)> {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes()).await?;
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.lines().next().unwrap_or("").to_string();
                return Ok((status, body[..len].to_string()));
            }
        }
    }
}

/// Waits (at most `within`) for the server to close `stream`; returns what it sent before.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some(got)
}

/// Whether the server has closed (or refused) `stream` already, without waiting.
fn is_closed(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    !matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// The soft limit on open files of this process.
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[(v.len() * 99).div_ceil(100) - 1]
}

struct Round {
    attackers: usize,
    held: usize,
    opened_in: Duration,
    visitor_p99: Duration,
    visitor_max: Duration,
}

/// Opens `n` slowloris connections from ATTACKER (one header line, then nothing), then times
/// 200 requests from VISITOR, each on a new connection. Returns what the server held.
async fn slowloris_round(s: &TestServer, n: usize) -> (Round, Vec<TcpStream>) {
    let start = Instant::now();
    let mut attackers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = connect_from(ATTACKER, s.addr).await.expect("attacker connects");
        // A refused connection may already be closed: the write may fail, which is fine.
        let _ = c.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        attackers.push(c);
    }
    let opened_in = start.elapsed();
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let mut c = connect_from(VISITOR, s.addr).await.expect("visitor connects");
        let (status, _) = get(&mut c, "/healthz").await.expect("visitor answered");
        times.push(t.elapsed());
        assert!(status.contains("200"), "{status}");
    }
    let held = attackers.iter().filter(|c| !is_closed(c)).count();
    let visitor_max = times.iter().max().copied().unwrap_or_default();
    (Round { attackers: n, held, opened_in, visitor_p99: p99(times), visitor_max }, attackers)
}

/// The acceptance test of issue 11: 5,000 idle half-open connections from one address while a
/// second address's requests keep p99 ≤ 50 ms; the per-address cap refuses all but 256 of them
/// at once, and without the cap the header timeout closes every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_from_one_address_does_not_slow_another_and_is_cut_off() {
    // Each held connection costs two descriptors here (client and server side).
    let fds = open_file_limit();
    let n = 5_000.min(fds.saturating_sub(400) / 2);
    if n < 5_000 {
        eprintln!("open-file limit {fds}: running with {n} connections instead of 5,000 (raise `ulimit -n` to 10400)");
    }
    let header_timeout = 4.0;

    // 1. The default per-address cap: the server holds 256 and refuses the rest at once.
    let limits =
        ServerLimits { header_read_timeout_secs: header_timeout, rate: RateLimits::off(), ..Default::default() };
    let s = TestServer::start_with(limits.clone()).await;
    let (round, attackers) = slowloris_round(&s, n).await;
    eprintln!(
        "capped: {} slowloris connections opened in {:?}, {} held; visitor p99 {:?}, max {:?}",
        round.attackers, round.opened_in, round.held, round.visitor_p99, round.visitor_max
    );
    assert!(round.visitor_p99 <= Duration::from_millis(50), "visitor p99 {:?}", round.visitor_p99);
    assert!(round.held <= limits.max_connections_per_ip, "{} held beyond the per-address cap", round.held);
    drop(attackers);
    drop(s);

    // 2. No per-address cap: the server holds all of them, stays fast, and the header timeout
    //    closes each one.
    //    The timeout is longer here than above so that opening 5,000 connections on a loaded
    //    machine (seconds) cannot outlast it before they are counted.
    let header_timeout = 15.0;
    let limits = ServerLimits { max_connections_per_ip: 100_000, header_read_timeout_secs: header_timeout, ..limits };
    let s = TestServer::start_with(limits).await;
    let (round, mut attackers) = slowloris_round(&s, n).await;
    eprintln!(
        "uncapped: {} slowloris connections opened in {:?}, {} held; visitor p99 {:?}, max {:?}",
        round.attackers, round.opened_in, round.held, round.visitor_p99, round.visitor_max
    );
    assert!(round.visitor_p99 <= Duration::from_millis(50), "visitor p99 {:?}", round.visitor_p99);
    assert_eq!(round.held, n, "every connection is held until its header timeout");
    let waited = Instant::now();
    for c in &mut attackers {
        let within = Duration::from_secs_f64(header_timeout + 10.0).saturating_sub(waited.elapsed());
        assert!(closed_by_server(c, within).await.is_some(), "a slowloris connection outlived the header timeout");
    }
    eprintln!("all {n} closed by the header timeout {:?} after they were opened", waited.elapsed() + round.opened_in);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_cap_are_refused_at_once_while_other_addresses_are_served() {
    let limits = ServerLimits { max_connections_per_ip: 4, rate: RateLimits::off(), ..Default::default() };
    let s = TestServer::start_with(limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = connect_from(ATTACKER, s.addr).await.expect("connect");
        assert!(get(&mut c, "/healthz").await.expect("served").0.contains("200"));
        held.push(c);
    }
    let mut fifth = connect_from(ATTACKER, s.addr).await.expect("connect");
    let answer = closed_by_server(&mut fifth, Duration::from_secs(5)).await.expect("refused at once");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"overloaded\"") && answer.contains("application/problem+json"), "{answer}");
    let mut other = connect_from(VISITOR, s.addr).await.expect("connect");
    assert!(get(&mut other, "/healthz").await.expect("served").0.contains("200"));
    // A place freed is a place again.
    drop(held.pop());
    // Wait for the event (the server saw the close), bounded only against a hang.
    let deadline = Instant::now() + tailor_testkit::EVENT_WAIT;
    loop {
        let mut c = connect_from(ATTACKER, s.addr).await.expect("connect");
        // Until the server has seen the close, the new connection is refused with a 503.
        if get(&mut c, "/healthz").await.is_ok_and(|(status, _)| status.contains("200")) {
            break;
        }
        assert!(Instant::now() < deadline, "the freed place was not given back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_overall_cap_new_connections_are_refused_with_503() {
    let limits = ServerLimits { max_connections: 3, rate: RateLimits::off(), ..Default::default() };
    let s = TestServer::start_with(limits).await;
    let mut held = Vec::new();
    for from in [ATTACKER, ATTACKER, VISITOR] {
        let mut c = connect_from(from, s.addr).await.expect("connect");
        assert!(get(&mut c, "/healthz").await.expect("served").0.contains("200"));
        held.push(c);
    }
    let mut late = connect_from(VISITOR, s.addr).await.expect("connect");
    let answer = closed_by_server(&mut late, Duration::from_secs(5)).await.expect("refused at once");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_outlives_the_header_timeout_and_closes_when_idle() {
    let limits = ServerLimits {
        header_read_timeout_secs: 1.0,
        idle_timeout_secs: 3.0,
        rate: RateLimits::off(),
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let mut keep = connect_from(VISITOR, s.addr).await.expect("connect");
    assert!(get(&mut keep, "/healthz").await.expect("served").0.contains("200"));
    let idle_from = Instant::now();
    let mut slow = connect_from(ATTACKER, s.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n").await.expect("write");
    let sent = closed_by_server(&mut slow, Duration::from_secs(10)).await.expect("closed by the header timeout");
    assert!(sent.is_empty(), "no answer to an incomplete head");
    assert!(idle_from.elapsed() > Duration::from_secs(1));
    // Idle for longer than the header timeout, the keep-alive connection still serves.
    assert!(get(&mut keep, "/healthz").await.expect("still open").0.contains("200"));
    let idle_from = Instant::now();
    assert!(closed_by_server(&mut keep, Duration::from_secs(10)).await.is_some(), "idle connection closed");
    let idle = idle_from.elapsed();
    assert!(idle >= Duration::from_millis(2_500), "closed after {idle:?}, before the idle timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_closes_the_connection() {
    let limits = ServerLimits {
        header_read_timeout_secs: 20.0,
        body_read_timeout_secs: 1.0,
        rate: RateLimits::off(),
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let mut c = connect_from(ATTACKER, s.addr).await.expect("connect");
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"userId\":",
        s.write_key
    );
    c.write_all(head.as_bytes()).await.expect("write");
    // The body timeout is 1 s; 10 s only bounds the wait for the close.
    assert!(closed_by_server(&mut c, Duration::from_secs(10)).await.is_some(), "the stalled body was cut off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    let t = TestEngine::new(TestBackend::Sqlite).await.expect("engine");
    let key = t.engine.create_key(tailor_engine::Scope::Write, "t").await.expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tailor_server::serve_router_with(
        listener,
        tailor_server::app(t.engine.clone()),
        ServerLimits::without_rate_limits(),
        async move {
            let _ = stopped.await;
        },
    ));
    let body = br#"{"userId":"u1","event":"Product Viewed","messageId":"in-flight"}"#;
    let mut c = connect_from(VISITOR, addr).await.expect("connect");
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.expect("head");
    // The server asks for the body once the handler reads it: the request is in flight.
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).await.expect("100 Continue");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"));
    stop.send(()).expect("stop");
    let deadline = Instant::now() + tailor_testkit::EVENT_WAIT;
    while connect_from(ATTACKER, addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after the shutdown signal");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.write_all(body).await.expect("body");
    let (status, answer) = read_response(&mut c).await.expect("answered");
    assert!(status.contains("200"), "{status} {answer}");
    tokio::time::timeout(tailor_testkit::EVENT_WAIT, server).await.expect("drained").expect("join").expect("serve");
    assert_eq!(t.engine.log().count().await.expect("count"), 1, "the in-flight event was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_500_problem_json_and_the_connection_goes_on() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = tailor_server::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                if std::hint::black_box(true) {
                    panic!("a bug in a handler");
                }
                "unreachable"
            }),
        )
        .route("/ok", axum::routing::get(|| async { "ok" }));
    let server = tokio::spawn(tailor_server::serve_router(listener, app));
    let mut c = connect_from(VISITOR, addr).await.expect("connect");
    let (status, body) = get(&mut c, "/boom").await.expect("answered, not dropped");
    assert!(status.contains("500"), "{status}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("problem json");
    assert_eq!(body["code"], "internal");
    assert!(!body["detail"].as_str().unwrap_or("").contains("a bug"), "the panic text stays in the log");
    assert!(get(&mut c, "/ok").await.expect("same connection").0.contains("200"));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_peer_address() {
    use axum::extract::ConnectInfo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = tailor_server::Router::new().route(
        "/whoami",
        axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let server = tokio::spawn(tailor_server::serve_router(listener, app));
    let mut c = connect_from(VISITOR, addr).await.expect("connect");
    let (status, body) = get(&mut c, "/whoami").await.expect("answered");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, VISITOR);
    server.abort();
}
