//! EASE (Steck, "Embarrassingly Shallow Autoencoders", 2019): item-to-item weights B that best
//! rebuild each shopper's basket history from the rest of it, in closed form:
//! B = I − P·diag(1/diag P) with P = (XᵀX + λI)⁻¹. On grocery baskets it beats ALS and kNN.
//!
//! With fewer shoppers than items, P comes from the shoppers' side by the Woodbury identity,
//! P = (I − Xᵀ(XXᵀ + λI)⁻¹X)/λ, so the dense inverse is users × users. Rows of B are kept sparse
//! (the largest weights by magnitude, negative ones included: they say "not with this").

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Csr;
use crate::topk::top_k;

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EaseConfig {
    /// L2 regularization; larger trusts co-purchases less.
    pub lambda: f64,
    /// Items need this many buyers to take part.
    pub min_buyers: usize,
    /// At most this many items (the most bought) take part; bounds the dense inverse.
    pub max_items: usize,
    /// Weights kept per item.
    pub neighbours: usize,
}

impl Default for EaseConfig {
    fn default() -> Self {
        EaseConfig { lambda: 1000.0, min_buyers: 20, max_items: 10_000, neighbours: 300 }
    }
}

/// For each item, the items its purchase predicts, with EASE weights (strongest first).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ease {
    /// Row `i` of B, sparse: (j, B_ij).
    pub neighbours: Vec<Vec<(u32, f32)>>,
}

impl Ease {
    /// Learns B from a user × item matrix (values are ignored: baskets are sets).
    pub fn train(user_items: &Csr, items: usize, cfg: &EaseConfig) -> Ease {
        let item_users = user_items.transpose(items);
        let buyers = |i: usize| item_users.indptr[i + 1] - item_users.indptr[i];
        let mut kept: Vec<u32> = (0..items as u32).filter(|&i| buyers(i as usize) >= cfg.min_buyers.max(1)).collect();
        kept.sort_by_key(|&i| std::cmp::Reverse(buyers(i as usize)));
        kept.truncate(cfg.max_items);
        kept.sort_unstable();
        let mut neighbours = vec![Vec::new(); items];
        if kept.is_empty() {
            return Ease { neighbours };
        }
        // Buyers of each kept item, and kept items of each user, in compact indexes.
        let users = user_items.rows();
        let cols: Vec<Vec<u32>> = kept.iter().map(|&i| item_users.row(i as usize).map(|(u, _)| u).collect()).collect();
        let rows = if users <= kept.len() {
            woodbury_rows(&cols, users, cfg)
        } else {
            direct_rows(&cols, user_items, &kept, cfg)
        };
        for (c, row) in rows.into_iter().enumerate() {
            neighbours[kept[c] as usize] = row.into_iter().map(|(j, w)| (kept[j as usize], w)).collect();
        }
        Ease { neighbours }
    }

