//! Market inputs (`price_market`): the latest price each competitor reports and demand signals,
//! one row per product and source.

use sqlx::{AnyConnection, Row};

use crate::reprice::{MarketInput, MarketSignal};
use crate::PricingError;

/// Records a competitor's price or a demand signal as of `now` (replacing the source's last).
pub async fn record_market(conn: &mut AnyConnection, m: &MarketInput, now: i64) -> Result<(), PricingError> {
    sqlx::query(
        "INSERT INTO price_market (sku, source, cents, demand_index, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sku, source) DO UPDATE SET cents = excluded.cents, demand_index = excluded.demand_index, at = excluded.at",
    )
    .bind(m.sku.clone())
    .bind(m.source.clone())
    .bind(m.cents)
    .bind(tailor_store::Float(m.demand_index))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The market inputs for `sku` recorded after `since` (unix ms), oldest first.
pub async fn recent_market(conn: &mut AnyConnection, sku: &str, since: i64) -> Result<Vec<MarketSignal>, PricingError> {
    let rows =
        sqlx::query("SELECT source, cents, demand_index FROM price_market WHERE sku = $1 AND at > $2 ORDER BY at")
            .bind(sku.to_string())
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.iter().map(|r| MarketSignal { source: r.get(0), cents: r.get(1), demand_index: r.get(2) }).collect())
}
