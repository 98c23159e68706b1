//! Tiers as data: reached by qualifying points or spend over the last year, held through a
//! grace period when the customer falls below, and told as events when they change.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::LoyaltyError;
use crate::events::{emit, LoyaltyEventKind};
use crate::ledger::placeholders;

const DAY_MS: i64 = 86_400_000;

/// A tier, reached when the customer meets any threshold it sets; its members earn
/// `multiplier` times the points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tier {
    /// Its name (unique).
    pub name: String,
    /// Qualifying points needed (earned in the last year, net of reversals).
    #[serde(default)]
    pub min_points: Option<i64>,
    /// Qualifying spend needed, in cents (orders in the last year, net of refunds).
    #[serde(default)]
    pub min_spend_cents: Option<i64>,
    /// Earning multiplier for its members.
    pub multiplier: f64,
    /// Days a member keeps the tier after falling below it (0: drops at once).
    #[serde(default)]
    pub grace_days: i64,
}

impl Tier {
    fn reached_by(&self, q: &Qualifying) -> bool {
        self.min_points.is_some_and(|p| q.points >= p) || self.min_spend_cents.is_some_and(|s| q.spend_cents >= s)
    }
}

/// How long qualifying points and spend count (ms).
pub const QUALIFYING_WINDOW_MS: i64 = 365 * DAY_MS;

/// What counts toward tiers: the last year's points and spend, net of reversals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Qualifying {
    /// Points earned by orders.
    pub points: i64,
    /// Order value, in cents.
    pub spend_cents: i64,
}

/// The tiers, lowest first (in the order they were given).
pub async fn tiers(conn: &mut AnyConnection) -> Result<Vec<Tier>, LoyaltyError> {
    crate::program::read_all(conn, "loyalty_tiers", "position").await
}

fn check(tiers: &[Tier]) -> Result<(), LoyaltyError> {
    for (i, t) in tiers.iter().enumerate() {
        let bad = |field: &str, why: &str| {
            Err(LoyaltyError::Invalid(FieldError::invalid(format!("tiers[{i}].{field}"), why)))
        };
        if t.name.trim().is_empty() {
            return bad("name", "give the tier a name");
        }
        if t.name.len() > tailor_core::text::MAX_ID_BYTES {
            return bad("name", "must be at most 256 bytes");
        }
        if t.min_points.is_none() && t.min_spend_cents.is_none() {
            return bad("minPoints", "give minPoints, minSpendCents or both");
        }
        if t.min_points.is_some_and(|p| p < 0) {
            return bad("minPoints", "cannot be negative");
        }
        if t.min_spend_cents.is_some_and(|s| s < 0) {
            return bad("minSpendCents", "cannot be negative");
        }
        if !t.multiplier.is_finite() || !(0.0..=crate::rules::MAX_MULTIPLIER).contains(&t.multiplier) {
            return bad("multiplier", "must be a number from 0 to 100");
        }
        if !(0..=3650).contains(&t.grace_days) {
            return bad("graceDays", "must be between 0 and 3650 days");
        }
        if let Some(prev) = i.checked_sub(1).map(|j| &tiers[j]) {
            let lower = |a: Option<i64>, b: Option<i64>| matches!((a, b), (Some(a), Some(b)) if b < a);
            if lower(prev.min_points, t.min_points) || lower(prev.min_spend_cents, t.min_spend_cents) {
                return bad("minPoints", "list tiers lowest first: each needs at least what the one before it needs");
            }
        }
        if tiers[..i].iter().any(|o| o.name == t.name) {
            return bad("name", "two tiers have this name");
        }
    }
    Ok(())
}

/// Replaces the tiers, lowest first (all checked first; nothing changes when one is wrong).
pub async fn set_tiers(db: &Db, tiers: &[Tier]) -> Result<(), LoyaltyError> {
    check(tiers)?;
    crate::program::replace_all(db, "loyalty_tiers", tiers, |t| &t.name, true).await
}

