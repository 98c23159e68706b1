//! Item-to-item neighbours by cosine similarity of their buyer sets.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Csr;
use crate::topk::top_k;

/// For each item, its `k` most similar items with their cosine similarity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemKnn {
    /// Neighbours of each item, best first.
    pub neighbours: Vec<Vec<(u32, f32)>>,
}

impl ItemKnn {
    /// Computes neighbours from a user × item matrix (values are ignored: buyers are sets).
    /// With `beta` = None the similarity is cosine; with `Some(beta)` it is RP3beta: a two-step
    /// random walk item → user → item, each user's step shared among their items, divided by the
    /// target's popularity to the power beta (so the neighbours are not just the bestsellers).
    pub fn train(user_items: &Csr, items: usize, k: usize, beta: Option<f32>) -> ItemKnn {
        let item_users = user_items.transpose(items);
        let degree = |i: usize| (item_users.indptr[i + 1] - item_users.indptr[i]) as f32;
        let norms: Vec<f32> = (0..items).map(|i| degree(i).sqrt()).collect();
        let user_degree: Vec<f32> =
            (0..user_items.rows()).map(|u| (user_items.indptr[u + 1] - user_items.indptr[u]) as f32).collect();
        let neighbours = (0..items)
            .into_par_iter()
            .map_init(
                || vec![0f32; items],
                |acc, i| {
                    let mut touched = Vec::new();
                    for (u, _) in item_users.row(i) {
                        let step = if beta.is_some() { 1.0 / user_degree[u as usize].max(1.0) } else { 1.0 };
                        for (j, _) in user_items.row(u as usize) {
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += step;
                        }
                    }
                    let sim = |j: usize| match beta {
                        None => acc[j] / (norms[i] * norms[j]).max(1e-9),
                        Some(b) => acc[j] / degree(i).max(1.0) / degree(j).max(1.0).powf(b),
                    };
                    let mut cands: Vec<(u32, f32)> =
                        touched.iter().filter(|&&j| j as usize != i).map(|&j| (j, sim(j as usize))).collect();
                    for &j in &touched {
                        acc[j as usize] = 0.0;
                    }
                    cands.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
                    cands.truncate(k);
                    // Kept for the model's life: drop the room the candidates needed.
                    cands.shrink_to_fit();
                    cands
                },
            )
            .collect();
        ItemKnn { neighbours }
    }

    /// Scores every item for a user who bought `history` (item, weight).
    pub fn scores(&self, history: impl Iterator<Item = (u32, f32)>, out: &mut [f32]) {
        out.iter_mut().for_each(|s| *s = 0.0);
        for (i, w) in history {
            for &(j, sim) in &self.neighbours[i as usize] {
                out[j as usize] += w * sim;
            }
        }
    }

    /// The `k` items most similar to `item`.
    pub fn similar(&self, item: u32, k: usize) -> Vec<(u32, f32)> {
        let n = &self.neighbours[item as usize];
        let scores: Vec<f32> = n.iter().map(|x| x.1).collect();
        top_k(&scores, k, |_| false).into_iter().map(|(p, s)| (n[p as usize].0, s)).collect()
    }
}
