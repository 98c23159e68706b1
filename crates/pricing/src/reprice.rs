//! Repricing from market conditions: stock cover (scarce: never lower; overstocked: step down to
//! clear), the lowest competitor price of the last week and demand signals. The rule proposes a
//! price and says which condition moved it; the guardrails then decide what is set.

use serde::{Deserialize, Serialize};
use tailor_core::commerce::MAX_PRICE_CENTS;
use tailor_core::money::format_cents;
use tailor_core::FieldError;

use crate::DAY_MS;

/// Fewer days of stock cover than this: scarce, the price is not lowered.
pub const SCARCE_DAYS: f64 = 7.0;
/// More days of cover than this: overstocked, the price steps down to clear.
pub const OVERSTOCK_DAYS: f64 = 90.0;
/// Sales over this many days give the rate stock cover is measured against.
pub const COVER_WINDOW_DAYS: i64 = 28;
/// Market inputs older than this many days are not followed.
pub const MARKET_WINDOW_DAYS: i64 = 7;
/// Demand this far above normal (1.2: 20%) raises the price by [`DEMAND_STEP`].
const DEMAND_HIGH: f64 = 1.2;
/// How much high demand raises the price (1.05: 5%).
const DEMAND_STEP: f64 = 1.05;
/// How much overstock lowers the price (0.9: 10%).
const OVERSTOCK_STEP: f64 = 0.9;

/// The highest demand index accepted (100 times normal): a feed's typo, not a market.
pub const MAX_DEMAND_INDEX: f64 = 100.0;

/// Market conditions for a product: a competitor's price or a demand signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketInput {
    /// The product.
    pub sku: String,
    /// Who reports it: a competitor's name, or `demand` for a demand signal.
    pub source: String,
    /// The competitor's price, in cents.
    #[serde(default)]
    pub cents: Option<i64>,
    /// Demand relative to normal (1.0 normal, 1.3 thirty percent above).
    #[serde(default)]
    pub demand_index: Option<f64>,
}

impl MarketInput {
    /// Checks the input carries exactly one of a price above 0 (at most
    /// [`MAX_PRICE_CENTS`](tailor_core::commerce::MAX_PRICE_CENTS), as every price) or a demand
    /// index from 0 to [`MAX_DEMAND_INDEX`]; the error names the field.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.source.trim().is_empty() {
            return Err(FieldError::invalid("source", "a competitor's name, or 'demand'"));
        }
        tailor_core::text::check_id("sku", &self.sku)?;
        tailor_core::text::check_id("source", &self.source)?;
        match (self.cents, self.demand_index) {
            (Some(c), None) if c > 0 && c <= MAX_PRICE_CENTS => Ok(()),
            (None, Some(d)) if d.is_finite() && (0.0..=MAX_DEMAND_INDEX).contains(&d) => Ok(()),
            (Some(_), None) => Err(FieldError::invalid(
                "cents",
                format!("a price above 0 and at most {}", format_cents(MAX_PRICE_CENTS)),
            )),
            (None, Some(_)) => {
                Err(FieldError::invalid("demandIndex", format!("from 0 to {MAX_DEMAND_INDEX}; 1.0 is normal")))
            }
            _ => Err(FieldError::invalid("cents", "give cents (a competitor's price) or demandIndex")),
        }
    }
}

/// One stored market input, as repricing reads it (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct MarketSignal {
    /// Who reported it.
    pub source: String,
    /// A competitor's price, in cents.
    pub cents: Option<i64>,
    /// A demand index.
    pub demand_index: Option<f64>,
}

/// Days the available stock lasts at the sales rate of the last [`COVER_WINDOW_DAYS`] days:
/// `None` when the product's stock is not tracked, infinite when stock sits unsold, 0 when
/// there is none.
pub fn stock_cover_days(available: Option<i64>, sold_in_window: i64) -> Option<f64> {
    let available = available?;
    let per_day = sold_in_window as f64 / COVER_WINDOW_DAYS as f64;
    Some(if per_day > 0.0 {
        available.max(0) as f64 / per_day
    } else if available > 0 {
        f64::INFINITY
    } else {
        0.0
    })
}

/// From when stock cover counts sales, as of `now` (unix ms, inclusive).
pub fn cover_window_start(now: i64) -> i64 {
    now - COVER_WINDOW_DAYS * DAY_MS
}

/// What repricing proposes: a price and the conditions that moved it.
#[derive(Debug, Clone, PartialEq)]
pub struct Repricing {
    /// The proposed price, in cents (before guardrails).
    pub cents: i64,
    /// Each condition that moved (or held) it, in words.
    pub reasons: Vec<String>,
}

impl Repricing {
    /// The reason recorded with the decision.
    pub fn reason(&self) -> String {
        format!("reprice: {}", self.reasons.join("; "))
    }
}

