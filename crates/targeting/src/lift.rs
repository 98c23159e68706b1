//! What a campaign caused: recipients against a random holdout, as a difference with a 95%
//! interval for the final report and an always-valid interval for peeking while it runs.
//!
//! The always-valid interval is the mixture sequential probability ratio test's (Johari et al.,
//! "Always valid inference", 2017) under a normal approximation: its coverage holds at every
//! look at once, so a dashboard refreshed hourly does not declare winners by chance. The mixture
//! scale `tau` is the size of effect the test is tuned to find fastest; coverage holds for any.

use serde::Serialize;

/// One group's outcomes: how many customers, how many converted, and their revenue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Customers in the group.
    pub customers: u64,
    /// Customers who converted in the attribution window.
    pub converted: u64,
    /// Sum of their revenue (in major units).
    pub revenue: f64,
    /// Sum of squared per-customer revenue, for its variance.
    pub revenue_squares: f64,
}

impl Group {
    /// Adds one customer's outcome.
    pub fn add(&mut self, converted: bool, revenue: f64) {
        let revenue = if revenue.is_finite() { revenue } else { 0.0 };
        self.customers = self.customers.saturating_add(1);
        self.converted = self.converted.saturating_add(u64::from(converted));
        self.revenue += revenue;
        self.revenue_squares += revenue * revenue;
    }

    fn rate(&self) -> f64 {
        self.converted as f64 / self.customers.max(1) as f64
    }

    fn mean_revenue(&self) -> f64 {
        self.revenue / self.customers.max(1) as f64
    }

    fn revenue_variance(&self) -> f64 {
        let n = self.customers.max(1) as f64;
        (self.revenue_squares / n - self.mean_revenue().powi(2)).max(0.0)
    }
}

/// A difference between recipients and holdout, with its intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Recipients minus holdout.
    pub estimate: f64,
    /// 95% interval at a fixed horizon (read once, at the end of the attribution window).
    pub interval: [f64; 2],
    /// 95% interval valid at every look (read any time while the journey runs).
    pub always_valid: [f64; 2],
}

impl Difference {
    fn new(estimate: f64, variance: f64, tau: f64, alpha: f64) -> Difference {
        if variance <= 0.0 || !variance.is_finite() {
            let inf = f64::INFINITY;
            return Difference { estimate, interval: [-inf, inf], always_valid: [-inf, inf] };
        }
        let fixed = 1.959_963_984_540_054 * variance.sqrt();
        let t2 = tau * tau;
        let half = (2.0 * variance * (variance + t2) / t2 * (((variance + t2) / variance).sqrt() / alpha).ln()).sqrt();
        Difference {
            estimate,
            interval: [estimate - fixed, estimate + fixed],
            always_valid: [estimate - half, estimate + half],
        }
    }

    /// What a marketer may conclude now: `better`/`worse` only when the always-valid interval
    /// excludes no difference.
    pub fn verdict(&self) -> Verdict {
        if self.always_valid[0] > 0.0 {
            Verdict::Better
        } else if self.always_valid[1] < 0.0 {
            Verdict::Worse
        } else {
            Verdict::NotYetClear
        }
    }
}

/// The reading of a lift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Recipients do better than the holdout (always-valid).
    Better,
    /// Recipients do worse.
    Worse,
    /// The data cannot tell yet.
    NotYetClear,
}

/// Recipients against the holdout on conversion and revenue per customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lift {
    /// The recipients' outcomes.
    pub recipients: Group,
    /// The holdout's outcomes.
    pub holdout: Group,
    /// Conversion rate difference (a share, e.g. 0.02 = two points).
    pub conversion: Difference,
    /// Revenue per customer difference.
    pub revenue_per_customer: Difference,
}

/// The mixture scale for conversion: tuned to find lifts of about two points fastest.
pub const CONVERSION_TAU: f64 = 0.02;

