//! `tailor bench journeys`: the journey scheduler on the embedded store with a real SMTP server.
//! N customers (identified with an e-mail address and consent, one or two items in their cart)
//! enter a journey of two e-mails an hour apart.
//!
//! 1. **Throughput**: all N first e-mails fall due at once (the journeys' clock is moved past
//!    the wait); the scheduler runs until none is due. Every message is decided (consent, caps,
//!    quiet hours, suppression), composed at send time (stock and today's prices re-read),
//!    rendered (HTML and text) and handed to the SMTP server. Baseline: the same number of
//!    connections sending prebuilt messages of the same size to the same server (`raw`).
//! 2. **Lateness**: the N second e-mails fall due spread over time at `--rate` a second on the
//!    wall clock, and the scheduler runs as `serve` runs it (a round every 250 ms); the lateness
//!    of each message is when the SMTP server accepted it minus when it was due.
//!
//! The SMTP server is a small sink in this process (see `smtp_sink`): aiosmtpd tops out below
//! the rates measured here.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tailor_campaigns::channels::{message_id, Channel, Outgoing};
use tailor_core::{Event, EventKind};
use tailor_engine::import::{ImportKind, Silent};
use tailor_engine::{Channels, Engine, EngineConfig, JourneyDef, SendGuardrails, SmtpConfig, Storage};

use crate::smtp_sink::Sink;

