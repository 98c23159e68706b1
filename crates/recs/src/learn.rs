//! Learning the blend: the sources are trained on each user's first 80% of the training rows,
//! and the weights that rank their last 20% best (NDCG@10) are kept, once for discovery (items
//! never bought) and once for lists where their own items may appear.

use rayon::prelude::*;

use crate::data::Dataset;
use crate::eval::{evaluate, Metrics, Protocol};
use crate::model::{Model, ModelConfig, TrainingSet, Weights};
use crate::recommend::{Query, Shopper, Surface};

/// The weights searched for one protocol.
pub fn grid(protocol: Protocol) -> Vec<Weights> {
    let repeats: &[f32] = match protocol {
        Protocol::Novel => &[0.0],
        Protocol::Repeats => &[1.0, 2.0, 4.0, 8.0],
    };
    let mut out = Vec::new();
    for &als in &[0.0, 0.25, 0.5, 1.0] {
        for &knn in &[0.0, 0.25, 0.5, 1.0] {
            for &popularity in &[0.0, 0.1, 0.3] {
                for &trending in &[0.0, 0.05, 0.2] {
                    for &repeat in repeats {
                        if als + knn + popularity + repeat > 0.0 {
                            let base = Weights::default();
                            out.push(Weights { als, knn, popularity, trending, repeat, moment: 0.0, ..base });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The shopper and query of user `u` of `data` for offline lists: their purchases so far, asked
/// at the time of their last one.
pub fn offline_request(u: usize, purchases: &[(u32, i64)], known: bool, k: usize, novel: bool) -> (Shopper, Query) {
    let now = purchases.last().map_or(0, |p| p.1);
    let shopper = Shopper {
        user: known.then_some(u as u32),
        purchases: purchases.to_vec(),
        personal: true,
        ..Shopper::default()
    };
    let query = Query {
        surface: Surface::Home,
        anchors: Vec::new(),
        store: None,
        k,
        now,
        utc_offset_secs: 0,
        weather: None,
        novel,
    };
    (shopper, query)
}

/// Best weights of `grid` on `head` → `tail` for `protocol`, with their metrics.
fn search(model: &Model, head: &Dataset, tail: &Dataset, protocol: Protocol) -> (Weights, Metrics) {
    let grid = grid(protocol);
    let novel = protocol == Protocol::Novel;
    let purchases = head.purchases_by_user();
    let mut wanted = vec![false; head.users.len()];
    tail.rows.iter().for_each(|r| wanted[r.user as usize] = true);
    let per_user: Vec<Vec<Vec<u32>>> = (0..head.users.len())
        .into_par_iter()
        .map(|u| {
            if !wanted[u] || purchases[u].is_empty() {
                return vec![Vec::new(); grid.len()];
            }
            // Gather candidates once with every learnable source switched on.
            let (shopper, query) = offline_request(u, &purchases[u], true, 20, false);
            let pool = model.pool(&shopper, &query);
            let bought: std::collections::HashSet<u32> = purchases[u].iter().map(|p| p.0).collect();
            grid.iter().map(|w| pool.rank(w, 20, |i| novel && bought.contains(&i))).collect()
        })
        .collect();
    grid.iter()
        .enumerate()
        .map(|(g, w)| {
            let lists: Vec<Vec<u32>> = per_user.iter().map(|l| l[g].clone()).collect();
            (*w, evaluate(head, tail, &lists, protocol))
        })
        .max_by(|a, b| a.1.ndcg10.total_cmp(&b.1.ndcg10))
        .unwrap_or((Weights::default(), Metrics::default()))
}

/// Trains a model on `set` with blend weights learned on a time-based validation split.
pub fn train_with_learned_weights(set: &TrainingSet<'_>, cfg: &ModelConfig, progress: &dyn Fn(&str)) -> Model {
    let (head, tail) = set.data.split_last(0.2);
    let head_set =
        TrainingSet { data: &head, attributes: set.attributes.clone(), store_region: set.store_region.clone() };
    let validation = Model::train(&head_set, cfg, &|m| progress(&format!("validation model: {m}")));
    progress("learning blend weights");
    let (repeats, repeats_metrics) = search(&validation, &head, &tail, Protocol::Repeats);
    let (novel, novel_metrics) = search(&validation, &head, &tail, Protocol::Novel);
    drop(validation);
    let mut model = Model::train(set, cfg, progress);
    model.weights = Weights { ..repeats };
    model.novel_weights = novel;
    model.validation = Some((repeats_metrics, novel_metrics));
    model
}
