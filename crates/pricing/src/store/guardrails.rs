//! Guardrails per product (`price_guardrails`), the defaults stored under
//! [`crate::guardrails::DEFAULTS`].

use sqlx::{AnyConnection, Row};
use tailor_store::placeholders;

use crate::guardrails::{GuardrailSet, Guardrails, DEFAULTS};
use crate::PricingError;

/// The guardrails stored for `skus` and the defaults, in one query.
pub async fn guardrails_for(conn: &mut AnyConnection, skus: &[String]) -> Result<GuardrailSet, PricingError> {
    let sql =
        format!("SELECT sku, body FROM price_guardrails WHERE sku = $1 OR sku IN {}", placeholders(2, skus.len()));
    let mut q = sqlx::query(&sql).bind(DEFAULTS);
    for s in skus {
        q = q.bind(s.clone());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    Ok(GuardrailSet::from_rows(
        rows.iter().filter_map(|r| Some((r.get::<String, _>(0), super::parse(&r.get::<String, _>(1))?))),
    ))
}

/// A product's guardrails: its own, else the defaults, else none.
pub async fn guardrails_of(conn: &mut AnyConnection, sku: &str) -> Result<Guardrails, PricingError> {
    Ok(guardrails_for(conn, &[sku.to_string()]).await?.get(sku).clone())
}

/// Sets a product's guardrails ([`DEFAULTS`]: those of every product without its own) after
/// checking they make sense together.
pub async fn set_guardrails(conn: &mut AnyConnection, sku: &str, g: &Guardrails) -> Result<(), PricingError> {
    g.check()?;
    sqlx::query(
        "INSERT INTO price_guardrails (sku, body) VALUES ($1, $2) ON CONFLICT (sku) DO UPDATE SET body = excluded.body",
    )
    .bind(sku.to_string())
    .bind(serde_json::to_string(g).unwrap_or_default())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
