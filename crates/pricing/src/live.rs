//! A live price experiment on one product: its state as stored (candidate prices, what each
//! sold, the price on the shelf), the checks a new one must pass, and each step's choice of the
//! next price by Thompson sampling ([`crate::experiment::Thompson`]) with a stopping rule.
//! Pure: the engine reads the units sold and puts each chosen price through the price book.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::experiment::{Objective, PricePolicy, Thompson};
use crate::guardrails::Guardrails;
use crate::PricingError;

/// What the elasticity is believed to be before any sale (The Complete Journey's category means).
pub const PRIOR_ELASTICITY: (f64, f64) = (-1.0, 0.6);
/// Hours a price holds when the input does not say.
const DEFAULT_PERIOD_HOURS: u32 = 24;
/// Periods each price is tried first when the input does not say.
const DEFAULT_MIN_EXPOSURE: u32 = 2;
const HOUR_MS: i64 = 3_600_000;

/// A new experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentInput {
    /// Candidate prices in cents (2 to 10, each within the product's guardrails).
    pub prices_cents: Vec<i64>,
    /// Revenue or margin (margin needs the guardrails' unit cost).
    #[serde(default)]
    pub objective: Objective,
    /// Periods each price is tried before sampling (default 2).
    #[serde(default)]
    pub min_exposure: Option<u32>,
    /// Hours a price holds before the next choice (default 24).
    #[serde(default)]
    pub period_hours: Option<u32>,
}

/// One candidate price and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Arm {
    /// The price, in cents.
    pub cents: i64,
    /// Periods it was on the shelf.
    pub periods: f64,
    /// Units sold at it.
    pub units: f64,
    /// Expected objective per period at the posterior mode.
    pub expected_value: f64,
}

/// A price experiment and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    /// The product.
    pub sku: String,
    /// running, concluded (the stopping rule kept the best price), paused (the price could not be
    /// held, see `note`) or stopped (by hand).
    pub status: String,
    /// The objective.
    pub objective: Objective,
    /// The candidates.
    pub arms: Vec<Arm>,
    /// The price on the shelf now (an index into `arms`).
    pub current: usize,
    /// Since when.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub current_since: i64,
    /// Hours a price holds.
    pub period_hours: u32,
    /// Periods each price is tried first.
    pub min_exposure: u32,
    /// The list price when it started (the demand curve's anchor), in cents.
    pub reference_cents: i64,
    /// Unit cost for the margin objective, in cents.
    pub unit_cost_cents: Option<i64>,
    /// The elasticity the experiment believes now: mean and sd.
    pub elasticity: Option<(f64, f64)>,
    /// Set when it stopped: (period, winning arm).
    pub stopped: Option<(u32, usize)>,
    /// When it started.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    /// Why it paused, when it did.
    #[serde(default)]
    pub note: Option<String>,
}

/// The price a step puts on the shelf, with the reason recorded in the price book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The price, in cents.
    pub cents: i64,
    /// Why, in words.
    pub reason: String,
}

impl ExperimentInput {
    /// Checks the input for `sku` under its guardrails: 2 to 10 distinct prices above 0, each one
    /// the guardrails would set as it is, a period of 1 to 672 hours, at most 30 periods of
    /// exposure, no freeze, and a unit cost for the margin objective. The error names the field.
    pub fn check(&self, sku: &str, rails: &Guardrails) -> Result<(), FieldError> {
        let n = self.prices_cents.len();
        if !(2..=10).contains(&n) {
            return Err(FieldError::invalid("pricesCents", "give 2 to 10 candidate prices in cents"));
        }
        for (i, c) in self.prices_cents.iter().enumerate() {
            if *c <= 0 || self.prices_cents[..i].contains(c) {
                return Err(FieldError::invalid(format!("pricesCents[{i}]"), "distinct prices above 0 cents"));
            }
        }
        if !(1..=24 * 28).contains(&self.period_hours()) {
            return Err(FieldError::invalid("periodHours", "between 1 and 672 hours"));
        }
        if self.min_exposure() > 30 {
            return Err(FieldError::invalid("minExposure", "at most 30 periods"));
        }
        if rails.frozen {
            return Err(FieldError::invalid(
                "pricesCents",
                format!("{sku} is on the freeze list: its price cannot move"),
            ));
        }
        for (i, c) in self.prices_cents.iter().enumerate() {
            if let Some((rule, cents)) = rails.refusal(*c) {
                return Err(FieldError::invalid(
                    format!("pricesCents[{i}]"),
                    format!("{c} cents is outside the guardrails ({rule:?} would make it {cents})"),
                ));
            }
        }
        if self.objective == Objective::Margin && rails.unit_cost_cents.is_none() {
            return Err(FieldError::invalid(
                "objective",
                format!("margin needs a unit cost: set unitCostCents in {sku}'s guardrails"),
            ));
        }
        Ok(())
    }

