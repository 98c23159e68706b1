//! Rewards as data: points for joining (a `Signed Up` event), on the customer's birthday, and
//! for engagement actions (any tracked event, e.g. `Product Reviewed`, `Application
//! Installed`), each at most once per period.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::LoyaltyError;
use crate::events::{emit, LoyaltyEventKind};
use crate::ledger::{placeholders, record, Bucket};

/// What grants a reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Joining the program: a `Signed Up` event.
    Welcome,
    /// The customer's birthday (the `birthday` trait, YYYY-MM-DD), once a year.
    Birthday,
    /// A tracked event named by `event`.
    Event,
}

/// How often a customer can get a reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Once ever.
    Once,
    /// Once per calendar day (UTC).
    PerDay,
    /// Once per calendar month.
    PerMonth,
    /// Once per calendar year.
    PerYear,
}

/// One reward rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reward {
    /// A name for people (unique); the ledger entry carries it.
    pub name: String,
    /// What grants it.
    pub trigger: Trigger,
    /// For `event` rewards: the tracked event's name.
    #[serde(default)]
    pub event: Option<String>,
    /// Points credited (active at once: nothing to return).
    pub points: i64,
    /// How often (default: welcome once, birthday per year, events per day).
    #[serde(default)]
    pub limit: Option<Limit>,
}

impl Reward {
    fn limit(&self) -> Limit {
        self.limit.unwrap_or(match self.trigger {
            Trigger::Welcome => Limit::Once,
            Trigger::Birthday => Limit::PerYear,
            Trigger::Event => Limit::PerDay,
        })
    }

    /// Whether a tracked event named `name` grants this reward.
    pub fn granted_by(&self, name: &str) -> bool {
        match self.trigger {
            Trigger::Welcome => name == "Signed Up",
            Trigger::Birthday => false,
            Trigger::Event => self.event.as_deref() == Some(name),
        }
    }

    fn check(&self, i: usize) -> Result<(), LoyaltyError> {
        let bad = |field: &str, why: &str| {
            Err(LoyaltyError::Invalid(FieldError::invalid(format!("rewards[{i}].{field}"), why)))
        };
        if self.name.trim().is_empty() {
            return bad("name", "give the reward a name");
        }
        if self.name.len() > tailor_core::text::MAX_ID_BYTES {
            return bad("name", "must be at most 256 bytes");
        }
        if !(1..=crate::MAX_POINTS).contains(&self.points) {
            return bad("points", "must be a whole number from 1 to 1000000000");
        }
        match (self.trigger, &self.event) {
            (Trigger::Event, None) => bad("event", "name the tracked event that grants it, e.g. 'Product Reviewed'"),
            (Trigger::Event, Some(e)) if e.trim().is_empty() => bad("event", "name the tracked event"),
            (Trigger::Welcome | Trigger::Birthday, Some(_)) => {
                bad("event", "only rewards with trigger 'event' name an event")
            }
            _ => Ok(()),
        }
    }
}

/// The period containing `now`, [start, end) in unix ms.
fn period(limit: Limit, now: i64) -> (i64, i64) {
    let t = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default();
    let day = t.date_naive();
    let (start, end) = match limit {
        Limit::Once => return (i64::MIN, i64::MAX),
        Limit::PerDay => (day, day.succ_opt()),
        Limit::PerMonth => {
            let first = day.with_day(1);
            (first.unwrap_or(day), first.and_then(|f| f.checked_add_months(chrono::Months::new(1))))
        }
        Limit::PerYear => {
            let first = chrono::NaiveDate::from_ymd_opt(t.year(), 1, 1);
            (first.unwrap_or(day), chrono::NaiveDate::from_ymd_opt(t.year() + 1, 1, 1))
        }
    };
    let ms = |d: chrono::NaiveDate| Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)).timestamp_millis();
    (ms(start), end.map_or(i64::MAX, ms))
}

/// The reward rules.
pub async fn rewards(conn: &mut AnyConnection) -> Result<Vec<Reward>, LoyaltyError> {
    crate::program::read_all(conn, "loyalty_rewards", "name").await
}

/// Replaces every reward rule (all checked first; nothing changes when one is wrong).
pub async fn set_rewards(db: &Db, rewards: &[Reward]) -> Result<(), LoyaltyError> {
    for (i, r) in rewards.iter().enumerate() {
        r.check(i)?;
        if rewards[..i].iter().any(|o| o.name == r.name) {
            return Err(LoyaltyError::Invalid(FieldError::invalid(
                format!("rewards[{i}].name"),
                format!("two rewards are named '{}'", r.name),
            )));
        }
    }
    crate::program::replace_all(db, "loyalty_rewards", rewards, |r| &r.name, false).await
}

