//! The cart surface ("complete the basket"): what else goes in this basket. Candidates come from
//! the shopper's own baskets (their frequent and recent items, and above all the items of their
//! past baskets that look like this cart), from complements counted over all baskets with their
//! popularity damped (confidence, confidence over √popularity, lift with support), from EASE
//! conditioned on the cart, and from popularity. Each feature is scaled to [0, 1] over the
//! candidates and blended with [`CartWeights`], learned on validation carts built from the train
//! period (see [`crate::learn`]).

// Fx hashing: these maps of item numbers are built on every request, where SipHash showed.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::model::{Model, Weights};
use crate::pool::{Pool, NONE};
use crate::recommend::{Shopper, Source};
use crate::replenish::habits;

/// Baskets larger than this (a stock-up, a business buying) say little about what goes together.
const MAX_BASKET: usize = 60;
/// Complements kept per item.
const KEEP_TOGETHER: usize = 150;
/// Complements need at least this many shared baskets.
const MIN_TOGETHER: u32 = 2;
/// Lift needs this much support to count (fewer shared baskets make lift noise).
const MIN_LIFT_SUPPORT: u32 = 3;
/// Half-life (days) of the "recently bought" feature, from the shopper's last basket.
const RECENT_HALF_LIFE_DAYS: f64 = 60.0;
/// Popular items considered as candidates.
const POPULAR: usize = 100;
/// EASE candidates conditioned on the cart.
const EASE_CANDIDATES: usize = 200;

/// Items bought in the same baskets, counted over all baskets of the training data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cooccurrence {
    /// Baskets counted (one shopper's lines at one time).
    pub baskets: u32,
    /// Baskets holding each item.
    pub freq: Vec<u32>,
    /// Per item, the items in at least [`MIN_TOGETHER`] of its baskets with that count,
    /// strongest by count / √(their popularity) first.
    pub together: Vec<Vec<(u32, u32)>>,
}

/// The baskets of `data`: each shopper's distinct items at one timestamp, as (user, time, items).
pub fn baskets(data: &Dataset) -> Vec<(u32, i64, Vec<u32>)> {
    let mut rows: Vec<(u32, i64, u32)> = data.rows.iter().map(|r| (r.user, r.ts, r.item)).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut out: Vec<(u32, i64, Vec<u32>)> = Vec::new();
    for (u, ts, i) in rows {
        match out.last_mut() {
            Some(last) if last.0 == u && last.1 == ts => last.2.push(i),
            _ => out.push((u, ts, vec![i])),
        }
    }
    out
}

impl Cooccurrence {
    /// Counts the baskets of `data`.
    pub fn count(data: &Dataset) -> Cooccurrence {
        let n = data.items.len();
        let all = baskets(data);
        let mut freq = vec![0u32; n];
        let mut of_item: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (b, (_, _, items)) in all.iter().enumerate() {
            for &i in items {
                freq[i as usize] += 1;
                if items.len() <= MAX_BASKET {
                    of_item[i as usize].push(b as u32);
                }
            }
        }
        let together = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0u32; n], Vec::new()),
                |(acc, touched), a| {
                    for &b in &of_item[a] {
                        for &j in &all[b as usize].2 {
                            if j as usize != a {
                                if acc[j as usize] == 0 {
                                    touched.push(j);
                                }
                                acc[j as usize] += 1;
                            }
                        }
                    }
                    let mut row: Vec<(u32, u32)> = touched
                        .drain(..)
                        .map(|j: u32| (j, std::mem::take(&mut acc[j as usize])))
                        .filter(|x| x.1 >= MIN_TOGETHER)
                        .collect();
                    let key = |x: &(u32, u32)| x.1 as f32 / (freq[x.0 as usize].max(1) as f32).sqrt();
                    row.sort_unstable_by(|x, y| key(y).total_cmp(&key(x)).then(x.0.cmp(&y.0)));
                    row.truncate(KEEP_TOGETHER);
                    row.shrink_to_fit();
                    row
                },
            )
            .collect();
        Cooccurrence { baskets: all.len() as u32, freq, together }
    }
}

