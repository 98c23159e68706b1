//! What was sold, read from the orders this crate projects, for engines that price or plan by
//! sales (repricing's stock cover, price experiments) without reading the order tables.

use sqlx::{AnyConnection, Row};

use crate::graph::ProfileError;

/// Units of `sku` sold in orders placed from `from` (inclusive) until `until` (exclusive), unix
/// ms; lines keep the quantity the order recorded (refunds do not take units back).
pub async fn units_sold(conn: &mut AnyConnection, sku: &str, from: i64, until: i64) -> Result<i64, ProfileError> {
    let units: Option<i64> = sqlx::query(
        "SELECT CAST(SUM(l.quantity) AS BIGINT) FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
         WHERE l.product_id = $1 AND o.ts >= $2 AND o.ts < $3",
    )
    .bind(sku.to_string())
    .bind(from)
    .bind(until)
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    Ok(units.unwrap_or(0))
}
