//! Issued personal offers (`price_offers`): what each customer was offered, when, until when and
//! under which consent purpose, so an offer is shown again while valid and the per-customer cap
//! holds across quotes and nodes.

use serde::Serialize;
use sqlx::{AnyConnection, Row};
use tailor_core::time::format_millis;
use tailor_store::{lock_key, placeholders};

use crate::offers::{Offer, OfferPolicy};
use crate::PricingError;

/// What a customer was offered in the current period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Issued {
    /// The offers still valid now.
    pub valid: Vec<Offer>,
    /// Cents offered in the period in all (valid or not), for the per-customer cap.
    pub offered_cents: i64,
}

/// The offers issued to the customer `root` in `policy`'s period up to `now`.
pub async fn offers_issued(
    conn: &mut AnyConnection,
    root: &str,
    policy: &OfferPolicy,
    now: i64,
) -> Result<Issued, PricingError> {
    let rows = sqlx::query(
        "SELECT kind, percent_off, max_discount_cents, reason, valid_until FROM price_offers WHERE profile_id = $1 AND at > $2",
    )
    .bind(root.to_string())
    .bind(now - policy.period_ms())
    .fetch_all(&mut *conn)
    .await?;
    let offered_cents = rows.iter().map(|r| r.get::<i64, _>(2)).sum();
    let valid = rows
        .iter()
        .filter(|r| r.get::<i64, _>(4) > now)
        .map(|r| Offer {
            kind: r.get(0),
            percent_off: r.get(1),
            max_discount_cents: r.get(2),
            valid_days: Offer::days_left(r.get(4), now),
            reason: r.get(3),
        })
        .collect();
    Ok(Issued { valid, offered_cents })
}

/// Holds the customer's offer lock until the caller's transaction ends (PostgreSQL; SQLite has
/// one writer), so concurrent quotes cannot issue past the per-customer cap.
pub async fn lock_offers(conn: &mut AnyConnection, root: &str) -> Result<(), PricingError> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key(&format!("offers:{root}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records `offers` as issued to `root` at `now` under the consent `purpose`.
pub async fn issue_offers(
    conn: &mut AnyConnection,
    root: &str,
    offers: &[Offer],
    purpose: &str,
    now: i64,
) -> Result<(), PricingError> {
    for o in offers {
        sqlx::query(
            "INSERT INTO price_offers (id, profile_id, kind, max_discount_cents, percent_off, reason, valid_until, at, purpose) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(root.to_string())
        .bind(o.kind.clone())
        .bind(o.max_discount_cents)
        .bind(o.percent_off)
        .bind(o.reason.clone())
        .bind(o.valid_until(now))
        .bind(now)
        .bind(purpose.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A personal offer as issued to a customer, for their data export.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedOffer {
    /// lapsing or cart_abandoned.
    pub kind: String,
    /// Why it was offered, in words.
    pub reason: String,
    /// Percent off.
    pub percent_off: f64,
    /// The most it takes off, in cents.
    pub max_discount_cents: i64,
    /// Until when it holds (RFC 3339).
    pub valid_until: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// The consent purpose it relied on.
    pub consent_purpose: String,
}

/// Every offer issued to `profiles` (a person's profiles), oldest first per profile.
pub async fn offers_of(conn: &mut AnyConnection, profiles: &[String]) -> Result<Vec<IssuedOffer>, PricingError> {
    let mut out = Vec::new();
    for p in profiles {
        let rows = sqlx::query(
            "SELECT kind, reason, percent_off, max_discount_cents, valid_until, at, purpose FROM price_offers \
             WHERE profile_id = $1 ORDER BY at",
        )
        .bind(p.clone())
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.iter().map(|r| IssuedOffer {
            kind: r.get(0),
            reason: r.get(1),
            percent_off: r.get(2),
            max_discount_cents: r.get(3),
            valid_until: format_millis(r.get(4)),
            issued_at: format_millis(r.get(5)),
            consent_purpose: r.get(6),
        }));
    }
    Ok(out)
}

/// Deletes every offer issued to `profiles` (an erased person's), in the caller's transaction.
pub async fn forget_offers(conn: &mut AnyConnection, profiles: &[String]) -> Result<(), PricingError> {
    if profiles.is_empty() {
        return Ok(());
    }
    let sql = format!("DELETE FROM price_offers WHERE profile_id IN {}", placeholders(1, profiles.len()));
    let mut q = sqlx::query(&sql);
    for p in profiles {
        q = q.bind(p.clone());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}
