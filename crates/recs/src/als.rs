//! Implicit-feedback matrix factorization: alternating least squares with the conjugate
//! gradient solver of Takács et al., as the `implicit` library does it, parallel with rayon.
//! Confidence is `alpha × value` for observed pairs; preference is 1 for them and 0 elsewhere.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::data::Csr;

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct AlsConfig {
    /// Latent factors.
    pub factors: usize,
    /// Sweeps over users and items.
    pub iterations: usize,
    /// L2 regularization.
    pub regularization: f32,
    /// Confidence scale.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and sweep.
    pub cg_steps: usize,
    /// Random seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsConfig {
    fn default() -> Self {
        Self { factors: 64, iterations: 15, regularization: 0.01, alpha: 1.0, cg_steps: 3, seed: 42 }
    }
}

/// A trained model: one factor row per user and per item.
#[derive(Debug, Clone)]
pub struct Als {
    /// Factors.
    pub k: usize,
    /// User factors, row-major (users × k).
    pub user_factors: Vec<f32>,
    /// Item factors, row-major (items × k).
    pub item_factors: Vec<f32>,
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// YᵀY + λI for the fixed side.
fn gram(y: &[f32], k: usize, reg: f32) -> Vec<f32> {
    let rows = y.len() / k;
    let partial = (0..rows)
        .into_par_iter()
        .fold(
            || vec![0f32; k * k],
            |mut g, r| {
                let v = &y[r * k..(r + 1) * k];
                for a in 0..k {
                    let va = v[a];
                    for b in 0..k {
                        g[a * k + b] += va * v[b];
                    }
                }
                g
            },
        )
        .reduce(
            || vec![0f32; k * k],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut g = partial;
    for a in 0..k {
        g[a * k + a] += reg;
    }
    g
}

fn mat_vec(g: &[f32], v: &[f32], out: &mut [f32]) {
    let k = v.len();
    for a in 0..k {
        out[a] = dot(&g[a * k..(a + 1) * k], v);
    }
}

/// One sweep: re-solves every row of `x` against the fixed `y`, rows of `m` giving confidences.
fn sweep(x: &mut [f32], y: &[f32], m: &Csr, cfg: &AlsConfig) {
    let k = cfg.factors;
    let yty = gram(y, k, cfg.regularization);
    x.par_chunks_mut(k).enumerate().for_each(|(u, xu)| {
        let mut r = vec![0f32; k];
        let mut p = vec![0f32; k];
        let mut ap = vec![0f32; k];
        mat_vec(&yty, xu, &mut r);
        r.iter_mut().for_each(|v| *v = -*v);
        for (i, value) in m.row(u) {
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            let c = cfg.alpha * value;
            let w = c - (c - 1.0) * dot(yi, xu);
            r.iter_mut().zip(yi).for_each(|(rv, yv)| *rv += w * yv);
        }
        p.copy_from_slice(&r);
        let mut rs_old = dot(&r, &r);
        for _ in 0..cfg.cg_steps {
            if rs_old < 1e-20 {
                break;
            }
            mat_vec(&yty, &p, &mut ap);
            for (i, value) in m.row(u) {
                let yi = &y[i as usize * k..(i as usize + 1) * k];
                let c = cfg.alpha * value;
                let w = (c - 1.0) * dot(yi, &p);
                ap.iter_mut().zip(yi).for_each(|(a, yv)| *a += w * yv);
            }
            let step = rs_old / dot(&p, &ap);
            xu.iter_mut().zip(&p).for_each(|(xv, pv)| *xv += step * pv);
            r.iter_mut().zip(&ap).for_each(|(rv, av)| *rv -= step * av);
            let rs_new = dot(&r, &r);
            let beta = rs_new / rs_old;
            p.iter_mut().zip(&r).for_each(|(pv, rv)| *pv = rv + beta * *pv);
            rs_old = rs_new;
        }
    });
}

impl Als {
    /// Trains on a user × item confidence matrix with `items` columns; `progress` is called after
    /// each sweep with its number.
    pub fn train(m: &Csr, items: usize, cfg: &AlsConfig, progress: &dyn Fn(usize)) -> Als {
        let k = cfg.factors;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut init = |n: usize| (0..n * k).map(|_| rng.gen::<f32>() * 0.01).collect::<Vec<f32>>();
        let mut user_factors = init(m.rows());
        let mut item_factors = init(items);
        let mt = m.transpose(items);
        for it in 0..cfg.iterations {
            sweep(&mut user_factors, &item_factors, m, cfg);
            sweep(&mut item_factors, &user_factors, &mt, cfg);
            progress(it + 1);
        }
        Als { k, user_factors, item_factors }
    }

    /// The score of every item for user `u`.
    pub fn scores(&self, u: usize, out: &mut [f32]) {
        let xu = &self.user_factors[u * self.k..(u + 1) * self.k];
        for (i, s) in out.iter_mut().enumerate() {
            *s = dot(xu, &self.item_factors[i * self.k..(i + 1) * self.k]);
        }
    }
}
