//! Price elasticity of demand from sales history: one demand model per product, and each
//! product's estimate shrunk toward its category's (a three-level empirical-Bayes model:
//! product → category → all), with intervals.
//!
//! **Data.** One [`Observation`] per product and week: the price shoppers faced that week, the
//! units sold, and the share of stores that had the product on display or in the mailer. The
//! caller aggregates (the CLI sums The Complete Journey's transactions per product and week).
//!
//! **Own estimate.** For product *i* in week *t*,
//! `E[q_it] = exp(a_i + b_i·ln p_it + c_i·display_it + d_i·mailer_it)`: the log-log (constant
//! elasticity) model, `b_i` the elasticity. It is fitted by Poisson pseudo-maximum likelihood
//! (a quasi-Poisson GLM with log link, by iteratively reweighted least squares) rather than by
//! least squares on `ln q`: the two estimate the same curve, but the GLM keeps weeks with zero
//! sales (where `ln q` does not exist) and is not biased by the log of small counts. The standard
//! error is model-based, scaled by the Pearson dispersion `φ = max(1, χ²/(n − k))`, so
//! over-dispersed sales widen it. A promotion column without variation (or collinear with the
//! price) is left out. Products with fewer than [`Config::min_weeks`] weeks, no sales, or a
//! log-price standard deviation below [`Config::min_log_price_sd`] get no own estimate and take
//! their category's.
//!
//! **Shrinkage.** Within each category the own estimates `b_i` (variance `v_i`) are treated as
//! draws around a category mean with between-product variance `τ²`: `τ²` by the
//! DerSimonian–Laird method of moments, pooled with the within-category `τ²` of all categories
//! as if that were [`Config::tau_prior_weight`] more products (so a small category whose
//! estimate truncates at zero does not claim its products are all alike). The category means
//! are in turn shrunk toward the mean over categories with their own between-category variance
//! (DerSimonian–Laird again), so a thin category borrows from the rest. A product's posterior is
//! then `B·m + (1 − B)·b_i`, `B = v_i / (v_i + τ²)`, with variance `(1 − B)·v_i + B²·Var(m)`
//! (Morris), and a normal interval at [`Config::level`].

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Sales of one product in one period (a week).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The product.
    pub product: String,
    /// Its category (every observation of a product must name the same one).
    pub category: String,
    /// The price per unit shoppers faced (average over the units sold); finite, > 0.
    pub price: f64,
    /// Units sold; finite, ≥ 0 (zero-sales weeks are kept when their price is known).
    pub quantity: f64,
    /// Share of stores with the product on display (0–1; a yes/no flag is 0 or 1).
    pub display: f64,
    /// Share of stores with the product in the mailer (0–1; a yes/no flag is 0 or 1).
    pub mailer: f64,
}

/// Settings of the estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Coverage of the intervals, strictly between 0 and 1 (0.9 = 90 %).
    pub level: f64,
    /// Fewest weeks for an own estimate (at least 6).
    pub min_weeks: usize,
    /// Smallest standard deviation of ln(price) over a product's weeks for an own estimate.
    pub min_log_price_sd: f64,
    /// Weight, in products, of the pooled within-category τ² in each category's τ² (20: a
    /// category of 21 products weighs its own τ² and the pooled one equally; τ² from 20-odd noisy
    /// estimates is too unsteady alone, and intervals undercover when it truncates at zero).
    pub tau_prior_weight: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config { level: 0.9, min_weeks: 13, min_log_price_sd: 0.02, tau_prior_weight: 20.0 }
    }
}

/// Input the estimator refuses; the message names the row and the field.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ElasticityError {
    /// No observations at all.
    #[error("no observations to estimate from")]
    Empty,
    /// A numeric field out of its range or not a number.
    #[error("observation {row} (product {product:?}): {field} must be {expected}, got {value}")]
    Invalid {
        /// 0-based index of the observation.
        row: usize,
        /// Its product.
        product: String,
        /// The field at fault.
        field: &'static str,
        /// What the field accepts.
        expected: &'static str,
        /// The value given.
        value: f64,
    },
    /// An empty product or category name.
    #[error("observation {row}: {field} is empty")]
    EmptyName {
        /// 0-based index of the observation.
        row: usize,
        /// `product` or `category`.
        field: &'static str,
    },
    /// A product given under two categories.
    #[error("observation {row}: product {product:?} is in category {category:?} but earlier in {earlier:?}")]
    CategoryMismatch {
        /// 0-based index of the observation.
        row: usize,
        /// The product.
        product: String,
        /// The category of this row.
        category: String,
        /// The category of its first row.
        earlier: String,
    },
    /// A setting out of range.
    #[error("config: {field} must be {expected}, got {value}")]
    Config {
        /// The setting at fault.
        field: &'static str,
        /// What it accepts.
        expected: &'static str,
        /// The value given.
        value: f64,
    },
    /// Not one product could be estimated on its own, so there is nothing to shrink toward.
    #[error(
        "no product has {min_weeks}+ weeks with sales and price variation (ln-price sd ≥ {min_log_price_sd}); \
         {products} products given"
    )]
    NoEstimates {
        /// Products given.
        products: usize,
        /// The week threshold.
        min_weeks: usize,
        /// The price-variation threshold.
        min_log_price_sd: f64,
    },
}

