//! Multinomial logistic regression over a sparse part (n-grams) and a dense part (sentence
//! embeddings), fitted exactly: full-batch L-BFGS on the L2-penalised mean cross-entropy (the
//! objective scikit-learn's `LogisticRegression(solver="lbfgs")` minimises, with `l2 = 1/(C·n)`).
//! A stochastic optimiser stops short of that optimum and loses about a point of accuracy on
//! BANKING77; the exact one does not depend on a step-size schedule.

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ngrams::Sparse;

/// One training or query input: sparse n-gram weights and a dense vector (possibly empty).
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// (index, value) pairs below the model's sparse width.
    pub sparse: Sparse,
    /// Exactly the model's dense width (or empty when it has none).
    pub dense: Vec<f32>,
}

/// How a [`Softmax`] is trained.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TrainParams {
    /// Most L-BFGS iterations (each one pass over the data, more during a line search).
    pub max_iter: usize,
    /// Stop when the largest gradient component falls under this.
    pub tolerance: f32,
    /// L2 penalty on the weights (not the biases), against the mean loss.
    pub l2: f32,
    /// Target mass spread over the other classes (0 = plain cross-entropy).
    pub label_smoothing: f32,
    /// Seed of the held-out split that calibrates the out-of-scope threshold.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        // l2 = 1e-5 is C = 10 on BANKING77's 10,003 messages (the peers' setting).
        Self { max_iter: 300, tolerance: 1e-5, l2: 1e-5, label_smoothing: 0.0, seed: 7 }
    }
}

/// The fitted weights: `(sparse + dense) × classes`, feature-major, plus a bias per class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Softmax {
    n_sparse: usize,
    n_dense: usize,
    classes: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// L-BFGS history length: 7 pairs of weight-sized vectors (f32) keep memory near 16× the model.
const MEMORY: usize = 7;

/// The training problem: data laid out for fast passes.
struct Problem<'a> {
    xs: &'a [Features],
    ys: &'a [usize],
    n_sparse: usize,
    n_dense: usize,
    classes: usize,
    l2: f64,
    on: f32,
    off: f32,
    /// Dense features, n × n_dense, and their transpose (for one matrix product per pass).
    dense: Option<(Tensor, Tensor)>,
}

impl<'a> Problem<'a> {
    fn new(
        xs: &'a [Features],
        ys: &'a [usize],
        n_sparse: usize,
        n_dense: usize,
        classes: usize,
        p: &TrainParams,
    ) -> candle_core::Result<Self> {
        let n = xs.len().min(ys.len());
        let dense = if n_dense > 0 && n > 0 {
            let mut flat = vec![0f32; n * n_dense];
            for (row, x) in flat.chunks_mut(n_dense).zip(xs) {
                let k = x.dense.len().min(n_dense);
                row[..k].copy_from_slice(&x.dense[..k]);
            }
            let t = Tensor::from_vec(flat, (n, n_dense), &Device::Cpu)?;
            let tt = t.t()?.contiguous()?;
            Some((t, tt))
        } else {
            None
        };
        let c = classes.max(1);
        let off = if c > 1 { p.label_smoothing / (c - 1) as f32 } else { 0.0 };
        Ok(Self {
            xs: &xs[..n],
            ys: &ys[..n],
            n_sparse,
            n_dense,
            classes: c,
            l2: f64::from(p.l2.max(0.0)),
            on: 1.0 - p.label_smoothing,
            off,
            dense,
        })
    }

    fn rows(&self) -> usize {
        self.n_sparse + self.n_dense
    }

    /// Length of the parameter vector: the weights, then the biases.
    fn dim(&self) -> usize {
        (self.rows() + 1) * self.classes
    }

