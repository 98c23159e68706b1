//! Live experiments (`price_experiments`): one per product, stored as its JSON state with the
//! status beside it so running ones are found without parsing every body.

use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;

use crate::live::Experiment;
use crate::PricingError;

/// The experiment on `sku`; an unknown one is an input error naming `sku`.
pub async fn experiment_of(conn: &mut AnyConnection, sku: &str) -> Result<Experiment, PricingError> {
    let row = sqlx::query("SELECT body FROM price_experiments WHERE sku = $1")
        .bind(sku.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| FieldError::unknown("sku", format!("no price experiment on '{sku}'")))?;
    serde_json::from_str(&row.get::<String, _>(0)).map_err(|e| PricingError::Stored(e.to_string()))
}

/// Saves an experiment's state as of `now`, replacing the product's last.
pub async fn save_experiment(conn: &mut AnyConnection, e: &Experiment, now: i64) -> Result<(), PricingError> {
    sqlx::query(
        "INSERT INTO price_experiments (sku, body, status, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (sku) DO UPDATE SET body = excluded.body, status = excluded.status, updated_at = excluded.updated_at",
    )
    .bind(e.sku.clone())
    .bind(serde_json::to_string(e).unwrap_or_default())
    .bind(e.status.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The products with a running or concluded experiment (both are stepped: a concluded one
/// watches for a shift in demand).
pub async fn watched_experiments(conn: &mut AnyConnection) -> Result<Vec<String>, PricingError> {
    Ok(sqlx::query("SELECT sku FROM price_experiments WHERE status IN ('running', 'concluded')")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