/// Proposes a price for a product listed at `current` cents with `cover` days of stock and
/// the `market` inputs of the last week (oldest first). A competitor below half the list price
/// is taken for a bad feed row and not followed; scarce stock never lowers the price;
/// overstock steps it down; high demand steps it up unless overstocked.
pub fn reprice(current: i64, cover: Option<f64>, market: &[MarketSignal]) -> Repricing {
    let competitor = market.iter().filter_map(|m| m.cents.map(|c| (m.source.as_str(), c))).min_by_key(|c| c.1);
    let demand = market.iter().filter_map(|m| m.demand_index).next_back();
    let mut reasons = Vec::new();
    let mut target = current;
    let scarce = cover.is_some_and(|d| d < SCARCE_DAYS);
    let overstocked = cover.is_some_and(|d| d > OVERSTOCK_DAYS);
    if let Some((name, c)) = competitor {
        // Checked: a row stored before prices had a bound may hold any i64.
        if c.checked_mul(2).is_some_and(|twice| twice < current) {
            // Likely a bad feed row (a unit or pack-size mix-up): not followed.
            reasons.push(format!(
                "{name}'s {} is below half the list price and was not followed; check the feed",
                format_cents(c)
            ));
        } else if c < current && !scarce {
            target = c;
            reasons.push(format!("{name} sells it at {}", format_cents(c)));
        }
    }
    if overstocked {
        target = target.min((current as f64 * OVERSTOCK_STEP).round() as i64);
        reasons.push(format!("overstocked: {:.0} days of cover", cover.unwrap_or_default()));
    }
    if let Some(d) = demand {
        if d > DEMAND_HIGH && !overstocked {
            target = target.max((current as f64 * DEMAND_STEP).round() as i64);
            reasons.push(format!("demand {:.0}% above normal", (d - 1.0) * 100.0));
        }
    }
    if scarce {
        target = target.max(current);
        reasons.push(format!("scarce: {:.1} days of cover, the price is not lowered", cover.unwrap_or_default()));
    }
    if reasons.is_empty() {
        reasons.push("no market condition calls for a change".into());
    }
    Repricing { cents: target, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn competitor(name: &str, cents: i64) -> MarketSignal {
        MarketSignal { source: name.into(), cents: Some(cents), demand_index: None }
    }

    fn demand(d: f64) -> MarketSignal {
        MarketSignal { source: "demand".into(), cents: None, demand_index: Some(d) }
    }

    #[test]
    fn stock_cover_is_days_at_the_recent_rate() {
        assert_eq!(stock_cover_days(None, 10), None, "untracked");
        assert_eq!(stock_cover_days(Some(28), 28), Some(28.0), "one a day");
        assert_eq!(stock_cover_days(Some(5), 0), Some(f64::INFINITY), "nothing sells");
        assert_eq!(stock_cover_days(Some(0), 0), Some(0.0));
        assert_eq!(stock_cover_days(Some(-3), 28), Some(0.0), "oversold counts as none");
        assert_eq!(cover_window_start(COVER_WINDOW_DAYS * DAY_MS), 0);
    }

    #[test]
    fn the_lowest_competitor_is_followed_unless_stock_is_scarce() {
        let market = [competitor("a", 950), competitor("b", 900)];
        let r = reprice(1000, Some(30.0), &market);
        assert_eq!(r.cents, 900);
        assert_eq!(r.reason(), "reprice: b sells it at 9.00");
        let r = reprice(1000, Some(3.0), &market);
        assert_eq!(r.cents, 1000, "scarce: never lowered");
        assert!(r.reasons[0].starts_with("scarce: 3.0 days"));
    }

    #[test]
    fn market_inputs_are_bounded_and_any_stored_price_reprices_without_overflow() {
        let m = MarketInput { sku: "A".into(), source: "rival".into(), cents: Some(i64::MAX), demand_index: None };
        assert_eq!(m.check().unwrap_err().field, "cents");
        assert!(MarketInput { cents: Some(MAX_PRICE_CENTS), ..m.clone() }.check().is_ok());
        let d = MarketInput { cents: None, demand_index: Some(1e308), ..m };
        assert_eq!(d.check().unwrap_err().field, "demandIndex");
        // The fuzzer's finding: a competitor at i64::MAX overflowed `c * 2` and panicked.
        let r = reprice(1000, Some(30.0), &[competitor("typo", i64::MAX)]);
        assert_eq!(r.cents, 1000);
    }

    #[test]
    fn a_competitor_below_half_is_a_bad_feed_row() {
        let r = reprice(1000, None, &[competitor("cheap", 400)]);
        assert_eq!(r.cents, 1000);
        assert!(r.reasons[0].contains("was not followed"), "{:?}", r.reasons);
    }

    #[test]
    fn overstock_steps_down_and_demand_steps_up() {
        let r = reprice(1000, Some(f64::INFINITY), &[demand(1.5)]);
        assert_eq!(r.cents, 900, "overstock wins over demand");
        assert_eq!(r.reasons, vec!["overstocked: inf days of cover".to_string()]);
        let r = reprice(1000, Some(30.0), &[demand(2.0), demand(1.3)]);
        assert_eq!(r.cents, 1050, "the latest signal counts");
        assert_eq!(r.reasons, vec!["demand 30% above normal".to_string()]);
        let r = reprice(1000, Some(2.0), &[demand(1.3)]);
        assert_eq!(r.cents, 1050, "scarce and in demand: up");
        assert_eq!(reprice(1000, None, &[]).reason(), "reprice: no market condition calls for a change");
    }

    #[test]
    fn market_inputs_carry_one_signal() {
        let m = MarketInput { sku: "A".into(), source: "rival".into(), cents: Some(100), demand_index: None };
        assert!(m.check().is_ok());
        assert_eq!(MarketInput { source: " ".into(), ..m.clone() }.check().unwrap_err().field, "source");
        assert_eq!(MarketInput { cents: Some(0), ..m.clone() }.check().unwrap_err().field, "cents");
        assert_eq!(MarketInput { demand_index: Some(1.0), ..m.clone() }.check().unwrap_err().field, "cents");
        let d = MarketInput { cents: None, demand_index: Some(f64::NAN), ..m };
        assert_eq!(d.check().unwrap_err().field, "demandIndex");
    }
}
