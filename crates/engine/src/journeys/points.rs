//! What a message says about loyalty, read at send time: the points the cart would earn at the
//! prices the message shows (the earning rules, the tier multiplier and the arithmetic an
//! order's earning uses, `tailor_loyalty::order_points`), the spendable balance and tier, the
//! points expiring within the warning window, a tier held in its grace period with what keeps
//! it, and the birthday reward. Read once per batch, only for the customers whose message shows
//! them; nothing is written.

use std::collections::HashMap;

use serde_json::{json, Value};
use tailor_loyalty as loyalty;
use tailor_profiles::Contact;

use crate::{Engine, EngineError};

/// The channel an order placed from a message is expected on (messages are priced for it too).
const CHANNEL: &str = "web";

/// One customer's account as a message shows it.
struct Account {
    /// Spendable (active) points.
    balance: i64,
    /// The tier held, if any.
    tier: Option<String>,
    /// The tier's earning multiplier (None: the program has no tiers).
    multiplier: Option<f64>,
    /// Active points that expire within the warning window unless spent, and by when.
    expiring: (i64, i64),
    /// A tier held in its grace period: until when, points and spend (cents) still needed.
    at_risk: Option<(i64, Option<i64>, Option<i64>)>,
}

/// The template variables a message may show from loyalty.
pub(super) const VARIABLES: &[&str] = &["points", "expiring", "tierRisk", "birthday"];

/// What a message shows of a customer's loyalty (each absent when there is nothing to say).
#[derive(Debug, Default)]
pub(super) struct Shown {
    /// `points`: earn, balance, tier.
    pub points: Option<Value>,
    /// `expiring`: points, by (a date).
    pub expiring: Option<Value>,
    /// `tierRisk`: tier, graceUntil (a date), pointsNeeded, spendNeededCents.
    pub tier_risk: Option<Value>,
    /// `birthday`: points (the birthday reward).
    pub birthday: Option<Value>,
}

fn date(ms: i64) -> String {
    tailor_core::time::format_millis(ms).chars().take(10).collect()
}

/// The program and the accounts of a batch's customers.
#[derive(Default)]
pub(super) struct Points {
    rules: Vec<loyalty::Rule>,
    policy: loyalty::Policy,
    accounts: HashMap<String, Account>,
    /// The birthday reward's points (0: none).
    birthday: i64,
}

impl Points {
    /// Reads the program and the accounts of `customers` as of `now`.
    pub(super) async fn load(engine: &Engine, customers: &[&Contact], now: i64) -> Result<Points, EngineError> {
        if customers.is_empty() {
            return Ok(Points::default());
        }
        let mut conn = engine.db().reader().acquire().await?;
        let rules = loyalty::rules(&mut conn).await?;
        let tiers = loyalty::tiers(&mut conn).await?;
        let policy = engine.loyalty_policy();
        let birthday = loyalty::rewards(&mut conn)
            .await?
            .iter()
            .filter(|r| r.trigger == loyalty::Trigger::Birthday)
            .fold(0_i64, |sum, r| sum.saturating_add(r.points));
        let warn_by = now.saturating_add(policy.expiry_warning_ms);
        let mut accounts = HashMap::with_capacity(customers.len());
        let members: Vec<String> = customers.iter().flat_map(|c| c.members.iter().cloned()).collect();
        let active = loyalty::active_by_profile(&mut conn, &members, &policy, warn_by).await?;
        for c in customers {
            if c.members.is_empty() {
                continue;
            }
            let (mut balance, mut credits, mut debits) = (0_i64, 0_i64, 0_i64);
            for (b, cr, de) in c.members.iter().filter_map(|m| active.get(m)) {
                balance = balance.saturating_add(*b);
                credits = credits.saturating_add(*cr);
                debits = debits.saturating_add(*de);
            }
            let expiring = (credits.saturating_sub(debits).max(0), warn_by);
            let (tier, multiplier, at_risk) = if tiers.is_empty() {
                (None, None, None)
            } else {
                let s = loyalty::standing(&mut conn, &c.members, &c.id, &tiers, now).await?;
                // In its grace period: what the held tier needs that the last year has not given.
                let at_risk = s.grace_until.zip(s.tier.as_ref()).and_then(|(until, name)| {
                    let t = tiers.iter().find(|t| &t.name == name)?;
                    let points = t.min_points.map(|p| p.saturating_sub(s.qualifying.points).max(0));
                    let spend = t.min_spend_cents.map(|m| m.saturating_sub(s.qualifying.spend_cents).max(0));
                    Some((until, points, spend))
                });
                (s.tier, Some(s.multiplier), at_risk)
            };
            accounts.insert(c.id.clone(), Account { balance, tier, multiplier, expiring, at_risk });
        }
        Ok(Points { rules, policy, accounts, birthday })
    }

    /// What a message shows `customer` (nothing when their account was not read).
    pub(super) fn show(
        &self,
        customer: &str,
        lines: &[(i64, Option<String>)],
        now: i64,
        explanation: &mut Vec<String>,
    ) -> Shown {
        let Some(account) = self.accounts.get(customer) else { return Shown::default() };
        let (expiring, by) = account.expiring;
        let expiring = (expiring > 0).then(|| {
            explanation.push(format!("{expiring} points expire by {}", date(by)));
            json!({"points": expiring, "by": date(by)})
        });
        let tier_risk = account.at_risk.and_then(|(until, points, spend)| {
            let tier = account.tier.as_ref()?;
            explanation.push(format!("{tier} is held until {} unless requalified", date(until)));
            let mut v = json!({"tier": tier, "graceUntil": date(until)});
            if let Some(p) = points {
                v["pointsNeeded"] = json!(p);
            }
            if let Some(c) = spend {
                v["spendNeededCents"] = json!(c);
            }
            Some(v)
        });
        let birthday = (self.birthday > 0).then(|| json!({"points": self.birthday}));
        Shown { points: self.points(account, lines, now, explanation), expiring, tier_risk, birthday }
    }

    /// `points`: `earn` (what an order of `lines` — amount in cents and category — would earn
    /// at `now`), `balance` and, when they hold one, `tier`; None when out of range.
    fn points(
        &self,
        account: &Account,
        lines: &[(i64, Option<String>)],
        now: i64,
        explanation: &mut Vec<String>,
    ) -> Option<Value> {
        let earn = match loyalty::order_points(lines, CHANNEL, now, &self.rules, &self.policy, account.multiplier) {
            Ok(p) => p,
            Err(e) => {
                explanation.push(format!("points left out: {e}"));
                return None;
            }
        };
        if !lines.is_empty() {
            let mut why = format!("the cart would earn {earn} points");
            if let (Some(t), Some(m)) = (&account.tier, account.multiplier) {
                why.push_str(&format!(" ({t}: {m}x)"));
            }
            explanation.push(why);
        }
        let mut out = json!({"earn": earn, "balance": account.balance});
        if let Some(t) = &account.tier {
            out["tier"] = json!(t);
        }
        Some(out)
    }
}
