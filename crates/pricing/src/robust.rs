//! Tailor's price-experiment policy, the one the simulator scores and live experiments run:
//! Thompson sampling that checks its demand model, falls back to one that assumes less, never
//! lets the experiment fall below (1 − α) of what the list price would have earned, and goes
//! back to the list price when it cannot show a better one.
//!
//! **Models.** First a Poisson model with constant elasticity, ln λ(p) = a + b·ln(p / reference),
//! its prior on `b` from the product's category. Each price's demand is a Gamma posterior with
//! that curve as its prior: the curve's own uncertainty plus how far the prices' sales sit from
//! it (estimated from them, at least 5%), updated by the price's own sales. So a price that sells
//! off the curve (logit, kinked demand) shows it in the means, the bounds and the draws before
//! the check fails. Each period the curve is checked against what each price actually sold (a
//! posterior predictive χ² over the prices, scaled by the day-to-day dispersion the sales show).
//! When the category's prior is what does not fit, the prior is widened; when the curve itself
//! does not fit, the product switches for good to independent Gamma–Poisson demand per price,
//! each price's prior centred on the curve fitted so far and worth one period of sales.
//!
//! **Choosing.** Thompson sampling, its draws at half the posterior's spread (a horizon of months
//! leaves little time to recoup a price explored on a tail draw).
//!
//! **Safety.** A price other than the list price is tried only while what the prices played so
//! far are expected to have lost against the list price (by the model's posterior means, so the
//! luck of the days does not count), plus what that price could lose next period at a
//! pessimistic bound, stays within α of the list price's value over the same periods (a
//! conservative bandit, Wu et al. 2016).
//!
//! **Volume floor.** A period at a price selling less than the floor's share of the list price's
//! units earns nothing, so every price is weighed by its value × the posterior probability that
//! it keeps the floor. A price that may break the floor is tried for its exposure (and explored
//! on the floor in the draws) only when its sales over the exposure can tell; while a price
//! played may still break it, the list price is measured again one period in six.
//!
//! **Stopping.** Once every price has its minimum exposure, the experiment concludes when one
//! price is best with posterior probability ≥ 0.95 (or choosing it costs < 0.2% in expectation).
//! The winner must beat the list price with probability ≥ 0.9 (and in expectation once the chance
//! it breaks the floor is counted), and beat the list price and the model's runner-up with
//! probability ≥ 0.8 by their own sales alone (else the experiment goes on); a model winner that
//! cannot beat the list price concludes on the list price. A concluded experiment keeps
//! watching its sales: when the last weeks sold far from what the model expects (a
//! competitor's move, a shift in demand), it starts over from them.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::demand::normal_quantile;
use crate::experiment::PricePolicy;

/// The share of the list price's earnings an experiment may give up at most, by default.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// How many posterior draws judge the stopping rule.
const STOP_DRAWS: usize = 100;
/// One price is best with this posterior probability…
const STOP_PROBABILITY: f64 = 0.95;
/// …or choosing the leader costs less than this share of its value in expectation.
const STOP_LOSS: f64 = 0.002;
/// A winner other than the list price must beat it with this posterior probability.
const BEAT_LIST: f64 = 0.9;
/// The model check fails above this quantile of its χ² distribution.
const CHECK_QUANTILE: f64 = 0.99;
/// How pessimistic the safety rule is about the price it would try (standard deviations).
const SAFETY_Z: f64 = 2.0;
/// How far (relative sd) a price's demand may sit from the constant-elasticity curve at least:
/// its own sales outweigh the curve once they pin it down better than this. The spread the
/// sales show around the curve widens it (up to [`MAX_DEVIATION_SD`]).
const DEVIATION_SD: f64 = 0.05;
/// The widest deviation from the curve the policy allows before the check replaces the curve.
const MAX_DEVIATION_SD: f64 = 1.0;
/// A winner must also beat the list price with this probability by its own sales alone.
const OWN_BEAT_LIST: f64 = 0.8;
/// Periods of sales the change detector compares with what came before.
const WINDOW: usize = 21;
/// A window this many standard deviations from its expectation restarts the experiment.
const SHIFT_Z: f64 = 4.0;
/// Steps of history kept (older ones still count in the per-price totals).
const HISTORY: usize = 400;
/// The elasticity prior used once the category's prior has proven wrong.
const WIDE_PRIOR_SD: f64 = 3.0;
/// Under a volume floor, a price is tried when it keeps the floor with this probability…
const FLOOR_PLAUSIBLE: f64 = 0.3;
/// A price keeps the volume floor for sure above this posterior probability.
const FLOOR_SURE: f64 = 0.99;
/// While a price played may break the floor, the list price is played at least one period in
/// this many.
const FLOOR_WATCH: f64 = 6.0;
/// A price that may break the floor is tried when its exposure's units, times the variance the
/// curve leaves on its ratio to the list price, reach 1 / this: its own sales can then tell.
const FLOOR_TELLING: f64 = 3.0;
/// Thompson draws that choose the next price sit this share of the posterior's spread from
/// its centre (in standard scores): a horizon of months leaves little time to recoup a
/// price explored on a draw from the posterior's tails.
const SAMPLE_SPREAD: f64 = 0.5;
/// Periods of sales the fallback's prior is worth at each price.
const FALLBACK_PRIOR_PERIODS: f64 = 1.0;

