//! The pricing simulator: products with known demand curves, candidate prices and a horizon;
//! every policy faces the same demand luck (one uniform draw per product and period, inverted
//! through each price's Poisson), under the same guardrails. The scenario format is documented
//! in docs/pricing-scenario.md.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::demand::{normal_quantile, poisson_quantile, Demand};
use crate::experiment::{EpsilonGreedy, Fixed, Objective, Oracle, PricePolicy, Thompson, DEFAULT_VOLUME_FLOOR};
use crate::guardrails::Guardrails;
use crate::robust::{Model, Robust, Settings, DEFAULT_ALPHA};

/// One simulated product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimProduct {
    /// Its id.
    pub id: String,
    /// The list price today (currency units); candidate prices are multiples of it.
    pub reference_price: f64,
    /// Cost of one unit (currency units).
    pub unit_cost: f64,
    /// The true demand curve (unknown to every policy but the oracle).
    pub demand: Demand,
    /// What Tailor believes about the elasticity before any sale: mean and standard deviation
    /// (e.g. its category's estimate). Default: the scenario's `priorElasticity`.
    #[serde(default)]
    pub prior_elasticity: Option<(f64, f64)>,
    /// Demand grows (or shrinks) linearly by this share over the horizon, e.g. 0.4 = +40% by
    /// the last period; default 0.
    #[serde(default)]
    pub trend: f64,
    /// Amplitude of a weekly cycle in demand (0–0.9), e.g. 0.3 = ±30%; default 0.
    #[serde(default)]
    pub weekly: f64,
    /// A change of the demand curve mid-way (a competitor's price move).
    #[serde(default)]
    pub shock: Option<Shock>,
}

/// From period `at` on, demand follows another curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shock {
    /// The first period (0-based) of the new curve.
    pub at: u32,
    /// The curve from then on.
    pub demand: Demand,
}

impl SimProduct {
    /// Expected units in period `t` of `periods` at `price`.
    pub fn expected(&self, price: f64, t: u32, periods: u32) -> f64 {
        let curve = match self.shock {
            Some(s) if t >= s.at => s.demand,
            _ => self.demand,
        };
        let progress = if periods > 1 { f64::from(t) / f64::from(periods - 1) } else { 0.0 };
        let season = 1.0 + self.weekly * (2.0 * std::f64::consts::PI * f64::from(t) / 7.0).cos();
        (curve.expected(price, self.reference_price) * (1.0 + self.trend * progress) * season).max(0.0)
    }
}

/// Limits the simulated prices obey (the same for every product).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimGuardrails {
    /// Minimum margin over cost (fraction of cost).
    #[serde(default)]
    pub min_margin: Option<f64>,
    /// Largest change from one period's price to the next (fraction).
    #[serde(default)]
    pub max_daily_change: Option<f64>,
}

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Periods (days) simulated.
    pub periods: u32,
    /// Candidate prices as multiples of each product's reference price.
    pub price_points: Vec<f64>,
    /// What the policies maximize.
    #[serde(default)]
    pub objective: Objective,
    /// Limits on every price.
    #[serde(default)]
    pub guardrails: Option<SimGuardrails>,
    /// Default prior on elasticities (mean, sd) for products without their own.
    #[serde(default = "default_prior")]
    pub prior_elasticity: (f64, f64),
    /// Periods each candidate price is tried before Tailor's policy samples.
    #[serde(default = "default_min_exposure")]
    pub min_exposure: u32,
    /// Exploration rate of the ε-greedy baseline.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// The share of the list price's earnings Tailor's experiment may give up (0–0.5).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// With `margin_with_volume_floor`: the share of the list price's units a price must keep.
    #[serde(default = "default_volume_floor")]
    pub volume_floor: f64,
    /// The products.
    pub products: Vec<SimProduct>,
}

