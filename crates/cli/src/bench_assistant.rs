//! `tailor bench assistant`: assistant reply latency under an open-loop load (each message sent
//! when due, latency counted from then) spread over concurrent conversations of demo customers,
//! each turn understood, decided and answered from the engine (search, stock, prices, points,
//! orders, the knowledge base), without a generator; against `GET /healthz` at the same rate in
//! the same run.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tailor_engine::{Engine, EngineConfig, Scope, SearchRequest, Storage};
use tailor_store::Row;

use crate::bench_serve::{load, Latencies};

/// Posts `(path, body)` round-robin at `rate` per second for `warmup + seconds`; keeps the
/// latencies after the warm-up. Messages to one conversation queue behind each other, as a
/// shopper's would.
async fn post_load(
    base: &str,
    key: &str,
    requests: &[(String, String)],
    rate: u32,
    seconds: u64,
    warmup: u64,
) -> Result<Latencies> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let results: Arc<Mutex<(Vec<Duration>, usize)>> = Arc::new(Mutex::new((Vec::new(), 0)));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = u64::from(rate) * (seconds + warmup);
    let skip = u64::from(rate) * warmup;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, results) = (client.clone(), results.clone());
        let (path, body) = requests[n as usize % requests.len()].clone();
        let url = format!("{base}{path}");
        let key = key.to_string();
        tasks.push(tokio::spawn(async move {
            let ok = match client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            let took = due.elapsed();
            if n >= skip {
                let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
                if ok {
                    g.0.push(took);
                } else {
                    g.1 += 1;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().saturating_sub(Duration::from_secs(warmup));
    let (mut sorted, errors) = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    sorted.sort_unstable();
    Ok(Latencies::new(sorted, errors, elapsed))
}

/// Long on purpose: a benchmark script (set-up, baseline, measured run, report) read top to bottom.
pub async fn assistant(data_dir: PathBuf, rate: u32, seconds: u64, conversations: usize) -> Result<()> {
    if rate == 0 || conversations == 0 {
        bail!("--rate and --conversations must be at least 1");
    }
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(data_dir.clone()),
        background: false,
        retrain_every: None,
    })
    .await
    .with_context(|| format!("cannot open {}", data_dir.display()))?;
    let db = engine.db();
    let users: Vec<String> = sqlx::query(
        "SELECT DISTINCT i.value FROM identities i JOIN orders o ON o.profile_id = i.profile_id \
         WHERE i.kind = 'user_id' ORDER BY i.value LIMIT 500",
    )
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let products: Vec<String> = sqlx::query(
        "SELECT p.title FROM order_lines l JOIN products p ON p.id = l.product_id GROUP BY p.title \
         ORDER BY COUNT(*) DESC LIMIT 200",
    )
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let stores: Vec<String> = sqlx::query("SELECT id FROM locations WHERE kind = 'store' ORDER BY id LIMIT 50")
        .fetch_all(db.reader())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if users.is_empty() || products.is_empty() || stores.is_empty() {
        bail!("{} has no customers, orders or stores: run `tailor demo` first", data_dir.display());
    }
    // Warm the understanding model and the search index (brought up to the catalog on first
    // use) before the clock starts.
    engine.assistant_understanding().await?;
    engine.search(&SearchRequest { q: products[0].clone(), limit: 5, ..SearchRequest::default() }).await?;
    let key = engine.create_key(Scope::Source, "bench assistant").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(tailor_server::serve_router(listener, tailor_server::app(engine.clone())));
    let http = reqwest::Client::new();
    let mut ids = Vec::with_capacity(conversations);
    for i in 0..conversations {
        let body = json!({"userId": users[i % users.len()], "storeId": stores[i % stores.len()], "channel": "web"});
        let res = http.post(format!("{base}/v1/conversations")).bearer_auth(&key).json(&body).send().await?;
        if !res.status().is_success() {
            bail!("starting a conversation failed: {}", res.text().await.unwrap_or_default());
        }
        let v: serde_json::Value = res.json().await?;
        ids.push(v["conversation"]["id"].as_str().unwrap_or_default().to_string());
    }
    // A shopper's turns: stock, price, the list and a follow-up, points, orders, a policy.
    let script = |i: usize| -> Vec<String> {
        let p = &products[(i * 7919) % products.len()];
        let s = &stores[i % stores.len()];
        vec![
            format!("do you have {p} at store {s}"),
            format!("how much is {p}"),
            format!("I'm looking for {}", p.split_whitespace().last().unwrap_or("milk")),
            "the second one".into(),
            "how many points do I have".into(),
            "where is my order".into(),
            "what is your return policy".into(),
            "hi".into(),
        ]
    };
    let mut requests = Vec::new();
    for turn in 0..8 {
        for (i, id) in ids.iter().enumerate() {
            let text = &script(i)[turn];
            requests.push((format!("/v1/conversations/{id}/messages"), json!({"text": text}).to_string()));
        }
    }
    println!(
        "assistant benchmark: {conversations} conversations of demo customers, {rate} messages/s for {seconds} s after \
         5 s warm-up, no generator (templates), understanding: {}",
        if engine.assistant_understanding().await?.model().uses_encoder() { "n-grams + MiniLM" } else { "n-grams" }
    );
    let health = load(&base, &key, &["/healthz".to_string()], rate, seconds.min(20), 2).await?;
    let replies = post_load(&base, &key, &requests, rate, seconds, 5).await?;
    health.print("GET /healthz");
    replies.print("assistant reply");
    println!(
        "p95 assistant reply {:.2} ms (budget 50 ms); p95 ratio reply / healthz = {:.2} ({:.2} ms vs {:.2} ms)",
        replies.pct(95.0),
        replies.pct(95.0) / health.pct(95.0),
        replies.pct(95.0),
        health.pct(95.0)
    );
    server.abort();
    engine.close().await;
    Ok(())
}