/// Which demand model the policy trusts now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Constant elasticity with the category's prior.
    #[default]
    ConstantElasticity,
    /// Constant elasticity with a wide prior: the category's did not fit the sales.
    WidePrior,
    /// Independent Gamma–Poisson demand per price: the constant-elasticity curve did not fit.
    PerPrice,
}

/// Which rule chose a price (each price's explanation says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The minimum exposure: every price is tried a few periods.
    #[default]
    Exposure,
    /// A Thompson draw from the model.
    Sample,
    /// Safety: the price to try could take the experiment below (1 − α) of the list price, so
    /// the best price safe to play (the list price, or one already shown better) is played.
    Safety,
    /// The stopping rule concluded on a price that beats the list price.
    Concluded,
    /// The stopping rule found no price shown better than the list price.
    ListPrice,
    /// The list price, played again to check that the price chosen keeps the volume floor
    /// (measured against the list price's units).
    FloorCheck,
}

/// The knobs of the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Prior on the elasticity (mean, sd), e.g. the product's category estimate.
    pub prior: (f64, f64),
    /// The share of the list price's earnings the experiment may give up (0–0.5).
    pub alpha: f64,
    /// Periods each price is tried before sampling.
    pub min_exposure: u32,
    /// With the margin-with-volume-floor objective: the share of the list price's units a
    /// price must keep selling to be chosen.
    pub volume_floor: Option<f64>,
}

/// One period as the policy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Step(pub usize, pub f64, pub f64);

/// The policy's state: what it has seen since it (re)started and what it concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Robust {
    x: Vec<f64>,
    value: Vec<f64>,
    list: usize,
    prior: (f64, f64),
    alpha: f64,
    min_exposure: u32,
    #[serde(default)]
    volume_floor: Option<f64>,
    periods: Vec<f64>,
    units: Vec<f64>,
    /// The objective earned and the periods elapsed since the (re)start.
    earned: f64,
    elapsed: f64,
    history: Vec<Step>,
    /// The model trusted now and why.
    pub model: Model,
    /// Why the model changed (the check's figures), or why the experiment restarted.
    pub note: Option<String>,
    /// Set when the stopping rule concluded: (period, arm).
    pub stopped: Option<(u32, usize)>,
    /// Periods chosen so far.
    pub period: u32,
    /// The rule behind the last choice.
    pub rule: Rule,
    /// Times the change detector restarted the experiment.
    pub restarts: u32,
    /// Each price's posterior probability of keeping the volume floor, as of the last choice.
    #[serde(skip)]
    keep: Vec<f64>,
    /// The dispersion and the deviation from the curve, computed once per choice (the sales do
    /// not change within one).
    #[serde(skip)]
    cache: Option<(f64, f64)>,
}

/// The fitted constant-elasticity model: mode and covariance of (a, b).
#[derive(Debug, Clone, Copy)]
struct Fit {
    mode: [f64; 2],
    cov: [[f64; 2]; 2],
}

impl Robust {
    /// A policy for candidate `prices` of a product listed at `reference`, the list price being
    /// candidate `list`, earning `value[k]` per unit at price k (the price, or price less cost).
    pub fn new(prices: &[f64], reference: f64, list: usize, value: Vec<f64>, settings: Settings) -> Robust {
        let n = prices.len();
        Robust {
            x: prices.iter().map(|p| (p / reference).ln()).collect(),
            value,
            list: list.min(n.saturating_sub(1)),
            prior: settings.prior,
            alpha: settings.alpha,
            min_exposure: settings.min_exposure,
            volume_floor: settings.volume_floor,
            periods: vec![0.0; n],
            units: vec![0.0; n],
            earned: 0.0,
            elapsed: 0.0,
            history: Vec::new(),
            model: Model::ConstantElasticity,
            note: None,
            stopped: None,
            period: 0,
            rule: Rule::Exposure,
            restarts: 0,
            keep: Vec::new(),
            cache: None,
        }
    }

    /// The list price's index among the candidates.
    pub fn list(&self) -> usize {
        self.list
    }

    /// Exposure (periods) and units of each price since the (re)start.
    pub fn totals(&self) -> (&[f64], &[f64]) {
        (&self.periods, &self.units)
    }

