//! Multinomial logistic regression over a sparse part (n-grams) and a dense part (sentence
//! embeddings), trained with mini-batch lazy Adam: only the rows a batch touches are updated, so an
//! epoch costs what the batch's features cost, not the whole vocabulary.

use rand::seq::SliceRandom;
use rand::SeedableRng;
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
    /// Passes over the data.
    pub epochs: usize,
    /// Adam step size.
    pub learning_rate: f32,
    /// L2 penalty on touched weights (per example, as in a mean loss).
    pub l2: f32,
    /// Examples per step.
    pub batch: usize,
    /// Target mass spread over the other classes (0 = plain cross-entropy).
    pub label_smoothing: f32,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self { epochs: 30, learning_rate: 0.01, l2: 1e-4, batch: 32, label_smoothing: 0.0, seed: 7 }
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

    /// Trains on inputs and their class indices (each below `classes`).
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
        let mut m = Self { n_sparse, n_dense, classes: c, w: vec![0.0; rows * c], b: vec![0.0; c] };
        let mut m1 = vec![0f32; (rows + 1) * c];
        let mut m2 = vec![0f32; (rows + 1) * c];
        let mut grad = vec![0f32; (rows + 1) * c];
        let mut touched_flag = vec![false; rows + 1];
        let mut touched: Vec<usize> = Vec::new();
        let mut order: Vec<usize> = (0..xs.len().min(ys.len())).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut step = 0i32;
        let batch = p.batch.max(1);
        let off = if c > 1 { p.label_smoothing / (c - 1) as f32 } else { 0.0 };
        let on = 1.0 - p.label_smoothing;
        for epoch in 0..p.epochs {
            order.shuffle(&mut rng);
            // linear decay of the step size to 10% over the run
            let lr = p.learning_rate * (1.0 - 0.9 * epoch as f32 / p.epochs.max(1) as f32);
            for chunk in order.chunks(batch) {
                step += 1;
                let scale = 1.0 / chunk.len() as f32;
                for &e in chunk {
                    let x = &xs[e];
                    let logits = m.logits(x);
                    let probs = softmax(&logits);
                    let d: Vec<f32> = probs
                        .iter()
                        .enumerate()
                        .map(|(k, p)| (p - if k == ys[e] { on } else { off }) * scale)
                        .collect();
                    let mut add = |r: usize, v: f32| {
                        if !touched_flag[r] {
                            touched_flag[r] = true;
                            touched.push(r);
                        }
                        let g = &mut grad[r * c..(r + 1) * c];
                        g.iter_mut().zip(&d).for_each(|(g, d)| *g += v * d);
                    };
                    for &(i, v) in &x.sparse {
                        if (i as usize) < n_sparse {
                            add(i as usize, v);
                        }
                    }
                    for (j, &v) in x.dense.iter().enumerate().take(n_dense) {
                        add(n_sparse + j, v);
                    }
                    add(rows, 1.0);
                }
                let bc1 = 1.0 - beta1.powi(step);
                let bc2 = 1.0 - beta2.powi(step);
                for &r in &touched {
                    for k in 0..c {
                        let idx = r * c + k;
                        let wv = if r < rows { m.w[idx] } else { m.b[k] };
                        let g = grad[idx] + if r < rows { p.l2 * wv } else { 0.0 };
                        grad[idx] = 0.0;
                        m1[idx] = beta1 * m1[idx] + (1.0 - beta1) * g;
                        m2[idx] = beta2 * m2[idx] + (1.0 - beta2) * g * g;
                        let upd = lr * (m1[idx] / bc1) / ((m2[idx] / bc2).sqrt() + eps);
                        if r < rows {
                            m.w[idx] -= upd;
                        } else {
                            m.b[k] -= upd;
                        }
                    }
                    touched_flag[r] = false;
                }
                touched.clear();
            }
        }
        m
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
}
