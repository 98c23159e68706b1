//! The serving model: every trained source in one versionable artifact, with the id maps that
//! connect it to the catalog and to profiles.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::als::{Als, AlsConfig};
use crate::content::{Content, ItemAttributes};
use crate::data::Dataset;
use crate::ease::{Ease, EaseConfig};
use crate::eval::Metrics;
use crate::knn::ItemKnn;
use crate::situation::Situations;

/// How much each source counts in the blend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Matrix factorization: the shopper's taste.
    pub als: f32,
    /// Neighbours of what they bought.
    pub knn: f32,
    /// What their whole history predicts (EASE).
    pub ease: f32,
    /// Neighbours of what they viewed or added in this session.
    pub session: f32,
    /// Bought together with the item or cart in view.
    pub together: f32,
    /// Items like the ones in view, by attributes and text.
    pub content: f32,
    /// Their own items, when due.
    pub repeat: f32,
    /// Popular at their store (or region, or overall).
    pub popularity: f32,
    /// Selling more than usual lately.
    pub trending: f32,
    /// Bought for the first time by many shoppers lately.
    pub catching_on: f32,
    /// Selling unusually well at this time of day, week and year.
    pub moment: f32,
    /// Lifted by the weather at their store.
    pub weather: f32,
    /// Best sellers of the categories they buy most.
    pub category: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            als: 1.0,
            knn: 0.5,
            ease: 1.0,
            session: 1.0,
            together: 1.0,
            content: 0.3,
            repeat: 2.0,
            popularity: 0.1,
            trending: 0.05,
            catching_on: 0.3,
            moment: 0.05,
            weather: 0.3,
            category: 0.3,
        }
    }
}

impl Weights {
    /// Every source at 0.
    pub fn zero() -> Weights {
        Weights {
            als: 0.0,
            knn: 0.0,
            ease: 0.0,
            session: 0.0,
            together: 0.0,
            content: 0.0,
            repeat: 0.0,
            popularity: 0.0,
            trending: 0.0,
            catching_on: 0.0,
            moment: 0.0,
            weather: 0.0,
            category: 0.0,
        }
    }
}

/// Training settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Matrix factorization.
    pub als: AlsConfig,
    /// Half-life (days) of a purchase's weight in the factorization, from the user's last
    /// purchase; 0 weighs every purchase the same.
    pub als_half_life: f64,
    /// Log-scale the factorization's confidences.
    pub als_log: bool,
    /// Basket-completion weights.
    pub ease: EaseConfig,
    /// Neighbours kept per item.
    pub knn_k: usize,
    /// Content neighbours kept per item.
    pub content_k: usize,
    /// Popularity half-life in days.
    pub popularity_half_life: f64,
    /// Repeat-score half-life in days.
    pub repeat_half_life: f64,
    /// How much an item's dueness lifts its repeat score (see [`crate::replenish::Habit::score`]).
    pub due_lift: f32,
    /// Items need this many buyers for ALS to score them (rarer items have noise for factors).
    pub min_buyers: usize,
    /// From this many ALS items on, ALS candidates come from an approximate index.
    #[serde(default = "default_ann_min_items")]
    pub ann_min_items: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            als: AlsConfig::default(),
            als_half_life: 0.0,
            als_log: false,
            ease: EaseConfig::default(),
            knn_k: 100,
            content_k: 30,
            popularity_half_life: 30.0,
            repeat_half_life: 180.0,
            due_lift: 0.0,
            min_buyers: 2,
            ann_min_items: default_ann_min_items(),
        }
    }
}

/// The layout version of stored model artifacts. Bump it whenever [`Model`] changes shape: a
/// server that finds another version serves without the model and retrains in the background.
pub const FORMAT_VERSION: u32 = 3;

/// The first bytes of every artifact since format 2 (format 1 had no header).
const ARTIFACT_MAGIC: &[u8; 4] = b"TLRM";

/// The format version of an artifact: 1 for the headerless artifacts of the first format.
pub fn artifact_format(bytes: &[u8]) -> u32 {
    match bytes.get(..8) {
        Some(head) if &head[..4] == ARTIFACT_MAGIC => u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
        _ => 1,
    }
}

/// Why a stored artifact cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// It was written in another format version (an older or newer Tailor).
    #[error("the model artifact has format {found}, this version reads format {FORMAT_VERSION}: it will be retrained")]
    Format {
        /// The artifact's format version.
        found: u32,
    },
    /// The bytes do not decode.
    #[error("cannot decode the model: {0}")]
    Corrupt(String),
}

