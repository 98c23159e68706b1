//! `tailor bench intake`: events per second through `POST /v1/batch` into the embedded store,
//! against a raw batched SQLite insert of the same rows on the same disk, in the same run.
//! `tailor bench assistant`: assistant reply latency over concurrent conversations, against
//! `/healthz` at the same rate, in the same run.
//! `tailor bench journeys`: see `bench_journeys`.
//! `tailor bench serve`: recommendation latency at a fixed request rate with business rules on,
//! against `/healthz` at the same rate (the HTTP and load-tool floor), in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use tailor_engine::{Engine, EngineConfig, Scope, Storage};

/// The benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Intake throughput vs raw batched SQLite inserts.
    Intake {
        /// Events to send.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Events per batch request.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Directory for both databases (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also run the profile projection while ingesting.
        #[arg(long)]
        with_projection: bool,
    },
    /// Reservations per second from concurrent clients, and 20-SKU availability latency.
    Inventory {
        /// Reservations to make.
        #[arg(long, default_value_t = 50_000)]
        reservations: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 200)]
        clients: usize,
        /// SKUs stocked at each of 10 stores.
        #[arg(long, default_value_t = 1000)]
        skus: usize,
        /// Directory for both databases (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Price quote latency at a fixed rate (open loop) with promotions and guardrails on.
    Prices {
        /// A data directory with products and customers, e.g. the demo's.
        #[arg(long, default_value = "./tailor-data")]
        data_dir: PathBuf,
        /// Requests per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds of measured load.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Assistant reply latency at a fixed message rate (open loop) over concurrent conversations.
    Assistant {
        /// A data directory with customers, orders, products and stores, e.g. the demo's.
        #[arg(long, default_value = "./tailor-data")]
        data_dir: PathBuf,
        /// Messages per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Seconds of measured load (after 5 s of warm-up).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Concurrent conversations.
        #[arg(long, default_value_t = 50)]
        conversations: usize,
    },
    /// Journey messages decided, composed, rendered and handed to an SMTP server per second
    /// (vs raw sends to the same server), and the lateness of due steps.
    Journeys {
        /// Customers in the journey.
        #[arg(long, default_value_t = 100_000)]
        customers: usize,
        /// Second e-mails falling due per second in the lateness run.
        #[arg(long, default_value_t = 2000)]
        rate: u32,
        /// Directory for the store (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Recommendation latency at a fixed rate (open loop) with business rules on.
    Serve {
        /// A data directory with a trained model, e.g. the demo's.
        #[arg(long, default_value = "./tailor-data")]
        data_dir: PathBuf,
        /// Requests per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds of measured load (after 5 s of warm-up).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Serve { data_dir, rate, seconds } => crate::bench_serve::serve(data_dir, rate, seconds).await,
        BenchCommand::Assistant { data_dir, rate, seconds, conversations } => {
            crate::bench_assistant::assistant(data_dir, rate, seconds, conversations).await
        }
        BenchCommand::Prices { data_dir, rate, seconds } => crate::bench_prices::prices(data_dir, rate, seconds).await,
        BenchCommand::Inventory { reservations, clients, skus, dir } => {
            crate::bench_inventory::inventory(reservations, clients, skus, dir).await
        }
        BenchCommand::Journeys { customers, rate, dir } => crate::bench_journeys::journeys(customers, rate, dir).await,
        BenchCommand::Intake { events, batch, clients, dir, with_projection } => {
            intake(events, batch, clients, dir, with_projection).await
        }
    }
}

fn sample_event(i: usize) -> Value {
    let user = i % 5000;
    json!({
        "type": "track",
        "event": "Product Viewed",
        "messageId": format!("bench-{i:09}"),
        "anonymousId": format!("anon-{user:06}"),
        "userId": if user.is_multiple_of(3) { Value::String(format!("user-{user}")) } else { Value::Null },
        "timestamp": "2026-11-01T10:00:00.000Z",
        "properties": {"product_id": format!("{}", 800_000 + (i * 7919) % 90_000), "price": 3.49, "category": "GROCERY", "currency": "USD"},
        "context": {"channel": "web", "page": {"path": "/p/123", "referrer": "https://search.example/"},
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) bench", "ip": "127.0.0.1", "library": {"name": "analytics.js", "version": "5.2.0"}}
    })
}

/// Long on purpose: a benchmark script (set-up, baseline, measured run, report) read top to bottom.
async fn intake(n: usize, batch: usize, clients: usize, dir: Option<PathBuf>, with_projection: bool) -> Result<()> {
    let tmp = tempfile::tempdir_in(dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let root = tmp.path().to_path_buf();
    println!("intake benchmark: {n} events, {batch} per batch, {clients} clients, databases in {}", root.display());

    // The batches, serialized once up front so the clients measure the server, not themselves.
    let bodies: Vec<Vec<u8>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|c| serde_json::to_vec(&json!({"batch": c.iter().map(|i| sample_event(*i)).collect::<Vec<_>>()})))
        .collect::<Result<_, _>>()?;
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "  payload: {:.1} MB in {} requests ({:.0} KB each)",
        bytes as f64 / 1e6,
        bodies.len(),
        bytes as f64 / bodies.len() as f64 / 1024.0
    );

    // Tailor: a real server on a real socket, the embedded store with synchronous=FULL.
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(root.join("tailor")),
        background: with_projection,
        retrain_every: None,
    })
    .await?;
    let key = engine.create_key(Scope::Write, "bench").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(tailor_server::serve_router(listener, tailor_server::app(engine.clone())));
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, bodies, next, key) = (client.clone(), bodies.clone(), next.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let res = client
                    .post(format!("http://{addr}/v1/batch"))
                    .basic_auth(&key, Some(""))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(res.status().is_success(), "batch {i} answered {}", res.status());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let tailor_secs = started.elapsed().as_secs_f64();
    let stored = engine.log().count().await?;
    anyhow::ensure!(stored as usize == n, "expected {n} events stored, found {stored}");
    server.abort();
    engine.close().await;

    // Baseline: the same rows inserted straight into SQLite on the same disk with the same
    // durability (WAL, synchronous=FULL), one transaction per batch, multi-row INSERTs of the
    // size sqlx binds fastest (the same as the log uses), no HTTP, no JSON parsing, no validation.
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let e = sample_event(i);
            (format!("bench-{i:09}"), e["anonymousId"].as_str().unwrap_or("").to_string(), e.to_string())
        })
        .collect();
    let url = format!("sqlite://{}?mode=rwc", root.join("baseline.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.context("baseline database")?;
    sqlx::raw_sql("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL").execute(&pool).await?;
    sqlx::query(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, \
         name TEXT, user_id TEXT, anonymous_id TEXT, channel TEXT NOT NULL, ts BIGINT NOT NULL, received_at BIGINT NOT NULL, body TEXT NOT NULL, profile_id TEXT)",
    )
    .execute(&pool)
    .await?;
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        let mut tx = pool.begin().await?;
        for part in chunk.chunks(tailor_stream::ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO events (message_id, kind, name, anonymous_id, channel, ts, received_at, body) VALUES ",
            );
            for i in 0..part.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            let mut q = sqlx::query(&sql);
            for (mid, anon, body) in part {
                q = q
                    .bind(mid.as_str())
                    .bind("track")
                    .bind("Product Viewed")
                    .bind(anon.as_str())
                    .bind("web")
                    .bind(0i64)
                    .bind(0i64)
                    .bind(body.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    pool.close().await;

    let tailor_rate = n as f64 / tailor_secs;
    let raw_rate = n as f64 / raw_secs;
    println!("  tailor  POST /v1/batch -> embedded store: {tailor_rate:>10.0} events/s ({tailor_secs:.2} s)");
    println!("  raw     batched SQLite insert (baseline): {raw_rate:>10.0} events/s ({raw_secs:.2} s)");
    println!("  ratio   tailor / raw = {:.2}", tailor_rate / raw_rate);
    Ok(())
}
