//! The demo data set: Dunnhumby's The Complete Journey (products, stores, households, baskets)
//! made into an omnichannel identity problem. Store baskets carry the household's loyalty card;
//! a seeded share of households also browse the web anonymously, later identify with an e-mail
//! (linking their card), use the app, and call support with a phone number; a store tablet
//! shared by several customers must not fuse them.

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tailor_catalog::{Location, Table};
use tailor_core::event::{Event, EventKind};
use tailor_core::time::{format_millis, now_millis};
use tailor_store::Row;

use crate::import::{ImportKind, Progress};
use crate::{Engine, EngineError};

/// The seed of every random choice, so every demo shows the same customers.
pub const SEED: u64 = 20_170_101;

const FIRST: [&str; 24] = [
    "Ann", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Luis", "Maya", "Nils",
    "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wes", "Yuki",
];
const LAST: [&str; 20] = [
    "Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones", "Khan", "Lopez",
    "Miller", "Novak", "Okafor", "Patel", "Rossi", "Smith", "Tanaka", "Weber",
];
const REGIONS: [(&str, f64, f64); 4] =
    [("North", 41.97, -87.75), ("South", 41.75, -87.62), ("West", 41.88, -87.95), ("East", 41.85, -87.55)];

/// What the demo loaded.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DemoSummary {
    /// Products imported.
    pub products: u64,
    /// Stores created.
    pub stores: u64,
    /// Households (customers) with store baskets.
    pub households: u64,
    /// Store orders (baskets) logged.
    pub orders: u64,
    /// Web, app, support and tablet events logged.
    pub omnichannel_events: u64,
    /// Rows refused by the imports (e.g. zero-quantity lines), listed in the rejects.
    pub rejected_rows: u64,
}

/// The demo customer's made-up contact details, derived from the household id.
pub fn contact(household: &str) -> (String, String, String, String) {
    let n: u64 = household.parse().unwrap_or(0);
    let first = FIRST[(n % FIRST.len() as u64) as usize];
    let last = LAST[((n / 7) % LAST.len() as u64) as usize];
    let email = format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), n);
    let phone = format!("+1312555{:04}", n % 10_000);
    (first.to_string(), last.to_string(), email, phone)
}

struct Household {
    first_ts: i64,
    last_ts: i64,
    store: String,
    stores: std::collections::BTreeSet<String>,
    products: Vec<String>,
}

impl Engine {
    /// Whether the demo data is already here (later starts reuse it).
    pub async fn demo_loaded(&self) -> Result<bool, EngineError> {
        let row =
            sqlx::query("SELECT COUNT(*) FROM meta WHERE key = 'demo_loaded'").fetch_one(self.db().reader()).await?;
        Ok(row.get::<i64, _>(0) > 0)
    }