/// Points and spend of `members` since `now − QUALIFYING_WINDOW_MS`, net of what was reversed.
pub async fn qualifying(conn: &mut AnyConnection, members: &[String], now: i64) -> Result<Qualifying, LoyaltyError> {
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'reverse' AND bucket = 'owed' THEN -points ELSE points END), 0) AS BIGINT), \
                CAST(COALESCE(SUM(CASE WHEN kind = 'earn' THEN order_cents WHEN bucket <> 'owed' THEN -order_cents ELSE 0 END), 0) AS BIGINT) \
         FROM loyalty_entries WHERE at > $1 AND (kind = 'earn' OR kind = 'reverse') AND profile_id IN {}",
        placeholders(2, members.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql).bind(now - QUALIFYING_WINDOW_MS), members);
    let r = q.fetch_one(&mut *conn).await?;
    Ok(Qualifying { points: r.get(0), spend_cents: r.get(1) })
}

/// The highest tier `q` reaches (its position).
pub fn tier_reached(q: &Qualifying, tiers: &[Tier]) -> Option<usize> {
    tiers.iter().rposition(|t| t.reached_by(q))
}

/// Where a customer stands: the tier held (which during a grace period is above the one
/// reached), until when it is held without qualifying, and what counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    /// The tier held.
    pub tier: Option<String>,
    /// Its earning multiplier (1 without a tier).
    pub multiplier: f64,
    /// The held tier is lost at this time unless the customer qualifies again (unix ms).
    pub grace_until: Option<i64>,
    /// What counts toward tiers now.
    pub qualifying: Qualifying,
    /// The next tier up and what it still needs.
    pub next_tier: Option<NextTier>,
}

/// The next tier and what it still needs (either threshold reaches it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextTier {
    /// Its name.
    pub name: String,
    /// Qualifying points still needed.
    pub points_needed: Option<i64>,
    /// Qualifying spend still needed, in cents.
    pub spend_needed_cents: Option<i64>,
}

/// The status rows of an account's profiles: the tier held (its position) and its grace end.
async fn held(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    tiers: &[Tier],
) -> Result<(bool, Option<usize>, Option<i64>), LoyaltyError> {
    let sql = format!(
        "SELECT profile_id, tier, grace_until FROM loyalty_status WHERE profile_id IN {}",
        placeholders(1, members.len())
    );
    let query = tailor_store::bind_all(sqlx::query(&sql), members);
    let rows: Vec<(String, Option<String>, Option<i64>)> =
        query.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let position = |name: &Option<String>| name.as_ref().and_then(|n| tiers.iter().position(|t| &t.name == n));
    // The root's status; after a merge, the best the merged profiles held.
    let own = rows.iter().find(|r| r.0 == root);
    let (held, grace) = match own {
        Some(r) => (position(&r.1), r.2),
        None => rows.iter().map(|r| (position(&r.1), r.2)).max_by_key(|r| r.0).unwrap_or((None, None)),
    };
    Ok((own.is_some(), held, grace))
}

/// The tier held at `now` and until when without qualifying, given the tier `reached` and the
/// tier `held` with its `grace`; and whether falling below starts a grace period now.
fn judge(
    reached: Option<usize>,
    held: Option<usize>,
    grace: Option<i64>,
    tiers: &[Tier],
    now: i64,
) -> (Option<usize>, Option<i64>, bool) {
    if reached >= held {
        return (reached, None, false);
    }
    let days = held.map_or(0, |i| tiers[i].grace_days);
    match grace {
        None if days > 0 => (held, Some(now.saturating_add(days.saturating_mul(DAY_MS))), true),
        Some(until) if now < until => (held, Some(until), false),
        _ => (reached, None, false),
    }
}

fn standing_of(q: Qualifying, now_held: Option<usize>, now_grace: Option<i64>, tiers: &[Tier]) -> Standing {
    let next_tier = tiers.get(now_held.map_or(0, |i| i + 1)).map(|t| NextTier {
        name: t.name.clone(),
        points_needed: t.min_points.map(|p| p.saturating_sub(q.points).max(0)),
        spend_needed_cents: t.min_spend_cents.map(|s| s.saturating_sub(q.spend_cents).max(0)),
    });
    Standing {
        tier: now_held.map(|i| tiers[i].name.clone()),
        multiplier: now_held.map_or(1.0, |i| tiers[i].multiplier),
        grace_until: now_grace,
        qualifying: q,
        next_tier,
    }
}

