//! Earning rules, as data the marketing team edits: a rule either sets the points earned per
//! currency unit for the lines it matches (by channel and category; the most specific wins), or
//! multiplies them (a bonus campaign, between two dates). Without rules the policy's rate holds.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::LoyaltyError;
use crate::ledger::Policy;

/// One earning rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// A name for people (unique).
    pub name: String,
    /// Only orders of this channel (web, app, store, …).
    pub channel: Option<String>,
    /// Only lines of this category.
    pub category: Option<String>,
    /// Points per currency unit for matching lines (a rate rule).
    pub points_per_unit: Option<f64>,
    /// Multiplies matching lines' points (a bonus rule).
    pub multiplier: Option<f64>,
    /// From when it applies.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<i64>,
    /// Until when it applies (exclusive).
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<i64>,
}

impl Rule {
    fn applies(&self, channel: &str, category: Option<&str>, at: i64) -> bool {
        self.channel.as_deref().is_none_or(|c| c == channel)
            && self.category.as_deref().is_none_or(|c| Some(c) == category)
            && self.starts_at.is_none_or(|s| at >= s)
            && self.ends_at.is_none_or(|e| at < e)
    }

    fn specificity(&self) -> u8 {
        u8::from(self.category.is_some()) * 2 + u8::from(self.channel.is_some())
    }

    fn check(&self, i: usize) -> Result<(), LoyaltyError> {
        let bad = |field: &str, why: &str| {
            Err(LoyaltyError::Invalid(FieldError::invalid(format!("rules[{i}].{field}"), why)))
        };
        if self.name.trim().is_empty() {
            return bad("name", "give the rule a name");
        }
        if self.name.len() > tailor_core::text::MAX_ID_BYTES {
            return bad("name", "must be at most 256 bytes");
        }
        // A misspelt channel would make a rule that never matches: refuse it.
        if let Some(c) = &self.channel {
            if tailor_core::Channel::parse(c).map(|ch| ch.as_str()) != Some(c.as_str()) {
                return bad("channel", "must be one of web, app, store, support, chat, email, server");
            }
        }
        match (self.points_per_unit, self.multiplier) {
            (Some(r), None) if r.is_finite() && (0.0..=MAX_RATE).contains(&r) => {}
            (None, Some(m)) if m.is_finite() && (0.0..=MAX_MULTIPLIER).contains(&m) => {}
            (Some(_), Some(_)) | (None, None) => {
                return bad("pointsPerUnit", "give either pointsPerUnit or multiplier")
            }
            (Some(_), None) => return bad("pointsPerUnit", &format!("must be a number from 0 to {MAX_RATE}")),
            (None, Some(_)) => return bad("multiplier", &format!("must be a number from 0 to {MAX_MULTIPLIER}")),
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            if e <= s {
                return bad("endsAt", "must be after startsAt");
            }
        }
        Ok(())
    }
}

/// The highest rate a rule may set: points per currency unit.
pub const MAX_RATE: f64 = 1_000.0;
/// The highest multiplier a bonus rule or a tier may apply.
pub const MAX_MULTIPLIER: f64 = 100.0;

/// `points` times a multiplier, rounded down; refused beyond [`crate::MAX_POINTS`].
pub fn scale(points: i64, multiplier: f64) -> Result<i64, LoyaltyError> {
    within_max(points as f64 * multiplier)
}

fn within_max(points: f64) -> Result<i64, LoyaltyError> {
    // Sums of cents/100 carry float noise (2.9999999999999996 for 3.00): round to a millionth
    // of a point before flooring, so equal amounts always earn equal points.
    let points = (points * 1e6).round() / 1e6;
    if !points.is_finite() || points.abs() > crate::MAX_POINTS as f64 {
        return Err(LoyaltyError::Invalid(FieldError::invalid(
            "points",
            format!("would earn more than {} points at once: check the earning rules and tiers", crate::MAX_POINTS),
        )));
    }
    Ok(points.floor() as i64)
}

/// Points for an order's lines (amount in cents, category) on `channel` at `at`; refused
/// when they would exceed [`crate::MAX_POINTS`].
pub fn points_for(
    lines: &[(i64, Option<String>)],
    channel: &str,
    at: i64,
    rules: &[Rule],
    policy: &Policy,
) -> Result<i64, LoyaltyError> {
    let mut total = 0.0;
    for (cents, category) in lines {
        let category = category.as_deref();
        let rate = rules
            .iter()
            .filter(|r| r.points_per_unit.is_some() && r.applies(channel, category, at))
            .max_by_key(|r| r.specificity())
            .and_then(|r| r.points_per_unit)
            .unwrap_or(policy.points_per_unit);
        let bonus: f64 = rules
            .iter()
            .filter(|r| r.multiplier.is_some() && r.applies(channel, category, at))
            .filter_map(|r| r.multiplier)
            .product();
        total += *cents as f64 / 100.0 * rate * bonus;
    }
    within_max(total)
}

/// Points an order of `lines` earns for a customer whose tier multiplies earnings by
/// `multiplier` (None when the program has no tiers): the one computation an order's earning
/// and a message's "this order would earn" share.
pub fn order_points(
    lines: &[(i64, Option<String>)],
    channel: &str,
    at: i64,
    rules: &[Rule],
    policy: &Policy,
    multiplier: Option<f64>,
) -> Result<i64, LoyaltyError> {
    let points = points_for(lines, channel, at, rules, policy)?;
    match multiplier {
        Some(m) => scale(points, m),
        None => Ok(points),
    }
}

/// The rules in force.
pub async fn rules(conn: &mut AnyConnection) -> Result<Vec<Rule>, LoyaltyError> {
    crate::program::read_all(conn, "loyalty_rules", "name").await
}

/// Replaces every rule (all checked first; nothing changes when one is wrong).
pub async fn set_rules(db: &Db, rules: &[Rule]) -> Result<(), LoyaltyError> {
    for (i, r) in rules.iter().enumerate() {
        r.check(i)?;
    }
    let mut names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(LoyaltyError::Invalid(FieldError::invalid("rules", format!("two rules are named '{}'", w[0]))));
    }
    crate::program::replace_all(db, "loyalty_rules", rules, |r| &r.name, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_rate_wins_and_bonuses_multiply_within_their_dates() {
        let rule =
            |name: &str, channel: Option<&str>, category: Option<&str>, rate: Option<f64>, bonus: Option<f64>| Rule {
                name: name.into(),
                channel: channel.map(Into::into),
                category: category.map(Into::into),
                points_per_unit: rate,
                multiplier: bonus,
                starts_at: bonus.map(|_| 100),
                ends_at: bonus.map(|_| 200),
            };
        let rules = [
            rule("web", Some("web"), None, Some(2.0), None),
            rule("dairy", None, Some("DAIRY"), Some(5.0), None),
            rule("double", Some("web"), None, None, Some(2.0)),
        ];
        let lines = [(1000, Some("DAIRY".to_string())), (1000, Some("BAKERY".to_string()))];
        let policy = Policy::default();
        assert_eq!(points_for(&lines, "web", 150, &rules, &policy).unwrap(), 140);
        assert_eq!(points_for(&lines, "web", 250, &rules, &policy).unwrap(), 70);
        assert_eq!(points_for(&lines, "store", 150, &rules, &policy).unwrap(), 60);
        let huge = [rule("huge", None, None, Some(1000.0), None)];
        assert!(points_for(&[(1_000_000_000, None)], "web", 150, &huge, &policy).is_err());
    }
}
