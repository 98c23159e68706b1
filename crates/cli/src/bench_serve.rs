//! `tailor bench serve`: an open-loop load of recommendation requests at a fixed rate (latency
//! counted from when each request was due, so a slow server cannot hide queueing), on a data
//! directory with a trained model, with merchandising rules and store availability on.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tailor_catalog::Availability;
use tailor_engine::{BoostRule, Engine, EngineConfig, Merchandising, Scope, Storage};
use tailor_store::Row;

/// Latency percentiles of one run.
pub(crate) struct Latencies {
    sorted: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Latencies {
    /// Latencies of a run: the successful ones sorted, the errors counted, the measured time.
    pub(crate) fn new(sorted: Vec<Duration>, errors: usize, elapsed: Duration) -> Self {
        Latencies { sorted, errors, elapsed }
    }

    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (self.sorted.len() - 1) as f64).round() as usize;
        self.sorted[i].as_secs_f64() * 1000.0
    }

    pub(crate) fn print(&self, label: &str) {
        println!(
            "{label:<16} {:>6} req  {:>6.0} req/s  errors {:>3}  p50 {:>6.2} ms  p90 {:>6.2}  p99 {:>6.2}  p99.9 {:>6.2}  max {:>7.2}",
            self.sorted.len() + self.errors,
            (self.sorted.len() + self.errors) as f64 / self.elapsed.as_secs_f64(),
            self.errors,
            self.pct(50.0),
            self.pct(90.0),
            self.pct(99.0),
            self.pct(99.9),
            self.pct(100.0)
        );
    }
}

/// Sends `paths` round-robin at `rate` per second for `warmup + seconds`; keeps the latencies
/// after the warm-up.
pub(crate) async fn load(
    base: &str,
    key: &str,
    paths: &[String],
    rate: u32,
    seconds: u64,
    warmup: u64,
) -> Result<Latencies> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let total = (rate as u64) * (seconds + warmup);
    let skip = (rate as u64) * warmup;
    let results: Arc<Mutex<(Vec<Duration>, usize)>> =
        Arc::new(Mutex::new((Vec::with_capacity((total - skip) as usize), 0)));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    // The load tool shares the cores with the server: URLs and the header are made once, not
    // per request, so the tool's own work stays small next to what it measures.
    let urls: Vec<reqwest::Url> = paths
        .iter()
        .map(|p| reqwest::Url::parse(&format!("{base}{p}")))
        .collect::<Result<_, _>>()
        .context("a benchmark URL does not parse")?;
    let auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))?;
    let start = Instant::now();
    let bar = indicatif::ProgressBar::new(total);
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, results) = (client.clone(), results.clone());
        let request =
            client.get(urls[n as usize % urls.len()].clone()).header(reqwest::header::AUTHORIZATION, auth.clone());
        tasks.push(tokio::spawn(async move {
            let ok = match request.send().await {
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
        if n % 256 == 255 {
            bar.inc(256);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed().saturating_sub(Duration::from_secs(warmup));
    let (mut sorted, errors) = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    sorted.sort_unstable();
    Ok(Latencies { sorted, errors, elapsed })
}

/// Long on purpose: a benchmark script (set-up, baseline, measured run, report) read top to bottom.
pub async fn serve(data_dir: PathBuf, rate: u32, seconds: u64) -> Result<()> {
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(data_dir.clone()),
        background: false,
        retrain_every: None,
    })
    .await
    .with_context(|| format!("cannot open {}", data_dir.display()))?;
    let Some(version) = engine.model_version() else {
        bail!("{} has no trained model: run `tailor demo` or `tailor train` first", data_dir.display());
    };
    let db = engine.db();
    let users: Vec<String> = sqlx::query(
        "SELECT DISTINCT p.id FROM profiles p JOIN orders o ON o.profile_id = p.id WHERE p.merged_into IS NULL ORDER BY p.id LIMIT 2000",
    )
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let popular: Vec<(String, String)> = sqlx::query(
        "SELECT l.product_id, MIN(o.store_id) FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
         GROUP BY l.product_id ORDER BY COUNT(*) DESC LIMIT 500",
    )
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| (r.get(0), r.get::<Option<String>, _>(1).unwrap_or_default()))
    .collect();
    let stores: Vec<String> = sqlx::query("SELECT id FROM locations ORDER BY id LIMIT 50")
        .fetch_all(db.reader())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if users.is_empty() || popular.is_empty() || stores.is_empty() {
        bail!("{} has no customers, orders or stores to load-test with", data_dir.display());
    }
    // Business rules on: diversity, a boost, a pin, and 1,000 products out of stock at stores.
    let saved_rules = engine.merchandising();
    engine
        .set_merchandising(Merchandising {
            max_per_category: Some(3),
            max_per_brand: None,
            boosts: vec![BoostRule { product_id: None, category: None, brand: Some("Private".into()), factor: 1.2 }],
            pins: vec![popular[0].0.clone()],
            exclude: vec![popular[1].0.clone()],
            non_merchandise: None,
        })
        .await?;
    let out_of_stock: Vec<Availability> = (0..1000)
        .map(|i| Availability {
            product_id: popular[i % popular.len()].0.clone(),
            location_id: stores[i % stores.len()].clone(),
            available: false,
        })
        .collect();
    for a in &out_of_stock {
        engine.set_availability(a).await?;
    }
    // Requests: home 50%, item 20%, cart 10%, associate 10%, email 10%, at the customer's store.
    let paths: Vec<String> = (0..5000)
        .map(|i| {
            let user = &users[(i * 7919) % users.len()];
            let (product, store) = &popular[(i * 104_729) % popular.len()];
            let store = if store.is_empty() { &stores[i % stores.len()] } else { store };
            match i % 10 {
                0..=4 => format!("/v1/recommendations?user={user}&context=home&k=10"),
                5 | 6 => format!("/v1/recommendations?user={user}&context=item&item={product}&k=10"),
                7 => format!("/v1/recommendations?user={user}&context=cart&cart={product}&k=10"),
                8 => format!("/v1/recommendations?user={user}&context=associate&store={store}&k=10"),
                _ => format!("/v1/recommendations?user={user}&context=email&k=10"),
            }
        })
        .collect();
    let key = engine.create_key(Scope::Read, "bench serve").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(tailor_server::serve_router(listener, tailor_server::app(engine.clone())));
    println!(
        "serve benchmark: model v{version}, {} customers, {rate} req/s for {seconds} s after 5 s warm-up, rules on, \
         {} store-product pairs out of stock",
        users.len(),
        out_of_stock.len()
    );
    let health = load(&base, &key, &["/healthz".to_string()], rate, seconds.min(20), 2).await?;
    let recs = load(&base, &key, &paths, rate, seconds, 5).await?;
    health.print("GET /healthz");
    recs.print("recommendations");
    println!(
        "p99 ratio recommendations / healthz = {:.2} (p99 {:.2} ms vs {:.2} ms)",
        recs.pct(99.0) / health.pct(99.0),
        recs.pct(99.0),
        health.pct(99.0)
    );
    server.abort();
    for a in out_of_stock {
        engine.set_availability(&Availability { available: true, ..a }).await?;
    }
    engine.set_merchandising(saved_rules).await?;
    engine.close().await;
    Ok(())
}
