//! Price experiments: which of a product's candidate prices earns most. Tailor's policy is
//! Thompson sampling over a Poisson demand model with a log-price slope (so every price
//! observed teaches about all of them), a prior on the elasticity from the estimates of the
//! product's category, a minimum exposure per price and a stopping rule. ε-greedy is kept as
//! the textbook baseline.

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::demand::normal_quantile;

/// What an experiment maximizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Price × units.
    #[default]
    Revenue,
    /// (Price − unit cost) × units.
    Margin,
    /// Margin, among the prices that keep selling at least a share of the list price's units
    /// (the volume floor, 90% unless set).
    MarginWithVolumeFloor,
}

impl Objective {
    /// What one unit sold at `price` earns under this objective.
    pub fn unit_value(self, price: f64, unit_cost: f64) -> f64 {
        match self {
            Objective::Revenue => price,
            Objective::Margin | Objective::MarginWithVolumeFloor => price - unit_cost,
        }
    }

    /// Whether it needs a unit cost.
    pub fn needs_cost(self) -> bool {
        self != Objective::Revenue
    }
}

/// The share of the list price's units a price must keep under the volume floor, by default.
pub const DEFAULT_VOLUME_FLOOR: f64 = 0.9;

/// A pricing policy choosing one of `arms` candidate prices each period.
pub trait PricePolicy {
    /// The arm to play among `allowed` (indices the guardrails permit; never empty).
    fn choose(&mut self, allowed: &[usize], rng: &mut StdRng) -> usize;
    /// What the chosen arm sold.
    fn observe(&mut self, arm: usize, units: f64);
}

/// Thompson sampling over ln λ(p) = a + b · ln(p / reference).
#[derive(Debug, Clone)]
pub struct Thompson {
    x: Vec<f64>,
    value: Vec<f64>,
    periods: Vec<f64>,
    units: Vec<f64>,
    prior: [(f64, f64); 2],
    mode: [f64; 2],
    cov: [[f64; 2]; 2],
    min_exposure: u32,
    /// Set when the stopping rule ended the experiment: (period, winning arm).
    pub stopped: Option<(u32, usize)>,
    period: u32,
}

/// How many posterior draws judge the stopping rule.
const STOP_DRAWS: usize = 64;
/// The experiment stops once one price is best with this posterior probability…
const STOP_PROBABILITY: f64 = 0.95;
/// …or once choosing the current leader costs less than this share of its value in expectation.
const STOP_LOSS: f64 = 0.002;

impl Thompson {
    /// A policy for candidate `prices` (currency units) of a product with `reference` price,
    /// earning `value[k]` per unit at price k (the price, or the price less cost), with a
    /// normal prior on the elasticity (mean, sd).
    pub fn new(
        prices: &[f64],
        reference: f64,
        value: Vec<f64>,
        prior_elasticity: (f64, f64),
        min_exposure: u32,
    ) -> Thompson {
        let x: Vec<f64> = prices.iter().map(|p| (p / reference).ln()).collect();
        let n = prices.len();
        // A vague prior on the level: demand anywhere from a fraction of a unit to thousands.
        let prior = [(1.0f64.ln(), 4.0), prior_elasticity];
        Thompson {
            x,
            value,
            periods: vec![0.0; n],
            units: vec![0.0; n],
            prior,
            mode: [prior[0].0, prior[1].0],
            cov: [[prior[0].1.powi(2), 0.0], [0.0, prior[1].1.powi(2)]],
            min_exposure,
            stopped: None,
            period: 0,
        }
    }

