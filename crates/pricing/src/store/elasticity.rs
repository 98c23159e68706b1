//! Stored elasticity estimates per category (`price_elasticity`): what a new experiment on one
//! of the category's products starts believing.

use sqlx::{AnyConnection, Row};

use crate::live::CategoryElasticity;
use crate::PricingError;

/// Saves `category`'s estimate as of `now`, replacing the last.
pub async fn set_category_elasticity(
    conn: &mut AnyConnection,
    category: &str,
    e: &CategoryElasticity,
    now: i64,
) -> Result<(), PricingError> {
    sqlx::query(
        "INSERT INTO price_elasticity (category, mean, mean_sd, tau, products, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (category) DO UPDATE SET mean = excluded.mean, \
         mean_sd = excluded.mean_sd, tau = excluded.tau, products = excluded.products, updated_at = excluded.updated_at",
    )
    .bind(category.to_string())
    .bind(e.mean)
    .bind(e.mean_sd)
    .bind(e.tau)
    .bind(i64::from(e.products))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `category`'s stored estimate, if any.
pub async fn category_elasticity(
    conn: &mut AnyConnection,
    category: &str,
) -> Result<Option<CategoryElasticity>, PricingError> {
    let row = sqlx::query("SELECT mean, mean_sd, tau, products FROM price_elasticity WHERE category = $1")
        .bind(category.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| CategoryElasticity {
        mean: r.get(0),
        mean_sd: r.get(1),
        tau: r.get(2),
        products: u32::try_from(r.get::<i64, _>(3)).unwrap_or(u32::MAX),
    }))
}
