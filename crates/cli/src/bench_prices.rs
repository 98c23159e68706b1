//! `tailor bench prices`: an open-loop load of price quotes at a fixed rate on a data directory
//! (e.g. the demo's), with promotions and guardrails on: single SKUs on every channel, bulk
//! quotes of 20 SKUs, and quotes for customers (consent and personal offers); `/healthz` in the
//! same run is the baseline.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tailor_engine::{Discount, Engine, EngineConfig, Guardrails, Promotion, Scope, Storage};
use tailor_store::Row;

use crate::bench_serve::load;

/// Runs the benchmark.
/// Long on purpose: a benchmark script (set-up, baseline, measured run, report) read top to bottom.
pub async fn prices(data_dir: PathBuf, rate: u32, seconds: u64) -> Result<()> {
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(data_dir.clone()),
        background: false,
        retrain_every: None,
    })
    .await
    .with_context(|| format!("cannot open {}", data_dir.display()))?;
    let db = engine.db();
    let skus: Vec<(String, Option<String>)> =
        sqlx::query("SELECT id, category FROM products WHERE price_cents IS NOT NULL ORDER BY id LIMIT 5000")
            .fetch_all(db.reader())
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let users: Vec<String> = sqlx::query(
        "SELECT DISTINCT p.id FROM profiles p JOIN orders o ON o.profile_id = p.id WHERE p.merged_into IS NULL ORDER BY p.id LIMIT 1000",
    )
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if skus.len() < 100 || users.is_empty() {
        bail!("{} has too few priced products or customers: run `tailor demo` first", data_dir.display());
    }
    // Promotions on ten categories (one web-only), default guardrails.
    let categories: Vec<String> = skus.iter().filter_map(|s| s.1.clone()).take(10).collect();
    for (i, c) in categories.iter().enumerate() {
        engine
            .put_promotion(&Promotion {
                id: format!("bench-{i}"),
                name: format!("{c} deal"),
                discount: Discount::Percentage { percent: 5.0 + i as f64 },
                skus: vec![],
                categories: vec![c.clone()],
                channels: if i == 0 { vec!["web".into()] } else { vec![] },
                priority: i as i32,
                stackable: i % 2 == 0,
                starts_at: None,
                ends_at: None,
            })
            .await?;
    }
    engine
        .set_guardrails("*", &Guardrails { max_daily_change: Some(0.2), ending_cents: Some(99), ..Default::default() })
        .await?;
    let channels = ["web", "app", "store", "support"];
    let paths: Vec<String> = (0..5000)
        .map(|i| {
            let sku = &skus[(i * 7919) % skus.len()].0;
            let channel = channels[i % channels.len()];
            match i % 10 {
                0..=5 => format!("/v1/prices?sku={sku}&channel={channel}"),
                6 | 7 => {
                    let bulk: Vec<&str> =
                        (0..20).map(|j| skus[(i * 31 + j * 104_729) % skus.len()].0.as_str()).collect();
                    format!("/v1/prices?sku={}&channel={channel}", bulk.join(","))
                }
                _ => format!("/v1/prices?sku={sku}&channel={channel}&user={}", users[(i * 13) % users.len()]),
            }
        })
        .collect();
    let key = engine.create_key(Scope::Read, "bench prices").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(tailor_server::serve_router(listener, tailor_server::app(engine.clone())));
    println!(
        "prices benchmark: {} products, {} customers, {rate} req/s for {seconds} s after 5 s warm-up; 60% single SKU, \
         20% 20 SKUs, 20% for a customer; 10 promotions, default guardrails",
        skus.len(),
        users.len()
    );
    let health = load(&base, &key, &["/healthz".to_string()], rate, seconds.min(20), 2).await?;
    let quotes = load(&base, &key, &paths, rate, seconds, 5).await?;
    health.print("GET /healthz");
    quotes.print("GET /v1/prices");
    println!(
        "p99 ratio prices / healthz = {:.2} (p99 {:.2} ms vs {:.2} ms)",
        quotes.pct(99.0) / health.pct(99.0),
        quotes.pct(99.0),
        health.pct(99.0)
    );
    server.abort();
    for i in 0..categories.len() {
        engine.delete_promotion(&format!("bench-{i}")).await?;
    }
    engine.close().await;
    Ok(())
}
