//! The hybrid: candidate sources scored per user, normalized, and blended with weights learned on
//! a time-based validation split (the last 20% of each user's training rows).

use std::collections::HashSet;

use rayon::prelude::*;

use crate::als::{Als, AlsConfig};
use crate::data::Dataset;
use crate::eval::{evaluate, Metrics, Protocol};
use crate::knn::ItemKnn;
use crate::popularity::popularity;
use crate::repeat::Repeat;
use crate::topk::top_k;

/// How much each source counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Matrix factorization.
    pub als: f32,
    /// Item-to-item neighbours of the user's history.
    pub knn: f32,
    /// Popularity (recent).
    pub popularity: f32,
    /// The user's own repeat purchases.
    pub repeat: f32,
}

/// Settings of the hybrid.
#[derive(Debug, Clone, Copy)]
pub struct HybridConfig {
    /// ALS settings.
    pub als: AlsConfig,
    /// Neighbours kept per item.
    pub knn_k: usize,
    /// RP3beta popularity penalty of the item neighbours (None: cosine).
    pub knn_beta: Option<f32>,
    /// Popularity half-life in days.
    pub popularity_half_life: f64,
    /// Repeat-score half-life in days.
    pub repeat_half_life: f64,
}

impl Default for HybridConfig {
    fn default() -> Self {
        Self {
            als: AlsConfig::default(),
            knn_k: 100,
            knn_beta: None,
            popularity_half_life: 30.0,
            repeat_half_life: 90.0,
        }
    }
}

/// Trained sources.
#[derive(Debug, Clone)]
pub struct Hybrid {
    /// Matrix factorization.
    pub als: Als,
    /// Item neighbours.
    pub knn: ItemKnn,
    /// Popularity per item.
    pub popularity: Vec<f32>,
    /// Repeat scores per user.
    pub repeat: Repeat,
    /// Items each user bought, with log-count weights.
    pub history: Vec<Vec<(u32, f32)>>,
    items: usize,
}

/// Scales scores so the user's best candidate scores 1 (negatives count as 0).
fn normalize(v: &mut [f32]) {
    let max = v.iter().copied().fold(0f32, f32::max);
    if max > 0.0 {
        v.iter_mut().for_each(|s| *s = s.max(0.0) / max);
    } else {
        v.iter_mut().for_each(|s| *s = 0.0);
    }
}

impl Hybrid {
    /// Trains every source on `data`.
    pub fn train(data: &Dataset, cfg: &HybridConfig, progress: &dyn Fn(&str)) -> Hybrid {
        let items = data.items.len();
        let counts = data.counts();
        progress("als");
        let als = Als::train(&counts, items, &cfg.als, &|_| {});
        progress("item-knn");
        let knn = ItemKnn::train(&counts, items, cfg.knn_k, cfg.knn_beta);
        progress("popularity and repeats");
        let popularity = popularity(data, Some(cfg.popularity_half_life));
        let repeat = Repeat::train(data, cfg.repeat_half_life);
        let history = (0..counts.rows()).map(|u| counts.row(u).map(|(i, c)| (i, (1.0 + c).ln())).collect()).collect();
        Hybrid { als, knn, popularity, repeat, history, items }
    }

    /// The normalized source scores of user `u`: [als, knn, popularity, repeat].
    fn sources(&self, u: usize) -> [Vec<f32>; 4] {
        let mut als = vec![0f32; self.items];
        let mut knn = vec![0f32; self.items];
        let mut pop = self.popularity.clone();
        let mut rep = vec![0f32; self.items];
        if u < self.history.len() {
            self.als.scores(u, &mut als);
            // Recent purchases say more about the next basket than old ones.
            self.knn.scores(self.repeat.scores[u].iter().map(|(i, s)| (*i, *s)), &mut knn);
            for (i, s) in &self.repeat.scores[u] {
                rep[*i as usize] = *s;
            }
        }
        for v in [&mut als, &mut knn, &mut pop, &mut rep] {
            normalize(v);
        }
        [als, knn, pop, rep]
    }

    fn blend(sources: &[Vec<f32>; 4], w: &Weights, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o =
                w.als * sources[0][i] + w.knn * sources[1][i] + w.popularity * sources[2][i] + w.repeat * sources[3][i];
        }
    }

    fn excluded<'a>(&'a self, u: usize, protocol: Protocol) -> impl Fn(usize) -> bool + 'a {
        let seen: HashSet<u32> = match protocol {
            Protocol::Novel if u < self.history.len() => self.history[u].iter().map(|x| x.0).collect(),
            _ => HashSet::new(),
        };
        move |i| seen.contains(&(i as u32))
    }

    /// The top `k` items for user `u` (an index of the training data, or beyond it for a user
    /// without history, who gets popular items).
    pub fn recommend(&self, u: usize, k: usize, protocol: Protocol, w: &Weights) -> Vec<(u32, f32)> {
        let sources = self.sources(u);
        let mut out = vec![0f32; self.items];
        Self::blend(&sources, w, &mut out);
        top_k(&out, k, self.excluded(u, protocol))
    }

    /// Lists for `users` users under each of `grid`'s weights, computing each user's sources once.
    fn lists_for_grid(&self, users: usize, k: usize, protocol: Protocol, grid: &[Weights]) -> Vec<Vec<Vec<u32>>> {
        let per_user: Vec<Vec<Vec<u32>>> = (0..users)
            .into_par_iter()
            .map(|u| {
                let sources = self.sources(u);
                let excluded = self.excluded(u, protocol);
                let mut out = vec![0f32; self.items];
                grid.iter()
                    .map(|w| {
                        Self::blend(&sources, w, &mut out);
                        top_k(&out, k, &excluded).into_iter().map(|x| x.0).collect()
                    })
                    .collect()
            })
            .collect();
        (0..grid.len()).map(|g| per_user.iter().map(|lists| lists[g].clone()).collect()).collect()
    }
}

/// The candidate weights searched.
pub fn weight_grid(protocol: Protocol) -> Vec<Weights> {
    let mut grid = Vec::new();
    let repeats: &[f32] = match protocol {
        Protocol::Novel => &[0.0],
        Protocol::Repeats => &[1.0, 2.0, 4.0, 8.0],
    };
    for &als in &[0.0, 0.25, 0.5, 1.0] {
        for &knn in &[0.0, 0.25, 0.5, 1.0] {
            for &popularity in &[0.0, 0.1, 0.3] {
                for &repeat in repeats {
                    if als + knn + popularity + repeat > 0.0 {
                        grid.push(Weights { als, knn, popularity, repeat });
                    }
                }
            }
        }
    }
    grid
}

/// Learns blend weights: trains on each user's first 80% of `train` and picks the weights with
/// the best NDCG@10 on their last 20%. Returns the weights and their validation metrics.
pub fn learn_weights(
    train: &Dataset,
    cfg: &HybridConfig,
    protocol: Protocol,
    progress: &dyn Fn(&str),
) -> (Weights, Metrics) {
    let (head, tail) = train.split_last(0.2);
    let model = Hybrid::train(&head, cfg, progress);
    progress("searching blend weights");
    let grid = weight_grid(protocol);
    let lists = model.lists_for_grid(head.users.len(), 20, protocol, &grid);
    grid.iter()
        .zip(lists)
        .map(|(w, l)| (*w, evaluate(&head, &tail, &l, protocol)))
        .max_by(|a, b| a.1.ndcg10.total_cmp(&b.1.ndcg10))
        .unwrap_or((Weights { als: 1.0, knn: 0.0, popularity: 0.0, repeat: 0.0 }, Metrics::default()))
}