    /// The best `k` items for a shopper who bought `history`, each with the bought item that
    /// predicts it most; `skip` items are left out.
    pub fn recommend(&self, history: &[u32], k: usize, skip: impl Fn(u32) -> bool) -> Vec<(u32, f32, u32)> {
        // Sparse: a history touches a few thousand items of the catalog's tens of thousands, and
        // a request should not clear and scan a vector of all of them.
        let mut acc: rustc_hash::FxHashMap<u32, (f32, u32, f32)> = rustc_hash::FxHashMap::default();
        for &i in history {
            for &(j, w) in self.neighbours.get(i as usize).map_or(&[][..], Vec::as_slice) {
                let e = acc.entry(j).or_insert((0.0, 0, 0.0));
                e.0 += w;
                if w > e.2 {
                    e.2 = w;
                    e.1 = i;
                }
            }
        }
        let mut found: Vec<(u32, f32, u32)> =
            acc.into_iter().filter(|(j, (s, _, _))| *s > 0.0 && !skip(*j)).map(|(j, (s, b, _))| (j, s, b)).collect();
        let by_score = |a: &(u32, f32, u32), b: &(u32, f32, u32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if found.len() > k {
            found.select_nth_unstable_by(k, by_score);
            found.truncate(k);
        }
        found.sort_unstable_by(by_score);
        found
    }
}

/// Rows of B through the users' side: M = (XXᵀ + λI)⁻¹, Q = MX, B_ij = (QᵀX)_ij / (1 − (XᵀQ)_jj).
fn woodbury_rows(cols: &[Vec<u32>], users: usize, cfg: &EaseConfig) -> Vec<Vec<(u32, f32)>> {
    let n = cols.len();
    let mut k = vec![0f64; users * users];
    let mut user_cols: Vec<Vec<u32>> = vec![Vec::new(); users];
    for (j, buyers) in cols.iter().enumerate() {
        buyers.iter().for_each(|&u| user_cols[u as usize].push(j as u32));
    }
    k.par_chunks_mut(users).enumerate().for_each(|(a, row)| {
        row[a] += cfg.lambda;
        for &j in &user_cols[a] {
            cols[j as usize].iter().for_each(|&b| row[b as usize] += 1.0);
        }
    });
    let m = spd_inverse(k, users);
    // Q = M X, users × items, row-major.
    let mut q = vec![0f32; users * n];
    q.par_chunks_mut(n).enumerate().for_each(|(a, row)| {
        let ma = &m[a * users..(a + 1) * users];
        for (j, buyers) in cols.iter().enumerate() {
            row[j] = buyers.iter().map(|&b| ma[b as usize]).sum::<f64>() as f32;
        }
    });
    drop(m);
    let denom: Vec<f32> =
        (0..n).map(|j| (1.0 - cols[j].iter().map(|&b| q[b as usize * n + j]).sum::<f32>()).max(1e-6)).collect();
    (0..n)
        .into_par_iter()
        .map_init(
            || vec![0f32; n],
            |acc, i| {
                acc.iter_mut().for_each(|x| *x = 0.0);
                for &b in &cols[i] {
                    acc.iter_mut().zip(&q[b as usize * n..(b as usize + 1) * n]).for_each(|(x, y)| *x += y);
                }
                acc.iter_mut().zip(&denom).for_each(|(x, d)| *x /= d);
                acc[i] = 0.0;
                strongest(acc, cfg.neighbours)
            },
        )
        .collect()
}

/// Rows of B from the items' side: P = (XᵀX + λI)⁻¹, B_ij = −P_ij / P_jj.
fn direct_rows(cols: &[Vec<u32>], user_items: &Csr, kept: &[u32], cfg: &EaseConfig) -> Vec<Vec<(u32, f32)>> {
    let n = cols.len();
    let mut compact = vec![u32::MAX; kept.last().map_or(0, |&i| i as usize + 1)];
    kept.iter().enumerate().for_each(|(c, &i)| compact[i as usize] = c as u32);
    let mut g = vec![0f64; n * n];
    g.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        row[i] += cfg.lambda;
        for &u in &cols[i] {
            for (j, _) in user_items.row(u as usize) {
                if let Some(&c) = compact.get(j as usize).filter(|c| **c != u32::MAX) {
                    row[c as usize] += 1.0;
                }
            }
        }
    });
    let p = spd_inverse(g, n);
    let diag: Vec<f64> = (0..n).map(|j| p[j * n + j]).collect();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut row: Vec<f32> = (0..n).map(|j| (-p[i * n + j] / diag[j]) as f32).collect();
            row[i] = 0.0;
            strongest(&row, cfg.neighbours)
        })
        .collect()
}