    fn period_hours(&self) -> u32 {
        self.period_hours.unwrap_or(DEFAULT_PERIOD_HOURS)
    }

    fn min_exposure(&self) -> u32 {
        self.min_exposure.unwrap_or(DEFAULT_MIN_EXPOSURE)
    }
}

/// Refuses to start an experiment over one that is still running.
pub fn check_replaceable(existing: Option<&Experiment>) -> Result<(), PricingError> {
    match existing {
        Some(e) if e.is_running() => Err(PricingError::Conflict(format!(
            "{} already has a running experiment; stop it first (DELETE /v1/pricing/experiments/{})",
            e.sku, e.sku
        ))),
        _ => Ok(()),
    }
}

impl Experiment {
    /// A running experiment on `sku` as of `now`, its first candidate on the shelf until the
    /// first [`Experiment::choose`]; `reference_cents` anchors the demand curve (the list price
    /// when it starts) and `unit_cost_cents` prices the margin objective.
    pub fn new(
        sku: &str,
        input: &ExperimentInput,
        reference_cents: i64,
        unit_cost_cents: Option<i64>,
        now: i64,
    ) -> Experiment {
        Experiment {
            sku: sku.to_string(),
            status: "running".into(),
            objective: input.objective,
            arms: input
                .prices_cents
                .iter()
                .map(|c| Arm { cents: *c, periods: 0.0, units: 0.0, expected_value: 0.0 })
                .collect(),
            current: 0,
            current_since: now,
            period_hours: input.period_hours(),
            min_exposure: input.min_exposure(),
            reference_cents: reference_cents.max(1),
            unit_cost_cents,
            elasticity: None,
            stopped: None,
            started_at: now,
            note: None,
        }
    }

    /// Whether it still moves prices.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// Whether a step is due at `now`: running, and the current price's period is over.
    pub fn is_due(&self, now: i64) -> bool {
        self.is_running() && now >= self.current_since + self.period_ms()
    }

    /// The price on the shelf, in cents.
    pub fn current_cents(&self) -> i64 {
        self.arms[self.current].cents
    }

    /// Stops it by hand, leaving the price where it is.
    pub fn stop(&mut self) {
        self.status = "stopped".into();
    }

    /// Pauses it because the shelf shows `shelf_cents`, not the price it put there: sales count
    /// for a price only if it was the price on the shelf.
    pub fn pause_off_shelf(&mut self, shelf_cents: i64) {
        self.status = "paused".into();
        self.note = Some(format!(
            "the list price was changed outside the experiment ({shelf_cents} cents, not {}); start a new one",
            self.current_cents()
        ));
    }

    /// Counts `units` sold at the current price since it went on the shelf, up to `now`.
    pub fn record_period(&mut self, units: i64, now: i64) {
        let exposure = (now - self.current_since) as f64 / self.period_ms() as f64;
        let arm = &mut self.arms[self.current];
        arm.periods += exposure;
        arm.units += units as f64;
    }

