//! Pricing through the engine: the price book (list prices per product and zone, the same on
//! every channel), guardrails per product, promotions, market conditions, repricing under
//! guardrails with every decision recorded, and price quotes with promotions and behaviour-only
//! personal offers.
//!
//! The tables and the rules belong to `tailor_pricing` (its `store` and pure modules); this
//! layer composes them with what other crates know: each product's currency, category and
//! catalog price (catalog), stock on hand (inventory), units sold, consent and behaviour
//! (profiles).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::AnyConnection;
use tailor_catalog::ProductPrice;
use tailor_core::money::format_cents;
use tailor_core::time::now_millis;
use tailor_core::{FieldError, Purpose};
use tailor_pricing::book::Promotion;
use tailor_pricing::decision::{decide, ListPriceInput, PriceDecision};
use tailor_pricing::guardrails::Guardrails;
use tailor_pricing::offers::{facts_from, offers_for, Behavior, Offer, OfferPolicy};
use tailor_pricing::quote::{check_request, quote, ListPrice, PriceQuote, QuoteContext, QuoteItem};
use tailor_pricing::reprice::{cover_window_start, reprice, stock_cover_days, MarketInput, MARKET_WINDOW_DAYS};
use tailor_pricing::{store, PricingError};

use crate::{Engine, EngineError};

const DAY_MS: i64 = 86_400_000;

impl From<PricingError> for EngineError {
    fn from(e: PricingError) -> Self {
        match e {
            PricingError::Invalid(f) => EngineError::Invalid(f),
            PricingError::Conflict(m) => EngineError::Conflict(m),
            PricingError::Stored(m) => EngineError::Io(m),
            PricingError::Db(d) => EngineError::Db(d),
        }
    }
}

impl Engine {
    /// The promotions, from memory for a few seconds after a read.
    pub async fn promotions(&self) -> Result<Arc<Vec<Promotion>>, EngineError> {
        Ok(self.inner.prices.list(self.db()).await?)
    }

    /// Creates or replaces a promotion.
    pub async fn put_promotion(&self, promotion: &Promotion) -> Result<(), EngineError> {
        Ok(self.inner.prices.put(self.db(), promotion).await?)
    }

    /// Removes a promotion; false when there was none.
    pub async fn delete_promotion(&self, id: &str) -> Result<bool, EngineError> {
        Ok(self.inner.prices.delete(self.db(), id).await?)
    }