/// Items ranked by a score in 0–1, best first.
pub type Ranked = Vec<(u32, f32)>;

/// Everything the recommender needs at serving time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// External item ids by index.
    pub items: Vec<String>,
    /// Index of each item id.
    pub item_index: HashMap<String, u32>,
    /// External user ids (profile ids) by index.
    pub users: Vec<String>,
    /// Index of each user id.
    pub user_index: HashMap<String, u32>,
    /// Settings it was trained with.
    pub config: ModelConfig,
    /// Matrix factorization.
    pub als: Als,
    /// Items ALS scores (enough buyers), ascending.
    pub als_items: Vec<u32>,
    /// Approximate top-k over `als_items` when there are at least `config.ann_min_items`.
    #[serde(default)]
    pub als_index: Option<crate::ann::Ivf>,
    /// Item neighbours by co-purchase.
    pub knn: ItemKnn,
    /// What each item's purchase predicts, learned from whole histories.
    pub ease: Ease,
    /// Recent popularity overall.
    pub popularity: Ranked,
    /// Recent popularity per item (dense, unnormalized), for tie-breaks and weather lists.
    pub popularity_dense: Vec<f32>,
    /// Per item, the share of its buyers who bought it again on another day (smoothed).
    pub repeat_rate: Vec<f32>,
    /// Every item, most popular first: the fill when sources run short.
    pub popularity_order: Vec<u32>,
    /// Popular per store.
    pub by_store: HashMap<String, Ranked>,
    /// Popular per region.
    pub by_region: HashMap<String, Ranked>,
    /// Region of each store.
    pub store_region: HashMap<String, String>,
    /// Selling more than usual in the last two weeks.
    pub trending: Ranked,
    /// Most first-time buyers in the last [`CATCHING_ON_DAYS`] days: what shoppers are
    /// discovering, the best prior for items new to someone (the fallback of
    /// [`Model::catching_on_at`] for models stored before the weekly lists).
    pub catching_on: Ranked,
    /// Catching on around each week (from `catching_on_from`, unix seconds): the items with most
    /// first-time buyers within half of [`CATCHING_ON_DAYS`] either side of it. Offline lists
    /// asked at a past time see what was catching on then, so the blend learns its weight on
    /// validation as it will be used.
    #[serde(default)]
    pub catching_on_weekly: Vec<Ranked>,
    /// The start of the first week of `catching_on_weekly`.
    #[serde(default)]
    pub catching_on_from: i64,
    /// Per category (index of `content.categories`): its items by recent popularity, 0–1.
    pub by_category: Vec<Ranked>,
    /// Display title per item (empty when the catalog does not know it).
    pub titles: Vec<String>,
    /// Content neighbours, categories and brands.
    pub content: Content,
    /// Time and weather lists.
    pub situations: Situations,
    /// Blend weights when the shopper's own items may appear.
    pub weights: Weights,
    /// Blend weights for discovery (items they never bought).
    pub novel_weights: Weights,
    /// Items bought in the same baskets, for the cart surface.
    pub cooccurrence: crate::cart::Cooccurrence,
    /// Blend weights of the cart surface's features.
    pub cart_weights: crate::cart::CartWeights,
    /// Validation metrics of the cart weights (HR@10 in `hr10`, NDCG@10 in `ndcg10`), when learned.
    pub cart_validation: Option<Metrics>,
    /// Validation metrics of the learned weights (repeats, novel), when learned.
    pub validation: Option<(Metrics, Metrics)>,
    /// Time of the newest interaction (unix seconds): "now" for the data.
    pub data_until: i64,
}

impl Model {
    /// What was catching on around time `t` (unix seconds).
    pub fn catching_on_at(&self, t: i64) -> &Ranked {
        if self.catching_on_weekly.is_empty() {
            return &self.catching_on;
        }
        let w = (t - self.catching_on_from).div_euclid(WEEK).clamp(0, self.catching_on_weekly.len() as i64 - 1);
        &self.catching_on_weekly[w as usize]
    }
}

fn default_ann_min_items() -> usize {
    50_000
}

/// What a model is trained on.
pub struct TrainingSet<'a> {
    /// Interactions (users are profile ids; rows may name a store).
    pub data: &'a Dataset,
    /// Attributes per item of `data.items` (None when the catalog does not know it).
    pub attributes: Vec<Option<ItemAttributes>>,
    /// Region of each store, when known.
    pub store_region: HashMap<String, String>,
}

/// The window of [`Model::catching_on`].
pub const CATCHING_ON_DAYS: i64 = 60;

/// Items kept in popularity lists.
const KEEP: usize = 500;

