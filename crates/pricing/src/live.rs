//! A live price experiment on one product: its state as stored (candidate prices, what each
//! sold, the price on the shelf), the checks a new one must pass, and each step's choice of the
//! next price by Tailor's policy ([`crate::robust::Robust`], the one the simulator scores): a
//! checked model with a fallback, a safety rule against the list price and a stopping rule.
//! Pure: the engine reads the units sold and puts each chosen price through the price book.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::experiment::{Objective, DEFAULT_VOLUME_FLOOR};
use crate::guardrails::Guardrails;
use crate::robust::{Model, Robust, Settings, DEFAULT_ALPHA};
use crate::PricingError;

/// What the elasticity is believed to be before any sale when the product's category has no
/// estimate: a weak prior around The Complete Journey's mean over categories.
pub const PRIOR_ELASTICITY: (f64, f64) = (-1.0, 1.0);
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
    /// The share of the list price's earnings the experiment may give up (0–0.5, default 0.05).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// With `margin_with_volume_floor`: the share of the list price's units a price must keep
    /// selling (above 0, at most 1; default 0.9).
    #[serde(default)]
    pub volume_floor: Option<f64>,
}

/// What an experiment believes about the elasticity before any sale, and where that came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prior {
    /// Mean elasticity.
    pub mean: f64,
    /// Its standard deviation.
    pub sd: f64,
    /// Where it came from, in words.
    pub source: String,
}

/// A category's elasticity estimate as `tailor pricing elasticity` reports it: the shrunk
/// category mean, its standard deviation, the spread τ between the category's products and how
/// many products it holds. Stored per category; new experiments start from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CategoryElasticity {
    /// The category's mean elasticity (negative, above −20).
    pub mean: f64,
    /// The standard deviation of that mean (0 to 10).
    pub mean_sd: f64,
    /// The spread between the category's products (0 to 10).
    pub tau: f64,
    /// Products the estimate rests on (at least 1).
    pub products: u32,
}

impl CategoryElasticity {
    /// Checks the estimate; the error names the field.
    pub fn check(&self) -> Result<(), FieldError> {
        if !(self.mean.is_finite() && self.mean < 0.0 && self.mean > -20.0) {
            return Err(FieldError::invalid("mean", "a negative elasticity above −20, e.g. −1.2"));
        }
        if !(self.mean_sd.is_finite() && (0.0..=10.0).contains(&self.mean_sd)) {
            return Err(FieldError::invalid("meanSd", "a standard deviation from 0 to 10"));
        }
        if !(self.tau.is_finite() && (0.0..=10.0).contains(&self.tau)) {
            return Err(FieldError::invalid("tau", "a standard deviation from 0 to 10"));
        }
        if self.products == 0 {
            return Err(FieldError::invalid("products", "at least 1 product"));
        }
        Ok(())
    }

    /// The prior of a new experiment on one of `category`'s products.
    pub fn prior(&self, category: &str) -> Prior {
        Prior::from_category(category, self.mean, self.mean_sd, self.tau, self.products)
    }
}

impl Prior {
    /// The prior for a product of a category whose stored estimate is `mean` ± `mean_sd` with
    /// between-product spread `tau` over `products` products: the predictive spread of a new
    /// product (mean_sd² + τ²), widened where the category is small (fewer than 30 products)
    /// and never narrower than 0.3.
    pub fn from_category(category: &str, mean: f64, mean_sd: f64, tau: f64, products: u32) -> Prior {
        let small = 1.0 + 5.0 / f64::from(products.max(1));
        let sd = ((mean_sd * mean_sd + tau * tau).sqrt() * small).max(0.3);
        Prior {
            mean,
            sd,
            source: format!("the estimate of category {category} ({products} products), widened for its spread"),
        }
    }