/// What Tailor knows before a product sells: the spread of category means on The Complete
/// Journey (mean −0.9, sd 0.4 between categories and 0.43 within), widened.
fn default_prior() -> (f64, f64) {
    (-1.0, 0.6)
}
fn default_min_exposure() -> u32 {
    2
}
fn default_epsilon() -> f64 {
    0.1
}
fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}
fn default_volume_floor() -> f64 {
    DEFAULT_VOLUME_FLOOR
}

/// Elasticity quantiles (p0, p10, p25, p50, p75, p90, p100) the default scenario draws from:
/// the shrunk product estimates of `tailor pricing elasticity` on The Complete Journey (10,510
/// products: p10 −1.42, p25 −1.17, median −0.96, p75 −0.78, p90 −0.54; 46% elastic), with
/// tails to −3.0 and −0.1.
pub const DEFAULT_ELASTICITY_QUANTILES: [(f64, f64); 7] =
    [(0.0, -3.0), (0.10, -1.42), (0.25, -1.17), (0.50, -0.96), (0.75, -0.78), (0.90, -0.54), (1.0, -0.1)];

impl Scenario {
    /// The documented default: `products` grocery products (at least 100 in the acceptance run)
    /// with elasticities spread like The Complete Journey's, 70% constant-elasticity and 30%
    /// logit demand, five price points from −20% to +20%, 365 daily periods, revenue.
    pub fn default_scenario(products: usize, seed: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let q = DEFAULT_ELASTICITY_QUANTILES;
        let products = (0..products)
            .map(|i| {
                let u: f64 = rng.gen();
                let j = q.windows(2).position(|w| u <= w[1].0).unwrap_or(q.len() - 2);
                let (a, b) = (q[j], q[j + 1]);
                let elasticity = a.1 + (b.1 - a.1) * (u - a.0) / (b.0 - a.0);
                let reference_price = (3.0 * (0.6 * normal_quantile(rng.gen())).exp() * 100.0).round() / 100.0;
                let base_demand = 12.0 * (0.8 * normal_quantile(rng.gen())).exp();
                let demand = if rng.gen_bool(0.7) {
                    Demand::ConstantElasticity { base_demand, elasticity }
                } else {
                    Demand::Logit { base_demand, elasticity, share: rng.gen_range(0.1..0.4) }
                };
                SimProduct {
                    id: format!("P{:03}", i + 1),
                    reference_price,
                    unit_cost: reference_price * rng.gen_range(0.5..0.75),
                    demand,
                    prior_elasticity: None,
                    trend: 0.0,
                    weekly: 0.0,
                    shock: None,
                }
            })
            .collect();
        Scenario {
            periods: 365,
            price_points: vec![0.8, 0.9, 1.0, 1.1, 1.2],
            objective: Objective::Revenue,
            guardrails: Some(SimGuardrails { min_margin: Some(0.05), max_daily_change: Some(0.25) }),
            prior_elasticity: default_prior(),
            min_exposure: default_min_exposure(),
            epsilon: default_epsilon(),
            alpha: default_alpha(),
            volume_floor: default_volume_floor(),
            products,
        }
    }

