//! Markdowns: for stock that must be gone by a date, the schedule of price steps (never back
//! up) that earns most over the remaining periods, given the demand curve, with what is left at
//! the end worth its salvage value. Dynamic programming over (period, price step, units left)
//! on expected sales.

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::demand::Demand;
use crate::experiment::Objective;

/// What to clear and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkdownRequest {
    /// The product, when the plan is for one: its guardrails then bound every price.
    #[serde(default)]
    pub sku: Option<String>,
    /// Units on hand.
    pub stock: u32,
    /// Periods (days) until it must be gone.
    pub periods: u32,
    /// Allowed prices, highest first (the list price, then each markdown step), already within
    /// the guardrails.
    pub prices: Vec<f64>,
    /// The list price the demand curve is anchored on.
    pub reference_price: f64,
    /// Cost of a unit (for the margin objective).
    pub unit_cost: f64,
    /// What a unit left at the end is worth (e.g. to a liquidator).
    pub salvage_value: f64,
    /// Expected demand per period.
    pub demand: Demand,
    /// Revenue or margin.
    #[serde(default)]
    pub objective: Objective,
}

/// One step of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The first period at this price (0-based).
    pub from_period: u32,
    /// The price.
    pub price: f64,
}

/// A markdown schedule and what it expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkdownPlan {
    /// Price changes in order (the first starts at period 0).
    pub steps: Vec<Step>,
    /// Units expected to sell.
    pub expected_units: f64,
    /// Expected objective (revenue or margin, salvage included).
    pub expected_value: f64,
    /// Units expected to be left.
    pub expected_leftover: f64,
}

impl MarkdownRequest {
    fn check(&self) -> Result<(), FieldError> {
        if self.periods == 0 || self.periods > 365 {
            return Err(FieldError::invalid("periods", "between 1 and 365 days"));
        }
        if self.stock > 1_000_000 {
            return Err(FieldError::invalid("stock", "at most 1000000 units per plan"));
        }
        if self.prices.is_empty() || self.prices.len() > 20 {
            return Err(FieldError::invalid("prices", "give 1 to 20 prices, highest first"));
        }
        for (i, p) in self.prices.iter().enumerate() {
            if !(p.is_finite() && *p > 0.0) || (i > 0 && *p > self.prices[i - 1]) {
                return Err(FieldError::invalid(format!("prices[{i}]"), "positive prices, highest first"));
            }
        }
        if !(self.reference_price.is_finite() && self.reference_price > 0.0) {
            return Err(FieldError::invalid("referencePrice", "a price above 0"));
        }
        if !(self.unit_cost.is_finite()
            && self.unit_cost >= 0.0
            && self.salvage_value.is_finite()
            && self.salvage_value >= 0.0)
        {
            return Err(FieldError::invalid("unitCost", "cost and salvage value are 0 or more"));
        }
        if self.objective == Objective::MarginWithVolumeFloor {
            return Err(FieldError::invalid("objective", "a markdown plan maximizes revenue or margin"));
        }
        self.demand.check().map_err(|(f, why)| FieldError::invalid(format!("demand.{f}"), why))
    }
}

/// The best schedule for `r`.
pub fn plan(r: &MarkdownRequest) -> Result<MarkdownPlan, FieldError> {
    r.check()?;
    // Units are bucketed so the table stays small for large stocks.
    let bucket = (f64::from(r.stock) / 2_000.0).ceil().max(1.0);
    let levels = (f64::from(r.stock) / bucket).round() as usize;
    let (n, t_max) = (r.prices.len(), r.periods as usize);
    let unit_value = |p: f64| r.objective.unit_value(p, r.unit_cost);
    let salvage = r.objective.unit_value(r.salvage_value, r.unit_cost);
    let rate: Vec<f64> = r.prices.iter().map(|p| r.demand.expected(*p, r.reference_price) / bucket).collect();
    // value[j][s]: best from here on at price step j with s buckets left.
    let mut value: Vec<Vec<f64>> = vec![(0..=levels).map(|s| s as f64 * bucket * salvage).collect(); n];
    let mut choice = vec![vec![vec![0u8; levels + 1]; n]; t_max];
    for t in (0..t_max).rev() {
        let mut next = vec![vec![0.0; levels + 1]; n];
        for j in 0..n {
            for s in 0..=levels {
                let mut best = (f64::MIN, j);
                for (k, row) in value.iter().enumerate().skip(j) {
                    let sold = rate[k].min(s as f64);
                    // Sales are fractional buckets: interpolate the future between neighbours.
                    let left = s as f64 - sold;
                    let (lo, frac) = (left.floor() as usize, left - left.floor());
                    let future = row[lo] * (1.0 - frac) + row[(lo + 1).min(levels)] * frac;
                    let v = sold * bucket * unit_value(r.prices[k]) + future;
                    if v > best.0 + 1e-9 {
                        best = (v, k);
                    }
                }
                next[j][s] = best.0;
                choice[t][j][s] = best.1 as u8;
            }
        }
        value = next;
    }
    // Walk the plan forward from the list price and the whole stock.
    let (mut j, mut s) = (0usize, levels as f64);
    let (mut steps, mut units) = (Vec::new(), 0.0);
    for (t, table) in choice.iter().enumerate() {
        let k = table[j][s.round() as usize] as usize;
        if steps.is_empty() || k != j {
            steps.push(Step { from_period: t as u32, price: r.prices[k] });
        }
        j = k;
        let sold = rate[k].min(s);
        units += sold * bucket;
        s -= sold;
    }
    Ok(MarkdownPlan { steps, expected_units: units, expected_value: value[0][levels], expected_leftover: s * bucket })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stock: u32) -> MarkdownRequest {
        MarkdownRequest {
            sku: None,
            stock,
            periods: 28,
            prices: vec![10.0, 8.0, 6.0, 5.0],
            reference_price: 10.0,
            unit_cost: 4.0,
            salvage_value: 1.0,
            demand: Demand::ConstantElasticity { base_demand: 10.0, elasticity: -2.0 },
            objective: Objective::Revenue,
        }
    }

    #[test]
    fn overstock_is_marked_down_in_steps_that_never_go_back_up() {
        let p = plan(&request(800)).expect("plan");
        assert!(p.steps.len() > 1, "{p:?}");
        assert!(p.steps.windows(2).all(|w| w[1].price < w[0].price && w[1].from_period > w[0].from_period));
        // Better than holding the list price and salvaging the rest.
        let hold = 28.0 * 10.0 * 10.0 + (800.0 - 280.0) * 1.0;
        assert!(p.expected_value > hold * 1.05, "{} vs {hold}", p.expected_value);
    }

    #[test]
    fn scarce_stock_keeps_its_price() {
        let p = plan(&request(200)).expect("plan");
        assert_eq!(p.steps, vec![Step { from_period: 0, price: 10.0 }], "{p:?}");
    }

    #[test]
    fn bad_requests_name_the_field() {
        let mut r = request(10);
        r.prices = vec![5.0, 8.0];
        assert_eq!(plan(&r).map_err(|e| e.field), Err("prices[1]".into()));
    }
}
