//! Whether a product can be bought at a location. Until the inventory engine exists this is
//! the retailer's own flag per product and location (a product's global `available` flag still
//! applies everywhere).

use sqlx::Row;
use tailor_store::{Db, DbError};

/// One product's availability at one location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Availability {
    /// Product id.
    pub product_id: String,
    /// Location (store or warehouse) id.
    pub location_id: String,
    /// Whether it can be bought there.
    pub available: bool,
}

/// Records availability (upsert).
pub async fn set_availability(db: &Db, a: &Availability, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO availability (product_id, location_id, available, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (product_id, location_id) DO UPDATE SET available = excluded.available, updated_at = excluded.updated_at",
    )
    .bind(a.product_id.clone())
    .bind(a.location_id.clone())
    .bind(i64::from(a.available))
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Every (location, product) pair marked unavailable, and every product unavailable everywhere
/// (with location `None`).
pub async fn unavailable(db: &Db) -> Result<Vec<(Option<String>, String)>, DbError> {
    let mut out: Vec<(Option<String>, String)> =
        sqlx::query("SELECT location_id, product_id FROM availability WHERE available = 0")
            .fetch_all(db.reader())
            .await?
            .iter()
            .map(|r| (Some(r.get(0)), r.get(1)))
            .collect();
    let global = sqlx::query("SELECT id FROM products WHERE available = 0").fetch_all(db.reader()).await?;
    out.extend(global.iter().map(|r| (None, r.get(0))));
    Ok(out)
}