    /// Checks the scenario; the error names the field (`products[3].demand.elasticity`).
    pub fn check(&self) -> Result<(), FieldError> {
        let bad = |field: String, why: &str| Err(FieldError::invalid(field, why));
        if !(1..=100_000).contains(&self.periods) {
            return bad("periods".into(), "between 1 and 100000");
        }
        if self.price_points.is_empty() || self.price_points.len() > 50 {
            return bad("pricePoints".into(), "give 1 to 50 multiples of the reference price, e.g. [0.9, 1.0, 1.1]");
        }
        if let Some(i) = self.price_points.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
            return bad(format!("pricePoints[{i}]"), "a positive multiple of the reference price");
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            return bad("epsilon".into(), "a probability between 0 and 1");
        }
        if !(0.0..=0.5).contains(&self.alpha) {
            return bad("alpha".into(), "the share of the list price's earnings an experiment may give up, 0 to 0.5");
        }
        if !(self.volume_floor > 0.0 && self.volume_floor <= 1.0) {
            return bad("volumeFloor".into(), "a share of the list price's units above 0 and at most 1, e.g. 0.9");
        }
        let (mean, sd) = self.prior_elasticity;
        if !(mean.is_finite() && sd.is_finite() && sd > 0.0) {
            return bad("priorElasticity".into(), "[mean, sd] with sd above 0, e.g. [-1.5, 1.0]");
        }
        if self.products.is_empty() {
            return bad("products".into(), "give at least one product");
        }
        for (i, p) in self.products.iter().enumerate() {
            if !(p.reference_price.is_finite() && p.reference_price > 0.0) {
                return bad(format!("products[{i}].referencePrice"), "a price above 0");
            }
            if !(p.unit_cost.is_finite() && p.unit_cost >= 0.0) {
                return bad(format!("products[{i}].unitCost"), "a cost of 0 or more");
            }
            if let Err((field, why)) = p.demand.check() {
                return bad(format!("products[{i}].demand.{field}"), why);
            }
            if let Some((mean, sd)) = p.prior_elasticity {
                if !(mean.is_finite() && sd.is_finite() && sd > 0.0) {
                    return bad(format!("products[{i}].priorElasticity"), "[mean, sd] with sd above 0");
                }
            }
            if !(p.trend.is_finite() && p.trend > -0.9 && p.trend <= 5.0) {
                return bad(
                    format!("products[{i}].trend"),
                    "a share of change over the horizon, above −0.9 and at most 5",
                );
            }
            if !(0.0..=0.9).contains(&p.weekly) {
                return bad(format!("products[{i}].weekly"), "a weekly amplitude from 0 to 0.9");
            }
            if let Some(shock) = p.shock {
                if shock.at >= self.periods {
                    return bad(format!("products[{i}].shock.at"), "a period before the end of the horizon");
                }
                if let Err((field, why)) = shock.demand.check() {
                    return bad(format!("products[{i}].shock.demand.{field}"), why);
                }
            }
        }
        if let Some(g) = self.guardrails {
            let rails =
                Guardrails { min_margin: g.min_margin, max_daily_change: g.max_daily_change, ..Default::default() };
            rails.check().map_err(|e| FieldError::invalid(format!("guardrails.{}", e.field), e.message))?;
        }
        Ok(())
    }
}

/// What one policy earned.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResult {
    /// Its name.
    pub policy: String,
    /// Revenue over the horizon.
    pub revenue: f64,
    /// Margin over the horizon.
    pub margin: f64,
    /// The scenario's objective over the horizon (margin less the volume floor's shortfall
    /// under `margin_with_volume_floor`).
    pub objective: f64,
    /// Revenue as a share of the oracle's.
    pub revenue_share: f64,
    /// Margin as a share of the oracle's.
    pub margin_share: f64,
    /// The objective as a share of the oracle's.
    pub objective_share: f64,
}

/// The simulation's outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Oracle, static list price, ε-greedy, Thompson (constant elasticity), Tailor.
    pub policies: Vec<PolicyResult>,
    /// Products whose experiment stopped (Tailor's stopping rule) and the median period it did.
    pub stopped: (usize, Option<u32>),
    /// Products Tailor concluded on the list price (no better price shown).
    pub back_to_list: usize,
    /// Products whose model failed its check and went to the per-price fallback.
    pub fallback: usize,
    /// Restarts after a detected shift in demand, over all products.
    pub restarts: u32,
}

/// The policies every scenario runs, in report order.
pub const POLICIES: [&str; 5] = ["oracle", "static list price", "ε-greedy", "Thompson (const. elast.)", "Tailor"];