    /// Records `units` sold over `exposure` periods at `arm` (a live period may run long).
    pub fn observe_exposure(&mut self, arm: usize, exposure: f64, units: f64) {
        if arm >= self.x.len() || !(exposure.is_finite() && units.is_finite()) || exposure <= 0.0 {
            return;
        }
        self.cache = None;
        self.periods[arm] += exposure;
        self.units[arm] += units.max(0.0);
        self.earned += units.max(0.0) * self.value[arm];
        self.elapsed += exposure;
        self.history.push(Step(arm, exposure, units.max(0.0)));
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
    }

    /// The elasticity the constant-elasticity model believes now: (mean, sd).
    pub fn elasticity(&self) -> (f64, f64) {
        let fit = self.fit(self.active_prior());
        (fit.mode[1], fit.cov[1][1].max(0.0).sqrt())
    }

    /// Expected objective per period of each price under the trusted model.
    pub fn expected_values(&self) -> Vec<f64> {
        let lambda = self.mean_demand();
        lambda.iter().zip(&self.value).map(|(l, v)| l * v).collect()
    }

    /// The explanation of the last choice, with the price it chose (in the caller's words).
    pub fn explain(&self, price: &str) -> String {
        let model = match self.model {
            Model::ConstantElasticity => "the constant-elasticity model with the category's prior",
            Model::WidePrior => "the constant-elasticity model with a wide prior (the category's did not fit)",
            Model::PerPrice => "the per-price fallback model (constant elasticity did not fit the sales)",
        };
        let mut s = match self.rule {
            Rule::Exposure => format!("price experiment: trying {price} (minimum exposure); model: {model}"),
            Rule::Sample => format!("price experiment: trying {price} (Thompson draw); model: {model}"),
            Rule::Safety => format!(
                "price experiment: {price}, the best price safe to play (safety: the price to try next could \
                 take the experiment below {:.0}% of the list price's earnings); model: {model}",
                100.0 * (1.0 - self.alpha)
            ),
            Rule::Concluded => format!("price experiment concluded: {price} earns most; model: {model}"),
            Rule::FloorCheck => format!(
                "price experiment: the list price {price} again, to check that the price chosen sells at \
                 least the volume floor's share of its units; model: {model}"
            ),
            Rule::ListPrice => {
                format!("price experiment concluded: no price shown better than the list price {price}; model: {model}")
            }
        };
        if let Some(note) = &self.note {
            let _ = write!(s, "; {note}");
        }
        s
    }

    fn active_prior(&self) -> (f64, f64) {
        match self.model {
            Model::ConstantElasticity => self.prior,
            _ => (self.prior.0, WIDE_PRIOR_SD.max(self.prior.1)),
        }
    }

    /// Laplace approximation of the constant-elasticity posterior (Newton steps).
    fn fit(&self, prior: (f64, f64)) -> Fit {
        let priors = [(0.0f64, 4.0f64), prior];
        // Start the level at the data's average so Newton does not have to walk far.
        let (n, y): (f64, f64) = (self.periods.iter().sum(), self.units.iter().sum());
        let mut m = [if n > 0.0 { ((y + 0.5) / n).ln() } else { 0.0 }, prior.0];
        let mut cov = [[16.0, 0.0], [0.0, prior.1 * prior.1]];
        for _ in 0..30 {
            let (mut g, mut h) = ([0.0; 2], [[0.0; 2]; 2]);
            for k in 0..self.x.len() {
                if self.periods[k] <= 0.0 {
                    continue;
                }
                let x = self.x[k];
                let mu = self.periods[k] * (m[0] + m[1] * x).min(30.0).exp();
                let r = self.units[k] - mu;
                g[0] += r;
                g[1] += r * x;
                h[0][0] += mu;
                h[0][1] += mu * x;
                h[1][1] += mu * x * x;
            }
            for i in 0..2 {
                let (mean, sd) = priors[i];
                g[i] -= (m[i] - mean) / (sd * sd);
                h[i][i] += 1.0 / (sd * sd);
            }
            h[1][0] = h[0][1];
            let det = h[0][0] * h[1][1] - h[0][1] * h[1][0];
            if !(det.is_finite() && det.abs() > 1e-12) {
                break;
            }
            let inv = [[h[1][1] / det, -h[0][1] / det], [-h[1][0] / det, h[0][0] / det]];
            let step = [inv[0][0] * g[0] + inv[0][1] * g[1], inv[1][0] * g[0] + inv[1][1] * g[1]];
            let scale = 1.0f64.min(2.0 / step[0].abs().max(step[1].abs()).max(1e-12));
            m = [m[0] + scale * step[0], m[1] + scale * step[1]];
            cov = inv;
            if step[0].abs().max(step[1].abs()) < 1e-8 {
                break;
            }
        }
        Fit { mode: m, cov }
    }