    /// The objective and its gradient at `theta`.
    fn eval(&self, theta: &[f32], grad: &mut [f32]) -> candle_core::Result<f64> {
        let c = self.classes;
        let n = self.xs.len();
        let rows = self.rows();
        let (w, b) = theta.split_at(rows * c);
        // dense logits for every message in one product
        let dense_logits = match &self.dense {
            Some((x, _)) => {
                let wd = Tensor::from_slice(&w[self.n_sparse * c..], (self.n_dense, c), &Device::Cpu)?;
                x.matmul(&wd)?.flatten_all()?.to_vec1::<f32>()?
            }
            None => Vec::new(),
        };
        let scale = 1.0 / n.max(1) as f32;
        let threads = rayon::current_num_threads().max(1);
        let chunk = n.div_ceil(threads).max(1);
        // per chunk: loss, sparse gradient and the output deltas (for the dense product)
        let parts: Vec<(f64, Vec<f32>, Vec<f32>)> = (0..n)
            .step_by(chunk)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let end = (start + chunk).min(n);
                let mut g = vec![0f32; self.n_sparse * c + c];
                let mut deltas = vec![0f32; (end - start) * c];
                let mut loss = 0f64;
                let mut z = vec![0f32; c];
                for e in start..end {
                    let x = &self.xs[e];
                    z.copy_from_slice(b);
                    if !dense_logits.is_empty() {
                        z.iter_mut().zip(&dense_logits[e * c..(e + 1) * c]).for_each(|(o, d)| *o += d);
                    }
                    for &(i, v) in &x.sparse {
                        let i = i as usize;
                        if i < self.n_sparse {
                            z.iter_mut().zip(&w[i * c..(i + 1) * c]).for_each(|(o, w)| *o += v * w);
                        }
                    }
                    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = z.iter().map(|l| (l - max).exp()).sum();
                    let logz = max + sum.ln();
                    let d = &mut deltas[(e - start) * c..(e - start + 1) * c];
                    for k in 0..c {
                        let target = if k == self.ys[e] { self.on } else { self.off };
                        let logp = z[k] - logz;
                        if target > 0.0 {
                            loss -= f64::from(target * logp);
                        }
                        d[k] = (logp.exp() - target) * scale;
                    }
                    for &(i, v) in &x.sparse {
                        let i = i as usize;
                        if i < self.n_sparse {
                            g[i * c..(i + 1) * c].iter_mut().zip(d.iter()).for_each(|(g, d)| *g += v * d);
                        }
                    }
                    let gb = &mut g[self.n_sparse * c..];
                    gb.iter_mut().zip(d.iter()).for_each(|(g, d)| *g += d);
                }
                (loss, g, deltas)
            })
            .collect();
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0f64;
        let mut deltas = Vec::with_capacity(n * c);
        for (l, g, d) in parts {
            loss += l;
            grad[..self.n_sparse * c].iter_mut().zip(&g[..self.n_sparse * c]).for_each(|(a, b)| *a += b);
            grad[rows * c..].iter_mut().zip(&g[self.n_sparse * c..]).for_each(|(a, b)| *a += b);
            deltas.extend(d);
        }
        loss *= f64::from(scale);
        if let Some((_, xt)) = &self.dense {
            let d = Tensor::from_vec(deltas, (n, c), &Device::Cpu)?;
            let gd = xt.matmul(&d)?.flatten_all()?.to_vec1::<f32>()?;
            grad[self.n_sparse * c..rows * c].copy_from_slice(&gd);
        }
        // the penalty on the weights
        let mut sq = 0f64;
        for (g, &t) in grad[..rows * c].iter_mut().zip(w) {
            *g += (self.l2 as f32) * t;
            sq += f64::from(t) * f64::from(t);
        }
        Ok(loss + 0.5 * self.l2 * sq)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.par_chunks(1 << 16)
        .zip(b.par_chunks(1 << 16))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>())
        .sum()
}

/// `a += s · b`
fn axpy(a: &mut [f32], s: f64, b: &[f32]) {
    let s = s as f32;
    a.par_chunks_mut(1 << 16).zip(b.par_chunks(1 << 16)).for_each(|(a, b)| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += s * y);
    });
}

/// Minimises the problem's objective from zero with L-BFGS and a backtracking (Armijo) line
/// search; stops at `max_iter`, at a gradient under `tolerance`, or when the objective stalls.
fn lbfgs(pr: &Problem<'_>, p: &TrainParams) -> candle_core::Result<Vec<f32>> {
    let dim = pr.dim();
    let mut x = vec![0f32; dim];
    let mut g = vec![0f32; dim];
    let mut f = pr.eval(&x, &mut g)?;
    let mut hist: std::collections::VecDeque<(Vec<f32>, Vec<f32>, f64)> = std::collections::VecDeque::new();
    let mut x_new = vec![0f32; dim];
    let mut g_new = vec![0f32; dim];
    let mut d = vec![0f32; dim];
    for iter in 0..p.max_iter {
        let gmax = g.iter().fold(0f32, |m, v| m.max(v.abs()));
        if gmax <= p.tolerance {
            break;
        }
        // two-loop recursion: d = −H·g
        d.copy_from_slice(&g);
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &d);
            axpy(&mut d, -a, y);
            alphas.push(a);
        }
        let gamma = hist.back().map(|(s, y, _)| dot(s, y) / dot(y, y).max(1e-30)).unwrap_or(1.0);
        d.par_iter_mut().for_each(|v| *v *= gamma as f32);
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &d);
            axpy(&mut d, a - beta, s);
        }
        d.par_iter_mut().for_each(|v| *v = -*v);
        let mut gd = dot(&g, &d);
        if gd >= 0.0 || gd.is_nan() {
            // not a descent direction (lost curvature): restart from the gradient
            hist.clear();
            d.iter_mut().zip(&g).for_each(|(d, g)| *d = -g);
            gd = dot(&g, &d);
        }
        let mut step = if iter == 0 { 1.0 / dot(&g, &g).sqrt().max(1e-12) } else { 1.0 };
        let mut accepted = None;
        for _ in 0..30 {
            x_new.copy_from_slice(&x);
            axpy(&mut x_new, step, &d);
            let fn_ = pr.eval(&x_new, &mut g_new)?;
            if fn_.is_finite() && fn_ <= f + 1e-4 * step * gd {
                accepted = Some(fn_);
                break;
            }
            step *= 0.5;
        }
        let Some(f_new) = accepted else { break };
        // s = x_new − x, y = g_new − g, kept when the curvature is positive
        let mut s = x_new.clone();
        axpy(&mut s, -1.0, &x);
        let mut y = g_new.clone();
        axpy(&mut y, -1.0, &g);
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if hist.len() == MEMORY {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        let stalled = (f - f_new) <= 1e-10 * f.abs().max(f_new.abs()).max(1.0);
        f = f_new;
        if stalled {
            break;
        }
    }
    Ok(x)
}

