//! Back in stock and price drops as journey triggers, durably: the intake records a watch when
//! a customer views or adds an item that is sold out, or views one at a price (only while an
//! unpaused journey starts from that trigger); each scheduler round fires the watches whose
//! item is back or cheaper, in one transaction with the journeys they start, so none fires
//! twice and none is lost to a crash. A message shows the watches that fired, re-checked at
//! send time (still in stock, still cheaper).

use serde_json::{json, Value};
use tailor_campaigns::store::{self, Saved};
use tailor_campaigns::watches::{self, BACK_IN_STOCK, PRICE_DROP};
use tailor_profiles::Contact;
use tailor_store::Row;

use super::shelf::Shelf;
use crate::{Engine, EngineError};

/// The channel watched prices are quoted for (what a shopper on the web shop sees).
const CHANNEL: &str = "web";
/// An open watch lapses after this long (ms).
const LAPSE_MS: i64 = 30 * 86_400_000;
/// A message shows the watches that fired within this long (ms).
const SHOWN_MS: i64 = 14 * 86_400_000;

/// Which watches the unpaused journeys need: (back in stock, price drop).
pub(super) fn wanted(journeys: &[Saved]) -> (bool, bool) {
    let starts = |e: &str| journeys.iter().any(|j| j.def.trigger.event == e);
    (starts(BACK_IN_STOCK), starts(PRICE_DROP))
}

/// The product a view or add names (Segment's `product_id`, or `sku`).
pub(super) fn product_of(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    tailor_core::commerce::product_id(v.get("properties")?)
}

/// In the intake's transaction: `customer` viewed or added (`event`) `sku`; records the
/// watches `wanted` asks for.
pub(super) async fn on_interest(
    engine: &Engine,
    conn: &mut sqlx::AnyConnection,
    wanted: (bool, bool),
    customer: &str,
    event: &str,
    sku: &str,
    now: i64,
) -> Result<(), EngineError> {
    if wanted.0 && matches!(event, "Product Viewed" | "Product Added") {
        let on_hand = tailor_inventory::units_on_hand(conn, sku).await.map_err(|e| EngineError::Io(e.to_string()))?;
        if on_hand.is_some_and(|n| n <= 0) {
            watches::watch(conn, BACK_IN_STOCK, customer, sku, None, now).await?;
        }
    }
    if wanted.1 && event == "Product Viewed" {
        if let Some(price) = list_price(engine, sku).await? {
            watches::watch(conn, PRICE_DROP, customer, sku, Some(price), now).await?;
        }
    }
    Ok(())
}

/// The price anyone sees for `sku` on the web shop now (no personal offer), if it has one.
async fn list_price(engine: &Engine, sku: &str) -> Result<Option<i64>, EngineError> {
    match engine.quote_prices(&[sku.to_string()], CHANNEL, "", None, 1).await {
        Ok(q) => Ok(q.first().map(|q| q.price_cents)),
        Err(EngineError::NoPrice(_) | EngineError::Invalid(_) | EngineError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Fires the open watches whose item is back or cheaper and starts their journeys; returns
/// how many fired. Each watched item is checked once per round, however many watch it.
pub(super) async fn fire(engine: &Engine) -> Result<u64, EngineError> {
    let now = engine.journey_clock().now();
    // Most rounds have no open watch: looked at on a reader, without the intake's lock.
    {
        let mut conn = engine.db().reader().acquire().await?;
        if !watches::any_open(&mut conn).await? {
            return Ok(0);
        }
    }
    let mut tx = engine.db().writer().begin().await?;
    // One engine at a time, as for the intake: a watch starts its journeys once.
    super::intake::lock_intake(engine, &mut tx).await?;
    watches::expire(&mut tx, now.saturating_sub(LAPSE_MS)).await?;
    // Items back in stock, and the price now of items some watcher saw dearer.
    let mut firing: Vec<(String, String, Option<i64>)> = Vec::new();
    for (kind, sku, highest) in watches::open_items(&mut tx).await? {
        if kind == BACK_IN_STOCK {
            let on_hand =
                tailor_inventory::units_on_hand(&mut tx, &sku).await.map_err(|e| EngineError::Io(e.to_string()))?;
            if on_hand.is_some_and(|n| n > 0) {
                firing.push((kind, sku, None));
            }
        } else if let (Some(highest), Some(price)) = (highest, list_price(engine, &sku).await?) {
            if price < highest {
                firing.push((kind, sku, Some(price)));
            }
        }
    }
    if firing.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let journeys: Vec<Saved> = store::journeys(&mut tx).await?.into_iter().filter(|j| !j.paused).collect();
    let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut *tx).await?.get(0);
    let mut fired = 0;
    for (kind, sku, price) in &firing {
        for w in watches::open_on(&mut tx, kind, sku).await? {
            // A price drop fires for whoever saw it dearer than it is now.
            let cheaper = match (price, w.price_cents) {
                (Some(now), Some(seen)) => *now < seen,
                (None, _) => true,
                _ => false,
            };
            if !cheaper || !watches::fire(&mut tx, &w, now).await? {
                continue;
            }
            fired += 1;
            for j in &journeys {
                super::intake::on_event(&mut tx, j, &w.customer_id, &w.kind, (seq, now), now).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(fired)
}

/// What a message shows of `contact`'s watches of `kind` that fired lately, re-checked now:
/// items back in stock (still in stock), or items cheaper than when viewed (still cheaper,
/// with the price then as `wasCents`), at the customer's price today.
pub(super) async fn shown(
    engine: &Engine,
    shelf: &Shelf,
    contact: &Contact,
    kind: &str,
    now: i64,
    explanation: &mut Vec<String>,
) -> Result<Vec<Value>, EngineError> {
    let fired = {
        let mut conn = engine.db().reader().acquire().await?;
        watches::fired_for(&mut conn, kind, &contact.id, now.saturating_sub(SHOWN_MS)).await?
    };
    let mut skus = Vec::new();
    for w in &fired {
        if shelf.sold_out(engine, &w.sku).await? {
            explanation.push(format!("{} is sold out again: left out", w.sku));
        } else {
            skus.push(w.sku.clone());
        }
    }
    let mut out = Vec::new();
    for q in shelf.quotes(engine, &contact.id, &skus).await? {
        let mut item = json!({"sku": q.sku, "name": shelf.name(engine, &q.sku).await, "quantity": 1,
            "priceCents": q.price_cents, "currency": q.currency});
        if kind == PRICE_DROP {
            let Some(was) = fired.iter().find(|w| w.sku == q.sku).and_then(|w| w.price_cents) else { continue };
            if q.price_cents >= was {
                explanation.push(format!("{} is no cheaper than when viewed now: left out", q.sku));
                continue;
            }
            item["wasCents"] = json!(was);
            explanation.push(format!("{} down from {was} to {} cents since viewed", q.sku, q.price_cents));
        } else {
            explanation.push(format!("{} back in stock at {} cents", q.sku, q.price_cents));
        }
        out.push(item);
    }
    Ok(out)
}
