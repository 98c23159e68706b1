//! What a batch of messages reads about products, once for the whole batch: whether each item
//! is sold out, its name, its guardrails, and each customer's quote for their cart — the same
//! quote `GET /v1/prices?channel=web&user=…` gives (promotions, the book, the guardrails, and
//! personal offers for customers who grant personalization). Items a message needs beyond the
//! batch's carts (a replacement, a suggestion) are read on demand.

use std::collections::{BTreeSet, HashMap};

use tailor_core::Purpose;
use tailor_pricing::guardrails::GuardrailSet;
use tailor_pricing::quote::{quote, ListPrice, PriceQuote, QuoteContext, QuoteItem};
use tailor_profiles::Contact;

use crate::{Engine, EngineError};

/// SKUs per `IN` list (SQLite binds a statement's parameters in time quadratic in their number).
const SKUS_PER_QUERY: usize = 250;
/// The channel journey messages are priced for.
const CHANNEL: &str = "web";

/// Products as one batch of messages sees them.
#[derive(Default)]
pub(super) struct Shelf {
    sold_out: HashMap<String, bool>,
    names: HashMap<String, String>,
    categories: HashMap<String, Option<String>>,
    rails: Option<GuardrailSet>,
    quotes: HashMap<String, Vec<PriceQuote>>,
}

impl Shelf {
    /// Reads what the carts of `customers` need, in a few queries for all of them.
    pub(super) async fn load(engine: &Engine, customers: &[&Contact]) -> Result<Shelf, EngineError> {
        let skus: Vec<String> = customers
            .iter()
            .flat_map(|c| c.cart.iter().map(|(sku, _)| sku.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut shelf = Shelf::default();
        if skus.is_empty() {
            return Ok(shelf);
        }
        let now = tailor_core::time::now_millis();
        let promotions = engine.promotions().await?;
        let mut conn = engine.db().reader().acquire().await?;
        for chunk in skus.chunks(SKUS_PER_QUERY) {
            let sql = format!(
                "SELECT sku, CAST(SUM(on_hand - reserved - damaged) AS BIGINT) FROM inventory_stock WHERE sku IN {} GROUP BY sku",
                tailor_store::placeholders(1, chunk.len())
            );
            for r in tailor_store::bind_all(sqlx::query(&sql), chunk).fetch_all(&mut *conn).await? {
                use tailor_store::Row;
                let on_hand: Option<i64> = r.get(1);
                shelf.sold_out.insert(r.get(0), on_hand.is_some_and(|n| n <= 0));
            }
            let sql =
                format!("SELECT id, title FROM products WHERE id IN {}", tailor_store::placeholders(1, chunk.len()));
            for r in tailor_store::bind_all(sqlx::query(&sql), chunk).fetch_all(&mut *conn).await? {
                use tailor_store::Row;
                shelf.names.insert(r.get(0), r.get(1));
            }
        }
        // Untracked stock is never sold out.
        for sku in &skus {
            shelf.sold_out.entry(sku.clone()).or_insert(false);
        }
        let products: HashMap<String, tailor_catalog::ProductPrice> =
            tailor_catalog::product_prices(&mut conn, &skus).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
        for (sku, p) in &products {
            shelf.categories.insert(sku.clone(), p.category.clone());
        }
        let lists = tailor_pricing::store::list_prices(&mut conn, &skus, "", now).await?;
        let rails = tailor_pricing::store::guardrails_for(&mut conn, &skus).await?;
        for c in customers {
            if shelf.quotes.contains_key(&c.id) {
                continue;
            }
            // Personal offers only for who grants personalization (as a quote for them reads).
            let (offers, purpose) = if c.grants(Purpose::Personalization) {
                engine.personal_offers(&mut conn, &c.id, now).await?
            } else {
                (Vec::new(), None)
            };
            let ctx = QuoteContext {
                channel: CHANNEL,
                quantity: 1,
                now,
                promotions: &promotions,
                offers: &offers,
                for_customer: true,
                consent_purpose: purpose,
            };
            let mut quoted = Vec::with_capacity(c.cart.len());
            for (sku, _) in &c.cart {
                let Some(product) = products.get(sku) else { continue };
                let Some(list) = ListPrice::in_force(lists.get(sku), product.price_cents, &product.currency) else {
                    continue;
                };
                let category = product.category.as_deref();
                quoted.push(quote(&ctx, QuoteItem { sku, category, list: &list, guardrails: rails.get(sku) }));
            }
            shelf.quotes.insert(c.id.clone(), quoted);
        }
        shelf.rails = Some(rails);
        Ok(shelf)
    }

    /// Whether `sku` is sold out now (untracked stock never is).
    pub(super) async fn sold_out(&self, engine: &Engine, sku: &str) -> Result<bool, EngineError> {
        if let Some(s) = self.sold_out.get(sku) {
            return Ok(*s);
        }
        let mut conn = engine.db().reader().acquire().await?;
        let on_hand =
            tailor_inventory::units_on_hand(&mut conn, sku).await.map_err(|e| EngineError::Io(e.to_string()))?;
        Ok(on_hand.is_some_and(|n| n <= 0))
    }

    /// The product's name (its SKU when it has none).
    pub(super) async fn name(&self, engine: &Engine, sku: &str) -> String {
        if let Some(n) = self.names.get(sku) {
            return n.clone();
        }
        engine.product(sku).await.map(|p| p.title).unwrap_or_else(|_| sku.to_string())
    }

    /// The product's category, if it has one (what earning rules match on).
    pub(super) async fn category(&self, engine: &Engine, sku: &str) -> Option<String> {
        if let Some(c) = self.categories.get(sku) {
            return c.clone();
        }
        engine.product(sku).await.ok().and_then(|p| p.category)
    }

    /// The hard floor of `sku`'s guardrails, if any.
    pub(super) async fn floor(&self, engine: &Engine, sku: &str) -> Result<Option<i64>, EngineError> {
        match &self.rails {
            Some(r) if self.names.contains_key(sku) => Ok(r.get(sku).hard_floor()),
            _ => Ok(engine.guardrails(sku).await?.hard_floor()),
        }
    }

    /// Quotes `skus` for `customer` as `GET /v1/prices?channel=web&user=…` does; SKUs without
    /// a price are left out.
    pub(super) async fn quotes(
        &self,
        engine: &Engine,
        customer: &str,
        skus: &[String],
    ) -> Result<Vec<PriceQuote>, EngineError> {
        if let Some(known) = self.quotes.get(customer) {
            if skus.iter().all(|s| known.iter().any(|q| &q.sku == s)) {
                return Ok(skus.iter().filter_map(|s| known.iter().find(|q| &q.sku == s).cloned()).collect());
            }
        }
        quotes_now(engine, customer, skus).await
    }
}

/// Quotes `skus` for the customer one request at a time (what the batch did not read).
async fn quotes_now(engine: &Engine, customer: &str, skus: &[String]) -> Result<Vec<PriceQuote>, EngineError> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    match engine.quote_prices(skus, CHANNEL, "", Some(customer), 1).await {
        Ok(q) => Ok(q),
        Err(EngineError::NoPrice(_) | EngineError::Invalid(_)) => {
            let mut out = Vec::new();
            for sku in skus {
                if let Ok(mut q) = engine.quote_prices(std::slice::from_ref(sku), CHANNEL, "", Some(customer), 1).await
                {
                    out.append(&mut q);
                }
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}