const WEEK: i64 = 7 * 86_400;
/// Weeks of catching-on lists kept (older queries use the oldest).
const CATCHING_ON_WEEKS: i64 = 104;

/// Per week up to `now`, the items with most first-time buyers (`firsts`: item, time of a
/// user's first purchase of it) within half of [`CATCHING_ON_DAYS`] either side of the week.
fn catching_on_by_week(firsts: impl Iterator<Item = (u32, i64)>, n: usize, now: i64) -> (Vec<Ranked>, i64) {
    let from = now - (CATCHING_ON_WEEKS - 1) * WEEK;
    let mut weekly: Vec<Vec<u32>> = vec![Vec::new(); CATCHING_ON_WEEKS as usize];
    let mut earliest = now;
    for (item, t) in firsts {
        let w = (t - from).div_euclid(WEEK);
        if (0..CATCHING_ON_WEEKS).contains(&w) {
            weekly[w as usize].push(item);
            earliest = earliest.min(t);
        }
    }
    let first_week = ((earliest - from).div_euclid(WEEK)).clamp(0, CATCHING_ON_WEEKS - 1) as usize;
    let half = (CATCHING_ON_DAYS * 86_400 / 2 / WEEK) as usize;
    let mut window = vec![0f32; n];
    let mut lists = Vec::new();
    let last = weekly.len() - 1;
    // The window around week `first_week` holds weeks [w − half, w + half]; slide it forward.
    for week in &weekly[first_week.saturating_sub(half)..=(first_week + half).min(last)] {
        week.iter().for_each(|i| window[*i as usize] += 1.0);
    }
    for w in first_week..=last {
        if w > first_week {
            if let Some(out) = (w - 1).checked_sub(half) {
                weekly[out].iter().for_each(|i| window[*i as usize] -= 1.0);
            }
            if w + half <= last {
                weekly[w + half].iter().for_each(|i| window[*i as usize] += 1.0);
            }
        }
        lists.push(ranked(window.iter().copied().enumerate().map(|(i, a)| (i as u32, a))));
    }
    (lists, from + first_week as i64 * WEEK)
}

fn ranked(scores: impl Iterator<Item = (u32, f32)>) -> Ranked {
    let mut v: Ranked = scores.filter(|x| x.1 > 0.0).collect();
    v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(KEEP);
    v.shrink_to_fit();
    let max = v.first().map_or(1.0, |x| x.1).max(1e-9);
    v.iter_mut().for_each(|x| x.1 /= max);
    v
}

/// Per item: (buyers who bought it on two days or more + 1) / (buyers + 4).
fn repeat_rates(data: &Dataset) -> Vec<f32> {
    let mut days: HashMap<(u32, u32), (i64, bool)> = HashMap::new();
    for r in &data.rows {
        let d = r.ts.div_euclid(86_400);
        let e = days.entry((r.user, r.item)).or_insert((d, false));
        if e.0 != d {
            e.1 = true;
        }
    }
    let (mut buyers, mut again) = (vec![0f32; data.items.len()], vec![0f32; data.items.len()]);
    for ((_, i), (_, twice)) in days {
        buyers[i as usize] += 1.0;
        if twice {
            again[i as usize] += 1.0;
        }
    }
    buyers.iter().zip(&again).map(|(b, a)| (a + 1.0) / (b + 4.0)).collect()
}