/// Where an account stands at `now`, as [`evaluate`] would leave it, without writing anything
/// (a message previewing what an order would earn reads it).
pub async fn standing(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    tiers: &[Tier],
    now: i64,
) -> Result<Standing, LoyaltyError> {
    let q = qualifying(conn, members, now).await?;
    let (_, held, grace) = held(conn, members, root, tiers).await?;
    let (now_held, now_grace, _) = judge(tier_reached(&q, tiers), held, grace, tiers, now);
    Ok(standing_of(q, now_held, now_grace, tiers))
}

/// Brings an account's tier up to `now`: an upgrade applies at once; falling below the tier
/// held starts its grace period (a `tier_at_risk` event) and the tier drops when it ends
/// without the customer qualifying again. Changes are `tier_changed` events. Idempotent.
pub async fn evaluate(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    tiers: &[Tier],
    now: i64,
) -> Result<Standing, LoyaltyError> {
    // One evaluation per account at a time, so a change is told once.
    crate::ledger::lock(conn, root).await?;
    let q = qualifying(conn, members, now).await?;
    let (own, held, grace) = held(conn, members, root, tiers).await?;
    let name = |p: Option<usize>| p.map(|i| tiers[i].name.clone());
    let (now_held, now_grace, at_risk) = judge(tier_reached(&q, tiers), held, grace, tiers, now);
    if at_risk {
        let details = json!({"tier": name(held), "graceUntil": now_grace, "qualifying": q});
        emit(conn, root, LoyaltyEventKind::TierAtRisk, details, now).await?;
    }
    if now_held != held {
        let direction = if now_held > held { "up" } else { "down" };
        let details = json!({"from": name(held), "to": name(now_held), "direction": direction, "qualifying": q});
        emit(conn, root, LoyaltyEventKind::TierChanged, details, now).await?;
    }
    if !own || now_held != held || now_grace != grace {
        sqlx::query(
            "INSERT INTO loyalty_status (profile_id, tier, since, grace_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (profile_id) DO UPDATE SET tier = excluded.tier, grace_until = excluded.grace_until, \
             since = CASE WHEN COALESCE(loyalty_status.tier, '') = COALESCE(excluded.tier, '') THEN loyalty_status.since ELSE excluded.since END",
        )
        .bind(root.to_string())
        .bind(name(now_held))
        .bind(now)
        .bind(now_grace)
        .execute(&mut *conn)
        .await?;
    }
    Ok(standing_of(q, now_held, now_grace, tiers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str, points: Option<i64>, spend: Option<i64>) -> Tier {
        Tier { name: name.into(), min_points: points, min_spend_cents: spend, multiplier: 1.0, grace_days: 0 }
    }

    #[test]
    fn either_threshold_reaches_a_tier_and_the_highest_wins() {
        let tiers = [tier("Silver", Some(100), Some(10_000)), tier("Gold", Some(1000), None)];
        let at = |points, spend_cents| tier_reached(&Qualifying { points, spend_cents }, &tiers);
        assert_eq!(at(50, 5_000), None);
        assert_eq!(at(50, 10_000), Some(0));
        assert_eq!(at(100, 0), Some(0));
        assert_eq!(at(1000, 0), Some(1));
        assert_eq!(at(999, 1_000_000), Some(0));
    }

    #[test]
    fn tiers_must_be_listed_lowest_first_with_a_threshold() {
        assert!(check(&[tier("Gold", Some(1000), None), tier("Silver", Some(100), None)]).is_err());
        assert!(check(&[tier("Silver", None, None)]).is_err());
        assert!(check(&[tier("Silver", Some(100), None), tier("Gold", None, Some(5))]).is_ok());
    }
}