    /// Day-to-day dispersion of sales around each price's own mean (≥ 1: Poisson).
    fn dispersion(&self) -> f64 {
        if let Some((phi, _)) = self.cache {
            return phi;
        }
        let mean: Vec<f64> = (0..self.x.len())
            .map(|k| if self.periods[k] > 0.0 { self.units[k] / self.periods[k] } else { 0.0 })
            .collect();
        let (mut chi, mut n) = (0.0, 0usize);
        for s in &self.history {
            let mu = mean[s.0] * s.1;
            if mu > 0.0 {
                chi += (s.2 - mu).powi(2) / mu;
                n += 1;
            }
        }
        let played = self.periods.iter().filter(|p| **p > 0.0).count();
        if n < played + 5 {
            return 1.0;
        }
        (chi / (n - played) as f64).clamp(1.0, 20.0)
    }

    /// The posterior predictive check of a fit: χ² over the prices tried and its p-value
    /// threshold; `None` when too few prices were tried to check a two-parameter curve.
    fn check(&self, fit: &Fit, phi: f64) -> Option<(f64, f64, usize)> {
        let mut chi = 0.0;
        let mut played = 0usize;
        for k in 0..self.x.len() {
            if self.periods[k] <= 0.0 {
                continue;
            }
            played += 1;
            let x = self.x[k];
            let lambda = (fit.mode[0] + fit.mode[1] * x).min(30.0).exp();
            let mu = self.periods[k] * lambda;
            let var_log = fit.cov[0][0] + 2.0 * x * fit.cov[0][1] + x * x * fit.cov[1][1];
            let var = phi * mu.max(0.5) + mu * mu * var_log.max(0.0);
            chi += (self.units[k] - mu).powi(2) / var;
        }
        if played < 3 {
            return None;
        }
        let df = played - 2;
        Some((chi, chi_square_quantile(CHECK_QUANTILE, df as f64), df))
    }

    /// Re-checks the model on the data and moves to a less assuming one when it fails.
    fn update_model(&mut self) {
        if self.model == Model::PerPrice {
            return;
        }
        let phi = self.dispersion();
        let Some((chi, limit, df)) = self.check(&self.fit(self.active_prior()), phi) else { return };
        if chi <= limit {
            return;
        }
        if self.model == Model::ConstantElasticity {
            let wide = (self.prior.0, WIDE_PRIOR_SD.max(self.prior.1));
            if let Some((chi_wide, limit_wide, _)) = self.check(&self.fit(wide), phi) {
                if chi_wide <= limit_wide {
                    self.model = Model::WidePrior;
                    self.note = Some(format!(
                        "the category's elasticity prior {:.2} ± {:.2} did not fit the sales at each price \
                         (χ² {chi:.1} > {limit:.1} on {df} df), so it was widened",
                        self.prior.0, self.prior.1
                    ));
                    return;
                }
            }
        }
        self.model = Model::PerPrice;
        self.note = Some(format!(
            "the constant-elasticity model failed its check against the sales at each price \
             (χ² {chi:.1} > {limit:.1} on {df} df), so the per-price fallback model decides"
        ));
    }

    /// Posterior mean demand per period of each price under the trusted model.
    fn mean_demand(&self) -> Vec<f64> {
        let fit = self.fit(self.active_prior());
        match self.model {
            Model::PerPrice => (0..self.x.len())
                .map(|k| {
                    let (a, b) = self.gamma(&fit, k);
                    a / b
                })
                .collect(),
            _ => {
                let tau = self.deviation(&fit);
                (0..self.x.len())
                    .map(|k| {
                        let (a, b) = self.on_curve(&fit, k, tau);
                        a / b
                    })
                    .collect()
            }
        }
    }

    /// How far (relative sd) the prices' demand sits from the constant-elasticity curve: the
    /// spread of what each price sold around the curve beyond its sampling noise, between
    /// [`DEVIATION_SD`] and [`MAX_DEVIATION_SD`].
    fn deviation(&self, fit: &Fit) -> f64 {
        if let Some((_, tau)) = self.cache {
            return tau;
        }
        let phi = self.dispersion();
        let (mut excess, mut played) = (0.0, 0usize);
        for k in 0..self.x.len() {
            if self.periods[k] <= 0.0 {
                continue;
            }
            played += 1;
            let curve = (fit.mode[0] + fit.mode[1] * self.x[k]).min(30.0).exp();
            let r = ((self.units[k] + 0.5) / (self.periods[k] * curve + 0.5)).ln();
            excess += r * r - phi / (self.units[k] + 0.5);
        }
        if played < 3 {
            return DEVIATION_SD;
        }
        (excess / (played - 2) as f64).max(0.0).sqrt().clamp(DEVIATION_SD, MAX_DEVIATION_SD)
    }

