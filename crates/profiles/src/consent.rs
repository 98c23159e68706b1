//! Consent per purpose: granted or withdrawn, when, and from which source.

use serde_json::Value;
use sqlx::AnyConnection;
use tailor_core::Purpose;

use crate::graph::ProfileError;

/// Where a consent decision came from.
pub type ConsentSource = String;

/// Records one consent decision for a profile; the latest decision per purpose counts.
pub async fn set_consent(
    conn: &mut AnyConnection,
    profile: &str,
    purpose: Purpose,
    granted: bool,
    at: i64,
    source: &str,
) -> Result<(), ProfileError> {
    sqlx::query(
        "INSERT INTO consents (profile_id, purpose, granted, at, source) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (profile_id, purpose) DO UPDATE SET granted = excluded.granted, at = excluded.at, source = excluded.source \
         WHERE consents.at <= excluded.at",
    )
    .bind(profile)
    .bind(purpose.as_str())
    .bind(granted as i64)
    .bind(at)
    .bind(source)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies a `{purpose: bool}` map (identify `traits.consent` or Segment's
/// `context.consent.categoryPreferences`); names that are not Tailor purposes are ignored.
pub(crate) async fn apply_map(
    conn: &mut AnyConnection,
    profile: &str,
    map: &Value,
    at: i64,
    source: &str,
) -> Result<(), ProfileError> {
    let Value::Object(map) = map else {
        return Ok(());
    };
    for (name, v) in map {
        if let (Some(purpose), Some(granted)) = (Purpose::parse(name), v.as_bool()) {
            set_consent(conn, profile, purpose, granted, at, source).await?;
        }
    }
    Ok(())
}

/// Whether the customer made of `members` grants `purpose` now (the latest decision across the
/// group counts; no decision: not granted).
pub async fn has_consent(conn: &mut AnyConnection, members: &[String], purpose: Purpose) -> Result<bool, ProfileError> {
    use sqlx::Row;
    let sql = format!(
        "SELECT granted FROM consents WHERE profile_id IN {} AND purpose = $1 ORDER BY at DESC LIMIT 1",
        crate::graph::placeholders(2, members.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql).bind(purpose.as_str()), members);
    Ok(q.fetch_optional(&mut *conn).await?.is_some_and(|r| r.get::<i64, _>(0) != 0))
}

/// The group's orders (time, total cents) and cart lines (last change, cents): what a customer
/// did, for decisions that may use behaviour only (personal offers).
pub async fn orders_and_cart(
    conn: &mut AnyConnection,
    members: &[String],
) -> Result<(Vec<(i64, i64)>, Vec<(i64, i64)>), ProfileError> {
    use sqlx::Row;
    let inn = crate::graph::placeholders(1, members.len());
    let sql = format!("SELECT ts, total_cents - refunded_cents FROM orders WHERE profile_id IN {inn}");
    let q = tailor_store::bind_all(sqlx::query(&sql), members);
    let orders = q.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let sql = format!("SELECT updated_at, quantity * price_cents FROM carts WHERE profile_id IN {inn}");
    let q = tailor_store::bind_all(sqlx::query(&sql), members);
    let cart = q.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok((orders, cart))
}