/// Why a product has (or lacks) an own estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnStatus {
    /// Estimated from its own weeks.
    Estimated,
    /// Fewer weeks than [`Config::min_weeks`].
    TooFewWeeks,
    /// No units sold.
    NoSales,
    /// ln(price) varies less than [`Config::min_log_price_sd`].
    NoPriceVariation,
    /// The fit did not converge or gave a non-finite or absurd (|b| > 20) estimate.
    Unstable,
}

impl OwnStatus {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            OwnStatus::Estimated => "estimated",
            OwnStatus::TooFewWeeks => "too few weeks",
            OwnStatus::NoSales => "no sales",
            OwnStatus::NoPriceVariation => "no price variation",
            OwnStatus::Unstable => "unstable fit",
        }
    }
}

/// A product's own fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OwnFit {
    /// Estimated elasticity b̂.
    pub elasticity: f64,
    /// Its standard error.
    pub se: f64,
    /// Display effect (log scale), when the display column had variation.
    pub display: Option<f64>,
    /// Mailer effect (log scale), when the mailer column had variation.
    pub mailer: Option<f64>,
    /// Pearson dispersion φ (≥ 1 as used for the standard error).
    pub dispersion: f64,
}

/// The estimate for one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The product.
    pub product: String,
    /// Its category.
    pub category: String,
    /// Posterior mean elasticity (own estimate shrunk toward the category).
    pub elasticity: f64,
    /// Posterior standard deviation.
    pub sd: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
    /// The own estimate, if there is one.
    pub own: Option<f64>,
    /// Its standard error.
    pub own_se: Option<f64>,
    /// Why there is or is not an own estimate.
    pub status: OwnStatus,
    /// Weight of the category in the posterior mean (1 when there is no own estimate).
    pub shrinkage: f64,
    /// Weeks observed.
    pub weeks: usize,
    /// Units sold over all weeks.
    pub units: f64,
    /// Sales value over all weeks (Σ price × quantity).
    pub sales: f64,
}

/// What the model learned about one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategorySummary {
    /// The category.
    pub category: String,
    /// Products in it.
    pub products: usize,
    /// Products with an own estimate.
    pub with_own: usize,
    /// Random-effects mean of the own estimates alone, if any.
    pub raw_mean: Option<f64>,
    /// The prior mean its products are shrunk toward (`raw_mean` shrunk toward the mean over
    /// categories).
    pub mean: f64,
    /// Standard deviation of that prior mean.
    pub mean_sd: f64,
    /// Between-product standard deviation τ used in the category.
    pub tau: f64,
    /// The category's own DerSimonian–Laird τ, before pooling (needs 2+ own estimates).
    pub tau_dl: Option<f64>,
    /// Sales value of its products.
    pub sales: f64,
}

/// The top level of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalSummary {
    /// Mean elasticity over categories.
    pub mean: f64,
    /// Its standard deviation.
    pub mean_sd: f64,
    /// Between-category standard deviation of the category means.
    pub between_categories_sd: f64,
    /// Pooled within-category between-product standard deviation τ.
    pub within_category_tau: f64,
}

/// Everything [`estimate`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Interval coverage used.
    pub level: f64,
    /// One per product, in order of first appearance.
    pub estimates: Vec<Estimate>,
    /// One per category, by name.
    pub categories: Vec<CategorySummary>,
    /// The top level.
    pub global: GlobalSummary,
}

/// Quantiles of a set of elasticities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// How many values.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Share below −1 (elastic demand).
    pub share_elastic: f64,
}