    /// Chooses the next price at `now` among the candidates the guardrails allow after
    /// `previous_cents` (the current one if none is), updates the belief and the stopping rule,
    /// and puts it on the shelf. The choice is seeded by product and step, so a replay repeats it.
    pub fn choose(&mut self, rails: &Guardrails, previous_cents: i64, now: i64) -> Choice {
        let allowed: Vec<usize> = (0..self.arms.len())
            .filter(|&k| rails.apply(self.arms[k].cents, Some(previous_cents)).cents == self.arms[k].cents)
            .collect();
        let allowed = if allowed.is_empty() { vec![self.current] } else { allowed };
        let mut policy = self.policy();
        let step = self.arms.iter().map(|a| a.periods).sum::<f64>().round() as u32;
        let was_stopped = self.stopped.is_some();
        let k = policy.choose(&allowed, &mut StdRng::seed_from_u64(seed(&self.sku, step)));
        self.stopped = policy.stopped;
        self.elasticity = self.arms.iter().any(|a| a.periods > 0.0).then(|| policy.elasticity());
        for (arm, v) in self.arms.iter_mut().zip(policy.expected_values()) {
            arm.expected_value = v;
        }
        let reason = match self.stopped {
            Some((_, best)) if !was_stopped => {
                format!("price experiment concluded: {} cents earns most", self.arms[best].cents)
            }
            Some(_) => "price experiment concluded: keeping the best price".to_string(),
            None => format!(
                "price experiment: trying {} cents (candidate {} of {})",
                self.arms[k].cents,
                k + 1,
                self.arms.len()
            ),
        };
        self.current = k;
        self.current_since = now;
        Choice { cents: self.arms[k].cents, reason }
    }

    /// Takes in the price the price book set for the last choice: when the guardrails moved it
    /// (they changed since the start) the experiment pauses, since that price cannot be tried;
    /// otherwise it concludes once the stopping rule has ended it.
    pub fn settle(&mut self, set_cents: i64) {
        let chosen = self.current_cents();
        if set_cents != chosen {
            self.status = "paused".into();
            self.note = Some(format!("the guardrails hold {chosen} cents at {set_cents}; start a new experiment"));
        } else if self.stopped.is_some() {
            self.status = "concluded".into();
        }
    }

    fn period_ms(&self) -> i64 {
        i64::from(self.period_hours) * HOUR_MS
    }

    fn policy(&self) -> Thompson {
        let prices: Vec<f64> = self.arms.iter().map(|a| a.cents as f64 / 100.0).collect();
        let cost = self.unit_cost_cents.unwrap_or(0) as f64 / 100.0;
        let value = prices
            .iter()
            .map(|p| match self.objective {
                Objective::Revenue => *p,
                Objective::Margin => p - cost,
            })
            .collect();
        let periods: Vec<f64> = self.arms.iter().map(|a| a.periods).collect();
        let units: Vec<f64> = self.arms.iter().map(|a| a.units).collect();
        Thompson::resume(
            &prices,
            self.reference_cents as f64 / 100.0,
            value,
            PRIOR_ELASTICITY,
            self.min_exposure,
            &periods,
            &units,
            self.stopped,
        )
    }
}

