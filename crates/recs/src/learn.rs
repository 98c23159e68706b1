//! Learning the blend: the sources are trained on each user's first 80% of the training rows,
//! and weights are tuned (coordinate ascent) to rank their last 20% best by NDCG@10 — once for
//! discovery (items never bought) and once for lists where their own items may appear.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::cart::{cart_cases, CartCase, CartWeights, FEATURES};
use crate::data::Dataset;
use crate::eval::{evaluate, Metrics, Protocol};
use crate::model::{Model, ModelConfig, TrainingSet, Weights};
use crate::recommend::{Query, Rules, Shopper, Source, Surface, SOURCES};
use crate::topk::top_k;

/// The shopper and query of user `u` for offline lists: their purchases so far, asked at the
/// time of their last one.
pub fn offline_request(u: usize, purchases: &[(u32, i64)], known: bool, k: usize, novel: bool) -> (Shopper, Query) {
    let now = purchases.last().map_or(0, |p| p.1);
    let shopper = Shopper {
        user: known.then_some(u as u32),
        purchases: purchases.to_vec().into(),
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
        kind: None,
    };
    (shopper, query)
}

/// One validation user's candidates: per-source scores, and which are relevant.
struct Case {
    parts: Vec<[f32; SOURCES]>,
    relevant: Vec<bool>,
    idcg: f64,
}

/// Validation users sampled at most (evenly), to bound time and memory on large customer bases.
const MAX_USERS: usize = 4000;

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 2) as f64).log2()
}

/// Mean NDCG@10 of `cases` under weights `w`.
fn mean_ndcg(cases: &[Case], w: &Weights) -> f64 {
    let wv = Source::vector(w);
    let total: f64 = cases
        .par_iter()
        .map(|c| {
            let scores: Vec<f32> = c.parts.iter().map(|p| p.iter().zip(&wv).map(|(a, b)| a * b).sum::<f32>()).collect();
            let top = top_k(&scores, 10, |i| scores[i] <= 0.0);
            let dcg: f64 =
                top.iter().enumerate().filter(|(_, (i, _))| c.relevant[*i as usize]).map(|(r, _)| discount(r)).sum();
            dcg / c.idcg
        })
        .sum();
    total / cases.len().max(1) as f64
}

