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

mod fit;
mod pool;
mod recovery;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use fit::fit_product;
pub use pool::estimate;
pub use recovery::{recovery_check, simulate, Recovery, Simulation};

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

pub(crate) fn check_config(config: &Config) -> Result<(), ElasticityError> {
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

pub(crate) fn check_row(row: usize, o: &Observation) -> Result<(), ElasticityError> {
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

/// The standard normal quantile at `p` (Acklam's rational approximation, relative error
/// < 1.2e-9); NaN outside (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    crate::demand::normal_quantile(p)
}