    /// A product's guardrails (its own, else the defaults stored under `*`).
    pub async fn guardrails(&self, sku: &str) -> Result<Guardrails, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::guardrails_of(&mut conn, sku).await?)
    }

    /// Sets a product's guardrails (`*`: the defaults for every product without its own).
    pub async fn set_guardrails(&self, sku: &str, g: &Guardrails) -> Result<(), EngineError> {
        let mut conn = self.db().writer().acquire().await?;
        Ok(store::set_guardrails(&mut conn, sku, g).await?)
    }

    /// Proposes a list price: it passes the product's guardrails, and the decision (with every
    /// clamp and the reason) is recorded with the price it sets.
    pub async fn propose_list_price(&self, sku: &str, input: &ListPriceInput) -> Result<PriceDecision, EngineError> {
        let now = now_millis();
        let from = input.check(now).map_err(EngineError::Invalid)?;
        let mut tx = self.db().writer().begin().await?;
        let product = product_of(&mut tx, sku).await?;
        input.check_currency(sku, &product.currency).map_err(EngineError::Invalid)?;
        let rails = store::guardrails_of(&mut tx, sku).await?;
        let previous = store::list_price(&mut tx, sku, &input.zone, from).await?.map(|b| b.cents);
        let day_before = store::list_price(&mut tx, sku, &input.zone, from - DAY_MS).await?.map(|b| b.cents);
        let catalog = product.price_cents;
        let decision = decide(sku, input, &rails, previous.or(catalog), day_before.or(catalog));
        store::set_list_price(&mut tx, &decision, &input.currency, from, input.valid_to, now).await?;
        tx.commit().await?;
        if !decision.clamps.is_empty() {
            tracing::info!(sku, clamps = decision.clamps.len(), "a proposed price was held by its guardrails");
        }
        Ok(decision)
    }

    /// The recorded price decisions for a product, newest first.
    pub async fn price_history(&self, sku: &str, limit: i64) -> Result<Vec<PriceDecision>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::price_history(&mut conn, sku, limit).await?)
    }

    /// Records a competitor's price or a demand signal for a product.
    pub async fn record_market(&self, m: &MarketInput) -> Result<(), EngineError> {
        m.check().map_err(EngineError::Invalid)?;
        let mut conn = self.db().writer().acquire().await?;
        product_of(&mut conn, &m.sku).await?;
        Ok(store::record_market(&mut conn, m, now_millis()).await?)
    }

    /// Reprices a product's default list from market conditions: stock cover (scarce: never
    /// lower; overstocked: step down to clear), the lowest competitor price of the last week,
    /// and demand signals, inside its guardrails. The decision says which condition moved it.
    pub async fn reprice(&self, sku: &str) -> Result<PriceDecision, EngineError> {
        let now = now_millis();
        let mut conn = self.db().reader().acquire().await?;
        let product = product_of(&mut conn, sku).await?;
        let listed = store::list_price(&mut conn, sku, "", now).await?.map(|b| b.cents);
        let current = listed.or(product.price_cents).ok_or_else(|| {
            EngineError::NoPrice(format!("{sku} has no list price yet; set one with PUT /v1/prices/{sku}"))
        })?;
        let cover = stock_cover(&mut conn, sku, now).await?;
        let market = store::recent_market(&mut conn, sku, now - MARKET_WINDOW_DAYS * DAY_MS).await?;
        drop(conn);
        let proposal = reprice(current, cover, &market);
        let input = ListPriceInput {
            zone: String::new(),
            currency: product.currency,
            cents: proposal.cents,
            valid_from: Some(now),
            valid_to: None,
            reason: Some(proposal.reason()),
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
            let rails = store::guardrails_of(&mut conn, sku).await?;
            for (i, p) in r.prices.iter().enumerate() {
                if let Some((rule, cents)) = rails.refusal((p * 100.0).round() as i64) {
                    return Err(EngineError::Invalid(FieldError::invalid(
                        format!("prices[{i}]"),
                        format!("{p} is outside {sku}'s guardrails ({rule:?} would make it {})", format_cents(cents)),
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
        check_request(skus.len(), quantity).map_err(EngineError::Invalid)?;
        let now = now_millis();
        let promotions = self.promotions().await?;
        let mut conn = self.db().reader().acquire().await?;
        let (offers, purpose) = match user {
            Some(u) => self.personal_offers(&mut conn, u, now).await?,
            None => (Vec::new(), None),
        };
        let products: HashMap<String, ProductPrice> =
            tailor_catalog::product_prices(&mut conn, skus).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let lists = store::list_prices(&mut conn, skus, zone, now).await?;
        let rails = store::guardrails_for(&mut conn, skus).await?;
        drop(conn);
        let ctx = QuoteContext {
            channel,
            quantity,
            now,
            promotions: &promotions,
            offers: &offers,
            for_customer: user.is_some(),
            consent_purpose: purpose,
        };
        let mut quotes = Vec::with_capacity(skus.len());
        for (i, sku) in skus.iter().enumerate() {
            let Some(product) = products.get(sku.as_str()) else {
                let field = if skus.len() > 1 { format!("sku[{i}]") } else { "sku".into() };
                return Err(EngineError::Invalid(FieldError::unknown(field, format!("no product with SKU '{sku}'"))));
            };
            let list = ListPrice::in_force(lists.get(sku.as_str()), product.price_cents, &product.currency)
                .ok_or_else(|| {
                    EngineError::NoPrice(format!("{sku} has no price yet; set one with PUT /v1/prices/{sku}"))
                })?;
            let category = product.category.as_deref();
            quotes.push(quote(&ctx, QuoteItem { sku, category, list: &list, guardrails: rails.get(sku) }));
        }
        Ok(quotes)
    }

    /// A customer's personal offers (behaviour only; none without personalization consent), with
    /// the consent purpose used. An offer is issued once and shown again while valid; issuing
    /// happens in a write transaction holding the customer's offer lock, so concurrent quotes
    /// cannot issue past the per-customer cap.
    pub(crate) async fn personal_offers(
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
        let purpose = Purpose::Personalization.as_str();
        let policy = OfferPolicy::default();
        let issued = store::offers_issued(conn, &root, &policy, now).await?;
        if !issued.valid.is_empty() {
            return Ok((issued.valid, Some(purpose)));
        }
        // Decided on the reader; most customers earn none, and then nothing is written.
        if earned_offers(conn, &members, &policy, issued.offered_cents, now).await?.is_empty() {
            return Ok((Vec::new(), Some(purpose)));
        }
        let mut tx = self.db().writer().begin().await?;
        store::lock_offers(&mut tx, &root).await?;
        let issued = store::offers_issued(&mut tx, &root, &policy, now).await?;
        if !issued.valid.is_empty() {
            return Ok((issued.valid, Some(purpose)));
        }
        let offers = earned_offers(&mut tx, &members, &policy, issued.offered_cents, now).await?;
        store::issue_offers(&mut tx, &root, &offers, purpose, now).await?;
        tx.commit().await?;
        Ok((offers, Some(purpose)))
    }
}

/// A product as pricing needs it (currency, category, catalog price), read on `conn`; an
/// unknown SKU is an input error naming `sku`.
pub(crate) async fn product_of(conn: &mut AnyConnection, sku: &str) -> Result<ProductPrice, EngineError> {
    tailor_catalog::product_prices(conn, &[sku.to_string()])
        .await?
        .pop()
        .ok_or_else(|| EngineError::Invalid(FieldError::unknown("sku", format!("no product with SKU '{sku}'"))))
}

/// Days the stock on hand lasts at the recent sales rate (None: its stock is not tracked).
async fn stock_cover(conn: &mut AnyConnection, sku: &str, now: i64) -> Result<Option<f64>, EngineError> {
    let Some(on_hand) = tailor_inventory::units_on_hand(conn, sku).await? else { return Ok(None) };
    let sold = tailor_profiles::units_sold(conn, sku, cover_window_start(now), i64::MAX).await?;
    Ok(stock_cover_days(Some(on_hand), sold))
}

/// The offers the behaviour of the customer made of `members` earns now, given `offered` cents
/// already this period.
async fn earned_offers(
    conn: &mut AnyConnection,
    members: &[String],
    policy: &OfferPolicy,
    offered: i64,
    now: i64,
) -> Result<Vec<Offer>, EngineError> {
    let (orders, cart) = tailor_profiles::orders_and_cart(conn, members).await?;
    Ok(offers_for(&Behavior::from_facts(&facts_from(&orders, &cart), now), policy, offered))
}