impl Model {
    /// Trains every source with fixed default weights (see [`crate::learn`] to learn them).
    ///
    /// Longer than most functions on purpose: one short step per source, each feeding the
    /// `Model` literal at the end, so the whole recipe reads top to bottom in one place.
    pub fn train(set: &TrainingSet<'_>, cfg: &ModelConfig, progress: &dyn Fn(&str)) -> Model {
        let data = set.data;
        let n = data.items.len();
        let now = data.rows.iter().map(|r| r.ts).max().unwrap_or(0);
        let counts = data.counts();
        progress("matrix factorization");
        let confidences = data.confidences((cfg.als_half_life > 0.0).then_some(cfg.als_half_life), cfg.als_log);
        let als = Als::train(&confidences, n, &cfg.als, &|_| {});
        drop(confidences);
        let mut buyers = vec![0usize; n];
        for u in 0..counts.rows() {
            counts.row(u).for_each(|(i, _)| buyers[i as usize] += 1);
        }
        let als_items: Vec<u32> = (0..n as u32).filter(|&i| buyers[i as usize] >= cfg.min_buyers).collect();
        let als_index = (als_items.len() >= cfg.ann_min_items).then(|| {
            progress("approximate index");
            crate::ann::Ivf::build(&als.item_factors, als.k, &als_items)
        });
        progress("item neighbours");
        let knn = ItemKnn::train(&counts, n, cfg.knn_k, None);
        progress("basket weights");
        let ease = Ease::train(&counts, n, &cfg.ease);
        progress("baskets");
        let cooccurrence = crate::cart::Cooccurrence::count(data);
        progress("content neighbours");
        let content = Content::build(&set.attributes, cfg.content_k);
        progress("popularity");
        // One vote per user, item and day, decayed by age.
        let mut seen = std::collections::HashSet::new();
        let mut pop = vec![0f32; n];
        let mut store_pop: HashMap<u32, HashMap<u32, f32>> = HashMap::new();
        let mut recent = vec![0f32; n];
        let mut before = vec![0f32; n];
        for r in &data.rows {
            if !seen.insert((r.user, r.item, r.ts.div_euclid(86_400))) {
                continue;
            }
            let age_days = (now - r.ts) as f64 / 86_400.0;
            let w = 0.5f64.powf(age_days / cfg.popularity_half_life) as f32;
            pop[r.item as usize] += w;
            if r.store != crate::data::NO_STORE {
                *store_pop.entry(r.store).or_default().entry(r.item).or_default() += w;
            }
            if age_days < 14.0 {
                recent[r.item as usize] += 1.0;
            } else if age_days < 70.0 {
                before[r.item as usize] += 1.0;
            }
        }
        let trending = ranked((0..n).map(|i| {
            let expected = before[i] / 4.0;
            (i as u32, ((recent[i] - expected) / (expected + 5.0).sqrt()).max(0.0))
        }));
        let mut first: HashMap<(u32, u32), i64> = HashMap::new();
        for r in &data.rows {
            let t = first.entry((r.user, r.item)).or_insert(r.ts);
            *t = (*t).min(r.ts);
        }
        let mut adopters = vec![0f32; n];
        first.values().zip(first.keys()).filter(|(t, _)| now - **t < CATCHING_ON_DAYS * 86_400).for_each(|(_, k)| {
            adopters[k.1 as usize] += 1.0;
        });
        let (catching_on_weekly, catching_on_from) = catching_on_by_week(first.iter().map(|(k, t)| (k.1, *t)), n, now);
        drop(first);
        let catching_on = ranked(adopters.into_iter().enumerate().map(|(i, a)| (i as u32, a)));
        let mut by_store = HashMap::new();
        let mut region_pop: HashMap<String, HashMap<u32, f32>> = HashMap::new();
        for (s, scores) in &store_pop {
            let name = data.stores[*s as usize].clone();
            if let Some(region) = set.store_region.get(&name) {
                let r = region_pop.entry(region.clone()).or_default();
                scores.iter().for_each(|(i, w)| *r.entry(*i).or_default() += w);
            }
            by_store.insert(name, ranked(scores.iter().map(|(i, w)| (*i, *w))));
        }
        let by_region = region_pop.into_iter().map(|(r, s)| (r, ranked(s.into_iter()))).collect();
        progress("time and weather");
        let situations = Situations::learn(data.rows.iter().map(|r| (r.item, r.ts)), n, &pop, &content);
        let repeat_rate = repeat_rates(data);
        let mut popularity_order: Vec<u32> = (0..n as u32).collect();
        popularity_order.sort_by(|a, b| pop[*b as usize].total_cmp(&pop[*a as usize]).then(a.cmp(b)));
        let mut per_category: Vec<Vec<(u32, f32)>> = vec![Vec::new(); content.categories.len()];
        for (i, &c) in content.category.iter().enumerate() {
            if let Some(list) = per_category.get_mut(c as usize) {
                list.push((i as u32, pop[i]));
            }
        }
        let by_category = per_category.into_iter().map(|l| ranked(l.into_iter())).collect();
        let titles =
            (0..n).map(|i| set.attributes.get(i).cloned().flatten().map(|a| a.title).unwrap_or_default()).collect();
        Model {
            by_category,
            titles,
            repeat_rate,
            popularity_order,
            items: data.items.clone(),
            item_index: data.item_index.clone(),
            users: data.users.clone(),
            user_index: data.user_index.clone(),
            config: *cfg,
            als,
            als_items,
            als_index,
            knn,
            ease,
            popularity: ranked(pop.iter().copied().enumerate().map(|(i, w)| (i as u32, w))),
            popularity_dense: pop,
            by_store,
            by_region,
            store_region: set.store_region.clone(),
            trending,
            catching_on,
            catching_on_weekly,
            catching_on_from,
            content,
            situations,
            weights: Weights::default(),
            novel_weights: Weights { repeat: 0.0, ..Weights::default() },
            cooccurrence,
            cart_weights: crate::cart::CartWeights::default(),
            cart_validation: None,
            validation: None,
            data_until: now,
        }
    }