/// How much each cart feature counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CartWeights {
    /// Baskets of the shopper that held the item.
    pub own: f32,
    /// The same, each basket weighed by its age.
    pub recent: f32,
    /// Whether the shopper's usual interval for the item has passed.
    pub due: f32,
    /// Their past baskets that share items with this cart: Σ |basket ∩ cart| / √|basket|.
    pub with_cart: f32,
    /// The same, squared share of the cart: Σ (|basket ∩ cart| / |cart|)².
    pub with_cart_share: f32,
    /// Complements: Σ over cart items of P(item | cart item).
    pub confidence: f32,
    /// Complements with popular items damped: confidence / √(baskets with the item).
    pub damped: f32,
    /// Complements by lift (positive log lift, support ≥ 3).
    pub lift: f32,
    /// EASE conditioned on the cart.
    pub ease: f32,
    /// Popularity.
    pub popularity: f32,
}

/// How many cart features there are.
pub const FEATURES: usize = 10;

impl Default for CartWeights {
    /// Weights that did well on Complete Journey's validation carts; a trained model learns its own.
    fn default() -> Self {
        CartWeights {
            own: 0.1,
            recent: 0.8,
            due: 0.0,
            with_cart: 0.4,
            with_cart_share: 0.4,
            confidence: 0.4,
            damped: 0.8,
            lift: 0.8,
            ease: 0.0,
            popularity: 0.0,
        }
    }
}

impl CartWeights {
    /// The weights in feature order.
    pub fn vector(&self) -> [f32; FEATURES] {
        [
            self.own,
            self.recent,
            self.due,
            self.with_cart,
            self.with_cart_share,
            self.confidence,
            self.damped,
            self.lift,
            self.ease,
            self.popularity,
        ]
    }

    /// Weight `f` (feature order), for tuning.
    pub fn slot(&mut self, f: usize) -> &mut f32 {
        match f {
            0 => &mut self.own,
            1 => &mut self.recent,
            2 => &mut self.due,
            3 => &mut self.with_cart,
            4 => &mut self.with_cart_share,
            5 => &mut self.confidence,
            6 => &mut self.damped,
            7 => &mut self.lift,
            8 => &mut self.ease,
            _ => &mut self.popularity,
        }
    }
}

/// Which source explains a feature: the shopper's own items, complements, EASE or popularity.
const EXPLAINED_BY: [Source; FEATURES] = [
    Source::Repeat,
    Source::Repeat,
    Source::Repeat,
    Source::Repeat,
    Source::Repeat,
    Source::Together,
    Source::Together,
    Source::Together,
    Source::Ease,
    Source::Popularity,
];

/// The candidates of one cart with their features scaled to [0, 1], and the cart item behind
/// each complement.
#[derive(Debug, Default)]
pub struct CartCandidates {
    /// Candidate items.
    pub items: Vec<u32>,
    /// Their features, in [`CartWeights::vector`] order.
    pub features: Vec<[f32; FEATURES]>,
    /// The cart item that goes best with each ([`NONE`] when none does).
    because: Vec<u32>,
}

impl CartCandidates {
    /// Blended score of candidate `c`.
    pub fn score(&self, c: usize, w: &[f32; FEATURES]) -> f32 {
        self.features[c].iter().zip(w).map(|(f, w)| f * w).sum()
    }
}

