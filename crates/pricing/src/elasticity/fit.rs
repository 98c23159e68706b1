//! One product's own estimate: the log-log demand model fitted by Poisson pseudo-maximum
//! likelihood (iteratively reweighted least squares with step-halving), its standard error
//! model-based and scaled by the Pearson dispersion (see the [module documentation](super)).

use super::{Config, Observation, OwnFit, OwnStatus};

/// The model's columns for one product: the intercept (implicit), centred ln(price), then the
/// promotion columns kept. At most four coefficients.
struct Design {
    /// Centred ln(price), then the kept promotion columns.
    kept: Vec<Vec<f64>>,
    /// Where display and mailer sit among the coefficients, when kept.
    promo_index: [Option<usize>; 2],
}

impl Design {
    /// The number of coefficients.
    fn k(&self) -> usize {
        self.kept.len() + 1
    }

    /// Week `t`'s row of the design matrix (zeros past `k`).
    fn x_row(&self, t: usize) -> [f64; 4] {
        let mut x = [0.0; 4];
        x[0] = 1.0;
        for (j, col) in self.kept.iter().enumerate() {
            x[j + 1] = col[t];
        }
        x
    }

    /// The linear predictor of each of `n` weeks under `beta`, kept where `exp` is finite.
    fn eta(&self, beta: &[f64; 4], n: usize) -> Vec<f64> {
        (0..n).map(|t| self.x_row(t).iter().zip(beta).map(|(x, c)| x * c).sum::<f64>().clamp(-700.0, 700.0)).collect()
    }
}

/// Fits one product's demand model to its weeks (see the module documentation); `Err` says why
/// there is no own estimate.
pub fn fit_product(rows: &[&Observation], config: &Config) -> Result<OwnFit, OwnStatus> {
    let design = design(rows, config)?;
    let y: Vec<f64> = rows.iter().map(|o| o.quantity).collect();
    let (beta, mu) = irls(&design, &y)?;
    let (se, dispersion) = standard_error(&design, &y, &mu)?;
    let elasticity = beta[1];
    if !(elasticity.is_finite() && se.is_finite() && se > 0.0 && elasticity.abs() <= 20.0) {
        return Err(OwnStatus::Unstable);
    }
    Ok(OwnFit {
        elasticity,
        se,
        display: design.promo_index[0].map(|i| beta[i]),
        mailer: design.promo_index[1].map(|i| beta[i]),
        dispersion,
    })
}

/// The columns for `rows`, or why they cannot carry an own estimate: too few weeks (for the
/// columns kept), no sales, or too little price variation.
fn design(rows: &[&Observation], config: &Config) -> Result<Design, OwnStatus> {
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
    let design = with_promotions(rows, lnp.iter().map(|x| x - mean_lnp).collect());
    if n < design.k() + 3 {
        return Err(OwnStatus::TooFewWeeks);
    }
    Ok(design)
}

/// Centred ln(price), then display and mailer when they vary and are not (nearly) collinear
/// with what is already in (Gram–Schmidt on the centred columns).
fn with_promotions(rows: &[&Observation], centred_lnp: Vec<f64>) -> Design {
    let nf = rows.len() as f64;
    let mut kept: Vec<Vec<f64>> = vec![centred_lnp];
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
    Design { kept, promo_index }
}

/// The Poisson deviance of fitted means `mu` for counts `y`.
fn deviance(y: &[f64], mu: &[f64]) -> f64 {
    2.0 * y.iter().zip(mu).map(|(&yi, &m)| if yi > 0.0 { yi * (yi / m).ln() } else { 0.0 } - (yi - m)).sum::<f64>()
}

/// One accepted IRLS step: coefficients, linear predictor, means and deviance.
struct Step {
    beta: [f64; 4],
    eta: Vec<f64>,
    mu: Vec<f64>,
    dev: f64,
}

/// Fits the coefficients by IRLS from a start at the counts, halving steps that raise the
/// deviance; returns the coefficients and the fitted means, or `Unstable` when it does not
/// converge in 100 iterations or a system is singular.
fn irls(d: &Design, y: &[f64]) -> Result<([f64; 4], Vec<f64>), OwnStatus> {
    let ybar = y.iter().sum::<f64>() / y.len() as f64;
    let eta: Vec<f64> = y.iter().map(|&yi| ((yi + ybar) / 2.0).ln()).collect();
    let mu: Vec<f64> = eta.iter().map(|e| e.exp()).collect();
    let mut at = Step { beta: [0.0; 4], dev: deviance(y, &mu), eta, mu };
    for iter in 0..100 {
        let (a, b) = weighted_normal_equations(d, y, &at.eta, &at.mu);
        let Some((proposal, _)) = solve_spd(&a, &b, d.k()) else {
            return Err(OwnStatus::Unstable);
        };
        let Some(next) = step_halving(d, y, proposal, &at, iter == 0) else {
            // No step lowers the deviance: at the optimum up to rounding.
            return if iter > 0 { Ok((at.beta, at.mu)) } else { Err(OwnStatus::Unstable) };
        };
        let change = (at.dev - next.dev).abs() / (next.dev.abs() + 0.1);
        at = next;
        if iter > 0 && change < 1e-10 {
            return Ok((at.beta, at.mu));
        }
    }
    Err(OwnStatus::Unstable)
}

/// The weighted least-squares system `(Xᵀ W X, Xᵀ W z)` of one IRLS iteration.
#[allow(clippy::needless_range_loop)] // small dense matrix algebra reads best indexed
fn weighted_normal_equations(d: &Design, y: &[f64], eta: &[f64], mu: &[f64]) -> ([[f64; 4]; 4], [f64; 4]) {
    let k = d.k();
    let mut a = [[0.0; 4]; 4];
    let mut b = [0.0; 4];
    for t in 0..y.len() {
        let x = d.x_row(t);
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
    (a, b)
}

/// Moves from `from` toward `proposal`, halving the step while the deviance goes up (or
/// overflows); on the first iteration any finite step is taken. `None` after 30 halvings.
fn step_halving(d: &Design, y: &[f64], proposal: [f64; 4], from: &Step, first: bool) -> Option<Step> {
    let mut step = proposal;
    for _ in 0..30 {
        let eta = d.eta(&step, y.len());
        let mu: Vec<f64> = eta.iter().map(|e| e.exp().max(1e-300)).collect();
        let dev = deviance(y, &mu);
        if dev.is_finite() && (first || dev <= from.dev * (1.0 + 1e-12) + 1e-12) {
            return Some(Step { beta: step, eta, mu, dev });
        }
        for (s, b) in step.iter_mut().zip(&from.beta).take(d.k()) {
            *s = (*s + b) / 2.0;
        }
    }
    None
}

/// The elasticity's standard error from the information at the optimum, scaled by the Pearson
/// dispersion `max(1, χ²/(n − k))`; returns (se, dispersion).
#[allow(clippy::needless_range_loop)] // small dense matrix algebra reads best indexed
fn standard_error(d: &Design, y: &[f64], mu: &[f64]) -> Result<(f64, f64), OwnStatus> {
    let k = d.k();
    let mut a = [[0.0; 4]; 4];
    let mut pearson = 0.0;
    for t in 0..y.len() {
        let x = d.x_row(t);
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
    let dispersion = (pearson / (y.len() - k) as f64).max(1.0);
    Ok(((dispersion * inv_diag[1]).sqrt(), dispersion))
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