    /// The artifact's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(ARTIFACT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        postcard::to_io(self, &mut out).map_err(|e| format!("cannot encode the model: {e}"))?;
        Ok(out)
    }

    /// Forgets erased customers: their ids leave the model and their learned vectors are
    /// zeroed, so neither the serving model nor its artifact holds them. Returns how many it
    /// held. Item-side statistics (popularity, neighbours) are anonymous aggregates and stay.
    pub fn forget_users(&mut self, ids: &[String]) -> usize {
        let mut n = 0;
        let k = self.als.k;
        for id in ids {
            let Some(u) = self.user_index.remove(id) else { continue };
            n += 1;
            if let Some(name) = self.users.get_mut(u as usize) {
                name.clear();
            }
            let from = u as usize * k;
            if let Some(row) = self.als.user_factors.get_mut(from..from + k) {
                row.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        n
    }

    /// A stored artifact with erased customers forgotten: `Ok(Some(bytes))` to store in its
    /// place, `Ok(None)` when it holds none of them (or cannot be written again), and an error
    /// when it cannot be read at all, so it may hold them and can never be served: it goes.
    pub fn forget_in_artifact(bytes: &[u8], ids: &[String]) -> Result<Option<Vec<u8>>, ArtifactError> {
        let mut model = Model::from_bytes(bytes)?;
        Ok((model.forget_users(ids) > 0).then(|| model.to_bytes().ok()).flatten())
    }

    /// A model from its artifact's bytes; an artifact of another format version is an
    /// [`ArtifactError::Format`], which callers answer by retraining, not by failing.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ArtifactError> {
        let found = artifact_format(bytes);
        if found != FORMAT_VERSION {
            return Err(ArtifactError::Format { found });
        }
        postcard::from_bytes(&bytes[8..]).map_err(|e| ArtifactError::Corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_name_their_format_and_the_first_format_is_recognized() {
        assert_eq!(artifact_format(b"\x01\x02\x03"), 1);
        assert_eq!(artifact_format(b"TLRM\x02\x00\x00\x00rest"), 2);
        assert!(matches!(
            Model::from_bytes(b"\x05\x01\x02\x03\x04\x05\x06\x07"),
            Err(ArtifactError::Format { found: 1 })
        ));
        assert!(matches!(Model::from_bytes(b"TLRM\x03\x00\x00\x00"), Err(ArtifactError::Corrupt(_))));
    }

    #[test]
    fn forgetting_in_an_artifact_rewrites_only_one_that_holds_the_person() {
        let bytes = crate::testing::small_model().to_bytes().expect("bytes");
        let ids = vec!["c1".to_string()];
        let rewritten = Model::forget_in_artifact(&bytes, &ids).expect("readable").expect("it held c1");
        let model = Model::from_bytes(&rewritten).expect("model");
        assert!(!model.user_index.contains_key("c1") && !model.users.contains(&"c1".to_string()));
        assert!(model.user_index.contains_key("c2"));
        assert_eq!(Model::forget_in_artifact(&rewritten, &ids).expect("readable"), None, "nothing left to forget");
        assert!(Model::forget_in_artifact(&bytes[8..], &ids).is_err(), "an old format cannot be read, so it goes");
    }

    #[test]
    fn catching_on_follows_the_time_of_the_question() {
        let now = 1_000 * WEEK;
        // Item 0 is adopted by many shoppers 30 weeks ago, item 1 in the last weeks.
        let firsts = (0..20)
            .map(|u| (0u32, now - 30 * WEEK + u))
            .chain((0..10).map(|u| (1u32, now - WEEK + u)))
            .chain(std::iter::once((2u32, now - 60 * WEEK)));
        let (weekly, from) = catching_on_by_week(firsts, 3, now);
        let at = |t: i64| {
            let w = (t - from).div_euclid(WEEK).clamp(0, weekly.len() as i64 - 1) as usize;
            weekly[w].first().map(|x| x.0)
        };
        assert_eq!(at(now - 30 * WEEK), Some(0), "then, item 0 was catching on");
        assert_eq!(at(now), Some(1), "now, item 1 is");
        assert_eq!(at(now - 60 * WEEK), Some(2));
        assert_eq!(at(now - 200 * WEEK), Some(2), "before the first week: the oldest list");
    }
}
