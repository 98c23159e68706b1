//! Uplift for journeys as they run: the facts about a customer a live model reads (what every
//! shop's orders tell: recency, frequency, spend, tenure), a model trained from a journey's own
//! randomized entries (its holdout against those sent regardless of targeting), and the side
//! each new entry falls on.
//!
//! Every entry is first put, by stable hashes, in the holdout (sent nothing) or the exploration
//! share (sent whatever its uplift); only the rest meet the targeting rule. Both random groups
//! are samples of everyone who enters, so the next model learns without the bias of the last.

use serde::{Deserialize, Serialize};

use crate::table::Campaign;
use crate::uplift::{UpliftModel, DEFAULT_ENSEMBLE};
use crate::TargetingError;

/// The feature columns of a live model, in order.
pub const LIVE_FEATURES: [&str; 4] = ["recency_days", "orders_365", "spend_365", "tenure_days"];

/// The fewest entries each randomized side needs before a model is trained from them.
pub const MIN_PER_SIDE: usize = 30;

/// Days without an order that count as "never" (and cap every day count).
const MAX_DAYS: f64 = 3_650.0;
const DAY_MS: f64 = 86_400_000.0;

/// What a live uplift model knows about a customer when they enter a journey.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerFacts {
    /// Days since their last order before entering (3,650 when none).
    pub recency_days: f64,
    /// Orders in the 365 days before entering.
    pub orders_365: f64,
    /// Their spend in those days, in major units.
    pub spend_365: f64,
    /// Days since their first known order (0 when none).
    pub tenure_days: f64,
}

impl CustomerFacts {
    /// The facts from a customer's orders, each (time in unix ms, total in major units); orders
    /// at or after `at` are ignored (they happened after the decision).
    pub fn from_orders(orders: &[(i64, f64)], at: i64) -> CustomerFacts {
        let before: Vec<(i64, f64)> = orders.iter().copied().filter(|(ts, _)| *ts < at).collect();
        let days = |ts: i64| ((at.saturating_sub(ts)) as f64 / DAY_MS).clamp(0.0, MAX_DAYS);
        let year: Vec<&(i64, f64)> = before.iter().filter(|(ts, _)| days(*ts) <= 365.0).collect();
        CustomerFacts {
            recency_days: before.iter().map(|(ts, _)| days(*ts)).fold(MAX_DAYS, f64::min),
            orders_365: year.len() as f64,
            spend_365: year.iter().map(|(_, t)| if t.is_finite() { t.clamp(0.0, 1e9) } else { 0.0 }).sum(),
            tenure_days: before.iter().map(|(ts, _)| days(*ts)).fold(0.0, f64::max),
        }
    }

    /// The values in [`LIVE_FEATURES`] order, as a model reads them.
    pub fn row(&self) -> Vec<String> {
        [self.recency_days, self.orders_365, self.spend_365, self.tenure_days].iter().map(|v| v.to_string()).collect()
    }
}

/// One entry a live model learns from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Example {
    /// The customer's facts when they entered.
    pub facts: CustomerFacts,
    /// Sent the journey's messages (false: held out).
    pub treated: bool,
    /// Reached the journey's goal within its attribution window.
    pub converted: bool,
}

/// A model ready for journeys: the uplift model and the spread of its predictions over the
/// customers it learned from, so that "the top 30%" means the same share whoever enters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveModel {
    model: UpliftModel,
    /// Predicted uplift at each percentile 0..=100 of the training customers.
    quantiles: Vec<f64>,
    /// Treated entries learned from, and how many converted.
    pub treated: (usize, usize),
    /// Held-out entries learned from, and how many converted.
    pub control: (usize, usize),
}

impl LiveModel {
    /// Trains on randomized entries; refuses fewer than [`MIN_PER_SIDE`] on either side.
    pub fn train(examples: &[Example]) -> Result<LiveModel, TargetingError> {
        let side = |treated: bool| {
            let of: Vec<&Example> = examples.iter().filter(|e| e.treated == treated).collect();
            (of.len(), of.iter().filter(|e| e.converted).count())
        };
        let (treated, control) = (side(true), side(false));
        if treated.0 < MIN_PER_SIDE || control.0 < MIN_PER_SIDE {
            return Err(TargetingError::BadColumn {
                column: "entries".into(),
                reason: format!(
                    "a model needs at least {MIN_PER_SIDE} held-out and {MIN_PER_SIDE} randomly sent entries whose \
                     attribution window has closed; there are {} and {}",
                    control.0, treated.0
                ),
            });
        }
        let campaign = Campaign {
            features: LIVE_FEATURES.iter().map(|s| s.to_string()).collect(),
            rows: examples.iter().map(|e| e.facts.row()).collect(),
            arm: examples.iter().map(|e| usize::from(e.treated)).collect(),
            arms: vec!["1".into()],
            outcome: examples.iter().map(|e| e.converted).collect(),
        };
        let model = UpliftModel::fit(&campaign, &DEFAULT_ENSEMBLE)?;
        let mut scores = model.score(&campaign)?;
        scores.retain(|s| s.is_finite());
        scores.sort_by(f64::total_cmp);
        let quantiles = (0..=100)
            .map(|p| {
                let i = (p * scores.len().saturating_sub(1)) / 100;
                scores.get(i).copied().unwrap_or(0.0)
            })
            .collect();
        Ok(LiveModel { model, quantiles, treated, control })
    }

    /// The predicted rise in the customer's chance to convert if sent the journey's messages.
    pub fn uplift(&self, facts: &CustomerFacts) -> f64 {
        self.model.uplift(&facts.row(), 0).ok().filter(|u| u.is_finite()).unwrap_or(0.0)
    }