/// Quantiles of `values` (non-finite values ignored); `None` when there are none.
pub fn distribution(values: &[f64]) -> Option<Distribution> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    Some(Distribution {
        count: v.len(),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        p10: q(0.10),
        p25: q(0.25),
        p50: q(0.50),
        p75: q(0.75),
        p90: q(0.90),
        share_elastic: v.iter().filter(|&&x| x < -1.0).count() as f64 / v.len() as f64,
    })
}

fn check_config(config: &Config) -> Result<(), ElasticityError> {
    let bad = |field, expected, value| Err(ElasticityError::Config { field, expected, value });
    if !(config.level > 0.0 && config.level < 1.0) {
        return bad("level", "strictly between 0 and 1", config.level);
    }
    if config.min_weeks < 6 {
        return bad("min_weeks", "at least 6", config.min_weeks as f64);
    }
    if !(config.min_log_price_sd.is_finite() && config.min_log_price_sd >= 0.0) {
        return bad("min_log_price_sd", "a finite number ≥ 0", config.min_log_price_sd);
    }
    if !(config.tau_prior_weight.is_finite() && config.tau_prior_weight >= 0.0) {
        return bad("tau_prior_weight", "a finite number ≥ 0", config.tau_prior_weight);
    }
    Ok(())
}

fn check_row(row: usize, o: &Observation) -> Result<(), ElasticityError> {
    if o.product.trim().is_empty() {
        return Err(ElasticityError::EmptyName { row, field: "product" });
    }
    if o.category.trim().is_empty() {
        return Err(ElasticityError::EmptyName { row, field: "category" });
    }
    let bad = |field, expected, value| {
        Err(ElasticityError::Invalid { row, product: o.product.clone(), field, expected, value })
    };
    if !(o.price.is_finite() && o.price > 0.0) {
        return bad("price", "a finite number > 0", o.price);
    }
    if !(o.quantity.is_finite() && o.quantity >= 0.0) {
        return bad("quantity", "a finite number ≥ 0", o.quantity);
    }
    if !(0.0..=1.0).contains(&o.display) {
        return bad("display", "a share between 0 and 1", o.display);
    }
    if !(0.0..=1.0).contains(&o.mailer) {
        return bad("mailer", "a share between 0 and 1", o.mailer);
    }
    Ok(())
}

