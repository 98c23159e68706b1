//! The ledger: buckets, entries, and the operations that move points between buckets.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;

use crate::error::LoyaltyError;
use crate::events::{emit, last_of, LoyaltyEventKind};

/// Where points are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Earned, locked until the order's return window closes.
    Pending,
    /// Spendable.
    Active,
    /// Spent.
    Used,
    /// Lapsed by the expiry policy.
    Expired,
    /// Reversed after being spent: settled from the next points that become active.
    Owed,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::Pending => "pending",
            Bucket::Active => "active",
            Bucket::Used => "used",
            Bucket::Expired => "expired",
            Bucket::Owed => "owed",
        }
    }

    fn parse(s: &str) -> Bucket {
        match s {
            "pending" => Bucket::Pending,
            "used" => Bucket::Used,
            "expired" => Bucket::Expired,
            "owed" => Bucket::Owed,
            _ => Bucket::Active,
        }
    }
}

/// Points per bucket: each is the sum of that bucket's entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// Locked until return windows close.
    pub pending: i64,
    /// Spendable now.
    pub active: i64,
    /// Spent so far.
    pub used: i64,
    /// Lapsed so far.
    pub expired: i64,
    /// Reversed after being spent, to settle from future points.
    pub owed: i64,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Its id.
    pub id: String,
    /// The profile it was recorded for.
    pub profile_id: String,
    /// The bucket it moves.
    pub bucket: Bucket,
    /// Signed points.
    pub points: i64,
    /// earn, mature, redeem, reverse, expire, settle, adjust or reward.
    pub kind: String,
    /// The order it comes from.
    pub order_id: Option<String>,
    /// Why (adjustments).
    pub reason: Option<String>,
    /// When.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// The loyalty program's rules of time and value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Points per currency unit spent.
    pub points_per_unit: f64,
    /// How long earned points stay pending (the return window), ms.
    pub return_window_ms: i64,
    /// How long active points live before they expire (oldest first), ms.
    pub expiry_ms: i64,
    /// What one point is worth at redemption, in cents.
    pub point_value_cents: i64,
    /// How long before points expire the customer is told (a `points_expiring_soon` event), ms.
    pub expiry_warning_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            points_per_unit: 1.0,
            return_window_ms: 30 * 86_400_000,
            expiry_ms: 365 * 86_400_000,
            point_value_cents: 1,
            expiry_warning_ms: 30 * 86_400_000,
        }
    }
}

pub(crate) use tailor_store::placeholders;

