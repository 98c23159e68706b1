//! Loyalty events for journeys and other consumers: written in the transaction of the change
//! they describe, so none is lost or told twice, and read back in order after a cursor.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::error::LoyaltyError;

/// What happened to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoyaltyEventKind {
    /// An order earned points (pending until its return window closes).
    PointsEarned,
    /// A reward (welcome, birthday, an engagement action) credited points.
    RewardGranted,
    /// Active points will expire within the warning window.
    PointsExpiringSoon,
    /// Active points expired.
    PointsExpired,
    /// The customer reached a higher tier or dropped to a lower one.
    TierChanged,
    /// Qualifying points fell below the tier held: it is kept until the grace period ends.
    TierAtRisk,
}

impl LoyaltyEventKind {
    fn name(self) -> &'static str {
        match self {
            LoyaltyEventKind::PointsEarned => "points_earned",
            LoyaltyEventKind::RewardGranted => "reward_granted",
            LoyaltyEventKind::PointsExpiringSoon => "points_expiring_soon",
            LoyaltyEventKind::PointsExpired => "points_expired",
            LoyaltyEventKind::TierChanged => "tier_changed",
            LoyaltyEventKind::TierAtRisk => "tier_at_risk",
        }
    }
}

/// One loyalty event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyEvent {
    /// Its position in the feed (read the next ones with `after` = this).
    pub seq: i64,
    /// The customer (root profile when it happened).
    pub profile_id: String,
    /// What happened.
    pub kind: String,
    /// Its details (points, tier names, and times such as `availableAt`, `expireBy` and
    /// `graceUntil` as RFC 3339 strings).
    #[schema(value_type = Object)]
    pub details: Value,
    /// When.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// Records an event in the caller's transaction.
pub(crate) async fn emit(
    conn: &mut AnyConnection,
    profile: &str,
    kind: LoyaltyEventKind,
    details: Value,
    at: i64,
) -> Result<(), LoyaltyError> {
    lock_feed(conn).await?;
    sqlx::query("INSERT INTO loyalty_events (profile_id, kind, details, at) VALUES ($1, $2, $3, $4)")
        .bind(profile.to_string())
        .bind(kind.name())
        .bind(details.to_string())
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The feed's write lock (PostgreSQL): writers commit in sequence order, so a reader's cursor
/// never skips a late commit. Taken before any account lock (see `ledger::lock`); re-taking it
/// in the same transaction is free.
pub async fn lock_feed(conn: &mut AnyConnection) -> Result<(), LoyaltyError> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(tailor_store::lock_key("loyalty_feed"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The details' times, stored as epoch milliseconds, as the API writes times: RFC 3339 strings.
fn times_as_text(mut details: Value) -> Value {
    for key in ["availableAt", "expireBy", "graceUntil"] {
        if let Some(ms) = details.get(key).and_then(Value::as_i64) {
            details[key] = Value::String(tailor_core::time::format_millis(ms));
        }
    }
    details
}

/// Up to `limit` events after position `after`, oldest first.
pub async fn events_after(conn: &mut AnyConnection, after: i64, limit: i64) -> Result<Vec<LoyaltyEvent>, LoyaltyError> {
    let rows = sqlx::query(
        "SELECT seq, profile_id, kind, details, at FROM loyalty_events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| LoyaltyEvent {
            seq: r.get(0),
            profile_id: r.get(1),
            kind: r.get(2),
            details: times_as_text(serde_json::from_str(&r.get::<String, _>(3)).unwrap_or(Value::Null)),
            at: r.get(4),
        })
        .collect())
}

/// When the account last had an event of `kind` (unix ms).
pub(crate) async fn last_of(
    conn: &mut AnyConnection,
    profile: &str,
    kind: LoyaltyEventKind,
) -> Result<Option<i64>, LoyaltyError> {
    Ok(sqlx::query("SELECT MAX(at) FROM loyalty_events WHERE profile_id = $1 AND kind = $2")
        .bind(profile.to_string())
        .bind(kind.name())
        .fetch_one(&mut *conn)
        .await?
        .get::<Option<i64>, _>(0))
}
