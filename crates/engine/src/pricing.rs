//! Pricing through the engine: the price book (list prices per product and zone, the same on
//! every channel), guardrails per product, promotions, market conditions (competitor prices,
//! demand signals, stock cover), repricing under guardrails with every decision recorded, and
//! price quotes with promotions and behaviour-only personal offers.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tailor_core::time::now_millis;
use tailor_core::{FieldError, Purpose};
use tailor_pricing::book::{apply_promotions, Applied, Promotion};
use tailor_pricing::guardrails::{Clamp, Guardrails};
use tailor_pricing::offers::{offers_for, Behavior, Fact, Offer, OfferPolicy};
use tailor_store::{lock_key, placeholders, Migration};

use crate::{Engine, EngineError};

/// The pricing tables.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "pricing/001_price_book",
        "
    CREATE TABLE price_list (
        sku TEXT NOT NULL,
        zone TEXT NOT NULL,
        currency TEXT NOT NULL,
        cents BIGINT NOT NULL,
        valid_from BIGINT NOT NULL,
        valid_to BIGINT,
        PRIMARY KEY (sku, zone, valid_from)
    );
    CREATE TABLE price_promotions (id TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE price_guardrails (sku TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE price_changes (
        id TEXT PRIMARY KEY,
        sku TEXT NOT NULL,
        zone TEXT NOT NULL,
        from_cents BIGINT,
        proposed_cents BIGINT NOT NULL,
        to_cents BIGINT NOT NULL,
        clamps TEXT NOT NULL,
        reason TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX price_changes_sku ON price_changes (sku, at);
    CREATE TABLE price_market (
        sku TEXT NOT NULL,
        source TEXT NOT NULL,
        cents BIGINT,
        demand_index DOUBLE PRECISION,
        at BIGINT NOT NULL,
        PRIMARY KEY (sku, source)
    );
    CREATE TABLE price_offers (
        id TEXT PRIMARY KEY,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        max_discount_cents BIGINT NOT NULL,
        percent_off DOUBLE PRECISION NOT NULL,
        reason TEXT NOT NULL,
        valid_until BIGINT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX price_offers_profile ON price_offers (profile_id, at)
    ",
    ),
    Migration::portable(
        "pricing/003_offer_consent",
        "ALTER TABLE price_offers ADD COLUMN purpose TEXT NOT NULL DEFAULT 'personalization'",
    ),
];

const DAY_MS: i64 = 86_400_000;
/// Fewer days of stock cover than this: scarce, the price is not lowered.
const SCARCE_DAYS: f64 = 7.0;
/// More days of cover than this: overstocked, the price steps down to clear.
const OVERSTOCK_DAYS: f64 = 90.0;
/// Guardrails stored under this key apply to products without their own.
const DEFAULT_GUARDRAILS: &str = "*";

/// Promotions held in memory so a quote costs no promotion query; re-read after a few seconds
/// so other nodes' changes show, and never stored from a read older than the last change here.
#[derive(Default)]
pub(crate) struct PriceState {
    promotions: RwLock<Option<(std::time::Instant, Arc<Vec<Promotion>>)>>,
    generation: std::sync::atomic::AtomicU64,
}

/// How long promotions are served from memory.
const PROMOTIONS_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// A list price as set in the price book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPriceInput {
    /// The price zone (a region or channel group's price list); empty: the default list.
    #[serde(default)]
    pub zone: String,
    /// ISO currency code.
    pub currency: String,
    /// The list price, in cents.
    pub cents: i64,
    /// From when it holds (default now).
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<i64>,
    /// Until when (exclusive).
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_to: Option<i64>,
    /// Why (kept with the decision).
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the guardrails made of a proposed price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceDecision {
    /// The product.
    pub sku: String,
    /// The zone.
    pub zone: String,
    /// The price before, in cents.
    pub previous_cents: Option<i64>,
    /// What was proposed, in cents.
    pub proposed_cents: i64,
    /// The price now, in cents.
    pub cents: i64,
    /// Each guardrail that moved the proposal, in order: `{rule, from, to}`.
    #[schema(value_type = Vec<Object>)]
    pub clamps: Vec<Clamp>,
    /// Why the price was proposed.
    pub reason: String,
}

/// A price quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceQuote {
    /// The product.
    pub sku: String,
    /// The channel asked for.
    pub channel: String,
    /// ISO currency code.
    pub currency: String,
    /// The list price per unit, in cents: the same on every channel.
    pub list_cents: i64,
    /// The price to pay per unit after promotions, in cents (personal offers are listed
    /// separately; they apply at checkout up to their cap).
    pub price_cents: i64,
    /// What the quantity asked costs after promotions, in cents (exact, where the per-unit
    /// price is rounded).
    pub total_cents: i64,
    /// The promotions applied.
    pub promotions: Vec<Applied>,
    /// Personal offers for the customer, each with its reason.
    pub offers: Vec<Offer>,
    /// Why the price is what it is, in words.
    pub explanation: Vec<String>,
    /// The consent purpose personal offers used (`personalization`), when any were considered.
    pub consent_purpose: Option<String>,
}

/// Market conditions for a product: a competitor's price or a demand signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketInput {
    /// The product.
    pub sku: String,
    /// Who reports it: a competitor's name, or `demand` for a demand signal.
    pub source: String,
    /// The competitor's price, in cents.
    #[serde(default)]
    pub cents: Option<i64>,
    /// Demand relative to normal (1.0 normal, 1.3 thirty percent above).
    #[serde(default)]
    pub demand_index: Option<f64>,
}