    /// Price k's demand posterior (Gamma shape, rate) under the curve: the curve (with its
    /// uncertainty and the deviation `tau` a price may have from it) is the prior, the price's
    /// own sales the likelihood.
    fn on_curve(&self, fit: &Fit, k: usize, tau: f64) -> (f64, f64) {
        let x = self.x[k];
        let var = (fit.cov[0][0] + 2.0 * x * fit.cov[0][1] + x * x * fit.cov[1][1]).max(0.0);
        let centre = (fit.mode[0] + fit.mode[1] * x + var / 2.0).min(30.0).exp().max(1e-6);
        let shape = 1.0 / (tau * tau + var);
        (shape + self.units[k], shape / centre + self.periods[k])
    }

    /// The fallback's Gamma posterior (shape, rate) at price k, its prior centred on `fit`.
    fn gamma(&self, fit: &Fit, k: usize) -> (f64, f64) {
        let centre = (fit.mode[0] + fit.mode[1] * self.x[k]).min(30.0).exp().max(1e-3);
        let rate = FALLBACK_PRIOR_PERIODS;
        (centre * rate + self.units[k], rate + self.periods[k])
    }

    /// Demand per period of each price under one posterior draw (or its `z`-quantile with `draw`
    /// false: a pessimistic or optimistic bound per price).
    fn demand_draw(&self, fit: &Fit, rng: &mut StdRng) -> Vec<f64> {
        self.demand_draw_scaled(fit, rng, 1.0)
    }

    /// A posterior draw `spread` times as far from the posterior's centre (in standard scores).
    fn demand_draw_scaled(&self, fit: &Fit, rng: &mut StdRng, spread: f64) -> Vec<f64> {
        let mut u = || crate::demand::normal_cdf(spread * normal_quantile(rng.gen()));
        match self.model {
            Model::PerPrice => (0..self.x.len())
                .map(|k| {
                    let (a, b) = self.gamma(fit, k);
                    gamma_quantile(a, u()) / b
                })
                .collect(),
            _ => {
                let (z1, z2) = (normal_quantile(u()), normal_quantile(u()));
                let l11 = fit.cov[0][0].max(1e-12).sqrt();
                let l21 = fit.cov[1][0] / l11;
                let l22 = (fit.cov[1][1] - l21 * l21).max(1e-12).sqrt();
                let theta = [fit.mode[0] + l11 * z1, fit.mode[1] + l21 * z1 + l22 * z2];
                let tau = self.deviation(fit);
                (0..self.x.len())
                    .map(|k| {
                        let curve = (theta[0] + theta[1] * self.x[k]).min(30.0).exp();
                        // The curve is the prior of each price's own demand, worth 1/sd²
                        // units: a price that sold enough differently shows it.
                        let shape = 1.0 / (tau * tau);
                        let (a, b) = (shape + self.units[k], shape / curve.max(1e-6) + self.periods[k]);
                        gamma_quantile(a, u()) / b
                    })
                    .collect()
            }
        }
    }

    /// A pessimistic bound on price k's demand per period (`z` sd below the mean).
    fn demand_bound(&self, fit: &Fit, k: usize, z: f64) -> f64 {
        let u = 1.0 - crate::demand::normal_cdf(z);
        match self.model {
            Model::PerPrice => {
                let (a, b) = self.gamma(fit, k);
                gamma_quantile(a, u) / b
            }
            _ => {
                let (a, b) = self.on_curve(fit, k, self.deviation(fit));
                gamma_quantile(a, u) / b
            }
        }
    }

    /// The posterior probability that price k keeps the volume floor (1 for the list price, and
    /// for every price without a floor).
    fn keeps_floor(&self, fit: &Fit, k: usize) -> f64 {
        let Some(floor) = self.volume_floor else { return 1.0 };
        if k == self.list {
            return 1.0;
        }
        let (mean, var) = match self.model {
            Model::PerPrice => {
                let ((ak, bk), (al, bl)) = (self.gamma(fit, k), self.gamma(fit, self.list));
                ((ak / bk).ln() - (al / bl).ln(), 1.0 / ak + 1.0 / al)
            }
            _ => {
                // The curve's slope, and the two prices' own sales, weighted by their precision.
                let dx = self.x[k] - self.x[self.list];
                let tau = self.deviation(fit);
                let (m0, v0) = (fit.mode[1] * dx, fit.cov[1][1].max(0.0) * dx * dx + tau * tau);
                let (nk, nl) = (self.periods[k], self.periods[self.list]);
                if nk > 0.0 && nl > 0.0 {
                    let (yk, yl) = (self.units[k] + 0.5, self.units[self.list] + 0.5);
                    let m1 = (yk / nk).ln() - (yl / nl).ln();
                    let v1 = self.dispersion() * (1.0 / yk + 1.0 / yl);
                    ((m0 * v1 + m1 * v0) / (v0 + v1), v0 * v1 / (v0 + v1))
                } else {
                    (m0, v0)
                }
            }
        };
        crate::demand::normal_cdf((mean - floor.ln()) / var.max(1e-12).sqrt())
    }