/// Serializes changes to one account: PostgreSQL holds a transaction lock on it (SQLite has
/// one writer already). Any change may emit a loyalty event, which takes the feed's lock, so the
/// feed's lock is taken first: every transaction takes them in the same order and none waits on
/// another in a cycle.
pub(crate) async fn lock(conn: &mut AnyConnection, root: &str) -> Result<(), LoyaltyError> {
    if conn.backend_name() == "PostgreSQL" {
        crate::events::lock_feed(conn).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(tailor_store::lock_key(root)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Balances over an account's profiles.
pub async fn balance(conn: &mut AnyConnection, members: &[String]) -> Result<Balance, LoyaltyError> {
    let sql = format!(
        "SELECT bucket, CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM loyalty_entries WHERE profile_id IN {} GROUP BY bucket",
        placeholders(1, members.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), members);
    let mut b = Balance::default();
    for r in q.fetch_all(&mut *conn).await? {
        let v: i64 = r.get(1);
        match Bucket::parse(&r.get::<String, _>(0)) {
            Bucket::Pending => b.pending = v,
            Bucket::Active => b.active = v,
            Bucket::Used => b.used = v,
            Bucket::Expired => b.expired = v,
            Bucket::Owed => b.owed = v,
        }
    }
    Ok(b)
}

/// The newest entries of an account.
pub async fn history(conn: &mut AnyConnection, members: &[String], limit: i64) -> Result<Vec<Entry>, LoyaltyError> {
    let sql = format!(
        "SELECT id, profile_id, bucket, points, kind, order_id, reason, at FROM loyalty_entries WHERE profile_id IN {} \
         AND points <> 0 ORDER BY at DESC, id DESC LIMIT {limit}",
        placeholders(1, members.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), members);
    Ok(q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Entry {
            id: r.get(0),
            profile_id: r.get(1),
            bucket: Bucket::parse(&r.get::<String, _>(2)),
            points: r.get(3),
            kind: r.get(4),
            order_id: r.get(5),
            reason: r.get(6),
            at: r.get(7),
        })
        .collect())
}

/// A new entry; its id is returned.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    conn: &mut AnyConnection,
    owner: &str,
    bucket: Bucket,
    points: i64,
    kind: &str,
    order: Option<(&str, i64)>,
    ref_id: Option<&str>,
    available_at: Option<i64>,
    reason: Option<&str>,
    at: i64,
) -> Result<String, LoyaltyError> {
    // Each entry is bounded, so no sum of a ledger can overflow before anything is committed.
    if points.unsigned_abs() > crate::MAX_POINTS as u64 {
        return Err(LoyaltyError::Invalid(FieldError::invalid(
            "points",
            format!("one entry carries at most {} points", crate::MAX_POINTS),
        )));
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO loyalty_entries (id, profile_id, bucket, points, kind, order_id, ref_id, order_cents, available_at, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id.clone())
    .bind(owner.to_string())
    .bind(bucket.name())
    .bind(points)
    .bind(kind.to_string())
    .bind(order.map(|o| o.0.to_string()))
    .bind(ref_id.map(str::to_string))
    .bind(order.map(|o| o.1))
    .bind(available_at)
    .bind(reason.map(str::to_string))
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Moves `points` from one bucket to another as a pair of entries.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn transfer(
    conn: &mut AnyConnection,
    owner: &str,
    from: Bucket,
    to: Bucket,
    points: i64,
    kind: &str,
    ref_id: Option<&str>,
    reason: Option<&str>,
    at: i64,
) -> Result<(), LoyaltyError> {
    record(conn, owner, from, -points, kind, None, ref_id, None, reason, at).await?;
    record(conn, owner, to, points, kind, None, ref_id, None, reason, at).await?;
    Ok(())
}

/// Brings an account up to `now`: pending points whose return window closed become active,
/// debts are settled from active points, and active points older than the expiry (oldest
/// first) expire. Idempotent.
pub async fn mature(
    conn: &mut AnyConnection,
    members: &[String],
    owner: &str,
    policy: &Policy,
    now: i64,
) -> Result<(), LoyaltyError> {
    // Two readers bringing the same account up to date must not both mature or expire it.
    lock(conn, owner).await?;
    let inn = placeholders(2, members.len());
    // Earnings past their window and not matured yet, net of what was reversed while pending.
    let sql = format!(
        "SELECT e.id, CAST(e.points + COALESCE((SELECT SUM(r.points) FROM loyalty_entries r WHERE r.ref_id = e.id AND r.kind = 'reverse' AND r.bucket = 'pending'), 0) AS BIGINT), e.profile_id, e.available_at \
         FROM loyalty_entries e WHERE e.kind = 'earn' AND e.available_at <= $1 AND e.profile_id IN {inn} \
         AND NOT EXISTS (SELECT 1 FROM loyalty_entries m WHERE m.ref_id = e.id AND m.kind = 'mature') ORDER BY e.available_at"
    );
    let q = tailor_store::bind_all(sqlx::query(&sql).bind(now), members);
    let due: Vec<(String, i64, String, i64)> =
        q.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    // The earner keeps them (an unmerge gives each profile back what it earned), dated when
    // they became active, which is what their expiry counts from.
    for (id, left, earner, became_active) in due {
        transfer(conn, &earner, Bucket::Pending, Bucket::Active, left.max(0), "mature", Some(&id), None, became_active)
            .await?;
    }
    let b = balance(conn, members).await?;
    if b.owed > 0 && b.active > 0 {
        let x = b.owed.min(b.active);
        record(conn, owner, Bucket::Active, -x, "settle", None, None, None, None, now).await?;
        record(conn, owner, Bucket::Owed, -x, "settle", None, None, None, None, now).await?;
    }
    let lapsed = expiring_by(conn, members, policy, now).await?;
    if lapsed > 0 {
        transfer(conn, owner, Bucket::Active, Bucket::Expired, lapsed, "expire", None, None, now).await?;
        emit(conn, owner, LoyaltyEventKind::PointsExpired, json!({"points": lapsed}), now).await?;
    }
    Ok(())
}

/// Active points that will have expired by `when` if nothing is spent: oldest first, what was
/// credited to active more than the expiry before `when` and not consumed since.
pub async fn expiring_by(
    conn: &mut AnyConnection,
    members: &[String],
    policy: &Policy,
    when: i64,
) -> Result<i64, LoyaltyError> {
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN points > 0 AND at <= $1 THEN points ELSE 0 END), 0) AS BIGINT), \
                CAST(COALESCE(SUM(CASE WHEN points < 0 THEN -points ELSE 0 END), 0) AS BIGINT) \
         FROM loyalty_entries WHERE bucket = 'active' AND profile_id IN {}",
        placeholders(2, members.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql).bind(when - policy.expiry_ms), members);
    let r = q.fetch_one(&mut *conn).await?;
    let (old_credits, debits): (i64, i64) = (r.get(0), r.get(1));
    Ok((old_credits - debits).max(0))
}

