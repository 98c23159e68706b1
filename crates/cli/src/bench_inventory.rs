//! `tailor bench inventory`: reservations per second from many concurrent clients on the
//! embedded store, against one durable transaction per reservation (the straightforward way)
//! on the same disk in the same run; and the latency of a 20-SKU availability query over HTTP,
//! against `/healthz` in the same run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tailor_engine::import::{ImportKind, Silent};
use tailor_engine::{Allocation, Engine, EngineConfig, EngineError, ReserveRequest, Scope, Storage};
use tailor_store::Db;

const LOCATIONS: usize = 10;
const QUERIES: usize = 2000;

/// Runs the benchmark.
/// Long on purpose: a benchmark script (set-up, baseline, measured run, report) read top to bottom.
pub async fn inventory(reservations: usize, clients: usize, skus: usize, dir: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir_in(dir.unwrap_or_else(std::env::temp_dir))?;
    let root = tmp.path().to_path_buf();
    println!(
        "inventory benchmark: {reservations} reservations from {clients} concurrent clients over {skus} SKUs × {LOCATIONS} \
         stores, databases in {}",
        root.display()
    );
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(root.join("tailor")),
        background: false,
        retrain_every: None,
    })
    .await?;
    seed(&engine, &root, skus).await?;

    // Tailor: the engine's reservation path (allocation, idempotency table, group commit).
    let bar = indicatif::ProgressBar::new(reservations as u64);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (engine, next, bar) = (engine.clone(), next.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= reservations {
                    return Ok::<_, EngineError>((ok, refused));
                }
                let req = ReserveRequest {
                    lines: vec![(format!("SKU{}", (i * 7919) % skus), 1)],
                    allocation: Allocation::MostStock,
                    allow_split: true,
                    channel: "web".into(),
                    ttl_ms: 900_000,
                };
                match engine.reserve(&req, None, b"").await {
                    Ok(_) => ok += 1,
                    Err(EngineError::InsufficientStock(_) | EngineError::Conflict(_)) => refused += 1,
                    Err(e) => return Err(e),
                }
                bar.inc(1);
            }
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await??;
        ok += o;
        refused += r;
    }
    let tailor = started.elapsed();
    bar.finish_and_clear();
    let reserved: i64 = sqlx::query_scalar("SELECT CAST(SUM(reserved) AS BIGINT) FROM inventory_stock")
        .fetch_one(engine.db().reader())
        .await?;
    anyhow::ensure!(reserved as usize == ok, "the stock says {reserved} reserved, the clients got {ok}");

    // Baseline: each reservation its own durable transaction (conditional update + record).
    let raw = Db::open_sqlite(&root.join("raw")).await?;
    raw_seed(&raw, skus).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (raw, next) = (raw.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= reservations {
                    return Ok::<_, sqlx::Error>(());
                }
                let mut tx = raw.writer().begin().await?;
                sqlx::query(
                    "UPDATE stock SET reserved = reserved + 1 WHERE sku = $1 AND location_id = $2 AND on_hand - reserved >= 1",
                )
                .bind(format!("SKU{}", (i * 7919) % skus))
                .bind(format!("L{}", i % LOCATIONS))
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO holds (id, sku, quantity) VALUES ($1, $2, 1)")
                    .bind(i as i64)
                    .bind(format!("SKU{}", (i * 7919) % skus))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let baseline = started.elapsed();
    let rate = |d: Duration| reservations as f64 / d.as_secs_f64();
    println!(
        "tailor reserve     {:>8.0} reservations/s  ({ok} held, {refused} refused, {:.2} s)",
        rate(tailor),
        tailor.as_secs_f64()
    );
    println!("raw sqlite, 1 tx/reservation {:>8.0} reservations/s  ({:.2} s)", rate(baseline), baseline.as_secs_f64());
    println!("ratio tailor / one transaction each = {:.2}", rate(tailor) / rate(baseline));

    // Availability of 20 SKUs at every store, over HTTP, one request at a time.
    let key = engine.create_key(Scope::Read, "bench inventory").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(tailor_server::serve_router(listener, tailor_server::app(engine.clone())));
    let client = reqwest::Client::new();
    let query = |n: usize| {
        let list: Vec<String> = (0..20).map(|j| format!("SKU{}", (n * 31 + j * 97) % skus)).collect();
        format!("{base}/v1/availability?sku={}", list.join(","))
    };
    let health = latencies(&client, &key, |_| format!("{base}/healthz")).await?;
    let avail = latencies(&client, &key, query).await?;
    let pct = |v: &[Duration], p: f64| v[((p / 100.0) * (v.len() - 1) as f64).round() as usize].as_secs_f64() * 1000.0;
    println!("GET /healthz               p50 {:.2} ms  p99 {:.2} ms", pct(&health, 50.0), pct(&health, 99.0));
    println!("GET /v1/availability 20 SKU p50 {:.2} ms  p99 {:.2} ms", pct(&avail, 50.0), pct(&avail, 99.0));
    server.abort();
    engine.close().await;
    raw.close().await;
    Ok(())
}

async fn latencies(client: &reqwest::Client, key: &str, url: impl Fn(usize) -> String) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(QUERIES);
    for n in 0..QUERIES + 100 {
        let started = Instant::now();
        let res = client.get(url(n)).bearer_auth(key).send().await?;
        anyhow::ensure!(res.status().is_success(), "{} answered {}", url(n), res.status());
        res.bytes().await?;
        if n >= 100 {
            out.push(started.elapsed());
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Products SKU0…, stores L0…, and plenty of stock of every SKU at every store.
async fn seed(engine: &Engine, root: &std::path::Path, skus: usize) -> Result<()> {
    let products = root.join("products.csv");
    let mut csv = String::from("id,title,price\n");
    (0..skus).for_each(|i| csv.push_str(&format!("SKU{i},Product {i},1\n")));
    std::fs::write(&products, csv)?;
    engine.import(ImportKind::Products, &products, &Silent).await?;
    let stores = root.join("stores.csv");
    let mut csv = String::from("id,name,kind,region,timezone,latitude,longitude\n");
    (0..LOCATIONS).for_each(|i| csv.push_str(&format!("L{i},Store {i},store,R,UTC,{},{}\n", 48.0 + i as f64, 11.0)));
    std::fs::write(&stores, csv)?;
    engine.import(ImportKind::Locations, &stores, &Silent).await?;
    let mut tx = engine.db().writer().begin().await?;
    for s in 0..skus {
        for l in 0..LOCATIONS {
            sqlx::query(
                "INSERT INTO inventory_stock (sku, location_id, on_hand, updated_at) VALUES ($1, $2, 1000000, 0)",
            )
            .bind(format!("SKU{s}"))
            .bind(format!("L{l}"))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn raw_seed(raw: &Db, skus: usize) -> Result<()> {
    let mut tx = raw.writer().begin().await?;
    sqlx::query(
        "CREATE TABLE stock (sku TEXT NOT NULL, location_id TEXT NOT NULL, on_hand BIGINT NOT NULL, \
         reserved BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (sku, location_id))",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("CREATE TABLE holds (id BIGINT PRIMARY KEY, sku TEXT NOT NULL, quantity BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    for s in 0..skus {
        for l in 0..LOCATIONS {
            sqlx::query("INSERT INTO stock (sku, location_id, on_hand) VALUES ($1, $2, 1000000)")
                .bind(format!("SKU{s}"))
                .bind(format!("L{l}"))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