    /// What price k earns per period under demand `lambda`, weighted by the posterior
    /// probability that it keeps the volume floor (a period below the floor earns nothing, and
    /// one price's demand drawn high says little about whether it keeps the floor: the risk is
    /// priced in expectation, not explored).
    fn worth(&self, lambda: &[f64], k: usize) -> f64 {
        self.value[k] * lambda[k] * self.keep.get(k).copied().unwrap_or(1.0)
    }

    /// What price k earns per period in expectation under the posterior means `mean`, weighted
    /// by the probability it keeps the volume floor.
    fn expected_worth(&self, fit: &Fit, mean: &[f64], k: usize) -> f64 {
        self.value[k] * mean[k] * self.keeps_floor(fit, k)
    }

    /// The best allowed price under demand `lambda`.
    fn best(&self, lambda: &[f64], allowed: &[usize]) -> usize {
        allowed
            .iter()
            .copied()
            .map(|k| (k, self.worth(lambda, k)))
            .fold((usize::MAX, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
            .0
            .min(self.x.len() - 1)
    }

    /// The best allowed price by the posterior means (weighted by keeping the floor).
    fn best_expected(&self, fit: &Fit, mean: &[f64], allowed: &[usize]) -> usize {
        allowed
            .iter()
            .copied()
            .map(|k| (k, self.expected_worth(fit, mean, k)))
            .fold((usize::MAX, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
            .0
            .min(self.x.len() - 1)
    }

    /// The stopping rule: returns the price to conclude on, if any.
    fn judge(&self, fit: &Fit, allowed: &[usize], rng: &mut StdRng) -> Option<usize> {
        let draws: Vec<Vec<f64>> = (0..STOP_DRAWS).map(|_| self.demand_draw(fit, rng)).collect();
        let mut wins = vec![0usize; self.x.len()];
        for d in &draws {
            wins[self.best(d, allowed)] += 1;
        }
        let leader = (0..wins.len()).max_by_key(|&k| wins[k])?;
        let (mut loss, mut total) = (0.0, 0.0);
        for d in &draws {
            let top = self.best(d, allowed);
            let lead = self.worth(d, leader);
            loss += self.worth(d, top) - lead;
            total += lead;
        }
        let p_best = wins[leader] as f64 / STOP_DRAWS as f64;
        if !(p_best >= STOP_PROBABILITY || (total > 0.0 && loss / total < STOP_LOSS)) {
            return None;
        }
        let shown = leader == self.list || self.beats(&draws, leader, self.list, BEAT_LIST);
        // A model can be wrong in ways its check has not caught yet: the winner must also beat
        // the list price, and the model's runner-up, on their own sales, or the experiment
        // goes on.
        let mean = self.mean_demand();
        let runner_up = allowed
            .iter()
            .copied()
            .filter(|&k| k != leader)
            .max_by(|&a, &b| self.worth(&mean, a).total_cmp(&self.worth(&mean, b)));
        let own: Vec<Vec<f64>> = (0..STOP_DRAWS).map(|_| self.own_draw(rng)).collect();
        let bar = OWN_BEAT_LIST;
        if shown && leader != self.list && allowed.contains(&self.list) && !self.beats(&own, leader, self.list, bar) {
            return None;
        }
        if let Some(r) = runner_up {
            if r != self.list && !self.beats(&own, leader, r, bar) {
                return None;
            }
        }
        Some(if shown || !allowed.contains(&self.list) { leader } else { self.list })
    }

    /// Whether price k is shown to beat the list price over `draws` of demand: it earns more
    /// with probability ≥ `bar`, and still earns more in expectation once the chance that it
    /// breaks the volume floor is counted as a loss of everything it earns.
    fn beats(&self, draws: &[Vec<f64>], k: usize, rival: usize, bar: f64) -> bool {
        let (mut gain, mut beats) = (0.0, 0usize);
        for d in draws {
            gain += self.worth(d, k) - self.worth(d, rival);
            beats += usize::from(self.value[k] * d[k] > self.value[rival] * d[rival]);
        }
        gain > 0.0 && beats as f64 >= bar * draws.len() as f64
    }

    /// Demand per period of each price drawn from its own sales alone (a Gamma posterior with
    /// a vague prior): no curve, no pooling.
    fn own_draw(&self, rng: &mut StdRng) -> Vec<f64> {
        (0..self.x.len()).map(|k| gamma_quantile(self.units[k] + 0.5, rng.gen()) / (self.periods[k] + 1e-3)).collect()
    }

    /// After the stop: the best allowed price by the posterior mean when it beats the list price
    /// with probability ≥ [`BEAT_LIST`], else the list price.
    fn settled(&self, fit: &Fit, allowed: &[usize], rng: &mut StdRng) -> usize {
        let leader = self.best_expected(fit, &self.mean_demand(), allowed);
        if leader == self.list || !allowed.contains(&self.list) {
            return leader;
        }
        let draws: Vec<Vec<f64>> = (0..STOP_DRAWS).map(|_| self.demand_draw(fit, rng)).collect();
        if self.beats(&draws, leader, self.list, BEAT_LIST) {
            leader
        } else {
            self.list
        }
    }

    /// Whether trying `k` next keeps the experiment at or above (1 − α) of the list price in
    /// expectation: what each price played so far earned less than the list price would have
    /// (by the trusted model's posterior means, so the luck of the days does not count), plus
    /// what `k` could lose next period at a pessimistic bound, must stay within α of the list
    /// price's value over the periods so far and the next.
    fn safe(&self, fit: &Fit, mean: &[f64], k: usize) -> bool {
        if k == self.list {
            return true;
        }
        let list_value = self.value[self.list] * mean[self.list];
        let spent: f64 = (0..self.x.len())
            .filter(|&j| j != self.list && self.periods[j] > 0.0)
            .map(|j| self.periods[j] * (list_value - self.expected_worth(fit, mean, j)))
            .sum();
        let next = self.value[k] * self.demand_bound(fit, k, SAFETY_Z) * self.keeps_floor(fit, k);
        spent + (list_value - next) <= self.alpha * (self.elapsed + 1.0) * list_value
    }

    /// Looks for a shift in demand: the last [`WINDOW`] periods against each price's mean before
    /// them. On a shift the experiment restarts from the window alone.
    fn detect_shift(&mut self) {
        if self.history.len() < 2 * WINDOW {
            return;
        }
        let cut = self.history.len() - WINDOW;
        let n = self.x.len();
        let (mut pre_n, mut pre_y) = (vec![0.0; n], vec![0.0; n]);
        for s in &self.history[..cut] {
            pre_n[s.0] += s.1;
            pre_y[s.0] += s.2;
        }
        let (mut observed, mut expected, mut var) = (0.0, 0.0, 0.0);
        let phi = self.dispersion();
        let mut in_window = vec![0.0; n];
        for s in &self.history[cut..] {
            if pre_n[s.0] < 3.0 {
                continue;
            }
            let rate = (pre_y[s.0] + 0.5) / pre_n[s.0];
            let mu = rate * s.1;
            observed += s.2;
            expected += mu;
            var += phi * mu;
            in_window[s.0] += s.1;
        }
        // Each price's mean before the window is itself uncertain, and the error is shared by
        // all of its periods in the window: (exposure in window)² · rate / exposure before.
        for k in 0..n {
            if in_window[k] > 0.0 {
                var += in_window[k] * in_window[k] * phi * (pre_y[k] + 0.5) / (pre_n[k] * pre_n[k]);
            }
        }
        if expected <= 0.0 || var <= 0.0 {
            return;
        }
        let z = (observed - expected) / var.sqrt();
        if z.abs() < SHIFT_Z {
            return;
        }
        let window: Vec<Step> = self.history[cut..].to_vec();
        self.periods = vec![0.0; n];
        self.units = vec![0.0; n];
        self.earned = 0.0;
        self.elapsed = 0.0;
        self.history.clear();
        for s in window {
            self.observe_exposure(s.0, s.1, s.2);
        }
        self.model = Model::ConstantElasticity;
        self.stopped = None;
        self.restarts += 1;
        self.note = Some(format!(
            "demand shifted: the last {WINDOW} periods sold {:.0}% of what came before predicted, \
             so the experiment restarted from them",
            100.0 * observed / expected
        ));
    }

    /// Chooses the next price among `allowed` (indices the guardrails permit; never empty).
    pub fn choose_arm(&mut self, allowed: &[usize], rng: &mut StdRng) -> usize {
        self.period += 1;
        self.cache = None;
        self.detect_shift();
        self.update_model();
        let fit = self.fit(self.active_prior());
        // Under a volume floor every draw scores a price that breaks it at nothing, and every
        // expectation weighs a price by the probability it keeps the floor; a price is tried
        // for its exposure only while it may keep it.
        self.cache = Some((self.dispersion(), self.deviation(&fit)));
        self.keep = (0..self.x.len()).map(|k| self.keeps_floor(&fit, k)).collect();
        let arm = self.pick(&fit, allowed, rng);
        // The floor is measured against the list price's units: while a price played may still
        // break it, the list price keeps being measured too (one period in FLOOR_WATCH), or a
        // lucky start at the list price would stand unchallenged.
        if self.volume_floor.is_some()
            && arm != self.list
            && allowed.contains(&self.list)
            && self.keep[arm] < FLOOR_SURE
            && self.periods[self.list] * FLOOR_WATCH < self.periods[arm]
        {
            self.rule = Rule::FloorCheck;
            return self.list;
        }
        arm
    }

    /// The price the rules choose (before the volume floor's watch on the list price).
    fn pick(&mut self, fit: &Fit, allowed: &[usize], rng: &mut StdRng) -> usize {
        let fit = *fit;
        let plausible: Vec<usize> = allowed.iter().copied().filter(|&k| self.keep[k] >= FLOOR_PLAUSIBLE).collect();
        let list_ok = allowed.contains(&self.list);
        if self.stopped.is_some() {
            // Concluded: the posterior's best price, as long as it is still shown to beat the
            // list price (later sales keep refining the belief).
            let arm = self.settled(&fit, allowed, rng);
            self.rule = if arm == self.list { Rule::ListPrice } else { Rule::Concluded };
            return arm;
        }
        // The list price first: the safety rule measures everything against it.
        if list_ok && self.periods[self.list] < f64::from(self.min_exposure) {
            self.rule = Rule::Exposure;
            return self.list;
        }
        let mean = self.mean_demand();
        let list_value = self.value[self.list] * mean[self.list];
        // A price needs its exposure only if it could beat the list price at all.
        let promising = |k: usize| self.value[k] * self.demand_bound(&fit, k, -2.0) > list_value;
        // Under a volume floor, a price that may break it is tried only when its exposure can
        // tell: the units it would sell over the exposure pin the ratio to the list price's down
        // better than the curve does.
        let tau = self.deviation(&fit);
        let telling = |k: usize| {
            let dx = self.x[k] - self.x[self.list];
            let curve = fit.cov[1][1].max(0.0) * dx * dx + tau * tau;
            let units = mean[k] * f64::from(self.min_exposure) + self.units[k];
            self.keep[k] >= FLOOR_SURE || units * curve * FLOOR_TELLING >= 1.0
        };
        let unexposed: Vec<usize> = plausible
            .iter()
            .copied()
            .filter(|&k| self.periods[k] < f64::from(self.min_exposure) && promising(k) && telling(k))
            .collect();
        // The untried price nearest the list price first: the cheapest to learn from.
        let nearest = unexposed.iter().copied().min_by(|&a, &b| self.x[a].abs().total_cmp(&self.x[b].abs()));
        let (candidate, rule) = match nearest {
            Some(k) => (k, Rule::Exposure),
            None => {
                if let Some(winner) = self.judge(&fit, allowed, rng) {
                    self.stopped = Some((self.period, winner));
                    self.rule = if winner == self.list { Rule::ListPrice } else { Rule::Concluded };
                    return winner;
                }
                let d = self.demand_draw_scaled(&fit, rng, SAMPLE_SPREAD);
                let sampled = |k: usize| match self.volume_floor {
                    // A price whose sales can tell whether it keeps the floor is explored on it: the
                    // draw scores it at nothing when it breaks the floor there.
                    Some(f) if k != self.list && self.keep[k] < FLOOR_SURE && telling(k) => {
                        if d[k] >= f * d[self.list] {
                            self.value[k] * d[k]
                        } else {
                            0.0
                        }
                    }
                    _ => self.worth(&d, k),
                };
                let pick =
                    allowed.iter().copied().max_by(|&a, &b| sampled(a).total_cmp(&sampled(b))).unwrap_or(self.list);
                (pick, Rule::Sample)
            }
        };
        if list_ok && !self.safe(&fit, &mean, candidate) {
            // The best price by the posterior mean among those safe to play (the list price is).
            let safe: Vec<usize> = allowed.iter().copied().filter(|&k| self.safe(&fit, &mean, k)).collect();
            self.rule = Rule::Safety;
            return if safe.is_empty() { self.list } else { self.best_expected(&fit, &mean, &safe) };
        }
        self.rule = rule;
        candidate
    }
}

impl PricePolicy for Robust {
    fn choose(&mut self, allowed: &[usize], rng: &mut StdRng) -> usize {
        self.choose_arm(allowed, rng)
    }

    fn observe(&mut self, arm: usize, units: f64) {
        self.observe_exposure(arm, 1.0, units);
    }
}

/// The `p` quantile of a χ² with `df` degrees of freedom (Wilson–Hilferty).
fn chi_square_quantile(p: f64, df: f64) -> f64 {
    let z = normal_quantile(p);
    let c = 2.0 / (9.0 * df);
    df * (1.0 - c + z * c.sqrt()).powi(3).max(0.0)
}

/// The `u` quantile of a Gamma(shape, 1) (Wilson–Hilferty; shapes below 1 are boosted).
fn gamma_quantile(shape: f64, u: f64) -> f64 {
    let a = shape.max(1e-3);
    if a < 1.0 {
        // Wilson–Hilferty is poor below shape 1: scale Gamma(a + 1)'s quantile to mean a.
        return gamma_quantile(a + 1.0, u) * a / (a + 1.0);
    }
    let z = normal_quantile(u);
    let c = 1.0 / (9.0 * a);
    a * (1.0 - c + z * c.sqrt()).powi(3).max(0.0)
}

#[cfg(test)]
mod tests;