    /// The uplift above which a customer is in the top `share` (0–1] of the training customers.
    pub fn top_threshold(&self, share: f64) -> f64 {
        let p = ((1.0 - share.clamp(0.0, 1.0)) * 100.0).round() as usize;
        self.quantiles.get(p.min(100)).copied().unwrap_or(0.0)
    }
}

/// Whom a journey sends to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Those whose uplift is in the top share (0–1] of customers (above the share's bar; all
    /// at 1).
    TopShare(f64),
    /// Those whose uplift × the value of a conversion exceeds the cost of a message.
    Value {
        /// What a conversion is worth (e.g. its margin), in major units.
        per_conversion: f64,
        /// What one message costs, in major units.
        per_message: f64,
    },
}

/// The side an entry falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// In the random holdout: sent nothing.
    Holdout,
    /// In the random exploration share: sent whatever its uplift.
    Explore,
    /// Chosen by the rule: sent.
    Targeted,
    /// Left out by the rule: sent nothing.
    NotTargeted,
}

impl Side {
    /// Whether this side is sent messages.
    pub fn is_sent(self) -> bool {
        matches!(self, Side::Explore | Side::Targeted)
    }
}

/// The side of an entry that is not held out, and why: in the exploration share when `explore`
/// (a stable draw the caller made), else by the rule.
pub fn side(explore: bool, uplift: f64, rule: Rule, model: &LiveModel) -> (Side, String) {
    let pct = |u: f64| format!("{:+.2} points", u * 100.0);
    if explore {
        return (
            Side::Explore,
            format!("in the exploration share, sent whatever its uplift ({}) so the next model learns", pct(uplift)),
        );
    }
    match rule {
        Rule::TopShare(share) => {
            let bar = model.top_threshold(share);
            let top = format!("the top {:.0}% (above {})", share * 100.0, pct(bar));
            // Ties at the bar are left out: a share is at most that share.
            if share >= 1.0 || uplift > bar {
                (Side::Targeted, format!("predicted uplift {} is in {top}", pct(uplift)))
            } else {
                (
                    Side::NotTargeted,
                    format!("predicted uplift {} is below {top}: a message would change little", pct(uplift)),
                )
            }
        }
        Rule::Value { per_conversion, per_message } => {
            let value = uplift * per_conversion;
            let said = format!(
                "predicted uplift {} × {per_conversion:.2} per conversion = {value:.3}, against {per_message:.3} a message",
                pct(uplift)
            );
            if value > per_message {
                (Side::Targeted, said)
            } else {
                (Side::NotTargeted, format!("{said}: not worth sending"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(orders: f64) -> CustomerFacts {
        CustomerFacts { recency_days: 10.0, orders_365: orders, spend_365: orders * 30.0, tenure_days: 400.0 }
    }

    /// Frequent customers convert when sent and not otherwise; the rest never convert.
    fn examples() -> Vec<Example> {
        let mut out = Vec::new();
        for i in 0..400 {
            let frequent = i % 2 == 0;
            let treated = (i / 2) % 2 == 0;
            let converted = frequent && treated && i % 5 != 0;
            out.push(Example { facts: facts(if frequent { 12.0 } else { 1.0 }), treated, converted });
        }
        out
    }

    #[test]
    fn facts_come_from_orders_before_the_entry() {
        let day = 86_400_000;
        let at = 1_000 * day;
        let f = CustomerFacts::from_orders(&[(at - 2 * day, 10.0), (at - 400 * day, 5.0), (at + day, 99.0)], at);
        assert_eq!(f.recency_days, 2.0);
        assert_eq!(f.orders_365, 1.0);
        assert_eq!(f.spend_365, 10.0);
        assert_eq!(f.tenure_days, 400.0);
        let none = CustomerFacts::from_orders(&[], at);
        assert_eq!((none.recency_days, none.orders_365, none.tenure_days), (3_650.0, 0.0, 0.0));
    }

    #[test]
    fn a_model_ranks_those_the_message_changes_first() {
        let m = LiveModel::train(&examples()).expect("train");
        let (high, low) = (m.uplift(&facts(12.0)), m.uplift(&facts(1.0)));
        assert!(high > 0.5 && low.abs() < 0.1, "{high} {low}");
        let (s, why) = side(false, high, Rule::TopShare(0.5), &m);
        assert_eq!(s, Side::Targeted, "{why}");
        let (s, why) = side(false, low, Rule::TopShare(0.5), &m);
        assert_eq!(s, Side::NotTargeted);
        assert!(why.contains("below the top 50%"), "{why}");
        assert_eq!(side(true, low, Rule::TopShare(0.5), &m).0, Side::Explore);
        let value = Rule::Value { per_conversion: 10.0, per_message: 0.5 };
        assert_eq!(side(false, high, value, &m).0, Side::Targeted);
        assert_eq!(side(false, low, value, &m).0, Side::NotTargeted);
        let back: LiveModel = serde_json::from_str(&serde_json::to_string(&m).expect("json")).expect("parse");
        assert!((back.uplift(&facts(12.0)) - high).abs() < 1e-12, "a stored model predicts the same");
    }

    #[test]
    fn too_few_randomized_entries_are_refused_with_the_counts() {
        let few: Vec<Example> = examples().into_iter().take(40).collect();
        let e = LiveModel::train(&few).expect_err("too few");
        assert!(e.to_string().contains("there are 20 and 20"), "{e}");
    }
}