/// Compares recipients with the holdout at level `alpha` (0.05 for 95%).
pub fn lift(recipients: Group, holdout: Group, alpha: f64) -> Lift {
    let (n1, n0) = (recipients.customers.max(1) as f64, holdout.customers.max(1) as f64);
    let (p1, p0) = (recipients.rate(), holdout.rate());
    // A conversion rate of 0 or 1 in a small group has no sampling variance by the plug-in;
    // a half-count floor keeps the interval honest there.
    let var_rate = |p: f64, n: f64| {
        let p = p.clamp(0.5 / n, 1.0 - 0.5 / n);
        p * (1.0 - p) / n
    };
    let conversion = Difference::new(p1 - p0, var_rate(p1, n1) + var_rate(p0, n0), CONVERSION_TAU, alpha);
    let revenue_variance = recipients.revenue_variance() / n1 + holdout.revenue_variance() / n0;
    // Revenue is tuned to lifts of a tenth of the holdout's standard deviation per customer.
    let revenue_tau = (holdout.revenue_variance().sqrt() * 0.1).max(1e-6);
    let revenue_per_customer =
        Difference::new(recipients.mean_revenue() - holdout.mean_revenue(), revenue_variance, revenue_tau, alpha);
    Lift { recipients, holdout, conversion, revenue_per_customer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// 5,000 customers, 10% held out, treated converting at `treated_rate`.
    fn journey(seed: u64, treated_rate: f64, peeks: usize) -> (Lift, bool) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (mut recipients, mut holdout) = (Group::default(), Group::default());
        let mut declared_early = false;
        let n = 5_000;
        for i in 1..=n {
            if rng.gen_bool(0.1) {
                let c = rng.gen_bool(0.10);
                holdout.add(c, if c { rng.gen_range(10.0..60.0) } else { 0.0 });
            } else {
                let c = rng.gen_bool(treated_rate);
                recipients.add(c, if c { rng.gen_range(10.0..60.0) } else { 0.0 });
            }
            if peeks > 0 && i % (n / peeks) == 0 && i < n && holdout.customers > 0 {
                declared_early |= lift(recipients, holdout, 0.05).conversion.verdict() != Verdict::NotYetClear;
            }
        }
        (lift(recipients, holdout, 0.05), declared_early)
    }

    #[test]
    fn the_interval_covers_a_known_lift_in_at_least_90_of_100_runs() {
        let truth = 0.14 - 0.10;
        let covered = (0..100)
            .filter(|&seed| {
                let l = journey(seed, 0.14, 0).0.conversion;
                l.interval[0] <= truth && truth <= l.interval[1]
            })
            .count();
        assert!(covered >= 90, "covered in {covered} of 100 runs");
    }

    #[test]
    fn with_no_effect_hourly_peeks_rarely_declare_a_winner() {
        let declared = (0..100).filter(|&seed| journey(1000 + seed, 0.10, 50).1).count();
        assert!(declared <= 5, "a difference declared in {declared} of 100 runs with no effect");
        // The fixed-horizon interval, read at every peek, would cry wolf far more often: the
        // always-valid one is what makes peeking safe.
        let naive = (0..100)
            .filter(|&seed| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + seed);
                let (mut r, mut h) = (Group::default(), Group::default());
                let mut hit = false;
                for i in 1..=5_000 {
                    let g = if rng.gen_bool(0.1) { &mut h } else { &mut r };
                    g.add(rng.gen_bool(0.10), 0.0);
                    if i % 100 == 0 && h.customers > 0 {
                        let d = lift(r, h, 0.05).conversion;
                        hit |= d.interval[0] > 0.0 || d.interval[1] < 0.0;
                    }
                }
                hit
            })
            .count();
        assert!(naive > declared, "naive peeking {naive} vs always-valid {declared}");
    }

    #[test]
    fn a_real_lift_is_declared_better() {
        let (l, _) = journey(7, 0.16, 0);
        assert_eq!(l.conversion.verdict(), Verdict::Better);
        assert!(l.revenue_per_customer.estimate > 0.0);
    }
}
