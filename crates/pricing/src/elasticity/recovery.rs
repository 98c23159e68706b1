//! Sales simulated from known constant-elasticity demand, and how well the estimator recovers
//! the truth from them (error and interval coverage): the check that keeps the model honest.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{estimate, normal_quantile, Config, ElasticityError, Observation};

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A Poisson draw (Knuth's method on pieces of mean ≤ 20, exact for any mean).
pub(super) fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
    let mut left = mean.max(0.0);
    let mut count = 0u64;
    while left > 0.0 {
        let piece = left.min(20.0);
        left -= piece;
        let limit = (-piece).exp();
        let mut p: f64 = rng.gen::<f64>();
        while p > limit {
            count += 1;
            p *= rng.gen::<f64>();
        }
    }
    count as f64
}

/// Sales simulated from known constant-elasticity demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    /// The weekly observations.
    pub observations: Vec<Observation>,
    /// The true elasticity per product.
    pub truth: HashMap<String, f64>,
}

/// Simulates `products` products (about 20 per category) over `weeks` weeks: category mean
/// elasticities uniform in [−2.8, −1.2], products around them with sd 0.35 (clamped to
/// [−3.5, −0.5]); base demand from 2 to 60 units a week; a regular price with one or two
/// permanent changes of ±5–15 %, temporary cuts of 5–35 % a quarter of the weeks, display and
/// mailer mostly with the cuts (lifts e^0.1–e^0.5 and e^0.05–e^0.3); Poisson sales. One product
/// in twenty never changes price.
pub fn simulate(seed: u64, products: usize, weeks: usize) -> Simulation {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_categories = products.div_ceil(20).max(1);
    let category_means: Vec<f64> = (0..n_categories).map(|_| rng.gen_range(-2.8..-1.2)).collect();
    let mut observations = Vec::with_capacity(products * weeks);
    let mut truth = HashMap::new();
    for i in 0..products {
        let c = i % n_categories;
        let product = format!("p{i:04}");
        let category = format!("c{c:02}");
        let elasticity = (category_means[c] + 0.35 * normal(&mut rng)).clamp(-3.5, -0.5);
        truth.insert(product.clone(), elasticity);
        let base_price: f64 = rng.gen_range(1.0..10.0);
        let base_demand = rng.gen_range(2f64.ln()..60f64.ln()).exp();
        let display_lift = rng.gen_range(0.1..0.5);
        let mailer_lift = rng.gen_range(0.05..0.3);
        let fixed_price = i % 20 == 19;
        let changes: Vec<(usize, f64)> = (0..rng.gen_range(1..=2))
            .map(|_| {
                let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                (rng.gen_range(0..weeks.max(1)), 1.0 + sign * rng.gen_range(0.05..0.15))
            })
            .collect();
        for week in 0..weeks {
            let mut price = base_price;
            let (mut display, mut mailer): (f64, f64) = (0.0, 0.0);
            if !fixed_price {
                for &(at, factor) in &changes {
                    if week >= at {
                        price *= factor;
                    }
                }
                let cut = rng.gen_bool(0.25);
                if cut {
                    price *= 1.0 - rng.gen_range(0.05..0.35);
                }
                let (pd, pm) = if cut { (0.5, 0.4) } else { (0.05, 0.05) };
                display = if rng.gen_bool(pd) { 1.0 } else { 0.0 };
                mailer = if rng.gen_bool(pm) { 1.0 } else { 0.0 };
            }
            let price = (price * 100.0).round() / 100.0;
            let mean = base_demand
                * (price / base_price).powf(elasticity)
                * (display_lift * display + mailer_lift * mailer).exp();
            observations.push(Observation {
                product: product.clone(),
                category: category.clone(),
                price,
                quantity: poisson(&mut rng, mean),
                display,
                mailer,
            });
        }
    }
    Simulation { observations, truth }
}

/// How well the estimator recovers known elasticities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Products simulated.
    pub products: usize,
    /// Weeks per product.
    pub weeks: usize,
    /// Products with an own estimate.
    pub with_own: usize,
    /// Mean absolute error of the shrunk estimates, all products.
    pub mae: f64,
    /// Mean absolute error of the shrunk estimates over the products with an own estimate.
    pub mae_with_own: f64,
    /// Mean absolute error of the own estimates (same products).
    pub own_mae: f64,
    /// Share of the shrunk intervals that cover the truth.
    pub coverage: f64,
    /// Share of the own intervals (own ± z·SE) that cover the truth.
    pub own_coverage: f64,
    /// The intervals' nominal coverage.
    pub nominal: f64,
}

/// Simulates `products` products over 52 weeks with [`simulate`], estimates them with the
/// default [`Config`], and compares with the truth.
pub fn recovery_check(seed: u64, products: usize) -> Result<Recovery, ElasticityError> {
    let weeks = 52;
    let sim = simulate(seed, products, weeks);
    let config = Config::default();
    let report = estimate(&sim.observations, &config)?;
    let z = normal_quantile(0.5 + config.level / 2.0);
    let (mut abs, mut abs_own_set, mut abs_own, mut covered, mut own_covered, mut with_own) =
        (0.0, 0.0, 0.0, 0usize, 0usize, 0usize);
    for e in &report.estimates {
        let t = sim.truth.get(&e.product).copied().unwrap_or(f64::NAN);
        abs += (e.elasticity - t).abs();
        if e.lower <= t && t <= e.upper {
            covered += 1;
        }
        if let (Some(own), Some(se)) = (e.own, e.own_se) {
            with_own += 1;
            abs_own_set += (e.elasticity - t).abs();
            abs_own += (own - t).abs();
            if (own - t).abs() <= z * se {
                own_covered += 1;
            }
        }
    }
    let n = report.estimates.len().max(1) as f64;
    let m = with_own.max(1) as f64;
    Ok(Recovery {
        products: report.estimates.len(),
        weeks,
        with_own,
        mae: abs / n,
        mae_with_own: abs_own_set / m,
        own_mae: abs_own / m,
        coverage: covered as f64 / n,
        own_coverage: own_covered as f64 / m,
        nominal: config.level,
    })
}