/// Credits `reward` to the account unless it already had it this period; returns whether it did.
pub async fn grant(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    reward: &Reward,
    now: i64,
) -> Result<bool, LoyaltyError> {
    crate::ledger::lock(conn, root).await?;
    let sql = format!(
        "SELECT COUNT(*) FROM loyalty_entries WHERE kind = 'reward' AND ref_id = $1 AND at >= $2 AND at < $3 AND profile_id IN {}",
        placeholders(4, members.len())
    );
    let (start, end) = period(reward.limit(), now);
    let q = tailor_store::bind_all(sqlx::query(&sql).bind(reward.name.clone()).bind(start).bind(end), members);
    if q.fetch_one(&mut *conn).await?.get::<i64, _>(0) > 0 {
        return Ok(false);
    }
    let reason = format!("reward '{}'", reward.name);
    record(conn, root, Bucket::Active, reward.points, "reward", None, Some(&reward.name), None, Some(&reason), now)
        .await?;
    let details = json!({"reward": reward.name, "trigger": reward.trigger, "points": reward.points});
    emit(conn, root, LoyaltyEventKind::RewardGranted, details, now).await?;
    Ok(true)
}

/// Credits `points` once under `key` (a journey step's idempotency key): a second call with
/// the same key credits nothing and returns false. Run in the caller's transaction, which
/// records the step as done, so the grant and its record commit together.
pub async fn grant_once(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    points: i64,
    key: &str,
    reason: &str,
    now: i64,
) -> Result<bool, LoyaltyError> {
    if !(1..=crate::MAX_POINTS).contains(&points) {
        return Err(LoyaltyError::Invalid(FieldError::invalid(
            "points",
            format!("a grant is 1 to {} points", crate::MAX_POINTS),
        )));
    }
    crate::ledger::lock(conn, root).await?;
    let sql = format!(
        "SELECT COUNT(*) FROM loyalty_entries WHERE kind = 'journey' AND ref_id = $1 AND profile_id IN {}",
        placeholders(2, members.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql).bind(key.to_string()), members);
    if q.fetch_one(&mut *conn).await?.get::<i64, _>(0) > 0 {
        return Ok(false);
    }
    record(conn, root, Bucket::Active, points, "journey", None, Some(key), None, Some(reason), now).await?;
    let details = json!({"journey": key, "points": points, "reason": reason});
    emit(conn, root, LoyaltyEventKind::RewardGranted, details, now).await?;
    Ok(true)
}

/// Whether a `birthday` trait (YYYY-MM-DD or a full timestamp) falls on `now`'s day; 29
/// February is celebrated on the 28th in other years.
pub fn is_birthday(birthday: &str, now: i64) -> bool {
    let Some(date) = birthday.get(..10).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else {
        return false;
    };
    let today = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default().date_naive();
    let leap = chrono::NaiveDate::from_ymd_opt(today.year(), 2, 29).is_some();
    let (m, d) = match (date.month(), date.day()) {
        (2, 29) if !leap => (2, 28),
        md => md,
    };
    (today.month(), today.day()) == (m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNE_15_2026: i64 = 1_781_481_600_000;

    #[test]
    fn periods_start_at_calendar_boundaries() {
        let noon = JUNE_15_2026 + 12 * 3_600_000;
        let day = 86_400_000;
        assert_eq!(period(Limit::PerDay, noon), (JUNE_15_2026, JUNE_15_2026 + day));
        assert_eq!(period(Limit::PerMonth, noon), (JUNE_15_2026 - 14 * day, JUNE_15_2026 + 16 * day));
        assert_eq!(period(Limit::Once, noon), (i64::MIN, i64::MAX));
    }

    #[test]
    fn birthdays_match_month_and_day() {
        assert!(is_birthday("1990-06-15", JUNE_15_2026 + 1000));
        assert!(is_birthday("1990-06-15T00:00:00Z", JUNE_15_2026));
        assert!(!is_birthday("1990-06-16", JUNE_15_2026));
        assert!(!is_birthday("not a date", JUNE_15_2026));
        let feb_28_2027 = 1_803_772_800_000;
        assert!(is_birthday("2000-02-29", feb_28_2027));
    }
}