fn money(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

fn currency_ok(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}

impl Engine {
    fn promotions_cached(&self) -> Option<Arc<Vec<Promotion>>> {
        let guard = self.inner.prices.promotions.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|(at, _)| at.elapsed() < PROMOTIONS_FRESH).map(|(_, p)| p.clone())
    }

    fn forget_promotions(&self) {
        self.inner.prices.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.inner.prices.promotions.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The promotions, from memory for a few seconds after a read.
    pub async fn promotions(&self) -> Result<Arc<Vec<Promotion>>, EngineError> {
        if let Some(p) = self.promotions_cached() {
            return Ok(p);
        }
        let generation = self.inner.prices.generation.load(std::sync::atomic::Ordering::SeqCst);
        let rows = sqlx::query("SELECT body FROM price_promotions ORDER BY id").fetch_all(self.db().reader()).await?;
        let list: Arc<Vec<Promotion>> =
            Arc::new(rows.iter().filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()).collect());
        let mut guard = self.inner.prices.promotions.write().unwrap_or_else(|e| e.into_inner());
        if self.inner.prices.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
            *guard = Some((std::time::Instant::now(), list.clone()));
        }
        Ok(list)
    }

    /// Creates or replaces a promotion.
    pub async fn put_promotion(&self, promotion: &Promotion) -> Result<(), EngineError> {
        promotion.check("promotion").map_err(EngineError::Invalid)?;
        let sql = "INSERT INTO price_promotions (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body";
        sqlx::query(sql)
            .bind(promotion.id.clone())
            .bind(serde_json::to_string(promotion).unwrap_or_default())
            .execute(self.db().writer())
            .await?;
        self.forget_promotions();
        Ok(())
    }

    /// Removes a promotion; false when there was none.
    pub async fn delete_promotion(&self, id: &str) -> Result<bool, EngineError> {
        let n = sqlx::query("DELETE FROM price_promotions WHERE id = $1")
            .bind(id.to_string())
            .execute(self.db().writer())
            .await?
            .rows_affected();
        self.forget_promotions();
        Ok(n > 0)
    }

    /// A product's guardrails (its own, else the defaults stored under `*`).
    pub async fn guardrails(&self, sku: &str) -> Result<Guardrails, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        guardrails_of(&mut conn, sku).await
    }

    /// Sets a product's guardrails (`*`: the defaults for every product without its own).
    pub async fn set_guardrails(&self, sku: &str, g: &Guardrails) -> Result<(), EngineError> {
        g.check().map_err(EngineError::Invalid)?;
        let sql = "INSERT INTO price_guardrails (sku, body) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET body = excluded.body";
        sqlx::query(sql)
            .bind(sku.to_string())
            .bind(serde_json::to_string(g).unwrap_or_default())
            .execute(self.db().writer())
            .await?;
        Ok(())
    }

    /// Proposes a list price: it passes the product's guardrails, and the decision (with every
    /// clamp and the reason) is recorded with the price it sets.
    pub async fn propose_list_price(&self, sku: &str, input: &ListPriceInput) -> Result<PriceDecision, EngineError> {
        if input.cents < 1 {
            return Err(EngineError::Invalid(FieldError::invalid(
                "cents",
                "a price in cents, at least 1; it cannot be negative",
            )));
        }
        if !currency_ok(&input.currency) {
            return Err(EngineError::Invalid(FieldError::invalid("currency", "an ISO 4217 code such as USD or EUR")));
        }
        let now = now_millis();
        let from = input.valid_from.unwrap_or(now);
        if input.valid_to.is_some_and(|t| t <= from) {
            return Err(EngineError::Invalid(FieldError::invalid("validTo", "must be after validFrom")));
        }
        let mut tx = self.db().writer().begin().await?;
        let product = product_of(&mut tx, sku).await?;
        if product.currency != input.currency {
            return Err(EngineError::Invalid(FieldError::invalid(
                "currency",
                format!("{sku} is sold in {}; give its prices in {}", product.currency, product.currency),
            )));
        }
        let g = guardrails_of(&mut tx, sku).await?;
        let previous = list_price(&mut tx, sku, &input.zone, from).await?.map(|l| l.0).or(product.catalog_cents);
        // The daily limit compares with the price a day before, so several changes in one day
        // cannot add up past it; a freeze holds the price in force.
        let day_before =
            list_price(&mut tx, sku, &input.zone, from - DAY_MS).await?.map(|l| l.0).or(product.catalog_cents);
        let guarded =
            if g.frozen { g.apply(input.cents, previous) } else { g.apply(input.cents, day_before.or(previous)) };
        let reason = input.reason.clone().unwrap_or_else(|| "set in the price book".into());
        sqlx::query(
            "INSERT INTO price_list (sku, zone, currency, cents, valid_from, valid_to) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (sku, zone, valid_from) DO UPDATE SET cents = excluded.cents, currency = excluded.currency, valid_to = excluded.valid_to",
        )
        .bind(sku.to_string())
        .bind(input.zone.clone())
        .bind(input.currency.clone())
        .bind(guarded.cents)
        .bind(from)
        .bind(input.valid_to)
        .execute(&mut *tx)
        .await?;
        let decision = PriceDecision {
            sku: sku.to_string(),
            zone: input.zone.clone(),
            previous_cents: previous,
            proposed_cents: input.cents,
            cents: guarded.cents,
            clamps: guarded.clamps,
            reason,
        };
        record(&mut tx, &decision, now).await?;
        tx.commit().await?;
        if !decision.clamps.is_empty() {
            tracing::info!(sku, clamps = decision.clamps.len(), "a proposed price was held by its guardrails");
        }
        Ok(decision)
    }

    /// The recorded price decisions for a product, newest first.
    pub async fn price_history(&self, sku: &str, limit: i64) -> Result<Vec<PriceDecision>, EngineError> {
        let rows = sqlx::query(
            "SELECT zone, from_cents, proposed_cents, to_cents, clamps, reason FROM price_changes WHERE sku = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(sku.to_string())
        .bind(limit)
        .fetch_all(self.db().reader())
        .await?;
        Ok(rows
            .iter()
            .map(|r| PriceDecision {
                sku: sku.to_string(),
                zone: r.get(0),
                previous_cents: r.get(1),
                proposed_cents: r.get(2),
                cents: r.get(3),
                clamps: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
                reason: r.get(5),
            })
            .collect())
    }

    /// Records a competitor's price or a demand signal for a product.
    pub async fn record_market(&self, m: &MarketInput) -> Result<(), EngineError> {
        if m.source.trim().is_empty() {
            return Err(EngineError::Invalid(FieldError::invalid("source", "a competitor's name, or 'demand'")));
        }
        match (m.cents, m.demand_index) {
            (Some(c), None) if c > 0 => {}
            (None, Some(d)) if d.is_finite() && d >= 0.0 => {}
            (Some(_), None) => return Err(EngineError::Invalid(FieldError::invalid("cents", "a price above 0"))),
            (None, Some(_)) => {
                return Err(EngineError::Invalid(FieldError::invalid("demandIndex", "0 or more; 1.0 is normal")))
            }
            _ => {
                return Err(EngineError::Invalid(FieldError::invalid(
                    "cents",
                    "give cents (a competitor's price) or demandIndex",
                )))
            }
        }
        let mut conn = self.db().writer().acquire().await?;
        product_of(&mut conn, &m.sku).await?;
        sqlx::query(
            "INSERT INTO price_market (sku, source, cents, demand_index, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sku, source) DO UPDATE SET cents = excluded.cents, demand_index = excluded.demand_index, at = excluded.at",
        )
        .bind(m.sku.clone())
        .bind(m.source.clone())
        .bind(m.cents)
        .bind(m.demand_index)
        .bind(now_millis())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Reprices a product's default list from market conditions: stock cover (scarce: never
    /// lower; overstocked: step down to clear), the lowest competitor price of the last week,
    /// and demand signals, inside its guardrails. The decision says which condition moved it.
    pub async fn reprice(&self, sku: &str) -> Result<PriceDecision, EngineError> {
        let now = now_millis();
        let mut conn = self.db().reader().acquire().await?;
        let product = product_of(&mut conn, sku).await?;
        let current =
            list_price(&mut conn, sku, "", now).await?.map(|l| l.0).or(product.catalog_cents).ok_or_else(|| {
                EngineError::NoPrice(format!("{sku} has no list price yet; set one with PUT /v1/prices/{sku}"))
            })?;
        let cover = stock_cover_days(&mut conn, sku, now).await?;
        let market =
            sqlx::query("SELECT source, cents, demand_index FROM price_market WHERE sku = $1 AND at > $2 ORDER BY at")
                .bind(sku.to_string())
                .bind(now - 7 * DAY_MS)
                .fetch_all(&mut *conn)
                .await?;
        drop(conn);
        let competitor = market
            .iter()
            .filter_map(|r| r.get::<Option<i64>, _>(1).map(|c| (r.get::<String, _>(0), c)))
            .min_by_key(|c| c.1);
        let demand = market.iter().filter_map(|r| r.get::<Option<f64>, _>(2)).next_back();
        let mut reasons = Vec::new();
        let mut target = current;
        let scarce = cover.is_some_and(|d| d < SCARCE_DAYS);
        let overstocked = cover.is_some_and(|d| d > OVERSTOCK_DAYS);
        if let Some((name, c)) = &competitor {
            if *c * 2 < current {
                // Likely a bad feed row (a unit or pack-size mix-up): not followed.
                reasons.push(format!(
                    "{name}'s {} is below half the list price and was not followed; check the feed",
                    money(*c)
                ));
            } else if *c < current && !scarce {
                target = *c;
                reasons.push(format!("{name} sells it at {}", money(*c)));
            }
        }
        if overstocked {
            target = target.min((current as f64 * 0.9).round() as i64);
            reasons.push(format!("overstocked: {:.0} days of cover", cover.unwrap_or_default()));
        }
        if let Some(d) = demand {
            if d > 1.2 && !overstocked {
                target = target.max((current as f64 * 1.05).round() as i64);
                reasons.push(format!("demand {:.0}% above normal", (d - 1.0) * 100.0));
            }
        }
        if scarce {
            target = target.max(current);
            reasons.push(format!("scarce: {:.1} days of cover, the price is not lowered", cover.unwrap_or_default()));
        }
        if reasons.is_empty() {
            reasons.push("no market condition calls for a change".into());
        }
        let input = ListPriceInput {
            zone: String::new(),
            currency: product.currency.clone(),
            cents: target,
            valid_from: Some(now),
            valid_to: None,
            reason: Some(format!("reprice: {}", reasons.join("; "))),
        };
        self.propose_list_price(sku, &input).await
    }

    /// Plans a markdown; for a product, every price of the ladder must be within its guardrails.
    pub async fn plan_markdown(
        &self,
        r: &tailor_pricing::markdown::MarkdownRequest,
    ) -> Result<tailor_pricing::markdown::MarkdownPlan, EngineError> {
        if let Some(sku) = &r.sku {
            let mut conn = self.db().reader().acquire().await?;
            product_of(&mut conn, sku).await?;
            let rails = guardrails_of(&mut conn, sku).await?;
            for (i, p) in r.prices.iter().enumerate() {
                let cents = (p * 100.0).round() as i64;
                let guarded = rails.apply(cents, None);
                if guarded.cents != cents {
                    let rule = guarded.clamps.first().map(|c| format!("{:?}", c.rule)).unwrap_or_default();
                    return Err(EngineError::Invalid(FieldError::invalid(
                        format!("prices[{i}]"),
                        format!("{p} is outside {sku}'s guardrails ({rule} would make it {})", money(guarded.cents)),
                    )));
                }
            }
        }
        let r = r.clone();
        tokio::task::spawn_blocking(move || tailor_pricing::markdown::plan(&r))
            .await
            .map_err(|e| EngineError::Io(e.to_string()))?
            .map_err(EngineError::Invalid)
    }

    /// Quotes `skus` on `channel` (for `user` when given: personal offers, with consent).
    pub async fn quote_prices(
        &self,
        skus: &[String],
        channel: &str,
        zone: &str,
        user: Option<&str>,
        quantity: u32,
    ) -> Result<Vec<PriceQuote>, EngineError> {
        if skus.is_empty() || skus.len() > 200 {
            return Err(EngineError::Invalid(FieldError::invalid("sku", "give 1 to 200 SKUs, comma-separated")));
        }
        if !(1..=10_000).contains(&quantity) {
            return Err(EngineError::Invalid(FieldError::invalid("quantity", "between 1 and 10000")));
        }
        let now = now_millis();
        let promotions = self.promotions().await?;
        let mut conn = self.db().reader().acquire().await?;
        let (offers, purpose) = match user {
            Some(u) => self.personal_offers(&mut conn, u, now).await?,
            None => (Vec::new(), None),
        };
        let products = products_of(&mut conn, skus).await?;
        let lists = list_prices(&mut conn, skus, zone, now).await?;
        let rails = guardrails_for(&mut conn, skus).await?;
        let mut quotes = Vec::with_capacity(skus.len());
        for (i, sku) in skus.iter().enumerate() {
            let Some(product) = products.get(sku.as_str()) else {
                let field = if skus.len() > 1 { format!("sku[{i}]") } else { "sku".into() };
                return Err(EngineError::Invalid(FieldError::unknown(field, format!("no product with SKU '{sku}'"))));
            };
            let (list_cents, currency, source) = match lists.get(sku.as_str()) {
                Some((c, cur, z)) => (
                    *c,
                    cur.clone(),
                    if z.is_empty() { "price book".to_string() } else { format!("price book, zone {z}") },
                ),
                None => match product.catalog_cents {
                    Some(c) => (c, product.currency.clone(), "catalog".to_string()),
                    None => {
                        return Err(EngineError::NoPrice(format!(
                            "{sku} has no price yet; set one with PUT /v1/prices/{sku}"
                        )))
                    }
                },
            };
            let (promoted, applied) =
                apply_promotions(list_cents, sku, product.category.as_deref(), channel, quantity, &promotions, now);
            let mut explanation =
                vec![format!("list price {} {currency} ({source}), the same on every channel", money(list_cents))];
            for a in &applied {
                let scope = if a.channel_only { format!(", {channel} only") } else { String::new() };
                explanation.push(format!("promotion '{}' saves {}{scope}", a.name, money(a.saved_cents)));
            }
            // Promotions, too, stay within the floor (cost and margin, or MAP) and the ceiling.
            let g = rails.get(sku.as_str()).or(rails.get(DEFAULT_GUARDRAILS));
            let floor = g.and_then(Guardrails::hard_floor).unwrap_or(0);
            let ceiling = g.and_then(|g| g.ceiling_cents).unwrap_or(i64::MAX);
            let price_cents = promoted.clamp(floor.min(ceiling), ceiling);
            if price_cents != promoted {
                explanation.push(format!("held at {} by the guardrails (floor or ceiling)", money(price_cents)));
            }
            for o in &offers {
                explanation.push(format!(
                    "personal offer: {}% off up to {} because {}",
                    o.percent_off,
                    money(o.max_discount_cents),
                    o.reason
                ));
            }
            if user.is_some() && purpose.is_none() {
                explanation.push("no personal offers: the customer has not granted personalization".into());
            }
            quotes.push(PriceQuote {
                sku: sku.clone(),
                channel: channel.to_string(),
                currency,
                list_cents,
                price_cents,
                total_cents: price_cents_total(list_cents, &applied, quantity, price_cents, promoted),
                promotions: applied,
                offers: offers.clone(),
                explanation,
                consent_purpose: purpose.map(str::to_string),
            });
        }
        Ok(quotes)
    }
}

/// The total for `quantity`: list less what promotions saved, or the held unit price when the
/// guardrails moved it.
fn price_cents_total(list_cents: i64, applied: &[Applied], quantity: u32, unit: i64, promoted_unit: i64) -> i64 {
    if unit != promoted_unit {
        return unit * i64::from(quantity);
    }
    list_cents * i64::from(quantity) - applied.iter().map(|a| a.saved_cents).sum::<i64>()
}

/// The guardrails stored for `skus` and the defaults (`*`), in one query.
async fn guardrails_for(
    conn: &mut AnyConnection,
    skus: &[String],
) -> Result<std::collections::HashMap<String, Guardrails>, EngineError> {
    let sql =
        format!("SELECT sku, body FROM price_guardrails WHERE sku = $1 OR sku IN {}", placeholders(2, skus.len()));
    let mut q = sqlx::query(&sql).bind(DEFAULT_GUARDRAILS);
    for s in skus {
        q = q.bind(s.clone());
    }
    Ok(q.fetch_all(&mut *conn)
        .await?
        .iter()
        .filter_map(|r| Some((r.get::<String, _>(0), serde_json::from_str(&r.get::<String, _>(1)).ok()?)))
        .collect())
}

struct ProductPrice {
    category: Option<String>,
    catalog_cents: Option<i64>,
    currency: String,
}

async fn product_of(conn: &mut AnyConnection, sku: &str) -> Result<ProductPrice, EngineError> {
    let row = sqlx::query("SELECT category, price_cents, currency FROM products WHERE id = $1")
        .bind(sku.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| EngineError::Invalid(FieldError::unknown("sku", format!("no product with SKU '{sku}'"))))?;
    Ok(ProductPrice { category: row.get(0), catalog_cents: row.get(1), currency: row.get(2) })
}

/// Category, catalog price and currency of each known SKU among `skus`, in one query.
async fn products_of(
    conn: &mut AnyConnection,
    skus: &[String],
) -> Result<std::collections::HashMap<String, ProductPrice>, EngineError> {
    let sql =
        format!("SELECT id, category, price_cents, currency FROM products WHERE id IN {}", placeholders(1, skus.len()));
    let mut q = sqlx::query(&sql);
    for s in skus {
        q = q.bind(s.clone());
    }
    Ok(q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get(0), ProductPrice { category: r.get(1), catalog_cents: r.get(2), currency: r.get(3) }))
        .collect())
}