fn seed(sku: &str, step: u32) -> u64 {
    tailor_store::lock_key(sku) as u64 ^ u64::from(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = HOUR_MS;

    fn input(prices: &[i64]) -> ExperimentInput {
        ExperimentInput {
            prices_cents: prices.to_vec(),
            objective: Objective::Revenue,
            min_exposure: None,
            period_hours: None,
        }
    }

    #[test]
    fn a_new_experiment_is_checked_field_by_field() {
        let none = Guardrails::default();
        let field = |i: &ExperimentInput, g: &Guardrails| i.check("CHIPS", g).unwrap_err().field;
        assert_eq!(field(&input(&[300]), &none), "pricesCents");
        assert_eq!(field(&input(&[300, 300]), &none), "pricesCents[1]");
        assert_eq!(field(&input(&[300, 0]), &none), "pricesCents[1]");
        assert_eq!(field(&ExperimentInput { period_hours: Some(0), ..input(&[300, 350]) }, &none), "periodHours");
        assert_eq!(field(&ExperimentInput { min_exposure: Some(31), ..input(&[300, 350]) }, &none), "minExposure");
        let frozen = Guardrails { frozen: true, ..Default::default() };
        assert_eq!(field(&input(&[300, 350]), &frozen), "pricesCents");
        let ceiling = Guardrails { ceiling_cents: Some(320), ..Default::default() };
        let e = input(&[300, 350]).check("CHIPS", &ceiling).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("pricesCents[1]", "350 cents is outside the guardrails (Ceiling would make it 320)")
        );
        let margin = ExperimentInput { objective: Objective::Margin, ..input(&[300, 350]) };
        assert_eq!(field(&margin, &none), "objective");
        assert!(input(&[300, 350]).check("CHIPS", &none).is_ok());
    }

    #[test]
    fn only_a_running_experiment_blocks_a_new_one() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 350]), 320, None, 0);
        assert_eq!((e.period_hours, e.min_exposure, e.current_cents()), (24, 2, 300));
        assert!(matches!(check_replaceable(Some(&e)), Err(PricingError::Conflict(_))));
        e.stop();
        assert!(check_replaceable(Some(&e)).is_ok());
        assert!(check_replaceable(None).is_ok());
    }

    #[test]
    fn a_step_counts_the_period_and_the_first_choices_explore_every_price() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 350, 400]), 350, None, 0);
        let rails = Guardrails::default();
        let first = e.choose(&rails, 350, 0);
        assert_eq!(
            first.reason,
            format!("price experiment: trying {} cents (candidate {} of 3)", first.cents, e.current + 1)
        );
        assert!(!e.is_due(23 * HOUR) && e.is_due(24 * HOUR));
        let mut seen = vec![e.current];
        for step in 1..6 {
            e.record_period(10, step * 24 * HOUR);
            let previous = e.current_cents();
            e.choose(&rails, previous, step * 24 * HOUR);
            seen.push(e.current);
        }
        assert_eq!(e.arms.iter().map(|a| a.periods).sum::<f64>(), 5.0);
        assert_eq!(e.arms.iter().map(|a| a.units).sum::<f64>(), 50.0);
        assert!((0..3).all(|k| seen.contains(&k)), "minimum exposure tries each price: {seen:?}");
        assert!(e.elasticity.is_some());
        let again = {
            let mut r = Experiment::new("CHIPS", &input(&[300, 350, 400]), 350, None, 0);
            r.choose(&rails, 350, 0)
        };
        assert_eq!(again, first, "the same product and step choose the same price");
    }

    #[test]
    fn the_guardrails_limit_the_choice_and_a_moved_price_pauses_it() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 400]), 300, None, 0);
        // From 300, a 10% daily limit allows 300 but not 400.
        let daily = Guardrails { max_daily_change: Some(0.1), ..Default::default() };
        for step in 0..4 {
            assert_eq!(e.choose(&daily, 300, step).cents, 300);
        }
        e.settle(300);
        assert!(e.is_running());
        e.current = 1;
        e.settle(330);
        assert_eq!(e.status, "paused");
        assert_eq!(e.note.as_deref(), Some("the guardrails hold 400 cents at 330; start a new experiment"));
    }

    #[test]
    fn a_price_changed_by_hand_pauses_it() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 400]), 300, None, 0);
        e.pause_off_shelf(299);
        assert_eq!(e.status, "paused");
        assert!(!e.is_due(i64::MAX));
        assert_eq!(
            e.note.as_deref(),
            Some("the list price was changed outside the experiment (299 cents, not 300); start a new one")
        );
    }

    #[test]
    fn experiments_stored_with_epoch_milliseconds_still_read() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 400]), 300, None, 1_772_355_600_000);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["startedAt"], "2026-03-01T09:00:00.000Z");
        let mut old = json.clone();
        old["startedAt"] = 1_772_355_600_000i64.into();
        old["currentSince"] = 1_772_355_600_000i64.into();
        assert_eq!(serde_json::from_value::<Experiment>(old).unwrap(), e);
        e.stop();
        assert_eq!(serde_json::from_value::<Experiment>(serde_json::to_value(&e).unwrap()).unwrap(), e);
    }
}
