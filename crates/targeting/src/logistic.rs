//! L2-regularized logistic regression fitted by Newton's method: small dense problems (tens of
//! features, tens of thousands of rows) converge in a handful of steps, deterministically.

/// A fitted logistic model: `P(y = 1 | x) = σ(bias + weights · x)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Logistic {
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// The intercept (not penalized).
    pub bias: f64,
}

impl Logistic {
    /// Fits on rows `x` (all of one length) with 0/1 labels `y`, penalizing the squared weights by
    /// `l2 / 2` (the intercept is free). Rows with non-finite values must be rejected before.
    pub fn fit(x: &[Vec<f64>], y: &[bool], l2: f64) -> Logistic {
        let d = x.first().map_or(0, Vec::len);
        let n = x.len();
        let positives = y.iter().filter(|&&v| v).count() as f64;
        // Start at the base rate so a constant outcome converges at once.
        let rate = ((positives + 0.5) / (n as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        let mut model = Logistic { weights: vec![0.0; d], bias: (rate / (1.0 - rate)).ln() };
        let dim = d + 1;
        for _ in 0..50 {
            let mut grad = vec![0.0; dim];
            let mut hess = vec![0.0; dim * dim];
            for (row, &label) in x.iter().zip(y) {
                let p = model.probability(row);
                let r = p - f64::from(u8::from(label));
                let w = (p * (1.0 - p)).max(1e-9);
                for i in 0..dim {
                    let xi = if i == d { 1.0 } else { row[i] };
                    grad[i] += r * xi;
                    let wi = w * xi;
                    if wi == 0.0 {
                        continue;
                    }
                    for j in 0..=i {
                        let xj = if j == d { 1.0 } else { row[j] };
                        hess[i * dim + j] += wi * xj;
                    }
                }
            }
            for i in 0..d {
                grad[i] += l2 * model.weights[i];
                hess[i * dim + i] += l2;
            }
            hess[d * dim + d] += 1e-9;
            for i in 0..dim {
                for j in 0..i {
                    hess[j * dim + i] = hess[i * dim + j];
                }
            }
            let Some(step) = solve_spd(&hess, &grad, dim) else { break };
            let mut largest = 0.0_f64;
            for (w, s) in model.weights.iter_mut().zip(&step) {
                *w -= s;
                largest = largest.max(s.abs());
            }
            model.bias -= step[d];
            if largest.max(step[d].abs()) < 1e-8 {
                break;
            }
        }
        model
    }

    /// `P(y = 1 | row)`.
    pub fn probability(&self, row: &[f64]) -> f64 {
        let z = self.bias + self.weights.iter().zip(row).map(|(w, v)| w * v).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Solves `a · x = b` for a symmetric positive definite `a` (row-major, `n × n`) by Cholesky;
/// `None` when `a` is not positive definite.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut z = vec![0.0; n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * z[k];
        }
        z[i] = sum / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut sum = z[i];
        for k in i + 1..n {
            sum -= l[k * n + i] * x[k];
        }
        x[i] = sum / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_slope() {
        // y = 1 exactly when x > 0.5 with label noise: the weight is positive and the
        // probabilities order the rows.
        let x: Vec<Vec<f64>> = (0..200).map(|i| vec![f64::from(i) / 200.0]).collect();
        let y: Vec<bool> = (0..200).map(|i| (i > 100) ^ (i % 17 == 0)).collect();
        let m = Logistic::fit(&x, &y, 0.01);
        assert!(m.weights[0] > 1.0, "{m:?}");
        assert!(m.probability(&[0.9]) > 0.8 && m.probability(&[0.1]) < 0.2);
    }

    #[test]
    fn a_constant_outcome_and_no_rows_do_not_blow_up() {
        let x = vec![vec![1.0, 2.0]; 10];
        let m = Logistic::fit(&x, &[false; 10], 1.0);
        assert!(m.probability(&[1.0, 2.0]) < 0.1);
        let empty = Logistic::fit(&[], &[], 1.0);
        assert!(empty.probability(&[]).is_finite());
    }
}