/// Runs every policy on the scenario (it must pass `check`).
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let mut totals = vec![[0.0f64; 3]; POLICIES.len()];
    let mut report = Report::default();
    let mut stops = Vec::new();
    for i in 0..scenario.products.len() {
        let (scores, tailor) = run_product(scenario, seed, i);
        for (j, s) in scores.iter().enumerate() {
            (0..3).for_each(|c| totals[j][c] += s[c]);
        }
        if let Some((when, arm)) = tailor.stopped {
            stops.push(when);
            report.back_to_list += usize::from(arm == tailor.list());
        }
        report.fallback += usize::from(tailor.model == Model::PerPrice);
        report.restarts += tailor.restarts;
    }
    stops.sort_unstable();
    let oracle = totals[0];
    let share = |a: f64, b: f64| if b.abs() > 0.0 { a / b } else { 0.0 };
    report.policies = POLICIES
        .iter()
        .zip(&totals)
        .map(|(name, t)| PolicyResult {
            policy: (*name).to_string(),
            revenue: t[0],
            margin: t[1],
            objective: t[2],
            revenue_share: share(t[0], oracle[0]),
            margin_share: share(t[1], oracle[1]),
            objective_share: share(t[2], oracle[2]),
        })
        .collect();
    report.stopped = (stops.len(), stops.get(stops.len() / 2).copied());
    report
}