const JOURNEY: &str = "bench";
const SKUS: usize = 200;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Long on purpose: a benchmark script (set-up, measured runs, baseline, report) read top to bottom.
pub async fn journeys(customers: usize, rate: u32, dir: Option<PathBuf>) -> Result<()> {
    anyhow::ensure!(customers > 0 && rate > 0, "--customers and --rate are at least 1");
    let base = dir.unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)
        .map_err(|e| anyhow::anyhow!("--dir {}: cannot create it ({e}); pick a writable directory", base.display()))?;
    let tmp = tempfile::tempdir_in(&base)?;
    let root = tmp.path().to_path_buf();
    println!("journeys benchmark: {customers} customers, embedded store in {}", root.display());
    let sink = Sink::start().await?;
    let smtp = SmtpConfig { host: "127.0.0.1".into(), port: sink.port, from: "Shop <shop@example.com>".into() };
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(root.join("tailor")),
        background: false,
        retrain_every: None,
    })
    .await?;
    engine.set_channels(Channels {
        email: Some(Engine::smtp_channel(&smtp)?),
        brand_name: "Bench Shop".into(),
        brand_url: "https://shop.example".into(),
        public_url: "https://tailor.shop.example".into(),
        ..Channels::default()
    });

    // Set-up: products, the journey, guardrails, customers with carts.
    let started = Instant::now();
    let mut csv = String::from("id,title,price,category,currency\n");
    for i in 0..SKUS {
        csv.push_str(&format!("S{i:04},Product number {i},{}.{:02},CAT{},USD\n", 1 + i % 40, i % 100, i % 12));
    }
    let products = root.join("products.csv");
    std::fs::write(&products, csv)?;
    engine.import(ImportKind::Products, &products, &Silent).await?;
    let def: JourneyDef = serde_json::from_value(json!({
        "name": "Bench reminders",
        "trigger": {"event": "Product Added"},
        "steps": [
            {"id": "wait_1", "type": "wait", "seconds": 60},
            {"id": "first", "type": "send", "channel": "email", "template": "cart_reminder"},
            {"id": "wait_2", "type": "wait", "seconds": 3600},
            {"id": "second", "type": "send", "channel": "email", "template": "cart_reminder"}
        ],
        "exitOn": ["Order Completed"],
        "holdout": 0
    }))?;
    engine.put_journey(JOURNEY, &def).await?;
    let rails = SendGuardrails {
        per_day: 10,
        per_week: 20,
        quiet_from_hour: 0,
        quiet_until_hour: 0,
        ..SendGuardrails::default()
    };
    engine.set_send_guardrails(&rails).await?;
    let t0 = tailor_core::time::now_millis();
    engine.journey_clock().set(t0);
    let mut events = Vec::with_capacity(4000);
    for i in 0..customers {
        let traits = json!({"email": format!("c{i}@example.com"), "firstName": format!("C{i}"),
            "timezone": "Europe/Berlin", "consent": {"marketing_email": true}});
        let id = json!({"userId": format!("c{i}"), "traits": traits, "messageId": format!("id-{i}")});
        events.push(Event::parse_trusted(id, Some(EventKind::Identify), t0)?);
        for k in 0..1 + i % 2 {
            let sku = format!("S{:04}", (i * 7 + k * 13) % SKUS);
            let add = json!({"userId": format!("c{i}"), "event": "Product Added", "messageId": format!("add-{i}-{k}"),
                "properties": {"product_id": sku, "quantity": 1, "price": 2.0}});
            events.push(Event::parse_trusted(add, Some(EventKind::Track), t0)?);
        }
        if events.len() >= 4000 {
            engine.ingest(&events).await?;
            events.clear();
        }
    }
    engine.ingest(&events).await?;
    engine.sync().await?;
    let entered = engine.run_journeys().await?;
    println!(
        "  set-up: {} events ingested and projected, {customers} customers entered, in {:.1} s",
        entered.events,
        started.elapsed().as_secs_f64()
    );

    // 1. Throughput: every first e-mail due at once.
    engine.journey_clock().set(t0 + 61_000);
    let started = Instant::now();
    let mut fired = 0;
    loop {
        let round = engine.run_journeys().await?;
        fired += round.fired;
        if round.fired == 0 {
            break;
        }
    }
    let tailor_secs = started.elapsed().as_secs_f64();
    let delivered = sink.take();
    let unique: HashSet<&str> = delivered.iter().map(|d| d.message_id.as_str()).collect();
    anyhow::ensure!(
        delivered.len() == customers && unique.len() == customers,
        "expected {customers} distinct messages, the server got {} ({} distinct; {fired} positions fired)",
        delivered.len(),
        unique.len()
    );
    let mean_bytes = delivered.iter().map(|d| d.bytes).sum::<usize>() / delivered.len().max(1);
    let tailor_rate = customers as f64 / tailor_secs;

    // Baseline: prebuilt messages of the same size over as many connections, same server.
    let raw_n = customers.min(20_000);
    let channel: Arc<dyn Channel> = Engine::smtp_channel(&smtp)?;
    let html = format!("<html><body><p>{}</p></body></html>", "x".repeat(mean_bytes.saturating_sub(900) * 2 / 3));
    let text = "y".repeat(mean_bytes.saturating_sub(900) / 3);
    let messages: Vec<Outgoing> = (0..raw_n)
        .map(|i| Outgoing {
            key: format!("raw/{i}"),
            to: format!("r{i}@example.com"),
            subject: Some("Your cart is waiting".into()),
            html: Some(html.clone()),
            text: text.clone(),
            unsubscribe_url: Some("https://tailor.shop.example/v1/unsubscribe?token=x".into()),
        })
        .collect();
    let messages = Arc::new(messages);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (channel, messages, next) = (channel.clone(), messages.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(m) = messages.get(i) else { return Ok::<_, anyhow::Error>(()) };
                channel.send(m).await.map_err(|e| anyhow::anyhow!("raw send {i}: {e}"))?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    let raw = sink.take();
    anyhow::ensure!(raw.len() == raw_n, "raw: {} of {raw_n} delivered", raw.len());
    let raw_mean = raw.iter().map(|d| d.bytes).sum::<usize>() / raw.len().max(1);
    let raw_rate = raw_n as f64 / raw_secs;

    // 2. Lateness: the second e-mails fall due at `rate` a second on the wall clock.
    let url = format!("sqlite://{}?mode=rw", root.join("tailor").join("tailor.db").display());
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.context("the store")?;
    let rows = sqlx::query(
        "SELECT customer_id, version, entry FROM journey_positions WHERE journey_id = $1 AND status = 'active' \
         ORDER BY customer_id",
    )
    .bind(JOURNEY)
    .fetch_all(&pool)
    .await?;
    anyhow::ensure!(rows.len() == customers, "{} of {customers} customers wait for the second e-mail", rows.len());
    // Each position gets its offset from the start first, then one statement adds the start, so
    // the time this set-up takes is not counted as the scheduler's lateness.
    let mut offset_of: HashMap<String, i64> = HashMap::with_capacity(customers);
    let mut tx = pool.begin().await?;
    for (i, r) in rows.iter().enumerate() {
        use sqlx::Row;
        let (customer, version, entry): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        let offset = (i as i64) * 1000 / i64::from(rate);
        let key = tailor_campaigns::machine::send_key(JOURNEY, version, &customer, entry, "second");
        offset_of.insert(message_id(&key), offset);
        sqlx::query("UPDATE journey_positions SET due_at = $1 WHERE journey_id = $2 AND customer_id = $3")
            .bind(offset)
            .bind(JOURNEY)
            .bind(&customer)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let start = tailor_core::time::now_millis() + 2000;
    sqlx::query("UPDATE journey_positions SET due_at = due_at + $1 WHERE journey_id = $2 AND status = 'active'")
        .bind(start)
        .bind(JOURNEY)
        .execute(&pool)
        .await?;
    let due_of: HashMap<String, i64> = offset_of.into_iter().map(|(id, offset)| (id, start + offset)).collect();
    pool.close().await;
    engine.journey_clock().unpin();
    let spread = customers as f64 / f64::from(rate);
    let deadline = Instant::now() + Duration::from_secs_f64(spread * 3.0 + 60.0);
    while sink.count() < customers && Instant::now() < deadline {
        let round_started = Instant::now();
        engine.run_journeys().await?;
        // As the supervisor does: a round every 250 ms.
        if let Some(rest) = Duration::from_millis(250).checked_sub(round_started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let second = sink.take();
    // (due, late) of each message, in the order they fell due.
    let mut timeline: Vec<(i64, i64)> =
        second.iter().filter_map(|d| due_of.get(&d.message_id).map(|due| (*due, d.at_ms - due))).collect();
    timeline.sort_unstable();
    let mut lateness: Vec<i64> = timeline.iter().map(|t| t.1).collect();
    anyhow::ensure!(
        lateness.len() == customers,
        "{} of {customers} second e-mails arrived ({} messages in all)",
        lateness.len(),
        second.len()
    );
    lateness.sort_unstable();
    engine.close().await;

    println!(
        "  throughput  tailor  decide + compose + render + SMTP: {tailor_rate:>8.0} messages/s ({customers} in {tailor_secs:.2} s, {mean_bytes} bytes each)"
    );
    println!(
        "              raw     prebuilt messages, same server:   {raw_rate:>8.0} messages/s ({raw_n} in {raw_secs:.2} s, {raw_mean} bytes each)"
    );
    println!("              ratio   tailor / raw = {:.2}", tailor_rate / raw_rate);
    println!(
        "  lateness    {customers} e-mails due at {rate}/s over {spread:.0} s: p50 {} ms, p99 {} ms, max {} ms (accepted by the server minus due)",
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(0)
    );
    // Where the late ones are: a slow start, a steady queue or stalls show apart.
    let tenths: Vec<String> = timeline
        .chunks(timeline.len().div_ceil(10).max(1))
        .map(|c| format!("{}", c.iter().map(|t| t.1).max().unwrap_or(0)))
        .collect();
    println!("              worst per tenth of the run, in the order due (ms): {}", tenths.join(" "));
    Ok(())
}