impl Model {
    /// Every cart candidate of `shopper` (whose cart is `cart`), features scaled to [0, 1].
    /// Cart items themselves are never candidates; without consent the shopper's own baskets
    /// are not used.
    pub fn cart_candidates(&self, shopper: &Shopper, cart: &[u32]) -> CartCandidates {
        let in_cart: HashSet<u32> = cart.iter().copied().collect();
        let mut index: HashMap<u32, usize> = HashMap::default();
        let mut out = CartCandidates::default();
        let mut at = |out: &mut CartCandidates, item: u32| -> usize {
            *index.entry(item).or_insert_with(|| {
                out.items.push(item);
                out.features.push([0.0; FEATURES]);
                out.because.push(NONE);
                out.items.len() - 1
            })
        };
        if shopper.personal && !shopper.purchases.is_empty() {
            let mut own: Vec<(i64, Vec<u32>)> = Vec::new();
            let mut sorted = shopper.purchases.to_vec();
            sorted.sort_unstable_by_key(|p| (p.1, p.0));
            sorted.dedup();
            for (i, ts) in sorted {
                match own.last_mut() {
                    Some(last) if last.0 == ts => last.1.push(i),
                    _ => own.push((ts, vec![i])),
                }
            }
            let last = own.last().map_or(0, |b| b.0);
            let cart_len = in_cart.len().max(1) as f32;
            for (ts, basket) in &own {
                let overlap = basket.iter().filter(|i| in_cart.contains(i)).count() as f32;
                let age_days = (last - ts) as f64 / 86_400.0;
                let recent = 0.5f64.powf(age_days / RECENT_HALF_LIFE_DAYS) as f32;
                let root = (basket.len() as f32).sqrt();
                for &j in basket.iter().filter(|j| !in_cart.contains(j)) {
                    let c = at(&mut out, j);
                    let f = &mut out.features[c];
                    f[0] += 1.0;
                    f[1] += recent;
                    f[3] += overlap / root;
                    f[4] += (overlap / cart_len).powi(2);
                }
            }
            let now = shopper.purchases.iter().map(|p| p.1).max().unwrap_or(0);
            for h in habits(&shopper.purchases, now, self.config.repeat_half_life) {
                if h.due() && !in_cart.contains(&h.item) {
                    let c = at(&mut out, h.item);
                    out.features[c][2] = h.still_bought();
                }
            }
        }
        let co = &self.cooccurrence;
        let n = co.baskets.max(1) as f32;
        let freq = |i: u32| co.freq.get(i as usize).copied().unwrap_or(0).max(1) as f32;
        let mut best_with: HashMap<u32, f32> = HashMap::default();
        for &a in &in_cart {
            let fa = freq(a);
            for &(j, k) in co.together.get(a as usize).map_or(&[][..], Vec::as_slice) {
                if in_cart.contains(&j) {
                    continue;
                }
                let (k, fj) = (k as f32, freq(j));
                let c = at(&mut out, j);
                let f = &mut out.features[c];
                f[5] += k / fa;
                let damped = k / (fa * fj.sqrt());
                f[6] += damped;
                if k as u32 >= MIN_LIFT_SUPPORT {
                    f[7] += (k * n / (fa * fj)).ln().max(0.0);
                }
                let best = best_with.entry(j).or_insert(0.0);
                if damped > *best {
                    *best = damped;
                    out.because[c] = a;
                }
            }
        }
        if !in_cart.is_empty() {
            let cart_items: Vec<u32> = in_cart.iter().copied().collect();
            for (j, s, seed) in self.ease.recommend(&cart_items, EASE_CANDIDATES, |i| in_cart.contains(&i)) {
                let c = at(&mut out, j);
                out.features[c][8] = s;
                if out.because[c] == NONE {
                    out.because[c] = seed;
                }
            }
        }
        for &(j, p) in self.popularity.iter().filter(|(j, _)| !in_cart.contains(j)).take(POPULAR) {
            let c = at(&mut out, j);
            out.features[c][9] = p;
        }
        let mut max = [0f32; FEATURES];
        for f in &out.features {
            for (m, v) in max.iter_mut().zip(f) {
                *m = m.max(*v);
            }
        }
        for f in &mut out.features {
            for (v, m) in f.iter_mut().zip(&max) {
                if *m > 0.0 {
                    *v /= m;
                }
            }
        }
        out
    }

    /// The cart's candidates as a [`Pool`] whose sources carry the blended features (own items
    /// as [`Source::Repeat`], complements as [`Source::Together`], EASE, popularity), with the
    /// weights that rank it: the usual rules, diversity and explanations then apply.
    pub(crate) fn cart_pool(&self, shopper: &Shopper, cart: &[u32], now: i64) -> (Pool, Weights) {
        let cands = self.cart_candidates(shopper, cart);
        let w = self.cart_weights.vector();
        let mut pool = Pool::default();
        for (c, &item) in cands.items.iter().enumerate() {
            let mut parts = [0f32; crate::recommend::SOURCES];
            for (f, v) in cands.features[c].iter().enumerate() {
                parts[EXPLAINED_BY[f] as usize] += v * w[f];
            }
            for source in [Source::Repeat, Source::Together, Source::Ease, Source::Popularity] {
                let because = (source != Source::Repeat).then_some(cands.because[c]).filter(|b| *b != NONE);
                pool.add(source, item, parts[source as usize], because);
            }
        }
        if shopper.personal {
            pool.habits =
                shopper.habits_at(now, self.config.repeat_half_life).habits.iter().map(|h| (h.item, *h)).collect();
        }
        let weights = Weights { repeat: 1.0, together: 1.0, ease: 1.0, popularity: 1.0, ..Weights::zero() };
        (pool, weights)
    }
}