/// The `k` entries of largest magnitude, strongest first.
fn strongest(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let magnitude: Vec<f32> = row.iter().map(|x| x.abs()).collect();
    top_k(&magnitude, k, |j| row[j] == 0.0).into_iter().map(|(j, _)| (j, row[j as usize])).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The inverse of a symmetric positive definite n × n matrix (row-major), through its Cholesky
/// factor L: A⁻¹ = L⁻ᵀL⁻¹. The matrices here are regularized, so they are well conditioned.
pub fn spd_inverse(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    // Cholesky, row by row: L_ij = (A_ij − L_i·L_j) / L_jj over the first j entries.
    for i in 0..n {
        let (done, rest) = a.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        for j in 0..i {
            let row_j = &done[j * n..j * n + j + 1];
            row_i[j] = (row_i[j] - dot(&row_i[..j], &row_j[..j])) / row_j[j];
        }
        let s = row_i[i] - dot(&row_i[..i], &row_i[..i]);
        row_i[i] = s.max(1e-12).sqrt();
    }
    // Columns of L⁻¹ (column c holds rows c..n), each solved on its own.
    let inv_cols: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|c| {
            let mut y = vec![0f64; n - c];
            y[0] = 1.0 / a[c * n + c];
            for r in c + 1..n {
                y[r - c] = -dot(&a[r * n + c..r * n + r], &y[..r - c]) / a[r * n + r];
            }
            y
        })
        .collect();
    drop(a);
    // (L⁻ᵀL⁻¹)_ij = Σ_k≥max(i,j) L⁻¹_ki L⁻¹_kj.
    let mut out = vec![0f64; n * n];
    out.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for j in i..n {
            row[j] = dot(&inv_cols[i][j - i..], &inv_cols[j]);
        }
    });
    for i in 0..n {
        for j in 0..i {
            out[i * n + j] = out[j * n + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_scores_the_sum_of_its_weights_best_first_and_names_the_strongest_seed() {
        let ease = Ease {
            neighbours: vec![
                vec![(2, 0.5), (3, 0.25), (4, -1.0)],
                vec![(2, 0.75), (3, 0.25), (5, 0.125)],
                vec![],
                vec![],
                vec![],
                vec![],
            ],
        };
        let got = ease.recommend(&[0, 1], 10, |_| false);
        assert_eq!(got, vec![(2, 1.25, 1), (3, 0.5, 0), (5, 0.125, 1)], "negative sums are left out");
        assert_eq!(ease.recommend(&[0, 1], 1, |_| false), vec![(2, 1.25, 1)]);
        assert_eq!(ease.recommend(&[0, 1], 10, |j| j == 2), vec![(3, 0.5, 0), (5, 0.125, 1)]);
        assert!(ease.recommend(&[], 10, |_| false).is_empty());
    }

    #[test]
    fn spd_inverse_inverts() {
        let n = 5;
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = 1.0 / (1.0 + (i as f64 - j as f64).abs()) + if i == j { 3.0 } else { 0.0 };
            }
        }
        let inv = spd_inverse(a.clone(), n);
        for i in 0..n {
            for j in 0..n {
                let p: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                assert!((p - if i == j { 1.0 } else { 0.0 }).abs() < 1e-9, "({i},{j}) = {p}");
            }
        }
    }

    #[test]
    fn both_sides_give_the_same_weights() {
        // Three groups of users buying overlapping item sets; fewer users than items for the
        // Woodbury side, then the same items with more users for the direct side.
        let mut triples = Vec::new();
        for u in 0..9u32 {
            for i in 0..12u32 {
                if (i % 3 == u % 3) || (i + u) % 5 == 0 {
                    triples.push((u, i, 1.0));
                }
            }
        }
        let x = Csr::from_triples(9, triples.clone());
        let cfg = EaseConfig { lambda: 2.0, min_buyers: 1, max_items: 100, neighbours: 100 };
        let woodbury = Ease::train(&x, 12, &cfg);
        // Duplicate no user but add empty users so users > items: B is unchanged.
        let padded = Csr::from_triples(30, triples);
        let direct = Ease::train(&padded, 12, &cfg);
        for i in 0..12 {
            let mut a = woodbury.neighbours[i].clone();
            let mut b = direct.neighbours[i].clone();
            a.sort_by_key(|x| x.0);
            b.sort_by_key(|x| x.0);
            assert_eq!(a.len(), b.len(), "row {i}");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.0, y.0);
                assert!((x.1 - y.1).abs() < 1e-4, "row {i}: {x:?} vs {y:?}");
            }
        }
    }
}