    /// The weak prior of a product whose category has no estimate.
    pub fn weak() -> Prior {
        Prior { mean: PRIOR_ELASTICITY.0, sd: PRIOR_ELASTICITY.1, source: "no category estimate: a weak prior".into() }
    }
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
    /// The elasticity prior it started from (absent: experiments started before priors were stored).
    #[serde(default)]
    pub prior: Option<Prior>,
    /// The share of the list price's earnings it may give up.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The volume floor of the margin-with-volume-floor objective.
    #[serde(default)]
    pub volume_floor: Option<f64>,
    /// The demand model it trusts now.
    #[serde(default)]
    pub model: Model,
    /// Why the last price was chosen: the rule, the model and, when the model changed, why.
    #[serde(default)]
    pub explanation: Option<String>,
    /// The policy's state (what it has seen since it last started over).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<Robust>,
}

fn default_alpha() -> f64 {
    DEFAULT_ALPHA
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
        if self.alpha.is_some_and(|a| !(0.0..=0.5).contains(&a)) {
            return Err(FieldError::invalid("alpha", "the share of the list price's earnings to risk, 0 to 0.5"));
        }
        if self.volume_floor.is_some_and(|f| !(f > 0.0 && f <= 1.0)) {
            return Err(FieldError::invalid("volumeFloor", "a share of the list price's units above 0, at most 1"));
        }
        if self.volume_floor.is_some() && self.objective != Objective::MarginWithVolumeFloor {
            return Err(FieldError::invalid("volumeFloor", "only with the margin_with_volume_floor objective"));
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
        if self.objective.needs_cost() && rails.unit_cost_cents.is_none() {
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
    /// when it starts, always a candidate: it is added when the input leaves it out),
    /// `unit_cost_cents` prices the margin objective and `prior` is the elasticity believed before
    /// any sale.
    pub fn new(
        sku: &str,
        input: &ExperimentInput,
        reference_cents: i64,
        unit_cost_cents: Option<i64>,
        prior: Prior,
        now: i64,
    ) -> Experiment {
        let mut prices = input.prices_cents.clone();
        if !prices.contains(&reference_cents) && reference_cents > 0 {
            prices.push(reference_cents);
        }
        let floor = (input.objective == Objective::MarginWithVolumeFloor)
            .then(|| input.volume_floor.unwrap_or(DEFAULT_VOLUME_FLOOR));
        Experiment {
            sku: sku.to_string(),
            status: "running".into(),
            objective: input.objective,
            arms: prices.iter().map(|c| Arm { cents: *c, periods: 0.0, units: 0.0, expected_value: 0.0 }).collect(),
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
            prior: Some(prior),
            alpha: input.alpha.unwrap_or(DEFAULT_ALPHA),
            volume_floor: floor,
            model: Model::ConstantElasticity,
            explanation: None,
            policy: None,
        }
    }

    /// Whether it still moves prices.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// Whether it is still watched: running, or concluded (a concluded experiment keeps its
    /// price but starts over when demand shifts, as in the simulator).
    pub fn is_watched(&self) -> bool {
        self.is_running() || self.status == "concluded"
    }

    /// Whether a step is due at `now`: watched, and the current price's period is over.
    pub fn is_due(&self, now: i64) -> bool {
        self.is_watched() && now >= self.current_since + self.period_ms()
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
        let mut policy = self.take_policy();
        policy.observe_exposure(self.current, exposure, units as f64);
        self.policy = Some(policy);
        let arm = &mut self.arms[self.current];
        arm.periods += exposure;
        arm.units += units as f64;
    }

    /// Chooses the next price at `now` among the candidates the guardrails allow after
    /// `previous_cents` (the current one if none is), updates the belief, the model check and
    /// the stopping rule, and puts it on the shelf. The choice is seeded by product and step, so
    /// a replay repeats it.
    pub fn choose(&mut self, rails: &Guardrails, previous_cents: i64, now: i64) -> Choice {
        let allowed: Vec<usize> = (0..self.arms.len())
            .filter(|&k| rails.apply(self.arms[k].cents, Some(previous_cents)).cents == self.arms[k].cents)
            .collect();
        let allowed = if allowed.is_empty() { vec![self.current] } else { allowed };
        let mut policy = self.take_policy();
        let step = self.arms.iter().map(|a| a.periods).sum::<f64>().round() as u32;
        let k = policy.choose_arm(&allowed, &mut StdRng::seed_from_u64(seed(&self.sku, step)));
        self.stopped = policy.stopped;
        self.model = policy.model;
        self.elasticity = self.arms.iter().any(|a| a.periods > 0.0).then(|| policy.elasticity());
        for (arm, v) in self.arms.iter_mut().zip(policy.expected_values()) {
            arm.expected_value = v;
        }
        let reason = policy.explain(&format!("{} cents", self.arms[k].cents));
        self.explanation = Some(reason.clone());
        self.policy = Some(policy);
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
        } else if self.status == "concluded" {
            // Demand shifted after it concluded: the policy started over.
            self.status = "running".into();
        }
    }

    fn period_ms(&self) -> i64 {
        i64::from(self.period_hours) * HOUR_MS
    }

    /// The policy's state, or a fresh one fed with the arms' totals (experiments stored before
    /// the state was).
    fn take_policy(&mut self) -> Robust {
        if let Some(p) = self.policy.take() {
            return p;
        }
        let prices: Vec<f64> = self.arms.iter().map(|a| a.cents as f64 / 100.0).collect();
        let cost = self.unit_cost_cents.unwrap_or(0) as f64 / 100.0;
        let value = prices.iter().map(|p| self.objective.unit_value(*p, cost)).collect();
        let list = self.arms.iter().position(|a| a.cents == self.reference_cents).unwrap_or_else(|| {
            (0..self.arms.len()).min_by_key(|&k| (self.arms[k].cents - self.reference_cents).abs()).unwrap_or(0)
        });
        let prior = self.prior.as_ref().map_or(PRIOR_ELASTICITY, |p| (p.mean, p.sd));
        let settings =
            Settings { prior, alpha: self.alpha, min_exposure: self.min_exposure, volume_floor: self.volume_floor };
        let mut policy = Robust::new(&prices, self.reference_cents as f64 / 100.0, list, value, settings);
        for (k, a) in self.arms.iter().enumerate() {
            policy.observe_exposure(k, a.periods, a.units);
        }
        policy.stopped = self.stopped;
        policy
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
            alpha: None,
            volume_floor: None,
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
        let mut e = Experiment::new("CHIPS", &input(&[300, 350]), 320, None, Prior::weak(), 0);
        assert_eq!((e.period_hours, e.min_exposure, e.current_cents()), (24, 2, 300));
        assert!(matches!(check_replaceable(Some(&e)), Err(PricingError::Conflict(_))));
        e.stop();
        assert!(check_replaceable(Some(&e)).is_ok());
        assert!(check_replaceable(None).is_ok());
    }

    #[test]
    fn a_step_counts_the_period_and_the_first_choices_explore_every_price() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 350, 400]), 350, None, Prior::weak(), 0);
        let rails = Guardrails::default();
        let first = e.choose(&rails, 350, 0);
        assert_eq!(first.cents, 350, "the list price goes first");
        assert!(first.reason.starts_with("price experiment: trying 350 cents (minimum exposure)"), "{}", first.reason);
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
        // The list price first: the safety rule measures every other price against its sales.
        assert_eq!(&seen[..2], &[1, 1], "{seen:?}");
        assert!(e.elasticity.is_some());
        let again = {
            let mut r = Experiment::new("CHIPS", &input(&[300, 350, 400]), 350, None, Prior::weak(), 0);
            r.choose(&rails, 350, 0)
        };
        assert_eq!(again, first, "the same product and step choose the same price");
    }

    #[test]
    fn the_guardrails_limit_the_choice_and_a_moved_price_pauses_it() {
        let mut e = Experiment::new("CHIPS", &input(&[300, 400]), 300, None, Prior::weak(), 0);
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
        let mut e = Experiment::new("CHIPS", &input(&[300, 400]), 300, None, Prior::weak(), 0);
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
        let mut e = Experiment::new("CHIPS", &input(&[300, 400]), 300, None, Prior::weak(), 1_772_355_600_000);
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