/// Per profile of `profiles`, in one query per few hundred: (active points, active credits
/// dated at or before `when − expiry`, active debits). An account's active balance is the sum
/// of its profiles' first figure, and what expires by `when` is `(Σ credits − Σ debits).max(0)`
/// — what [`balance`] and [`expiring_by`] give, for a whole batch of accounts at once.
pub async fn active_by_profile(
    conn: &mut AnyConnection,
    profiles: &[String],
    policy: &Policy,
    when: i64,
) -> Result<std::collections::HashMap<String, (i64, i64, i64)>, LoyaltyError> {
    let mut out = std::collections::HashMap::new();
    for chunk in profiles.chunks(500) {
        let sql = format!(
            "SELECT profile_id, CAST(COALESCE(SUM(points), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN points > 0 AND at <= $1 THEN points ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN points < 0 THEN -points ELSE 0 END), 0) AS BIGINT) \
             FROM loyalty_entries WHERE bucket = 'active' AND profile_id IN {} GROUP BY profile_id",
            placeholders(2, chunk.len())
        );
        let q = tailor_store::bind_all(sqlx::query(&sql).bind(when.saturating_sub(policy.expiry_ms)), chunk);
        for r in q.fetch_all(&mut *conn).await? {
            out.insert(r.get::<String, _>(0), (r.get(1), r.get(2), r.get(3)));
        }
    }
    Ok(out)
}

/// Tells the customer (a `points_expiring_soon` event) when active points will expire within
/// `window` ms, at most once per window; returns the points told about.
pub async fn warn_expiring(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    policy: &Policy,
    window: i64,
    now: i64,
) -> Result<i64, LoyaltyError> {
    let points = expiring_by(conn, members, policy, now + window).await?;
    if points == 0 {
        return Ok(0);
    }
    if last_of(conn, root, LoyaltyEventKind::PointsExpiringSoon).await?.is_some_and(|at| at > now - window) {
        return Ok(0);
    }
    let details = json!({"points": points, "expireBy": now + window});
    emit(conn, root, LoyaltyEventKind::PointsExpiringSoon, details, now).await?;
    Ok(points)
}

/// Spends active points; returns the discount they buy, in cents.
pub async fn redeem(
    conn: &mut AnyConnection,
    members: &[String],
    owner: &str,
    points: i64,
    policy: &Policy,
    now: i64,
) -> Result<i64, LoyaltyError> {
    if !(1..=crate::MAX_POINTS).contains(&points) {
        return Err(LoyaltyError::Invalid(FieldError::invalid(
            "points",
            format!("redeem a whole number of points from 1 to {}", crate::MAX_POINTS),
        )));
    }
    lock(conn, owner).await?;
    mature(conn, members, owner, policy, now).await?;
    let b = balance(conn, members).await?;
    if b.active < points {
        return Err(LoyaltyError::Insufficient(format!("{points} points asked, {} available", b.active)));
    }
    transfer(conn, owner, Bucket::Active, Bucket::Used, points, "redeem", None, None, now).await?;
    points.checked_mul(policy.point_value_cents).ok_or_else(|| {
        LoyaltyError::Invalid(FieldError::invalid("points", "the discount these points buy is out of range"))
    })
}

/// An admin's correction: adds active points, or removes them (never below zero).
pub async fn adjust(
    conn: &mut AnyConnection,
    members: &[String],
    owner: &str,
    points: i64,
    reason: &str,
    policy: &Policy,
    now: i64,
) -> Result<(), LoyaltyError> {
    if points == 0 || points.unsigned_abs() > crate::MAX_POINTS as u64 {
        return Err(LoyaltyError::Invalid(FieldError::invalid(
            "points",
            format!("give a non-zero number of points within ±{}", crate::MAX_POINTS),
        )));
    }
    if reason.trim().is_empty() {
        return Err(LoyaltyError::Invalid(FieldError::invalid("reason", "say why the points change")));
    }
    lock(conn, owner).await?;
    mature(conn, members, owner, policy, now).await?;
    if points < 0 {
        let b = balance(conn, members).await?;
        if b.active < -points {
            return Err(LoyaltyError::Insufficient(format!("cannot remove {} points: {} active", -points, b.active)));
        }
    }
    record(conn, owner, Bucket::Active, points, "adjust", None, None, None, Some(reason), now).await?;
    Ok(())
}

/// Forgets the erased customers `profiles`: their ledger entries, tier status and loyalty
/// events are deleted (their points can no longer be spent by anyone). Run in the erasure's
/// transaction.
pub async fn forget(conn: &mut AnyConnection, profiles: &[String]) -> Result<(), LoyaltyError> {
    if profiles.is_empty() {
        return Ok(());
    }
    let inn = placeholders(1, profiles.len());
    for table in ["loyalty_entries", "loyalty_status", "loyalty_events"] {
        let sql = format!("DELETE FROM {table} WHERE profile_id IN {inn}");
        let q = tailor_store::bind_all(sqlx::query(&sql), profiles);
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