/// Plays every policy on product `i` of the scenario: each one's (revenue, margin, objective)
/// in [`POLICIES`] order, and Tailor's policy as it ended.
pub(crate) fn run_product(scenario: &Scenario, seed: u64, i: usize) -> (Vec<[f64; 3]>, Robust) {
    let p = &scenario.products[i];
    let floor = (scenario.objective == Objective::MarginWithVolumeFloor).then_some(scenario.volume_floor);
    let prices: Vec<f64> = scenario.price_points.iter().map(|m| round_cents(m * p.reference_price)).collect();
    let margin: Vec<f64> = prices.iter().map(|x| x - p.unit_cost).collect();
    let value: Vec<f64> = prices.iter().map(|x| scenario.objective.unit_value(*x, p.unit_cost)).collect();
    let expected: Vec<Vec<f64>> =
        (0..scenario.periods).map(|t| prices.iter().map(|x| p.expected(*x, t, scenario.periods)).collect()).collect();
    let list = (0..prices.len())
        .min_by(|&a, &b| {
            let d = |k: usize| (scenario.price_points[k] - 1.0).abs();
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(0);
    let rails = scenario.guardrails.map(|g| Guardrails {
        unit_cost_cents: Some((p.unit_cost * 100.0).round() as i64),
        min_margin: g.min_margin,
        max_daily_change: g.max_daily_change,
        ..Default::default()
    });
    let prior = p.prior_elasticity.unwrap_or(scenario.prior_elasticity);
    let oracle_values: Vec<Vec<f64>> =
        expected.iter().map(|row| row.iter().zip(&value).map(|(l, v)| l * v).collect()).collect();
    let excluded: Vec<Vec<bool>> = match floor {
        Some(f) => expected.iter().map(|row| row.iter().map(|l| *l < f * row[list]).collect()).collect(),
        None => Vec::new(),
    };
    let settings = Settings { prior, alpha: scenario.alpha, min_exposure: scenario.min_exposure, volume_floor: floor };
    let mut tailor = Robust::new(&prices, p.reference_price, list, value.clone(), settings);
    let mut policies: Vec<Box<dyn PricePolicy>> = vec![
        Box::new(Oracle::new(oracle_values, excluded)),
        Box::new(Fixed(list)),
        Box::new(EpsilonGreedy::new(value.clone(), scenario.epsilon)),
        Box::new(Thompson::new(&prices, p.reference_price, value.clone(), prior, scenario.min_exposure)),
    ];
    let score = |(r, m, floored): (f64, f64, f64)| {
        let objective = match scenario.objective {
            Objective::Revenue => r,
            Objective::Margin => m,
            Objective::MarginWithVolumeFloor => floored,
        };
        [r, m, objective]
    };
    let floor_units = floor.map(|f| expected.iter().map(|row| f * row[list]).collect::<Vec<f64>>());
    let play = |policy: &mut dyn PricePolicy, j: usize| {
        play(policy, &prices, &margin, &expected, floor_units.as_deref(), rails.as_ref(), seed, i, j)
    };
    let mut scores: Vec<[f64; 3]> = policies.iter_mut().enumerate().map(|(j, p)| score(play(p.as_mut(), j))).collect();
    scores.push(score(play(&mut tailor, 4)));
    (scores, tailor)
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Plays one policy on one product: (revenue, margin, margin within the volume floor). A period
/// at a price whose expected units fall below `floor_units` of that period earns nothing toward
/// the last. The demand luck depends only on the product and period, so every policy meets the
/// same days.
#[allow(clippy::too_many_arguments)]
fn play(
    policy: &mut dyn PricePolicy,
    prices: &[f64],
    margin: &[f64],
    expected: &[Vec<f64>],
    floor_units: Option<&[f64]>,
    rails: Option<&Guardrails>,
    seed: u64,
    product: usize,
    policy_index: usize,
) -> (f64, f64, f64) {
    let mut luck = StdRng::seed_from_u64(seed ^ (product as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut own = StdRng::seed_from_u64(seed.wrapping_add(1 + policy_index as u64) ^ (product as u64) << 20);
    let cents: Vec<i64> = prices.iter().map(|p| (p * 100.0).round() as i64).collect();
    let mut previous: Option<i64> = None;
    let (mut revenue, mut earned, mut floored) = (0.0, 0.0, 0.0);
    for (t, row) in expected.iter().enumerate() {
        let allowed: Vec<usize> = (0..prices.len())
            .filter(|&k| rails.is_none_or(|g| g.apply(cents[k], previous).cents == cents[k]))
            .collect();
        // When no candidate fits (a cost above every candidate's floor), hold the last price's arm.
        let allowed = if allowed.is_empty() {
            vec![previous.and_then(|p| cents.iter().position(|c| *c == p)).unwrap_or(0)]
        } else {
            allowed
        };
        let k = policy.choose(&allowed, &mut own);
        let units = poisson_quantile(row[k], luck.gen()) as f64;
        policy.observe(k, units);
        revenue += units * prices[k];
        earned += units * margin[k];
        if floor_units.is_none_or(|f| row[k] >= f[t]) {
            floored += units * margin[k];
        }
        previous = Some(cents[k]);
    }
    (revenue, earned, floored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acceptance line: on the default scenario Tailor's policy earns ≥ 95% of the oracle's
    /// revenue and beats the static list price and ε-greedy.
    #[test]
    fn tailor_earns_95_percent_of_the_oracle_and_beats_the_baselines() {
        let scenario = Scenario::default_scenario(120, 1);
        scenario.check().expect("valid");
        let report = run(&scenario, 7);
        let share =
            |name: &str| report.policies.iter().find(|p| p.policy.starts_with(name)).expect("policy").revenue_share;
        let (tailor, fixed, greedy) = (share("Tailor"), share("static"), share("ε-greedy"));
        assert!(tailor >= 0.95, "Tailor earns {tailor:.3} of the oracle");
        assert!(tailor > fixed && tailor > greedy, "Tailor {tailor:.3}, static {fixed:.3}, ε-greedy {greedy:.3}");
    }

    #[test]
    fn a_wrong_scenario_names_the_field() {
        let mut s = Scenario::default_scenario(3, 1);
        s.products[2].demand = Demand::ConstantElasticity { base_demand: 5.0, elasticity: 0.5 };
        assert_eq!(s.check().map_err(|e| e.field), Err("products[2].demand.elasticity".into()));
        let mut s = Scenario::default_scenario(3, 1);
        s.price_points[1] = -1.0;
        assert_eq!(s.check().map_err(|e| e.field), Err("pricePoints[1]".into()));
    }
}