/// One cart to complete: a shopper's basket with one item hidden.
#[derive(Debug, Clone, PartialEq)]
pub struct CartCase {
    /// The shopper (user index).
    pub user: u32,
    /// What is in the cart.
    pub cart: Vec<u32>,
    /// The item hidden from it: the one to find.
    pub hidden: u32,
    /// When the basket was bought (unix seconds).
    pub ts: i64,
}

/// Cart cases the way `shared/bench/recs/cart.py cases` builds them: every basket of `later`
/// with at least 4 distinct items known to `known`, one of them hidden at random (seeded), at
/// most `max` of them (a seeded sample).
pub fn cart_cases(known: &Dataset, later: &Dataset, max: usize, seed: u64) -> Vec<CartCase> {
    use rand::{seq::SliceRandom, Rng, SeedableRng};
    let vocab: HashSet<u32> = known.rows.iter().map(|r| r.item).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out: Vec<CartCase> = baskets(later)
        .into_iter()
        .filter_map(|(user, ts, mut items)| {
            items.retain(|i| vocab.contains(i));
            (items.len() >= 4).then_some((user, ts, items))
        })
        .map(|(user, ts, mut items)| {
            let hidden = items.swap_remove(rng.gen_range(0..items.len()));
            items.sort_unstable();
            CartCase { user, cart: items, hidden, ts }
        })
        .collect();
    out.shuffle(&mut rng);
    out.truncate(max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{small_model, NOW};

    #[test]
    fn complements_are_counted_per_basket_and_exclude_the_item_itself() {
        let model = small_model();
        let idx = |id: &str| model.item_index[id];
        let co = &model.cooccurrence;
        // 10 shoppers × 6 weeks, one basket each.
        assert_eq!(co.baskets, 60);
        assert_eq!(co.freq[idx("bread") as usize], 60);
        let with_milk: HashMap<u32, u32> = co.together[idx("milk") as usize].iter().copied().collect();
        assert_eq!(with_milk.get(&idx("bread")), Some(&36));
        assert_eq!(with_milk.get(&idx("eggs")), Some(&18));
        assert!(!with_milk.contains_key(&idx("milk")) && !with_milk.contains_key(&idx("miso-soup")));
    }

    #[test]
    fn the_shoppers_own_baskets_like_this_cart_lead_and_cart_items_never_appear() {
        let model = small_model();
        let idx = |id: &str| model.item_index[id];
        // This shopper always buys miso soup with milk (no one else does).
        let purchases: Vec<(u32, i64)> = (0..5)
            .flat_map(|w| [(idx("milk"), NOW - w * 7 * 86_400), (idx("miso-soup"), NOW - w * 7 * 86_400)])
            .collect();
        let shopper = Shopper { purchases: purchases.into(), personal: true, ..Shopper::default() };
        let cands = model.cart_candidates(&shopper, &[idx("milk")]);
        assert!(!cands.items.contains(&idx("milk")));
        let w = model.cart_weights.vector();
        let rank_of = |c: &CartCandidates, item: u32| {
            let score = |i: u32| c.items.iter().position(|x| *x == i).map_or(0.0, |p| c.score(p, &w));
            c.items.iter().filter(|x| score(**x) > score(item)).count()
        };
        assert!(rank_of(&cands, idx("miso-soup")) < 3, "their own habit with milk is near the top");
        let anonymous = model.cart_candidates(&Shopper::default(), &[idx("milk")]);
        assert!(
            rank_of(&anonymous, idx("miso-soup")) > rank_of(&cands, idx("miso-soup")),
            "others do not buy it with milk"
        );
        let best =
            (0..anonymous.items.len()).max_by(|a, b| anonymous.score(*a, &w).total_cmp(&anonymous.score(*b, &w)));
        let best = best.map(|c| anonymous.items[c]);
        assert!(["bread", "eggs", "jam"].map(idx).contains(&best.unwrap_or(NONE)), "without them: what goes with milk");
    }
}