impl Softmax {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Raw class scores (logits) of an input; out-of-range sparse indices are ignored.
    pub fn logits(&self, x: &Features) -> Vec<f32> {
        let c = self.classes;
        let mut out = self.b.clone();
        for &(i, v) in &x.sparse {
            let i = i as usize;
            if i < self.n_sparse {
                let row = &self.w[i * c..(i + 1) * c];
                out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
            }
        }
        for (j, &v) in x.dense.iter().enumerate().take(self.n_dense) {
            let r = self.n_sparse + j;
            let row = &self.w[r * c..(r + 1) * c];
            out.iter_mut().zip(row).for_each(|(o, w)| *o += v * w);
        }
        out
    }

    /// Trains on inputs and their class indices (each below `classes`). A numerical failure of
    /// the dense product (it cannot happen with consistent shapes) leaves the all-zero model.
    pub fn train(
        xs: &[Features],
        ys: &[usize],
        n_sparse: usize,
        n_dense: usize,
        classes: usize,
        p: &TrainParams,
    ) -> Self {
        let c = classes.max(1);
        let rows = n_sparse + n_dense;
        let theta = Problem::new(xs, ys, n_sparse, n_dense, c, p)
            .and_then(|pr| lbfgs(&pr, p))
            .unwrap_or_else(|_| vec![0.0; (rows + 1) * c]);
        let (w, b) = theta.split_at(rows * c);
        Self { n_sparse, n_dense, classes: c, w: w.to_vec(), b: b.to_vec() }
    }
}

/// Softmax of logits (stable).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let s: f32 = e.iter().sum();
    if s > 0.0 && s.is_finite() {
        e.iter().map(|x| x / s).collect()
    } else {
        vec![1.0 / logits.len().max(1) as f32; logits.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_problem() {
        let xs: Vec<Features> = (0..40)
            .map(|i| Features { sparse: vec![((i % 2) as u32, 1.0)], dense: vec![if i % 2 == 0 { 1.0 } else { -1.0 }] })
            .collect();
        let ys: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let m = Softmax::train(&xs, &ys, 2, 1, 2, &TrainParams::default());
        for (x, y) in xs.iter().zip(&ys) {
            let l = m.logits(x);
            assert_eq!(if l[0] > l[1] { 0 } else { 1 }, *y);
        }
    }

    /// The fitted model is the optimum: its gradient vanishes (the property a stochastic
    /// optimiser lacked), checked against a finite difference of the objective.
    #[test]
    fn reaches_the_optimum_of_the_penalised_objective() {
        let xs: Vec<Features> = (0..60)
            .map(|i| Features {
                sparse: vec![((i % 3) as u32, 1.0), (3 + (i % 5) as u32, 0.5)],
                dense: vec![((i * 7) % 11) as f32 / 11.0 - 0.5, ((i * 3) % 7) as f32 / 7.0],
            })
            .collect();
        let ys: Vec<usize> = (0..60).map(|i| (i * 7 % 11) % 3).collect();
        let p = TrainParams { l2: 1e-2, tolerance: 1e-6, max_iter: 500, ..TrainParams::default() };
        let m = Softmax::train(&xs, &ys, 8, 2, 3, &p);
        let pr = Problem::new(&xs, &ys, 8, 2, 3, &p).expect("problem");
        let mut theta = m.w.clone();
        theta.extend(&m.b);
        let mut g = vec![0f32; theta.len()];
        let f = pr.eval(&theta, &mut g).expect("eval");
        let gmax = g.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(gmax < 1e-4, "gradient {gmax}");
        // a small move in any coordinate does not lower the objective
        for k in [0, 5, 17, theta.len() - 1] {
            for s in [-1e-2f32, 1e-2] {
                let mut t = theta.clone();
                t[k] += s;
                let mut g2 = vec![0f32; t.len()];
                assert!(pr.eval(&t, &mut g2).expect("eval") >= f - 1e-7);
            }
        }
    }
}