/// Solves `a x = b` for a symmetric positive-definite `k × k` system (Cholesky); `None` when it
/// is not positive definite. Returns the solution and the inverse's diagonal.
#[allow(clippy::needless_range_loop)] // small dense matrix algebra reads best indexed
fn solve_spd(a: &[[f64; 4]; 4], b: &[f64; 4], k: usize) -> Option<([f64; 4], [f64; 4])> {
    let mut l = [[0.0; 4]; 4];
    for i in 0..k {
        for j in 0..=i {
            let mut s = a[i][j];
            for m in 0..j {
                s -= l[i][m] * l[j][m];
            }
            if i == j {
                if s.is_nan() || s <= 1e-12 * a[i][i].abs().max(1e-300) {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let solve = |rhs: &[f64; 4]| {
        let mut y = [0.0; 4];
        for i in 0..k {
            let mut s = rhs[i];
            for m in 0..i {
                s -= l[i][m] * y[m];
            }
            y[i] = s / l[i][i];
        }
        let mut x = [0.0; 4];
        for i in (0..k).rev() {
            let mut s = y[i];
            for m in i + 1..k {
                s -= l[m][i] * x[m];
            }
            x[i] = s / l[i][i];
        }
        x
    };
    let x = solve(b);
    let mut diag = [0.0; 4];
    for (i, d) in diag.iter_mut().enumerate().take(k) {
        let mut e = [0.0; 4];
        e[i] = 1.0;
        *d = solve(&e)[i];
    }
    Some((x, diag))
}

/// Fits one product's demand model to its weeks (see the module documentation); `Err` says why
/// there is no own estimate.
#[allow(clippy::needless_range_loop)] // small dense matrix algebra reads best indexed
pub fn fit_product(rows: &[&Observation], config: &Config) -> Result<OwnFit, OwnStatus> {
    let n = rows.len();
    if n < config.min_weeks.max(6) {
        return Err(OwnStatus::TooFewWeeks);
    }
    let total: f64 = rows.iter().map(|o| o.quantity).sum();
    if total <= 0.0 {
        return Err(OwnStatus::NoSales);
    }
    let nf = n as f64;
    let lnp: Vec<f64> = rows.iter().map(|o| o.price.ln()).collect();
    let mean_lnp = lnp.iter().sum::<f64>() / nf;
    let sd_lnp = (lnp.iter().map(|x| (x - mean_lnp).powi(2)).sum::<f64>() / nf).sqrt();
    if sd_lnp.is_nan() || sd_lnp < config.min_log_price_sd || sd_lnp < 1e-9 {
        return Err(OwnStatus::NoPriceVariation);
    }
    // Columns: intercept, centred ln(price), then display and mailer when they vary and are not
    // (nearly) collinear with what is already in (Gram–Schmidt on the centred columns).
    let mut kept: Vec<Vec<f64>> = vec![lnp.iter().map(|x| x - mean_lnp).collect()];
    let mut basis: Vec<Vec<f64>> = kept.clone();
    let mut promo_index = [None, None];
    for (slot, values) in [rows.iter().map(|o| o.display).collect::<Vec<_>>(), rows.iter().map(|o| o.mailer).collect()]
        .into_iter()
        .enumerate()
    {
        let mean = values.iter().sum::<f64>() / nf;
        let centred: Vec<f64> = values.iter().map(|x| x - mean).collect();
        let ss: f64 = centred.iter().map(|x| x * x).sum();
        if ss / nf < 1e-6 {
            continue;
        }
        let mut resid = centred.clone();
        for b in &basis {
            let bb: f64 = b.iter().map(|x| x * x).sum();
            let proj: f64 = resid.iter().zip(b).map(|(r, x)| r * x).sum::<f64>() / bb;
            for (r, x) in resid.iter_mut().zip(b) {
                *r -= proj * x;
            }
        }
        let rss: f64 = resid.iter().map(|x| x * x).sum();
        if rss < 1e-3 * ss {
            continue;
        }
        basis.push(resid);
        promo_index[slot] = Some(kept.len() + 1);
        kept.push(centred);
    }
    let k = kept.len() + 1;
    if n < k + 3 {
        return Err(OwnStatus::TooFewWeeks);
    }
    let x_row = |t: usize| {
        let mut x = [0.0; 4];
        x[0] = 1.0;
        for (j, col) in kept.iter().enumerate() {
            x[j + 1] = col[t];
        }
        x
    };
    let y: Vec<f64> = rows.iter().map(|o| o.quantity).collect();
    let ybar = total / nf;
    let deviance = |mu: &[f64]| -> f64 {
        2.0 * y.iter().zip(mu).map(|(&yi, &m)| if yi > 0.0 { yi * (yi / m).ln() } else { 0.0 } - (yi - m)).sum::<f64>()
    };
    let mut eta: Vec<f64> = y.iter().map(|&yi| ((yi + ybar) / 2.0).ln()).collect();
    let mut mu: Vec<f64> = eta.iter().map(|e| e.exp()).collect();
    let mut dev = deviance(&mu);
    let mut beta = [0.0; 4];
    let mut converged = false;
    for iter in 0..100 {
        let mut a = [[0.0; 4]; 4];
        let mut b = [0.0; 4];
        for t in 0..n {
            let x = x_row(t);
            let w = mu[t];
            let z = eta[t] + (y[t] - mu[t]) / mu[t];
            for i in 0..k {
                b[i] += w * x[i] * z;
                for j in 0..=i {
                    a[i][j] += w * x[i] * x[j];
                }
            }
        }
        for i in 0..k {
            for j in 0..i {
                a[j][i] = a[i][j];
            }
        }
        let Some((new_beta, _)) = solve_spd(&a, &b, k) else {
            return Err(OwnStatus::Unstable);
        };
        // Step-halving when the deviance goes up (or overflows), from the second step on.
        let mut step = new_beta;
        let mut accepted = false;
        for _ in 0..30 {
            let new_eta: Vec<f64> = (0..n)
                .map(|t| x_row(t).iter().zip(&step).map(|(x, c)| x * c).sum::<f64>().clamp(-700.0, 700.0))
                .collect();
            let new_mu: Vec<f64> = new_eta.iter().map(|e| e.exp().max(1e-300)).collect();
            let new_dev = deviance(&new_mu);
            if new_dev.is_finite() && (iter == 0 || new_dev <= dev * (1.0 + 1e-12) + 1e-12) {
                let change = (dev - new_dev).abs() / (new_dev.abs() + 0.1);
                eta = new_eta;
                mu = new_mu;
                dev = new_dev;
                beta = step;
                accepted = true;
                if iter > 0 && change < 1e-10 {
                    converged = true;
                }
                break;
            }
            for i in 0..k {
                step[i] = (step[i] + beta[i]) / 2.0;
            }
        }
        if !accepted {
            // No step lowers the deviance: at the optimum up to rounding.
            converged = iter > 0;
            break;
        }
        if converged {
            break;
        }
    }
    if !converged {
        return Err(OwnStatus::Unstable);
    }
    // Information at the optimum, and the Pearson dispersion.
    let mut a = [[0.0; 4]; 4];
    let mut pearson = 0.0;
    for t in 0..n {
        let x = x_row(t);
        for i in 0..k {
            for j in 0..k {
                a[i][j] += mu[t] * x[i] * x[j];
            }
        }
        pearson += (y[t] - mu[t]).powi(2) / mu[t];
    }
    let Some((_, inv_diag)) = solve_spd(&a, &[0.0; 4], k) else {
        return Err(OwnStatus::Unstable);
    };
    let dispersion = (pearson / (n - k) as f64).max(1.0);
    let se = (dispersion * inv_diag[1]).sqrt();
    let elasticity = beta[1];
    if !(elasticity.is_finite() && se.is_finite() && se > 0.0 && elasticity.abs() <= 20.0) {
        return Err(OwnStatus::Unstable);
    }
    Ok(OwnFit {
        elasticity,
        se,
        display: promo_index[0].map(|i| beta[i]),
        mailer: promo_index[1].map(|i| beta[i]),
        dispersion,
    })
}

/// A random-effects summary of estimates `b` with sampling variances `v`.
#[derive(Debug, Clone, Copy)]
struct Pooled {
    /// DerSimonian–Laird τ² (≥ 0).
    tau2: f64,
    /// Cochran's Q and its parts, for pooling over groups.
    q: f64,
    df: f64,
    c: f64,
}

/// DerSimonian–Laird moments for one group (needs 2+ estimates for a τ²).
fn dersimonian_laird(b: &[f64], v: &[f64]) -> Option<Pooled> {
    if b.len() < 2 {
        return None;
    }
    let w: Vec<f64> = v.iter().map(|v| 1.0 / v).collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|w| w * w).sum();
    let fixed = w.iter().zip(b).map(|(w, b)| w * b).sum::<f64>() / sw;
    let q: f64 = w.iter().zip(b).map(|(w, b)| w * (b - fixed).powi(2)).sum();
    let df = (b.len() - 1) as f64;
    let c = sw - sw2 / sw;
    let tau2 = if c > 0.0 { ((q - df) / c).max(0.0) } else { 0.0 };
    Some(Pooled { tau2, q, df, c })
}

/// The random-effects mean and its variance given τ².
fn re_mean(b: &[f64], v: &[f64], tau2: f64) -> (f64, f64) {
    let w: Vec<f64> = v.iter().map(|v| 1.0 / (v + tau2)).collect();
    let sw: f64 = w.iter().sum();
    (w.iter().zip(b).map(|(w, b)| w * b).sum::<f64>() / sw, 1.0 / sw)
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383577518672690e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Estimates every product's elasticity from `observations` (see the module documentation).
pub fn estimate(observations: &[Observation], config: &Config) -> Result<Report, ElasticityError> {
    check_config(config)?;
    if observations.is_empty() {
        return Err(ElasticityError::Empty);
    }
    // Group by product, in order of first appearance.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<&Observation>> = Vec::new();
    for (row, o) in observations.iter().enumerate() {
        check_row(row, o)?;
        match index.get(o.product.as_str()) {
            Some(&g) => {
                let earlier = &groups[g][0].category;
                if *earlier != o.category {
                    return Err(ElasticityError::CategoryMismatch {
                        row,
                        product: o.product.clone(),
                        category: o.category.clone(),
                        earlier: earlier.clone(),
                    });
                }
                groups[g].push(o);
            }
            None => {
                index.insert(&o.product, groups.len());
                groups.push(vec![o]);
            }
        }
    }
    let fits: Vec<Result<OwnFit, OwnStatus>> = groups.iter().map(|g| fit_product(g, config)).collect();
    if fits.iter().all(Result::is_err) {
        return Err(ElasticityError::NoEstimates {
            products: groups.len(),
            min_weeks: config.min_weeks,
            min_log_price_sd: config.min_log_price_sd,
        });
    }

    // Products per category (categories by name).
    let mut by_category: HashMap<&str, Vec<usize>> = HashMap::new();
    for (g, rows) in groups.iter().enumerate() {
        by_category.entry(rows[0].category.as_str()).or_default().push(g);
    }
    let mut names: Vec<&str> = by_category.keys().copied().collect();
    names.sort_unstable();
    let own_of = |members: &[usize]| -> (Vec<f64>, Vec<f64>) {
        members.iter().filter_map(|&g| fits[g].as_ref().ok()).map(|f| (f.elasticity, f.se * f.se)).unzip()
    };

    // Level 2: the pooled within-category τ² (DerSimonian–Laird with each category's own mean).
    let mut per_category_dl: HashMap<&str, Pooled> = HashMap::new();
    let (mut q, mut df, mut c) = (0.0, 0.0, 0.0);
    for &name in &names {
        let (b, v) = own_of(&by_category[name]);
        if let Some(p) = dersimonian_laird(&b, &v) {
            q += p.q;
            df += p.df;
            c += p.c;
            per_category_dl.insert(name, p);
        }
    }
    let pooled_tau2 = if c > 0.0 {
        ((q - df) / c).max(0.0)
    } else {
        // No category has two estimates: the spread over all products stands in.
        let (b, v): (Vec<f64>, Vec<f64>) =
            fits.iter().filter_map(|f| f.as_ref().ok()).map(|f| (f.elasticity, f.se * f.se)).unzip();
        dersimonian_laird(&b, &v).map_or(0.0, |p| p.tau2)
    };

    // Each category's τ² and raw mean.
    struct Cat {
        tau2: f64,
        raw: Option<(f64, f64)>,
    }
    let mut cats: HashMap<&str, Cat> = HashMap::new();
    for &name in &names {
        let (b, v) = own_of(&by_category[name]);
        let tau2 = match per_category_dl.get(name) {
            Some(p) => (p.df * p.tau2 + config.tau_prior_weight * pooled_tau2) / (p.df + config.tau_prior_weight),
            None => pooled_tau2,
        };
        let tau2 = if tau2.is_finite() { tau2 } else { pooled_tau2 };
        let raw = (!b.is_empty()).then(|| re_mean(&b, &v, tau2));
        cats.insert(name, Cat { tau2, raw });
    }

    // Level 3: category means toward the mean over categories.
    let (cb, cv): (Vec<f64>, Vec<f64>) = names.iter().filter_map(|n| cats[n].raw).unzip();
    let between_tau2 = dersimonian_laird(&cb, &cv).map_or(0.0, |p| p.tau2);
    let (global_mean, global_var) = re_mean(&cb, &cv, between_tau2);
    let z = normal_quantile(0.5 + config.level / 2.0);

    let mut estimates: Vec<Option<Estimate>> = vec![None; groups.len()];
    let mut categories = Vec::with_capacity(names.len());
    for &name in &names {
        let cat = &cats[name];
        let (prior_mean, prior_var) = match cat.raw {
            Some((m, v)) => {
                let denom = v + between_tau2;
                let shrink = if denom > 0.0 { v / denom } else { 0.0 };
                (shrink * global_mean + (1.0 - shrink) * m, (1.0 - shrink) * v + shrink * shrink * global_var)
            }
            None => (global_mean, between_tau2 + global_var),
        };
        let members = &by_category[name];
        let mut sales_total = 0.0;
        for &g in members {
            let rows = &groups[g];
            let units: f64 = rows.iter().map(|o| o.quantity).sum();
            let sales: f64 = rows.iter().map(|o| o.quantity * o.price).sum();
            sales_total += sales;
            let (mean, var, own, own_se, status, shrinkage) = match &fits[g] {
                Ok(f) => {
                    let v = f.se * f.se;
                    let denom = v + cat.tau2;
                    let b = if denom > 0.0 { v / denom } else { 1.0 };
                    (
                        b * prior_mean + (1.0 - b) * f.elasticity,
                        (1.0 - b) * v + b * b * prior_var,
                        Some(f.elasticity),
                        Some(f.se),
                        OwnStatus::Estimated,
                        b,
                    )
                }
                Err(status) => (prior_mean, cat.tau2 + prior_var, None, None, *status, 1.0),
            };
            let sd = var.max(0.0).sqrt();
            estimates[g] = Some(Estimate {
                product: rows[0].product.clone(),
                category: name.to_string(),
                elasticity: mean,
                sd,
                lower: mean - z * sd,
                upper: mean + z * sd,
                own,
                own_se,
                status,
                shrinkage,
                weeks: rows.len(),
                units,
                sales,
            });
        }
        categories.push(CategorySummary {
            category: name.to_string(),
            products: members.len(),
            with_own: members.iter().filter(|&&g| fits[g].is_ok()).count(),
            raw_mean: cat.raw.map(|r| r.0),
            mean: prior_mean,
            mean_sd: prior_var.max(0.0).sqrt(),
            tau: cat.tau2.sqrt(),
            tau_dl: per_category_dl.get(name).map(|p| p.tau2.sqrt()),
            sales: sales_total,
        });
    }
    Ok(Report {
        level: config.level,
        estimates: estimates.into_iter().flatten().collect(),
        categories,
        global: GlobalSummary {
            mean: global_mean,
            mean_sd: global_var.sqrt(),
            between_categories_sd: between_tau2.sqrt(),
            within_category_tau: pooled_tau2.sqrt(),
        },
    })
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A Poisson draw (Knuth's method on pieces of mean ≤ 20, exact for any mean).
fn poisson(rng: &mut StdRng, mean: f64) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(product: &str, category: &str, price: f64, quantity: f64) -> Observation {
        Observation { product: product.into(), category: category.into(), price, quantity, display: 0.0, mailer: 0.0 }
    }

    #[test]
    fn recovers_known_elasticities_with_calibrated_intervals() {
        let mut coverages = Vec::new();
        for seed in 1..=5 {
            let r = recovery_check(seed, 200).expect("simulation estimates");
            eprintln!(
                "seed {seed}: MAE shrunk {:.3} (own-estimated products {:.3}) vs own {:.3}; \
                 coverage {:.3} (own {:.3}) nominal {}; {} of {} with own",
                r.mae, r.mae_with_own, r.own_mae, r.coverage, r.own_coverage, r.nominal, r.with_own, r.products
            );
            assert_eq!(r.products, 200);
            assert!(r.with_own >= 180, "{r:?}");
            assert!(r.mae < 0.25, "shrunk MAE too large: {r:?}");
            assert!(r.mae_with_own <= r.own_mae, "shrinkage made it worse: {r:?}");
            assert!((0.80..=0.97).contains(&r.coverage), "coverage off: {r:?}");
            coverages.push(r.coverage);
        }
        let mean = coverages.iter().sum::<f64>() / coverages.len() as f64;
        assert!((0.84..=0.95).contains(&mean), "mean coverage {mean}");
    }

    #[test]
    fn exact_demand_gives_the_elasticity() {
        let rows: Vec<Observation> = (0..30)
            .map(|t| {
                let price = 2.0 + 0.1 * (t % 7) as f64;
                obs("a", "c", price, 500.0 * price.powf(-1.7))
            })
            .collect();
        let refs: Vec<&Observation> = rows.iter().collect();
        let fit = fit_product(&refs, &Config::default()).expect("fits");
        assert!((fit.elasticity + 1.7).abs() < 1e-6, "{fit:?}");
        assert!(fit.display.is_none() && fit.mailer.is_none());
    }

    #[test]
    fn zero_sales_weeks_are_kept() {
        let mut rng = StdRng::seed_from_u64(9);
        let rows: Vec<Observation> = (0..104)
            .map(|t| {
                let price = if t % 3 == 0 { 1.5 } else { 2.0 };
                obs("a", "c", price, poisson(&mut rng, 1.0 * (price / 2.0).powf(-2.0)))
            })
            .collect();
        assert!(rows.iter().any(|o| o.quantity == 0.0));
        let refs: Vec<&Observation> = rows.iter().collect();
        let fit = fit_product(&refs, &Config::default()).expect("fits");
        assert!((fit.elasticity + 2.0).abs() < 3.0 * fit.se, "{fit:?}");
    }

    #[test]
    fn fixed_price_products_take_the_category_and_noisy_ones_are_pulled_toward_it() {
        let sim = simulate(4, 40, 52);
        let mut rows = sim.observations.clone();
        rows.extend((0..52).map(|_| obs("fixed", "c00", 3.0, 10.0)));
        let report = estimate(&rows, &Config::default()).expect("estimates");
        let fixed = report.estimates.iter().find(|e| e.product == "fixed").expect("fixed product");
        let cat = report.categories.iter().find(|c| c.category == "c00").expect("category");
        assert_eq!(fixed.status, OwnStatus::NoPriceVariation);
        assert_eq!(fixed.own, None);
        assert!((fixed.elasticity - cat.mean).abs() < 1e-12);
        for e in report.estimates.iter().filter(|e| e.category == "c00") {
            if let Some(own) = e.own {
                let (lo, hi) = if own < cat.mean { (own, cat.mean) } else { (cat.mean, own) };
                assert!(e.elasticity >= lo - 1e-9 && e.elasticity <= hi + 1e-9, "{e:?}");
                assert!(e.sd <= e.own_se.expect("se") + 1e-12);
                assert!(e.sd < fixed.sd);
            }
            assert!(e.lower < e.elasticity && e.elasticity < e.upper);
        }
        let d = distribution(&report.estimates.iter().map(|e| e.elasticity).collect::<Vec<_>>()).expect("values");
        assert!(d.p10 <= d.p25 && d.p25 <= d.p50 && d.p50 <= d.p75 && d.p75 <= d.p90);
    }

    #[test]
    fn bad_input_is_refused_with_the_field() {
        let good = || obs("a", "c", 2.0, 3.0);
        let cfg = Config::default();
        assert_eq!(estimate(&[], &cfg), Err(ElasticityError::Empty));
        let cases: Vec<(Observation, &str)> = vec![
            (Observation { price: f64::NAN, ..good() }, "price"),
            (Observation { price: -1.0, ..good() }, "price"),
            (Observation { price: 0.0, ..good() }, "price"),
            (Observation { quantity: -2.0, ..good() }, "quantity"),
            (Observation { quantity: f64::INFINITY, ..good() }, "quantity"),
            (Observation { display: 1.5, ..good() }, "display"),
            (Observation { mailer: f64::NAN, ..good() }, "mailer"),
        ];
        for (bad, field) in cases {
            let err = estimate(&[good(), bad], &cfg).expect_err("refused");
            match &err {
                ElasticityError::Invalid { row, field: f, .. } => {
                    assert_eq!((*row, *f), (1, field));
                    assert!(err.to_string().contains(field), "{err}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let err = estimate(&[Observation { product: " ".into(), ..good() }], &cfg).expect_err("refused");
        assert_eq!(err, ElasticityError::EmptyName { row: 0, field: "product" });
        let err = estimate(&[good(), Observation { category: "d".into(), ..good() }], &cfg).expect_err("refused");
        assert!(matches!(err, ElasticityError::CategoryMismatch { row: 1, .. }), "{err:?}");
        let err = estimate(&[good()], &Config { level: 1.0, ..cfg.clone() }).expect_err("refused");
        assert!(matches!(err, ElasticityError::Config { field: "level", .. }), "{err:?}");
        let err = estimate(&[good()], &Config { min_log_price_sd: f64::NAN, ..cfg.clone() }).expect_err("refused");
        assert!(matches!(err, ElasticityError::Config { field: "min_log_price_sd", .. }), "{err:?}");
        // Nothing with price variation: nothing to shrink toward.
        let flat: Vec<Observation> = (0..52).map(|_| good()).collect();
        let err = estimate(&flat, &cfg).expect_err("refused");
        assert!(matches!(err, ElasticityError::NoEstimates { products: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("price variation"));
    }

    #[test]
    fn degenerate_products_do_not_panic() {
        let cfg = Config::default();
        // All sales at one price, none at the other: separation; and all-zero sales.
        let mut rows: Vec<Observation> = (0..40)
            .map(|t| obs("sep", "c", if t % 2 == 0 { 1.0 } else { 2.0 }, if t % 2 == 0 { 5.0 } else { 0.0 }))
            .collect();
        rows.extend((0..40).map(|t| obs("zero", "c", 1.0 + (t % 3) as f64, 0.0)));
        rows.extend((0..40).map(|t| obs("ok", "c", 1.0 + 0.1 * (t % 4) as f64, 10.0 - (t % 4) as f64)));
        rows.extend((0..40).map(|t| Observation { display: 1.0, ..obs("disp", "c", 2.0, 4.0 + (t % 2) as f64) }));
        let report = estimate(&rows, &cfg).expect("estimates");
        let status = |p: &str| report.estimates.iter().find(|e| e.product == p).map(|e| e.status);
        assert_eq!(status("zero"), Some(OwnStatus::NoSales));
        assert_eq!(status("ok"), Some(OwnStatus::Estimated));
        assert_eq!(status("disp"), Some(OwnStatus::NoPriceVariation));
        assert!(report.estimates.iter().all(|e| e.elasticity.is_finite() && e.sd.is_finite()));
    }

    #[test]
    fn normal_quantile_is_accurate() {
        assert!((normal_quantile(0.95) - 1.6448536).abs() < 1e-6);
        assert!((normal_quantile(0.975) - 1.9599640).abs() < 1e-6);
        assert!((normal_quantile(0.01) + 2.3263479).abs() < 1e-6);
        assert!(normal_quantile(1.0).is_nan());
    }
}
