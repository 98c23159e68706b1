//! Demand curves with known parameters, for the simulator and for tests: constant elasticity
//! and logit (share of a market), with Poisson sales around the expected demand.

use serde::{Deserialize, Serialize};

/// Expected units sold per period at a price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum Demand {
    /// λ(p) = base · (p / reference)^elasticity.
    ConstantElasticity {
        /// Units per period at the reference price.
        #[serde(rename = "baseDemand")]
        base_demand: f64,
        /// Elasticity (negative).
        elasticity: f64,
    },
    /// λ(p) = market · s(p), s(p) = 1 / (1 + exp(−(α − β p))), with α and β set so the share at
    /// the reference price is `share` and the elasticity there is `elasticity`.
    Logit {
        /// Units per period at the reference price.
        #[serde(rename = "baseDemand")]
        base_demand: f64,
        /// Elasticity at the reference price (negative).
        elasticity: f64,
        /// The product's share of its market at the reference price (0–1).
        share: f64,
    },
    /// Constant elasticity with a kink at `kink` × the reference price (a competitor's price,
    /// a price threshold): `below` is the elasticity under it, `above` over it; continuous.
    Kinked {
        /// Units per period at the reference price.
        #[serde(rename = "baseDemand")]
        base_demand: f64,
        /// Elasticity below the kink (negative).
        below: f64,
        /// Elasticity above the kink (negative).
        above: f64,
        /// Where the kink is, as a multiple of the reference price.
        kink: f64,
    },
}

impl Demand {
    /// Expected units at `price` for a product whose reference price is `reference`.
    pub fn expected(&self, price: f64, reference: f64) -> f64 {
        match *self {
            Demand::ConstantElasticity { base_demand, elasticity } => {
                base_demand * (price / reference).powf(elasticity)
            }
            Demand::Logit { base_demand, elasticity, share } => {
                // ε = −β p (1 − s) at the reference price.
                let beta = -elasticity / (reference * (1.0 - share));
                let alpha = (share / (1.0 - share)).ln() + beta * reference;
                let market = base_demand / share;
                market / (1.0 + (-(alpha - beta * price)).exp())
            }
            Demand::Kinked { base_demand, below, above, kink } => {
                let r = price / reference;
                // Continuous at the kink: the curve above starts where the one below ends.
                if r <= kink || kink <= 0.0 {
                    base_demand * r.powf(below)
                } else {
                    base_demand * kink.powf(below) * (r / kink).powf(above)
                }
            }
        }
    }

    /// The elasticity at the reference price.
    pub fn elasticity(&self) -> f64 {
        match *self {
            Demand::ConstantElasticity { elasticity, .. } | Demand::Logit { elasticity, .. } => elasticity,
            Demand::Kinked { below, above, kink, .. } => {
                if kink >= 1.0 {
                    below
                } else {
                    above
                }
            }
        }
    }

    /// Checks the parameters; the error names the field.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let (base, elasticity) = match *self {
            Demand::ConstantElasticity { base_demand, elasticity } => (base_demand, elasticity),
            Demand::Logit { base_demand, elasticity, share } => {
                if !(share > 0.0 && share < 1.0) {
                    return Err(("share", "a share of the market strictly between 0 and 1"));
                }
                (base_demand, elasticity)
            }
            Demand::Kinked { base_demand, below, above, kink } => {
                if !(kink.is_finite() && kink > 0.0 && kink < 100.0) {
                    return Err(("kink", "a positive multiple of the reference price, e.g. 1.05"));
                }
                if !(below.is_finite() && below < 0.0 && below > -20.0) {
                    return Err(("below", "a negative number above −20, e.g. −0.5"));
                }
                (base_demand, above)
            }
        };
        if !(base.is_finite() && base > 0.0) {
            return Err(("baseDemand", "units per period at the reference price, above 0"));
        }
        if !(elasticity.is_finite() && elasticity < 0.0 && elasticity > -20.0) {
            let field = if matches!(self, Demand::Kinked { .. }) { "above" } else { "elasticity" };
            return Err((field, "a negative number above −20, e.g. −1.5"));
        }
        Ok(())
    }
}

/// Units sold when `u` (uniform in [0, 1)) is drawn against a Poisson with mean `lambda`:
/// inverting the distribution with one shared `u` lets every policy face the same luck.
pub fn poisson_quantile(lambda: f64, u: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 500.0 {
        // Normal approximation far out where the sum would underflow.
        let z = normal_quantile(u);
        return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
    }
    let mut k = 0u64;
    let mut p = (-lambda).exp();
    let mut cdf = p;
    while cdf < u && k < 10_000 {
        k += 1;
        p *= lambda / k as f64;
        cdf += p;
    }
    k
}

/// The standard normal distribution function (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(u: f64) -> f64 {
    let u = u.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if u < 0.02425 {
        tail((-2.0 * u.ln()).sqrt())
    } else if u > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - u).ln()).sqrt())
    } else {
        let q = u - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_matches_its_share_and_elasticity_at_the_reference_price() {
        let d = Demand::Logit { base_demand: 30.0, elasticity: -2.0, share: 0.2 };
        assert!((d.expected(4.0, 4.0) - 30.0).abs() < 1e-9);
        let h = 1e-4;
        let slope =
            (d.expected(4.0 + h, 4.0).ln() - d.expected(4.0 - h, 4.0).ln()) / ((4.0f64 + h).ln() - (4.0f64 - h).ln());
        assert!((slope + 2.0).abs() < 1e-3, "elasticity at the reference price: {slope}");
    }

    #[test]
    fn poisson_quantiles_have_the_right_mean() {
        let n = 20_000;
        let mean = (0..n).map(|i| poisson_quantile(7.5, (i as f64 + 0.5) / n as f64) as f64).sum::<f64>() / n as f64;
        assert!((mean - 7.5).abs() < 0.05, "{mean}");
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
    }
}
