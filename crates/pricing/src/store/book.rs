//! The price book (`price_list`: list prices per product and zone with their validity) and the
//! decisions recorded with every price set (`price_changes`).

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};
use tailor_store::placeholders;

use crate::decision::PriceDecision;
use crate::quote::BookPrice;
use crate::PricingError;

/// The list price of `sku` in force at `at` for `zone`, falling back to the default list.
pub async fn list_price(
    conn: &mut AnyConnection,
    sku: &str,
    zone: &str,
    at: i64,
) -> Result<Option<BookPrice>, PricingError> {
    let row = sqlx::query(
        "SELECT cents, currency, zone FROM price_list WHERE sku = $1 AND (zone = $2 OR zone = '') AND valid_from <= $3 \
         AND (valid_to IS NULL OR valid_to > $3) ORDER BY zone DESC, valid_from DESC LIMIT 1",
    )
    .bind(sku.to_string())
    .bind(zone.to_string())
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| BookPrice { cents: r.get(0), currency: r.get(1), zone: r.get(2) }))
}

/// The list prices in force at `at` for `zone` (else the default list) of `skus`, in one query;
/// SKUs without one are absent.
pub async fn list_prices(
    conn: &mut AnyConnection,
    skus: &[String],
    zone: &str,
    at: i64,
) -> Result<HashMap<String, BookPrice>, PricingError> {
    let sql = format!(
        "SELECT sku, cents, currency, zone FROM price_list WHERE sku IN {} AND (zone = $1 OR zone = '') AND valid_from <= $2 \
         AND (valid_to IS NULL OR valid_to > $2) ORDER BY sku, zone DESC, valid_from DESC",
        placeholders(3, skus.len())
    );
    let mut q = sqlx::query(&sql).bind(zone.to_string()).bind(at);
    for s in skus {
        q = q.bind(s.clone());
    }
    let mut out = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        out.entry(r.get::<String, _>(0)).or_insert_with(|| BookPrice {
            cents: r.get(1),
            currency: r.get(2),
            zone: r.get(3),
        });
    }
    Ok(out)
}

/// Sets the price `decision` decided in the book, in `currency`, valid from `from` until `to`,
/// and records the decision as of `now`: both in the caller's transaction, so a price is never
/// set without its reason.
pub async fn set_list_price(
    conn: &mut AnyConnection,
    decision: &PriceDecision,
    currency: &str,
    from: i64,
    to: Option<i64>,
    now: i64,
) -> Result<(), PricingError> {
    sqlx::query(
        "INSERT INTO price_list (sku, zone, currency, cents, valid_from, valid_to) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (sku, zone, valid_from) DO UPDATE SET cents = excluded.cents, currency = excluded.currency, valid_to = excluded.valid_to",
    )
    .bind(decision.sku.clone())
    .bind(decision.zone.clone())
    .bind(currency.to_string())
    .bind(decision.cents)
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO price_changes (id, sku, zone, from_cents, proposed_cents, to_cents, clamps, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(decision.sku.clone())
    .bind(decision.zone.clone())
    .bind(decision.previous_cents)
    .bind(decision.proposed_cents)
    .bind(decision.cents)
    .bind(serde_json::to_string(&decision.clamps).unwrap_or_default())
    .bind(decision.reason.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The recorded price decisions for `sku`, newest first, at most `limit`.
pub async fn price_history(
    conn: &mut AnyConnection,
    sku: &str,
    limit: i64,
) -> Result<Vec<PriceDecision>, PricingError> {
    let rows = sqlx::query(
        "SELECT zone, from_cents, proposed_cents, to_cents, clamps, reason FROM price_changes WHERE sku = $1 \
         ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(sku.to_string())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| PriceDecision {
            sku: sku.to_string(),
            zone: r.get(0),
            previous_cents: r.get(1),
            proposed_cents: r.get(2),
            cents: r.get(3),
            clamps: super::parse(&r.get::<String, _>(4)).unwrap_or_default(),
            reason: r.get(5),
        })
        .collect())
}