    /// Loads the demo from `data` (the `completejourney` folder). Idempotent: a load cut short
    /// can simply run again.
    pub async fn load_demo(&self, data: &Path, progress: &dyn Progress) -> Result<DemoSummary, EngineError> {
        let file = |name: &str| {
            let p = data.join(name);
            if p.exists() {
                Ok(p)
            } else {
                Err(EngineError::Io(format!(
                    "{} is missing: point --shared at the folder holding data/completejourney",
                    p.display()
                )))
            }
        };
        let mut summary = DemoSummary::default();
        progress.stage("products");
        let r = self.import(ImportKind::Products, &file("products.parquet")?, progress).await?;
        summary.products = r.accepted;
        summary.rejected_rows += r.rejected.len() as u64;

        progress.stage("reading households");
        let mut households = read_households(&file("transactions.parquet")?)?;
        // The data ends in 2017: move it, by whole weeks so weekdays stay, to end yesterday, so
        // that trends, habits, stock and loyalty points look like a live store's.
        const WEEK: i64 = 7 * 86_400_000;
        let data_end = households.values().map(|h| h.last_ts).max().unwrap_or(0);
        let shift = ((tailor_core::time::now_millis() - 86_400_000 - data_end) / WEEK).max(0) * WEEK;
        for h in households.values_mut() {
            h.first_ts += shift;
            h.last_ts += shift;
        }
        summary.households = households.len() as u64;
        let stores = self.demo_stores(&households).await?;
        summary.stores = stores;

        progress.stage("loyalty sign-ups");
        let r = self.import(ImportKind::Customers, &file("demographics.parquet")?, progress).await?;
        summary.rejected_rows += r.rejected.len() as u64;

        progress.stage("store baskets");
        let r = self.import_orders(&file("transactions.parquet")?, progress, shift).await?;
        summary.rejected_rows += r.rejected.len() as u64;
        summary.orders = self.log().count().await? as u64;

        progress.stage("web, app and support journeys");
        let events = omnichannel_events(&households)?;
        summary.omnichannel_events = events.len() as u64;
        progress.total(events.len() as u64);
        for chunk in events.chunks(2000) {
            self.ingest(chunk).await?;
            progress.advance(chunk.len() as u64);
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ('demo_loaded', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(serde_json::to_string(&summary).unwrap_or_default())
            .execute(self.db().writer())
            .await?;
        Ok(summary)
    }

    /// Stocks every store with what it sold in the data's last eight weeks: about two weeks of
    /// its sales each, one unit of safety stock, and (deterministically) about one pair in
    /// nine sold out, so some items run out in some stores. Run after the orders are
    /// projected; idempotent. Returns (pairs stocked, pairs out of stock).
    pub async fn seed_demo_stock(&self) -> Result<(u64, u64), EngineError> {
        let until: Option<i64> = sqlx::query("SELECT MAX(ts) FROM orders").fetch_one(self.db().reader()).await?.get(0);
        let Some(until) = until else { return Ok((0, 0)) };
        sqlx::query(
            "INSERT INTO inventory_stock (sku, location_id, on_hand, safety_stock, updated_at) \
             SELECT l.product_id, o.store_id, \
               CASE WHEN (COUNT(*) * 7 + LENGTH(l.product_id)) % 9 = 0 THEN 0 ELSE COUNT(*) / 4 + 2 END, 1, $1 \
             FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
             WHERE o.store_id IS NOT NULL AND o.ts >= $2 \
             GROUP BY l.product_id, o.store_id \
             ON CONFLICT (sku, location_id) DO NOTHING",
        )
        .bind(tailor_core::time::now_millis())
        .bind(until - 56 * 86_400_000)
        .execute(self.db().writer())
        .await?;
        let row = sqlx::query(&format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN {} <= 0 THEN 1 ELSE 0 END), 0) FROM inventory_stock",
            tailor_inventory::AVAILABLE
        ))
        .fetch_one(self.db().reader())
        .await?;
        self.reload_unavailable().await?;
        Ok((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64))
    }

    /// Gives every demo product sold a list price: the unit price it most often sold at (the
    /// maximum is skewed by items sold by weight). Returns the products priced.
    pub async fn seed_demo_prices(&self) -> Result<u64, EngineError> {
        let done = sqlx::query(
            "UPDATE products SET price_cents = p.cents FROM \
             (SELECT product_id, price_cents AS cents FROM \
               (SELECT product_id, price_cents, ROW_NUMBER() OVER (PARTITION BY product_id ORDER BY COUNT(*) DESC, price_cents DESC) AS n \
                FROM order_lines WHERE price_cents > 0 GROUP BY product_id, price_cents) m WHERE n = 1) p \
             WHERE p.product_id = products.id AND products.price_cents IS NULL",
        )
        .execute(self.db().writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// Gives the demo's loyalty program three tiers held through a 90-day grace period, and
    /// rewards for joining, birthdays, reviews and installing the app (after the baskets are
    /// projected, so the history earns at the base rate and the tiers show on every account).
    pub async fn seed_demo_loyalty(&self) -> Result<(), EngineError> {
        if self.loyalty_tiers().await?.is_empty() {
            let tier = |name: &str, points: i64, multiplier: f64| tailor_loyalty::Tier {
                name: name.into(),
                min_points: Some(points),
                min_spend_cents: None,
                multiplier,
                grace_days: 90,
            };
            self.set_loyalty_tiers(&[
                tier("Silver", 1_000, 1.25),
                tier("Gold", 3_000, 1.5),
                tier("Platinum", 8_000, 2.0),
            ])
            .await?;
        }
        if self.loyalty_rewards().await?.is_empty() {
            use tailor_loyalty::{Limit, Reward, Trigger};
            let reward = |name: &str, trigger, event: Option<&str>, points, limit| Reward {
                name: name.into(),
                trigger,
                event: event.map(Into::into),
                points,
                limit,
            };
            self.set_loyalty_rewards(&[
                reward("Welcome", Trigger::Welcome, None, 100, None),
                reward("Birthday", Trigger::Birthday, None, 200, None),
                reward("Review", Trigger::Event, Some("Product Reviewed"), 25, Some(Limit::PerDay)),
                reward("App install", Trigger::Event, Some("Application Installed"), 100, Some(Limit::Once)),
            ])
            .await?;
        }
        Ok(())
    }

    async fn demo_stores(&self, households: &BTreeMap<String, Household>) -> Result<u64, EngineError> {
        let ids: std::collections::BTreeSet<&String> = households.values().flat_map(|h| h.stores.iter()).collect();
        let mut rng = StdRng::seed_from_u64(SEED);
        let locations: Vec<Location> = ids
            .iter()
            .map(|id| {
                let (region, lat, lon) = REGIONS[rng.gen_range(0..REGIONS.len())];
                Location {
                    id: id.to_string(),
                    name: format!("Store {id}"),
                    kind: "store".into(),
                    region: Some(region.into()),
                    latitude: Some(lat + rng.gen_range(-0.08..0.08)),
                    longitude: Some(lon + rng.gen_range(-0.08..0.08)),
                    timezone: "America/Chicago".into(),
                }
            })
            .collect();
        tailor_catalog::upsert_locations(self.db(), &locations, now_millis()).await?;
        Ok(locations.len() as u64)
    }
}

fn read_households(path: &Path) -> Result<BTreeMap<String, Household>, EngineError> {
    let table = Table::open(path).map_err(EngineError::Io)?;
    let col = |n: &str| table.column(&[n]).ok_or_else(|| EngineError::Io(format!("{}: no {n} column", path.display())));
    let (hh, store, product, ts) =
        (col("household_id")?, col("store_id")?, col("product_id")?, col("transaction_timestamp")?);
    let mut out: BTreeMap<String, Household> = BTreeMap::new();
    let mut store_counts: BTreeMap<(String, String), u32> = BTreeMap::new();
    for row in table {
        let row = row.map_err(EngineError::Io)?;
        let get = |i: usize| row.get(i).cloned().flatten();
        let (Some(h), Some(s), Some(p), Some(t)) = (get(hh), get(store), get(product), get(ts)) else {
            continue;
        };
        let t = tailor_core::time::parse_rfc3339(&t).unwrap_or(0);
        *store_counts.entry((h.clone(), s.clone())).or_default() += 1;
        let e = out.entry(h).or_insert_with(|| Household {
            first_ts: t,
            last_ts: t,
            store: s.clone(),
            stores: Default::default(),
            products: Vec::new(),
        });
        e.stores.insert(s);
        e.first_ts = e.first_ts.min(t);
        e.last_ts = e.last_ts.max(t);
        if e.products.len() < 400 {
            e.products.push(p);
        }
    }
    for ((h, s), n) in &store_counts {
        let best = store_counts.get(&(h.clone(), out[h].store.clone())).copied().unwrap_or(0);
        if *n > best {
            if let Some(e) = out.get_mut(h) {
                e.store = s.clone();
            }
        }
    }
    Ok(out)
}

fn event(raw: Value) -> Result<Event, EngineError> {
    let kind = raw.get("type").and_then(Value::as_str).and_then(EventKind::parse);
    Event::parse_trusted(raw, kind, now_millis()).map_err(EngineError::Invalid)
}

/// Generates the web, app, support and shared-tablet events, seeded.
fn omnichannel_events(households: &BTreeMap<String, Household>) -> Result<Vec<Event>, EngineError> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut out = Vec::new();
    let mut tablet_users: BTreeMap<String, u32> = BTreeMap::new();
    // The loyalty sign-up form asks for personalization consent; most agree. A separate seed
    // keeps the rest of the journeys as they were.
    let mut consent_rng = StdRng::seed_from_u64(SEED ^ 0xC0);
    for (h, hh) in households {
        out.push(event(json!({"type": "identify", "messageId": format!("demo-{h}-signup-consent"),
            "timestamp": format_millis(hh.first_ts), "traits": {},
            "context": {"channel": "store", "traits": {"loyalty_card": h},
                "consent": {"categoryPreferences": {"personalization": consent_rng.gen_bool(0.85)}}}}))?);
    }
    for (h, hh) in households {
        let (first, last, email, phone) = contact(h);
        let span = (hh.last_ts - hh.first_ts).max(3_600_000);
        let at = |rng: &mut StdRng| hh.first_ts + rng.gen_range(0..span);
        let pick = |rng: &mut StdRng| hh.products[rng.gen_range(0..hh.products.len())].clone();
        let mut n = 0u32;
        let mut id = |kind: &str| {
            n += 1;
            format!("demo-{h}-{kind}-{n}")
        };
        if rng.gen_bool(0.45) {
            let anon = format!("web-{:016x}", rng.gen::<u64>());
            let identify_at = at(&mut rng);
            for _ in 0..rng.gen_range(2..6) {
                let session = hh.first_ts + rng.gen_range(0..span);
                let known = session > identify_at;
                for k in 0..rng.gen_range(2..6) {
                    let ts = session + k * 45_000;
                    let product = pick(&mut rng);
                    let mut e = json!({"type": "track", "event": "Product Viewed", "messageId": id("view"),
                        "anonymousId": anon, "timestamp": format_millis(ts),
                        "properties": {"product_id": product}, "context": {"channel": "web", "page": {"path": format!("/p/{product}")}}});
                    if known {
                        e["userId"] = json!(format!("u{h}"));
                    }
                    out.push(event(e)?);
                    if rng.gen_bool(0.15) {
                        let mut e = json!({"type": "track", "event": "Product Added", "messageId": id("add"),
                            "anonymousId": anon, "timestamp": format_millis(ts + 10_000),
                            "properties": {"product_id": product, "quantity": 1}, "context": {"channel": "web"}});
                        if known {
                            e["userId"] = json!(format!("u{h}"));
                        }
                        out.push(event(e)?);
                    }
                }
            }
            out.push(event(
                json!({"type": "identify", "messageId": id("identify"), "anonymousId": anon, "userId": format!("u{h}"),
                "timestamp": format_millis(identify_at), "context": {"channel": "web"},
                "traits": {"email": email, "firstName": first, "lastName": last, "loyalty_card": h,
                    "consent": {"personalization": rng.gen_bool(0.9), "marketing_email": rng.gen_bool(0.6)}}}),
            )?);
            if rng.gen_bool(0.5) {
                let device = format!("app-{:016x}", rng.gen::<u64>());
                for _ in 0..rng.gen_range(1..5) {
                    out.push(event(json!({"type": "screen", "name": "Product Detail", "messageId": id("screen"),
                        "anonymousId": device, "userId": format!("u{h}"), "timestamp": format_millis(at(&mut rng)),
                        "properties": {"product_id": pick(&mut rng)}, "context": {"channel": "app", "device": {"id": device}}}))?);
                }
            }
            let used = tablet_users.entry(hh.store.clone()).or_default();
            if *used < 3 && rng.gen_bool(0.2) {
                *used += 1;
                out.push(event(json!({"type": "identify", "messageId": id("tablet"), "anonymousId": format!("tablet-store-{}", hh.store),
                    "userId": format!("u{h}"), "timestamp": format_millis(at(&mut rng)), "context": {"channel": "store"},
                    "traits": {"email": email}}))?);
            }
        }
        if rng.gen_bool(0.15) {
            let topic = ["delivery", "refund", "loyalty points", "product question"][rng.gen_range(0..4)];
            out.push(event(json!({"type": "track", "event": "Support Ticket Opened", "messageId": id("support"),
                "timestamp": format_millis(at(&mut rng)),
                "properties": {"topic": topic},
                "context": {"channel": "support", "traits": {"phone": phone, "loyalty_card": h}}}))?);
        }
    }
    out.sort_by_key(|e| e.timestamp);
    Ok(out)
}