    /// A policy resumed from what each arm was exposed (periods) and sold, e.g. a live
    /// experiment read back from storage.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        prices: &[f64],
        reference: f64,
        value: Vec<f64>,
        prior_elasticity: (f64, f64),
        min_exposure: u32,
        periods: &[f64],
        units: &[f64],
        stopped: Option<(u32, usize)>,
    ) -> Thompson {
        let mut t = Thompson::new(prices, reference, value, prior_elasticity, min_exposure);
        t.periods = periods.to_vec();
        t.units = units.to_vec();
        t.period = periods.iter().sum::<f64>().round() as u32;
        t.stopped = stopped;
        if t.periods.iter().any(|p| *p > 0.0) {
            t.refit();
        }
        t
    }

    /// Records `units` sold over `exposure` periods at `arm` (a live period may run long).
    pub fn observe_exposure(&mut self, arm: usize, exposure: f64, units: f64) {
        self.periods[arm] += exposure;
        self.units[arm] += units;
        self.refit();
    }

    /// The elasticity the posterior believes: (mean, sd).
    pub fn elasticity(&self) -> (f64, f64) {
        (self.mode[1], self.cov[1][1].max(0.0).sqrt())
    }

    /// Expected value per period of each arm at the posterior mode.
    pub fn expected_values(&self) -> Vec<f64> {
        (0..self.x.len()).map(|k| self.value[k] * (self.mode[0] + self.mode[1] * self.x[k]).min(30.0).exp()).collect()
    }

    /// Refits the Laplace approximation of the posterior (Newton steps from the last mode).
    fn refit(&mut self) {
        let mut m = self.mode;
        for _ in 0..20 {
            let (mut g, mut h) = ([0.0; 2], [[0.0; 2]; 2]);
            for k in 0..self.x.len() {
                if self.periods[k] == 0.0 {
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
                let (mean, sd) = self.prior[i];
                g[i] -= (m[i] - mean) / (sd * sd);
                h[i][i] += 1.0 / (sd * sd);
            }
            h[1][0] = h[0][1];
            let det = h[0][0] * h[1][1] - h[0][1] * h[1][0];
            if det.abs() < 1e-12 {
                break;
            }
            let inv = [[h[1][1] / det, -h[0][1] / det], [-h[1][0] / det, h[0][0] / det]];
            let step = [inv[0][0] * g[0] + inv[0][1] * g[1], inv[1][0] * g[0] + inv[1][1] * g[1]];
            // Damped: far from the mode a full step can overshoot the exponential.
            let scale = 1.0f64.min(2.0 / step[0].abs().max(step[1].abs()).max(1e-12));
            m = [m[0] + scale * step[0], m[1] + scale * step[1]];
            self.cov = inv;
            if step[0].abs().max(step[1].abs()) < 1e-8 {
                break;
            }
        }
        self.mode = m;
    }

    fn draw(&self, rng: &mut StdRng) -> [f64; 2] {
        let (z1, z2) = (normal_quantile(rng.gen()), normal_quantile(rng.gen()));
        let l11 = self.cov[0][0].max(1e-12).sqrt();
        let l21 = self.cov[1][0] / l11;
        let l22 = (self.cov[1][1] - l21 * l21).max(1e-12).sqrt();
        [self.mode[0] + l11 * z1, self.mode[1] + l21 * z1 + l22 * z2]
    }

    fn best(&self, theta: [f64; 2], allowed: &[usize]) -> (usize, f64) {
        allowed
            .iter()
            .map(|&k| (k, self.value[k] * (theta[0] + theta[1] * self.x[k]).min(30.0).exp()))
            .fold((allowed[0], f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
    }

    /// Applies the stopping rule: P(best) and expected loss over posterior draws.
    fn judge(&mut self, allowed: &[usize], rng: &mut StdRng) {
        let mut wins = vec![0usize; self.x.len()];
        let draws: Vec<[f64; 2]> = (0..STOP_DRAWS).map(|_| self.draw(rng)).collect();
        for &theta in &draws {
            wins[self.best(theta, allowed).0] += 1;
        }
        let leader = (0..wins.len()).max_by_key(|&k| wins[k]).unwrap_or(0);
        let (mut loss, mut value) = (0.0, 0.0);
        for &theta in &draws {
            let (_, top) = self.best(theta, allowed);
            let lead = self.value[leader] * (theta[0] + theta[1] * self.x[leader]).min(30.0).exp();
            loss += top - lead;
            value += lead;
        }
        let p_best = wins[leader] as f64 / STOP_DRAWS as f64;
        if p_best >= STOP_PROBABILITY || (value > 0.0 && loss / value < STOP_LOSS) {
            self.stopped = Some((self.period, leader));
        }
    }
}

impl PricePolicy for Thompson {
    fn choose(&mut self, allowed: &[usize], rng: &mut StdRng) -> usize {
        self.period += 1;
        if let Some(&k) = allowed.iter().find(|&&k| self.periods[k] < f64::from(self.min_exposure)) {
            return k;
        }
        if self.stopped.is_none() {
            self.judge(allowed, rng);
        }
        match self.stopped {
            // After the stop, the posterior mean's best price (still within today's guardrails).
            Some(_) => self.best(self.mode, allowed).0,
            None => {
                let theta = self.draw(rng);
                self.best(theta, allowed).0
            }
        }
    }

    fn observe(&mut self, arm: usize, units: f64) {
        self.observe_exposure(arm, 1.0, units);
    }
}

/// ε-greedy: a random price with probability ε, else the best average so far.
#[derive(Debug, Clone)]
pub struct EpsilonGreedy {
    epsilon: f64,
    value: Vec<f64>,
    periods: Vec<f64>,
    earned: Vec<f64>,
}

impl EpsilonGreedy {
    /// A policy exploring with probability `epsilon`.
    pub fn new(value: Vec<f64>, epsilon: f64) -> EpsilonGreedy {
        let n = value.len();
        EpsilonGreedy { epsilon, value, periods: vec![0.0; n], earned: vec![0.0; n] }
    }
}

impl PricePolicy for EpsilonGreedy {
    fn choose(&mut self, allowed: &[usize], rng: &mut StdRng) -> usize {
        if let Some(&k) = allowed.iter().find(|&&k| self.periods[k] == 0.0) {
            return k;
        }
        if rng.gen::<f64>() < self.epsilon {
            return allowed[rng.gen_range(0..allowed.len())];
        }
        let mean = |k: usize| self.earned[k] / self.periods[k];
        allowed.iter().copied().fold(allowed[0], |a, b| if mean(b) > mean(a) { b } else { a })
    }

    fn observe(&mut self, arm: usize, units: f64) {
        self.periods[arm] += 1.0;
        self.earned[arm] += units * self.value[arm];
    }
}

/// Always the same price (the list price).
#[derive(Debug, Clone)]
pub struct Fixed(pub usize);

impl PricePolicy for Fixed {
    fn choose(&mut self, allowed: &[usize], _rng: &mut StdRng) -> usize {
        if allowed.contains(&self.0) {
            self.0
        } else {
            allowed[0]
        }
    }

    fn observe(&mut self, _arm: usize, _units: f64) {}
}

/// Knows the true expected demand of every price in every period.
#[derive(Debug, Clone)]
pub struct Oracle {
    /// Expected value per period of each arm, period by period (the last row holds after).
    pub expected: Vec<Vec<f64>>,
    /// Arms it may not choose in each period (the volume floor), as a mask per period.
    pub excluded: Vec<Vec<bool>>,
    period: usize,
}

impl Oracle {
    /// An oracle over `expected[t][k]`, with arms `excluded[t][k]` ruled out (may be empty).
    pub fn new(expected: Vec<Vec<f64>>, excluded: Vec<Vec<bool>>) -> Oracle {
        Oracle { expected, excluded, period: 0 }
    }
}

impl PricePolicy for Oracle {
    fn choose(&mut self, allowed: &[usize], _rng: &mut StdRng) -> usize {
        let t = self.period.min(self.expected.len().saturating_sub(1));
        self.period += 1;
        let row = &self.expected[t];
        let out = |k: usize| self.excluded.get(t).is_some_and(|e| e[k]);
        let open: Vec<usize> = allowed.iter().copied().filter(|&k| !out(k)).collect();
        let pool = if open.is_empty() { allowed } else { &open };
        pool.iter().copied().fold(pool[0], |a, b| if row[b] > row[a] { b } else { a })
    }

    fn observe(&mut self, _arm: usize, _units: f64) {}
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn thompson_learns_the_elasticity_and_stops_on_the_best_price() {
        let prices = [0.8, 0.9, 1.0, 1.1, 1.2];
        let truth = |p: f64| 20.0 * p.powf(-2.0);
        let mut policy = Thompson::new(&prices, 1.0, prices.to_vec(), (-1.5, 1.0), 2);
        let mut rng = StdRng::seed_from_u64(3);
        let all: Vec<usize> = (0..5).collect();
        for _ in 0..200 {
            let k = policy.choose(&all, &mut rng);
            let units = crate::demand::poisson_quantile(truth(prices[k]), rng.gen());
            policy.observe(k, units as f64);
        }
        assert!((policy.mode[1] + 2.0).abs() < 0.3, "slope {}", policy.mode[1]);
        let (when, arm) = policy.stopped.expect("stopped");
        assert_eq!(arm, 0, "the lowest price earns most when demand is elastic");
        assert!(when < 100, "stopped after {when} periods");
    }
}