/// One tunable weight: how to reach it and the values tried.
type Dimension = (fn(&mut Weights) -> &mut f32, &'static [f32]);

/// The values tried per weight.
fn dimensions(protocol: Protocol) -> Vec<Dimension> {
    let mut d: Vec<Dimension> = vec![
        (|w| &mut w.als, &[0.0, 0.1, 0.25, 0.5, 1.0, 2.0]),
        (|w| &mut w.knn, &[0.0, 0.1, 0.25, 0.5, 1.0, 2.0]),
        (|w| &mut w.ease, &[0.0, 0.25, 0.5, 1.0, 2.0, 4.0]),
        (|w| &mut w.popularity, &[0.0, 0.05, 0.1, 0.2, 0.4]),
        (|w| &mut w.trending, &[0.0, 0.02, 0.05, 0.1, 0.2]),
        (|w| &mut w.catching_on, &[0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0, 3.0]),
        (|w| &mut w.category, &[0.0, 0.1, 0.2, 0.4, 0.8]),
    ];
    if protocol == Protocol::Repeats {
        d.push((|w| &mut w.repeat, &[0.5, 1.0, 2.0, 4.0, 8.0, 16.0]));
    }
    d
}

/// The relative validation gain a change of weights must bring to be kept: small gains on one
/// split are mostly noise, and a simpler blend carries over better to the next weeks.
const MIN_GAIN: f64 = 0.005;

/// Coordinate ascent over [`dimensions`] from several starts (the defaults, and each main
/// source alone, since a blend can sit in a local optimum), until a round changes nothing.
fn tune(cases: &[Case], protocol: Protocol) -> Weights {
    let repeat = if protocol == Protocol::Repeats { 2.0 } else { 0.0 };
    let base = Weights { repeat, moment: 0.0, ..Weights::default() };
    // Fixed, not tuned: they only act on live requests (session, cart, weather).
    let live = Weights {
        session: base.session,
        together: base.together,
        content: base.content,
        weather: base.weather,
        ..Weights::zero()
    };
    let starts = [
        base,
        Weights { als: 1.0, repeat, ..live },
        Weights { ease: 1.0, repeat, ..live },
        Weights { knn: 1.0, repeat, ..live },
    ];
    let mut best = (base, f64::MIN);
    for start in starts {
        let (mut w, mut score) = (start, mean_ndcg(cases, &start));
        for _ in 0..4 {
            let before = score;
            for (field, values) in dimensions(protocol) {
                for &v in values {
                    let mut candidate = w;
                    *field(&mut candidate) = v;
                    let s = mean_ndcg(cases, &candidate);
                    if s > score * (1.0 + MIN_GAIN) {
                        (w, score) = (candidate, s);
                    }
                }
            }
            if score <= before {
                break;
            }
        }
        if score > best.1 {
            best = (w, score);
        }
    }
    best.0
}

/// Tuned weights for both protocols on `head` → `tail`, with their metrics.
fn search(model: &Model, head: &Dataset, tail: &Dataset) -> [(Weights, Metrics); 2] {
    let purchases = head.purchases_by_user();
    let vocab: HashSet<u32> = head.rows.iter().map(|r| r.item).collect();
    let mut tail_items: Vec<HashSet<u32>> = vec![HashSet::new(); head.users.len()];
    tail.rows.iter().filter(|r| vocab.contains(&r.item)).for_each(|r| {
        tail_items[r.user as usize].insert(r.item);
    });
    let wanted: Vec<usize> =
        (0..head.users.len()).filter(|&u| !tail_items[u].is_empty() && !purchases[u].is_empty()).collect();
    let stride = wanted.len().div_ceil(MAX_USERS).max(1);
    let sample: Vec<usize> = wanted.into_iter().step_by(stride).collect();
    let in_sample: HashSet<usize> = sample.iter().copied().collect();
    let mut sampled_tail = tail.clone_empty();
    sampled_tail.rows = tail.rows.iter().filter(|r| in_sample.contains(&(r.user as usize))).copied().collect();
    let cases: Vec<(Option<Case>, Option<Case>)> = sample
        .par_iter()
        .map(|&u| {
            let bought: HashSet<u32> = purchases[u].iter().map(|p| p.0).collect();
            let case = |novel: bool| {
                let rel: HashSet<u32> =
                    tail_items[u].iter().copied().filter(|i| !novel || !bought.contains(i)).collect();
                if rel.is_empty() {
                    return None;
                }
                // Sources pick differently for discovery, so each protocol gets its own pool.
                let (shopper, query) = offline_request(u, &purchases[u], true, 20, novel);
                let pool = model.pool(&shopper, &query);
                let keep: Vec<usize> =
                    (0..pool.items.len()).filter(|&c| !novel || !bought.contains(&pool.items[c])).collect();
                Some(Case {
                    parts: keep.iter().map(|&c| pool.parts()[c]).collect(),
                    relevant: keep.iter().map(|&c| rel.contains(&pool.items[c])).collect(),
                    idcg: (0..rel.len().min(10)).map(discount).sum(),
                })
            };
            (case(false), case(true))
        })
        .collect();
    let (repeats, novel): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let mut out = Vec::new();
    for (cases, protocol) in [(repeats, Protocol::Repeats), (novel, Protocol::Novel)] {
        let cases: Vec<Case> = cases.into_iter().flatten().collect();
        let w = tune(&cases, protocol);
        drop(cases);
        // Report the tuned weights with the reference metrics through the serving path.
        let lists: Vec<Vec<u32>> = (0..head.users.len())
            .into_par_iter()
            .map(|u| {
                if !in_sample.contains(&u) {
                    return Vec::new();
                }
                let (shopper, query) = offline_request(u, &purchases[u], true, 20, protocol == Protocol::Novel);
                let answer = model.recommend_weighted(&shopper, &query, &Rules::default(), &w);
                answer.items.into_iter().map(|r| r.item).collect()
            })
            .collect();
        out.push((w, evaluate(head, &sampled_tail, &lists, protocol)));
    }
    [out[0], out[1]]
}

/// Validation carts drawn from the validation period, at most.
const CART_CASES: usize = 3000;
/// The seed of the validation carts (so a retrain on the same data learns the same weights).
const CART_SEED: u64 = 20_261_130;

/// One validation cart's candidates: features, items (for ties) and where the hidden item is.
struct CartRanking {
    features: Vec<[f32; FEATURES]>,
    items: Vec<u32>,
    hidden: Option<usize>,
}

/// The features of `cases` under `model`, with each shopper's history before the case.
fn cart_rankings(model: &Model, cases: &[CartCase], purchases: &[Vec<(u32, i64)>]) -> Vec<CartRanking> {
    cases
        .par_iter()
        .map(|case| {
            let history: Vec<(u32, i64)> =
                purchases[case.user as usize].iter().copied().filter(|p| p.1 < case.ts).collect();
            let shopper =
                Shopper { user: Some(case.user), purchases: history.into(), personal: true, ..Shopper::default() };
            let c = model.cart_candidates(&shopper, &case.cart);
            let hidden = c.items.iter().position(|i| *i == case.hidden);
            CartRanking { features: c.features, items: c.items, hidden }
        })
        .collect()
}

/// HR@10 and NDCG@10 of `rankings` under `w` (ties go to the smaller item, as in serving).
fn cart_metrics(rankings: &[CartRanking], w: &CartWeights) -> Metrics {
    let wv = w.vector();
    let score = |f: &[f32; FEATURES]| f.iter().zip(&wv).map(|(a, b)| a * b).sum::<f32>();
    let (hits, gain): (f64, f64) = rankings
        .par_iter()
        .map(|r| {
            let Some(h) = r.hidden else { return (0.0, 0.0) };
            let hs = score(&r.features[h]);
            if hs <= 0.0 {
                return (0.0, 0.0);
            }
            let ahead = (0..r.items.len())
                .filter(|&c| {
                    let s = score(&r.features[c]);
                    s > hs || (s == hs && r.items[c] < r.items[h])
                })
                .take(10)
                .count();
            if ahead < 10 {
                (1.0, discount(ahead))
            } else {
                (0.0, 0.0)
            }
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let n = rankings.len().max(1) as f64;
    Metrics { scored_users: rankings.len(), hr10: hits / n, ndcg10: gain / n, ..Metrics::default() }
}

/// The cart weights that complete `head`'s later baskets (from `tail`) best, by coordinate
/// ascent on NDCG@10 from the defaults, with their validation metrics.
fn tune_cart(model: &Model, head: &Dataset, tail: &Dataset) -> (CartWeights, Metrics) {
    let cases = cart_cases(head, tail, CART_CASES, CART_SEED);
    let rankings = cart_rankings(model, &cases, &head.purchases_by_user());
    let values = [0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6];
    let mut w = CartWeights::default();
    let mut best = cart_metrics(&rankings, &w).ndcg10;
    for _ in 0..4 {
        let before = best;
        for f in 0..FEATURES {
            for v in values {
                let mut candidate = w;
                *candidate.slot(f) = v;
                let s = cart_metrics(&rankings, &candidate).ndcg10;
                if s > best * (1.0 + MIN_GAIN) {
                    (w, best) = (candidate, s);
                }
            }
        }
        if best <= before {
            break;
        }
    }
    (w, cart_metrics(&rankings, &w))
}

/// Trains a model on `set` with blend weights learned on a time-based validation split.
pub fn train_with_learned_weights(set: &TrainingSet<'_>, cfg: &ModelConfig, progress: &dyn Fn(&str)) -> Model {
    let (head, tail) = set.data.split_last(0.2);
    let head_set =
        TrainingSet { data: &head, attributes: set.attributes.clone(), store_region: set.store_region.clone() };
    let validation = Model::train(&head_set, cfg, &|m| progress(&format!("validation model: {m}")));
    progress("learning blend weights");
    let [(repeats, repeats_metrics), (novel, novel_metrics)] = search(&validation, &head, &tail);
    progress("learning cart weights");
    let (cart, cart_metrics) = tune_cart(&validation, &head, &tail);
    drop(validation);
    let mut model = Model::train(set, cfg, progress);
    model.weights = repeats;
    model.novel_weights = novel;
    model.validation = Some((repeats_metrics, novel_metrics));
    model.cart_weights = cart;
    model.cart_validation = Some(cart_metrics);
    model
}