/// The list prices in force for `zone` (else the default list) of `skus`, in one query.
async fn list_prices(
    conn: &mut AnyConnection,
    skus: &[String],
    zone: &str,
    now: i64,
) -> Result<std::collections::HashMap<String, (i64, String, String)>, EngineError> {
    let sql = format!(
        "SELECT sku, cents, currency, zone FROM price_list WHERE sku IN {} AND (zone = $1 OR zone = '') AND valid_from <= $2 \
         AND (valid_to IS NULL OR valid_to > $2) ORDER BY sku, zone DESC, valid_from DESC",
        placeholders(3, skus.len())
    );
    let mut q = sqlx::query(&sql).bind(zone.to_string()).bind(now);
    for s in skus {
        q = q.bind(s.clone());
    }
    let mut out = std::collections::HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        out.entry(r.get::<String, _>(0)).or_insert_with(|| (r.get(1), r.get(2), r.get(3)));
    }
    Ok(out)
}

/// The list price in force for `zone` (falling back to the default list): (cents, currency, zone).
async fn list_price(
    conn: &mut AnyConnection,
    sku: &str,
    zone: &str,
    now: i64,
) -> Result<Option<(i64, String, String)>, EngineError> {
    let row = sqlx::query(
        "SELECT cents, currency, zone FROM price_list WHERE sku = $1 AND (zone = $2 OR zone = '') AND valid_from <= $3 \
         AND (valid_to IS NULL OR valid_to > $3) ORDER BY zone DESC, valid_from DESC LIMIT 1",
    )
    .bind(sku.to_string())
    .bind(zone.to_string())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

async fn guardrails_of(conn: &mut AnyConnection, sku: &str) -> Result<Guardrails, EngineError> {
    let rows = sqlx::query("SELECT sku, body FROM price_guardrails WHERE sku = $1 OR sku = $2")
        .bind(sku.to_string())
        .bind(DEFAULT_GUARDRAILS)
        .fetch_all(&mut *conn)
        .await?;
    let pick = |key: &str| {
        rows.iter()
            .find(|r| r.get::<String, _>(0) == key)
            .and_then(|r| serde_json::from_str(&r.get::<String, _>(1)).ok())
    };
    Ok(pick(sku).or_else(|| pick(DEFAULT_GUARDRAILS)).unwrap_or_default())
}

async fn record(conn: &mut AnyConnection, d: &PriceDecision, now: i64) -> Result<(), EngineError> {
    sqlx::query(
        "INSERT INTO price_changes (id, sku, zone, from_cents, proposed_cents, to_cents, clamps, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(d.sku.clone())
    .bind(d.zone.clone())
    .bind(d.previous_cents)
    .bind(d.proposed_cents)
    .bind(d.cents)
    .bind(serde_json::to_string(&d.clamps).unwrap_or_default())
    .bind(d.reason.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Days the available stock lasts at the last four weeks' sales (None: nothing tracked or sold).
async fn stock_cover_days(conn: &mut AnyConnection, sku: &str, now: i64) -> Result<Option<f64>, EngineError> {
    let on_hand: Option<i64> =
        sqlx::query("SELECT CAST(SUM(on_hand - reserved - damaged) AS BIGINT) FROM inventory_stock WHERE sku = $1")
            .bind(sku.to_string())
            .fetch_one(&mut *conn)
            .await?
            .get(0);
    let Some(on_hand) = on_hand else { return Ok(None) };
    let sold: Option<i64> = sqlx::query(
        "SELECT CAST(SUM(l.quantity) AS BIGINT) FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
         WHERE l.product_id = $1 AND o.ts > $2",
    )
    .bind(sku.to_string())
    .bind(now - 28 * DAY_MS)
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    let per_day = sold.unwrap_or(0) as f64 / 28.0;
    Ok(Some(if per_day > 0.0 {
        on_hand.max(0) as f64 / per_day
    } else if on_hand > 0 {
        f64::INFINITY
    } else {
        0.0
    }))
}

impl Engine {
    /// A customer's personal offers (behaviour only; none without personalization consent), with
    /// the consent purpose used. An offer is issued once and shown again while valid; issuing
    /// happens in a write transaction holding the customer's offer lock, so concurrent quotes
    /// cannot issue past the per-customer cap.
    async fn personal_offers(
        &self,
        conn: &mut AnyConnection,
        user: &str,
        now: i64,
    ) -> Result<(Vec<Offer>, Option<&'static str>), EngineError> {
        let (root, members) = crate::loyalty::account_of(conn, user).await.map_err(|e| match e {
            EngineError::Invalid(f) => EngineError::Invalid(FieldError { field: "user".into(), ..f }),
            e => e,
        })?;
        if !tailor_profiles::has_consent(conn, &members, Purpose::Personalization).await? {
            return Ok((Vec::new(), None));
        }
        let purpose = Some(Purpose::Personalization.as_str());
        let (valid, offered) = offers_issued(conn, &root, now).await?;
        if !valid.is_empty() {
            return Ok((valid, purpose));
        }
        // Decided on the reader; most customers earn none, and then nothing is written.
        if new_offers(conn, &members, offered, now).await?.is_empty() {
            return Ok((Vec::new(), purpose));
        }
        let mut tx = self.db().writer().begin().await?;
        if tx.backend_name() == "PostgreSQL" {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_key(&format!("offers:{root}")))
                .execute(&mut *tx)
                .await?;
        }
        let (valid, offered) = offers_issued(&mut tx, &root, now).await?;
        if !valid.is_empty() {
            return Ok((valid, purpose));
        }
        let offers = new_offers(&mut tx, &members, offered, now).await?;
        for o in &offers {
            sqlx::query(
                "INSERT INTO price_offers (id, profile_id, kind, max_discount_cents, percent_off, reason, valid_until, at, purpose) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(root.clone())
            .bind(o.kind.clone())
            .bind(o.max_discount_cents)
            .bind(o.percent_off)
            .bind(o.reason.clone())
            .bind(now + i64::from(o.valid_days) * DAY_MS)
            .bind(now)
            .bind(Purpose::Personalization.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((offers, purpose))
    }
}

/// Offers issued to `root` this period: those still valid, and the cents offered in all.
async fn offers_issued(conn: &mut AnyConnection, root: &str, now: i64) -> Result<(Vec<Offer>, i64), EngineError> {
    let period = i64::from(OfferPolicy::default().period_days) * DAY_MS;
    let live = sqlx::query(
        "SELECT kind, percent_off, max_discount_cents, reason, valid_until FROM price_offers WHERE profile_id = $1 AND at > $2",
    )
    .bind(root.to_string())
    .bind(now - period)
    .fetch_all(&mut *conn)
    .await?;
    let offered = live.iter().map(|r| r.get::<i64, _>(2)).sum();
    let valid = live
        .iter()
        .filter(|r| r.get::<i64, _>(4) > now)
        .map(|r| Offer {
            kind: r.get(0),
            percent_off: r.get(1),
            max_discount_cents: r.get(2),
            valid_days: ((r.get::<i64, _>(4) - now) as f64 / DAY_MS as f64).ceil() as u32,
            reason: r.get(3),
        })
        .collect();
    Ok((valid, offered))
}

/// The offers the customer's behaviour earns now, given `offered` cents already this period.
async fn new_offers(
    conn: &mut AnyConnection,
    members: &[String],
    offered: i64,
    now: i64,
) -> Result<Vec<Offer>, EngineError> {
    let (orders, cart) = tailor_profiles::orders_and_cart(conn, members).await?;
    let mut facts: Vec<Fact> = orders.into_iter().map(|(at, cents)| Fact::Ordered { at, cents }).collect();
    if let Some(at) = cart.iter().map(|c| c.0).max() {
        facts.push(Fact::Cart { at, cents: cart.iter().map(|c| c.1).sum() });
    }
    Ok(offers_for(&Behavior::from_facts(&facts, now), &OfferPolicy::default(), offered))
}

/// An erased customer's personal offers, deleted in the erasure's transaction.
pub(crate) async fn forget_offers(conn: &mut sqlx::AnyConnection, profiles: &[String]) -> Result<(), EngineError> {
    for p in profiles {
        sqlx::query("DELETE FROM price_offers WHERE profile_id = $1").bind(p.clone()).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A customer's personal offers, for an export: kind, reason, percent off, cap, valid until.
pub(crate) async fn offers_of(
    conn: &mut sqlx::AnyConnection,
    profiles: &[String],
) -> Result<Vec<serde_json::Value>, EngineError> {
    let mut out = Vec::new();
    for p in profiles {
        let rows = sqlx::query(
            "SELECT kind, reason, percent_off, max_discount_cents, valid_until, at, purpose FROM price_offers WHERE profile_id = $1 ORDER BY at",
        )
        .bind(p.clone())
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.iter().map(|r| {
            serde_json::json!({
                "kind": r.get::<String, _>(0),
                "reason": r.get::<String, _>(1),
                "percentOff": r.get::<f64, _>(2),
                "maxDiscountCents": r.get::<i64, _>(3),
                "validUntil": tailor_core::time::format_millis(r.get(4)),
                "issuedAt": tailor_core::time::format_millis(r.get(5)),
                "consentPurpose": r.get::<String, _>(6),
            })
        }));
    }
    Ok(out)
}
