//! Implicit-feedback matrix factorization: alternating least squares with the conjugate
//! gradient solver of Takács et al., as the `implicit` library does it, parallel with rayon.
//! Confidence is `alpha × value` for observed pairs; preference is 1 for them and 0 elsewhere.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Csr;

/// Training settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Als {
    /// Factors.
    pub k: usize,
    /// User factors, row-major (users × k).
    pub user_factors: Vec<f32>,
    /// Item factors, row-major (items × k).
    pub item_factors: Vec<f32>,
    /// YᵀY + λI of the item factors, to fold new users in without retraining.
    pub item_gram: Vec<f32>,
    /// The settings it was trained with.
    pub config: AlsConfig,
}

/// Dot product in eight lanes, which the compiler turns into SIMD.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// YᵀY + λI for the fixed side.
fn gram(y: &[f32], k: usize, reg: f32) -> Vec<f32> {
    let partial = y
        .par_chunks(k * 256)
        .fold(
            || vec![0f32; k * k],
            |mut g, block| {
                add_outer_products(&mut g, block, k);
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

#[inline(always)]
/// g += Σ vvᵀ over the rows v of `block`.
fn add_outer_products(g: &mut [f32], block: &[f32], k: usize) {
    #[inline(always)]
    fn plain(g: &mut [f32], block: &[f32], k: usize) {
        for v in block.chunks_exact(k) {
            for (a, &va) in v.iter().enumerate() {
                g[a * k..(a + 1) * k].iter_mut().zip(v).for_each(|(x, vb)| *x += va * vb);
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(g: &mut [f32], block: &[f32], k: usize) {
            plain(g, block, k)
        }
        // SAFETY: the CPU has AVX2, checked just above; that is avx2's only requirement.
        #[allow(unsafe_code)]
        unsafe {
            avx2(g, block, k)
        };
        return;
    }
    plain(g, block, k)
}

/// out = g·v. Inlined so it is compiled with the caller's AVX2 (it is most of an item's solve).
#[inline(always)]
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
    // Each worker reuses one scratch buffer for its rows (no allocation per row).
    x.par_chunks_mut(k).enumerate().for_each_init(
        || vec![0f32; 3 * k],
        |scratch, (u, xu)| solve_row_fast(xu, y, &yty, || m.row(u), cfg.cg_steps, cfg, scratch),
    );
}

/// [`solve_row`] compiled for AVX2 when the CPU has it (twice the lanes of the x86-64 baseline
/// the binary is built for), else as is.
fn solve_row_fast<I: Iterator<Item = (u32, f32)>>(
    xu: &mut [f32],
    y: &[f32],
    yty: &[f32],
    row: impl Fn() -> I,
    steps: usize,
    cfg: &AlsConfig,
    scratch: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2<I: Iterator<Item = (u32, f32)>>(
            xu: &mut [f32],
            y: &[f32],
            yty: &[f32],
            row: impl Fn() -> I,
            steps: usize,
            cfg: &AlsConfig,
            scratch: &mut [f32],
        ) {
            solve_row(xu, y, yty, row, steps, cfg, scratch)
        }
        // SAFETY: the CPU has AVX2, checked just above; that is avx2's only requirement.
        #[allow(unsafe_code)]
        unsafe {
            avx2(xu, y, yty, row, steps, cfg, scratch)
        };
        return;
    }
    solve_row(xu, y, yty, row, steps, cfg, scratch)
}

/// A few conjugate-gradient steps on one row's normal equations, starting from `xu`;
/// `scratch` holds at least three rows of `xu`'s length.
#[inline(always)]
fn solve_row<I: Iterator<Item = (u32, f32)>>(
    xu: &mut [f32],
    y: &[f32],
    yty: &[f32],
    row: impl Fn() -> I,
    steps: usize,
    cfg: &AlsConfig,
    scratch: &mut [f32],
) {
    let k = xu.len();
    {
        let (r, rest) = scratch.split_at_mut(k);
        let (p, rest) = rest.split_at_mut(k);
        let ap = &mut rest[..k];
        mat_vec(yty, xu, r);
        r.iter_mut().for_each(|v| *v = -*v);
        for (i, value) in row() {
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            let c = cfg.alpha * value;
            // c = 1 (one basket line at alpha 1, three pairs in four) adds yᵢ: no dot needed.
            let w = if c == 1.0 { 1.0 } else { c - (c - 1.0) * dot(yi, xu) };
            r.iter_mut().zip(yi).for_each(|(rv, yv)| *rv += w * yv);
        }
        p.copy_from_slice(r);
        let mut rs_old = dot(r, r);
        for _ in 0..steps {
            if rs_old < 1e-20 {
                break;
            }
            mat_vec(yty, p, ap);
            // A pair of confidence 1 adds (c − 1)·yᵢyᵢᵀp = 0 to Ap: skipping it saves most of
            // the work on basket data, where most pairs were bought once.
            for (i, value) in row().filter(|(_, value)| cfg.alpha * value != 1.0) {
                let yi = &y[i as usize * k..(i as usize + 1) * k];
                let c = cfg.alpha * value;
                let w = (c - 1.0) * dot(yi, p);
                ap.iter_mut().zip(yi).for_each(|(a, yv)| *a += w * yv);
            }
            let step = rs_old / dot(p, ap);
            xu.iter_mut().zip(p.iter()).for_each(|(xv, pv)| *xv += step * pv);
            r.iter_mut().zip(ap.iter()).for_each(|(rv, av)| *rv -= step * av);
            let rs_new = dot(r, r);
            let beta = rs_new / rs_old;
            p.iter_mut().zip(r.iter()).for_each(|(pv, rv)| *pv = rv + beta * *pv);
            rs_old = rs_new;
        }
    }
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
        let item_gram = gram(&item_factors, k, cfg.regularization);
        Als { k, user_factors, item_factors, item_gram, config: *cfg }
    }

    /// Whether user `u` has trained factors.
    pub fn knows_user(&self, u: usize) -> bool {
        (u + 1) * self.k <= self.user_factors.len()
    }

    /// Factors for a user the model has not seen, from their (item, count) history: the same
    /// least-squares problem training solves, with the item factors fixed.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        let mut x = vec![0f32; self.k];
        let items = self.item_factors.len() / self.k.max(1);
        let row = || history.iter().copied().filter(|(i, _)| (*i as usize) < items);
        let mut scratch = vec![0f32; 3 * self.k];
        solve_row(&mut x, &self.item_factors, &self.item_gram, row, self.k.min(12), &self.config, &mut scratch);
        x
    }

    /// The factor row of user `u`.
    pub fn user(&self, u: usize) -> &[f32] {
        &self.user_factors[u * self.k..(u + 1) * self.k]
    }

    /// The score of `item` for a user with factors `x`.
    pub fn score(&self, x: &[f32], item: u32) -> f32 {
        let i = item as usize;
        self.item_factors.get(i * self.k..(i + 1) * self.k).map_or(0.0, |y| dot(x, y))
    }

    /// The score of every item for user `u`.
    pub fn scores(&self, u: usize, out: &mut [f32]) {
        let xu = &self.user_factors[u * self.k..(u + 1) * self.k];
        for (i, s) in out.iter_mut().enumerate() {
            *s = dot(xu, &self.item_factors[i * self.k..(i + 1) * self.k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x solving A x = b by Gaussian elimination with partial pivoting (A is k × k, row-major).
    fn exact(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
        let k = b.len();
        for c in 0..k {
            let p = (c..k).max_by(|&i, &j| a[i * k + c].abs().total_cmp(&a[j * k + c].abs())).expect("rows");
            for j in 0..k {
                a.swap(c * k + j, p * k + j);
            }
            b.swap(c, p);
            for r in c + 1..k {
                let f = a[r * k + c] / a[c * k + c];
                for j in c..k {
                    a[r * k + j] -= f * a[c * k + j];
                }
                b[r] -= f * b[c];
            }
        }
        let mut x = vec![0f64; k];
        for r in (0..k).rev() {
            let s: f64 = (r + 1..k).map(|j| a[r * k + j] * x[j]).sum();
            x[r] = (b[r] - s) / a[r * k + r];
        }
        x
    }

    #[test]
    fn conjugate_gradient_matches_the_exact_least_squares_solve() {
        let (k, items) = (8, 40);
        let mut rng = StdRng::seed_from_u64(7);
        let y: Vec<f32> = (0..items * k).map(|_| rng.gen::<f32>() - 0.5).collect();
        let cfg = AlsConfig { factors: k, regularization: 0.1, alpha: 2.0, ..AlsConfig::default() };
        // One user's row: counts 1, 2 and 3 (confidence 2, 4 and 6 at alpha 2).
        let row: Vec<(u32, f32)> = vec![(1, 1.0), (5, 2.0), (9, 3.0), (17, 1.0), (30, 2.0)];
        let yty = gram(&y, k, cfg.regularization);
        // The normal equations: (YᵀY + λI + Σ (c − 1) yᵢyᵢᵀ) x = Σ c yᵢ.
        let mut a: Vec<f64> = yty.iter().map(|v| f64::from(*v)).collect();
        let mut b = vec![0f64; k];
        for &(i, v) in &row {
            let c = f64::from(cfg.alpha * v);
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            for p in 0..k {
                b[p] += c * f64::from(yi[p]);
                for q in 0..k {
                    a[p * k + q] += (c - 1.0) * f64::from(yi[p]) * f64::from(yi[q]);
                }
            }
        }
        let want = exact(a, b);
        let mut scratch = vec![0f32; 3 * k];
        let close = |x: &[f32]| x.iter().zip(&want).map(|(g, w)| (f64::from(*g) - w).abs()).fold(0f64, f64::max);
        // From zero, k steps reach the solution (CG is exact in k steps up to rounding).
        let mut x = vec![0f32; k];
        solve_row(&mut x, &y, &yty, || row.iter().copied(), k, &cfg, &mut scratch);
        assert!(close(&x) < 1e-3, "CG from zero is {} off", close(&x));
        // Warm-started near the solution, as each sweep starts from the last, 3 steps keep it there.
        let mut x: Vec<f32> = want.iter().map(|w| *w as f32 + 0.05).collect();
        let before = close(&x);
        solve_row_fast(&mut x, &y, &yty, || row.iter().copied(), 3, &cfg, &mut scratch);
        assert!(close(&x) < before / 10.0, "3 warm steps from {before} end {} off", close(&x));
    }

    #[test]
    fn training_fits_observed_pairs_above_unobserved_ones() {
        // Two groups of users, each buying the items of its own group.
        let triples: Vec<(u32, u32, f32)> =
            (0..40u32).flat_map(|u| (0..5u32).map(move |j| (u, (u % 2) * 5 + j, 1.0))).collect();
        let m = Csr::from_triples(40, triples);
        let als = Als::train(&m, 10, &AlsConfig { factors: 4, iterations: 10, ..AlsConfig::default() }, &|_| {});
        let mut scores = vec![0f32; 10];
        als.scores(0, &mut scores);
        let (own, other) = (scores[..5].iter().sum::<f32>() / 5.0, scores[5..].iter().sum::<f32>() / 5.0);
        assert!(own > 0.5 && other.abs() < 0.2, "own group {own}, other {other}");
    }
}
