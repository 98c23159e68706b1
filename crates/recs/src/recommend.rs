//! Serving: the candidate sources for one shopper on one surface, blended, filtered by the
//! business rules, diversified and explained.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{Model, Ranked, Weights};
use crate::replenish::{habits, Habit};
use crate::situation::{Moment, Weather};
use crate::topk::top_k;

/// Where the recommendations are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Surface {
    /// A shopper's home page or app start.
    Home,
    /// A product page: similar and complementary items.
    Item,
    /// The cart: complete the basket.
    Cart,
    /// A store associate serving the customer (clienteling).
    Associate,
    /// A campaign e-mail, read later.
    Email,
}

impl Surface {
    /// All surfaces.
    pub const ALL: [Surface; 5] = [Surface::Home, Surface::Item, Surface::Cart, Surface::Associate, Surface::Email];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Home => "home",
            Surface::Item => "item",
            Surface::Cart => "cart",
            Surface::Associate => "associate",
            Surface::Email => "email",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Surface> {
        Surface::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// A candidate source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// Matrix factorization.
    Als,
    /// Neighbours of what the shopper bought.
    Knn,
    /// What the shopper's whole history predicts.
    Ease,
    /// Neighbours of what they viewed or added in this session.
    Session,
    /// Bought together with the item or cart in view.
    Together,
    /// Similar by attributes and text.
    Content,
    /// Their own items, when due.
    Repeat,
    /// Popular at their store, region or overall.
    Popularity,
    /// Selling more than usual lately.
    Trending,
    /// Bought for the first time by many shoppers lately.
    CatchingOn,
    /// Selling unusually well at this time.
    Moment,
    /// Lifted by the weather at their store.
    Weather,
    /// Popular in the categories the shopper buys most.
    Category,
}

/// How many sources there are.
pub const SOURCES: usize = 13;

impl Source {
    /// All sources, in slot order.
    pub const ALL: [Source; SOURCES] = [
        Source::Als,
        Source::Knn,
        Source::Ease,
        Source::Session,
        Source::Together,
        Source::Content,
        Source::Repeat,
        Source::Popularity,
        Source::Trending,
        Source::CatchingOn,
        Source::Moment,
        Source::Weather,
        Source::Category,
    ];

    /// Whether the source uses the shopper's own data (and so needs personalization consent).
    pub fn personal(self) -> bool {
        matches!(self, Source::Als | Source::Knn | Source::Ease | Source::Session | Source::Repeat | Source::Category)
    }

    /// Every source's weight in `w`, in [`Source::ALL`] order.
    pub fn vector(w: &Weights) -> [f32; SOURCES] {
        Source::ALL.map(|s| s.weight(w))
    }

    fn weight(self, w: &Weights) -> f32 {
        match self {
            Source::Als => w.als,
            Source::Knn => w.knn,
            Source::Ease => w.ease,
            Source::Session => w.session,
            Source::Together => w.together,
            Source::Content => w.content,
            Source::Repeat => w.repeat,
            Source::Popularity => w.popularity,
            Source::Trending => w.trending,
            Source::CatchingOn => w.catching_on,
            Source::Moment => w.moment,
            Source::Weather => w.weather,
            Source::Category => w.category,
        }
    }
}

/// What the shopper did in the current session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Viewed a product.
    Viewed,
    /// Added it to the cart.
    Added,
}

/// What is known about the shopper right now.
#[derive(Debug, Clone, Default)]
pub struct Shopper {
    /// Their index in the model, when it was trained with them.
    pub user: Option<u32>,
    /// Their purchases (item, unix seconds), including those after training.
    pub purchases: Vec<(u32, i64)>,
    /// Recent views and adds (item, action, unix seconds), newest last.
    pub session: Vec<(u32, Action, i64)>,
    /// What is in their cart.
    pub cart: Vec<u32>,
    /// Whether they consented to personalization: without it only non-personal sources run.
    pub personal: bool,
}

/// What is asked.
#[derive(Debug, Clone)]
pub struct Query {
    /// Where the list is shown.
    pub surface: Surface,
    /// Items in view: the product of an item page, extra cart items.
    pub anchors: Vec<u32>,
    /// The store the shopper buys at (chosen or preferred).
    pub store: Option<String>,
    /// How many items.
    pub k: usize,
    /// Unix seconds.
    pub now: i64,
    /// The store's offset from UTC, for the time of day.
    pub utc_offset_secs: i64,
    /// The weather at the store.
    pub weather: Option<Weather>,
    /// Leave out items the shopper already bought (discovery).
    pub novel: bool,
}

/// A merchandiser's boost: scores of matching items are multiplied by `factor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boost {
    /// What it applies to.
    pub target: BoostTarget,
    /// Score multiplier (above 1 lifts, below 1 buries).
    pub factor: f32,
}

/// What a boost applies to (model indexes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoostTarget {
    /// One item.
    Item(u32),
    /// Every item of a category.
    Category(u32),
    /// Every item of a brand.
    Brand(u32),
}

/// Business rules applied after blending.
pub struct Rules<'a> {
    /// Items never to show.
    pub exclude: HashSet<u32>,
    /// Only items of these categories, when set.
    pub categories: Option<HashSet<u32>>,
    /// At most this many items per category.
    pub max_per_category: Option<usize>,
    /// At most this many items per brand.
    pub max_per_brand: Option<usize>,
    /// Merchandiser boosts.
    pub boosts: Vec<Boost>,
    /// Items placed first, in order (when available).
    pub pins: Vec<u32>,
    /// Whether an item can be bought where the shopper buys.
    pub available: &'a (dyn Fn(u32) -> bool + Sync),
}

impl Default for Rules<'_> {
    fn default() -> Self {
        Rules {
            exclude: HashSet::new(),
            categories: None,
            max_per_category: None,
            max_per_brand: None,
            boosts: Vec::new(),
            pins: Vec::new(),
            available: &|_| true,
        }
    }
}

/// Why an item was recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reason {
    /// A source put it there; `item` is the item that led to it (bought, viewed, in view).
    Source {
        /// The source.
        source: Source,
        /// The shopper's item behind it, when there is one.
        item: Option<u32>,
    },
    /// The shopper buys it about every `every_days` days; `due` when that time has come.
    Habit {
        /// Mean days between purchases.
        every_days: Option<f32>,
        /// Whether it is due now.
        due: bool,
    },
    /// A merchandiser boosted it.
    Boosted,
    /// A merchandiser pinned it.
    Pinned,
    /// Filled in from overall popularity because the sources had too few items.
    Fill,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The item (model index).
    pub item: u32,
    /// Blended score.
    pub score: f32,
    /// Why, strongest first.
    pub reasons: Vec<Reason>,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The items, best first.
    pub items: Vec<Recommendation>,
    /// Whether the shopper's own data was used.
    pub personalized: bool,
    /// Where popularity came from: "store", "region" or "overall".
    pub popularity_scope: &'static str,
    /// The moment used for time-based items.
    pub moment: Moment,
}

/// The candidates of one request with each source's normalized score.
#[derive(Debug, Default)]
pub struct Pool {
    index: HashMap<u32, usize>,
    /// Candidate items.
    pub items: Vec<u32>,
    parts: Vec<[f32; SOURCES]>,
    because: Vec<[u32; SOURCES]>,
    habits: HashMap<u32, Habit>,
}

const NONE: u32 = u32::MAX;
/// Candidates taken from each dense source.
const PER_SOURCE: usize = 300;
/// The shopper's top categories the category source looks into, and items taken from each.
const CATEGORIES: usize = 12;
const PER_CATEGORY: usize = 30;

impl Pool {
    fn add(&mut self, source: Source, item: u32, score: f32, because: Option<u32>) {
        let slot = source as usize;
        let i = *self.index.entry(item).or_insert_with(|| {
            self.items.push(item);
            self.parts.push([0.0; SOURCES]);
            self.because.push([NONE; SOURCES]);
            self.items.len() - 1
        });
        if score > self.parts[i][slot] {
            self.parts[i][slot] = score;
            self.because[i][slot] = because.unwrap_or(NONE);
        }
    }

    /// Adds a list, scaled so its best item scores 1.
    fn add_list(&mut self, source: Source, list: impl IntoIterator<Item = (u32, f32, Option<u32>)>) {
        let list: Vec<_> = list.into_iter().filter(|x| x.1 > 0.0).collect();
        let max = list.iter().map(|x| x.1).fold(0f32, f32::max);
        if max > 0.0 {
            for (item, s, b) in list {
                self.add(source, item, s / max, b);
            }
        }
    }

    /// Each candidate's normalized score per source (in [`Source::ALL`] order).
    pub fn parts(&self) -> &[[f32; SOURCES]] {
        &self.parts
    }

    /// Blended score of candidate `c`.
    fn score(&self, c: usize, w: &Weights) -> f32 {
        Source::ALL.iter().map(|s| s.weight(w) * self.parts[c][*s as usize]).sum()
    }

    /// The `k` best candidate items under `w`, skipping `excluded` ones (for weight search).
    pub fn rank(&self, w: &Weights, k: usize, excluded: impl Fn(u32) -> bool) -> Vec<u32> {
        let scores: Vec<f32> = (0..self.items.len()).map(|c| self.score(c, w)).collect();
        top_k(&scores, k, |c| excluded(self.items[c]) || scores[c] <= 0.0)
            .into_iter()
            .map(|(c, _)| self.items[c as usize])
            .collect()
    }
}

/// Neighbour lists of `seeds` (item, weight) summed; each candidate remembers the seed that
/// contributed most.
fn spread(
    seeds: &[(u32, f32)],
    neighbours: &[Vec<(u32, f32)>],
    skip: &HashSet<u32>,
) -> impl Iterator<Item = (u32, f32, Option<u32>)> {
    let mut acc: HashMap<u32, (f32, u32, f32)> = HashMap::new();
    for &(seed, w) in seeds {
        for &(j, sim) in neighbours.get(seed as usize).map_or(&[][..], Vec::as_slice) {
            if skip.contains(&j) {
                continue;
            }
            let e = acc.entry(j).or_insert((0.0, seed, 0.0));
            e.0 += w * sim;
            if w * sim > e.2 {
                e.1 = seed;
                e.2 = w * sim;
            }
        }
    }
    let mut v: Vec<(u32, f32, Option<u32>)> = acc.into_iter().map(|(j, (s, b, _))| (j, s, Some(b))).collect();
    v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(PER_SOURCE);
    v.into_iter()
}

impl Model {
    /// Weights for a surface: the learned ones for personal surfaces, fixed emphases elsewhere.
    pub fn surface_weights(&self, q: &Query) -> Weights {
        let base = if q.novel { self.novel_weights } else { self.weights };
        match q.surface {
            Surface::Home => base,
            Surface::Email => Weights { session: 0.0, moment: 0.0, weather: 0.0, ..base },
            Surface::Associate => Weights { repeat: base.repeat * 1.5, session: 0.0, ..base },
            Surface::Item => Weights {
                als: 0.2 * base.als,
                knn: 0.0,
                ease: 0.0,
                session: 0.2,
                together: 1.0,
                content: 0.6,
                repeat: 0.0,
                popularity: 0.02,
                trending: 0.0,
                catching_on: 0.0,
                moment: 0.0,
                weather: 0.0,
                category: 0.0,
            },
            Surface::Cart => Weights {
                als: 0.2 * base.als,
                knn: 0.1 * base.knn,
                ease: 0.1 * base.ease,
                session: 0.1,
                together: 1.0,
                content: 0.0,
                repeat: 0.3 * base.repeat.min(1.0),
                popularity: 0.02,
                trending: 0.0,
                catching_on: 0.0,
                moment: 0.0,
                weather: 0.0,
                category: 0.0,
            },
        }
    }

    /// The store's popularity list, else its region's, else the overall one.
    fn popular_for(&self, store: Option<&str>) -> (&Ranked, &'static str) {
        if let Some(s) = store {
            if let Some(r) = self.by_store.get(s) {
                return (r, "store");
            }
            if let Some(r) = self.store_region.get(s).and_then(|region| self.by_region.get(region)) {
                return (r, "region");
            }
        }
        (&self.popularity, "overall")
    }

    /// Every source's candidates for one request.
    pub fn pool(&self, shopper: &Shopper, q: &Query) -> Pool {
        let mut pool = Pool::default();
        let w = self.surface_weights(q);
        let personal = shopper.personal;
        let mut anchors: Vec<u32> = q.anchors.clone();
        if q.surface == Surface::Cart {
            anchors.extend(shopper.cart.iter().copied());
        }
        let in_view: HashSet<u32> = anchors.iter().copied().collect();
        let habits =
            if personal { habits(&shopper.purchases, q.now, self.config.repeat_half_life) } else { Vec::new() };
        if personal && w.als > 0.0 {
            let folded;
            let x = match shopper.user {
                Some(u) if self.als.knows_user(u as usize) => self.als.user(u as usize),
                _ => {
                    let mut history: HashMap<u32, f32> = HashMap::new();
                    for (i, _) in &shopper.purchases {
                        *history.entry(*i).or_default() += 1.0;
                    }
                    for (i, _, _) in &shopper.session {
                        *history.entry(*i).or_default() += 1.0;
                    }
                    let history: Vec<(u32, f32)> = history.into_iter().collect();
                    folded = if history.is_empty() { Vec::new() } else { self.als.fold_in(&history) };
                    &folded
                }
            };
            if !x.is_empty() {
                let best: Vec<(u32, f32)> = match &self.als_index {
                    Some(index) => index.top_k(x, &self.als.item_factors, PER_SOURCE),
                    None => {
                        let scores: Vec<f32> = self.als_items.iter().map(|&i| self.als.score(x, i)).collect();
                        let best = top_k(&scores, PER_SOURCE, |_| false);
                        best.into_iter().map(|(p, s)| (self.als_items[p as usize], s)).collect()
                    }
                };
                pool.add_list(Source::Als, best.into_iter().map(|(i, s)| (i, s, None)));
            }
        }
        if personal && w.knn > 0.0 && !habits.is_empty() {
            let seeds: Vec<(u32, f32)> = habits.iter().map(|h| (h.item, h.strength)).collect();
            pool.add_list(Source::Knn, spread(&seeds, &self.knn.neighbours, &in_view));
        }
        if personal && w.ease > 0.0 && !habits.is_empty() {
            let history: Vec<u32> = habits.iter().map(|h| h.item).collect();
            // A history predicts itself; for discovery those slots go to new items.
            let own: HashSet<u32> = if q.novel { history.iter().copied().collect() } else { HashSet::new() };
            let best = self.ease.recommend(&history, PER_SOURCE, |i| in_view.contains(&i) || own.contains(&i));
            pool.add_list(Source::Ease, best.into_iter().map(|(i, s, seed)| (i, s, Some(seed))));
        }
        if personal && w.session > 0.0 && !shopper.session.is_empty() {
            // Recent and added-to-cart items say more about intent.
            let newest = shopper.session.iter().map(|s| s.2).max().unwrap_or(q.now);
            let seeds: Vec<(u32, f32)> = shopper
                .session
                .iter()
                .map(|(i, a, ts)| {
                    let recency = 0.5f32.powf((newest - ts) as f32 / 1800.0);
                    (*i, recency * if *a == Action::Added { 2.0 } else { 1.0 })
                })
                .collect();
            let mut merged: Vec<(u32, f32, Option<u32>)> = spread(&seeds, &self.knn.neighbours, &in_view).collect();
            merged.extend(spread(&seeds, &self.content.neighbours, &in_view));
            pool.add_list(Source::Session, merged);
            let seeds_content: Vec<(u32, f32)> = seeds.clone();
            pool.add_list(Source::Content, spread(&seeds_content, &self.content.neighbours, &in_view));
        }
        if w.together > 0.0 && !anchors.is_empty() {
            let seeds: Vec<(u32, f32)> = anchors.iter().map(|a| (*a, 1.0)).collect();
            pool.add_list(Source::Together, spread(&seeds, &self.knn.neighbours, &in_view));
            if w.content > 0.0 {
                pool.add_list(Source::Content, spread(&seeds, &self.content.neighbours, &in_view));
            }
        }
        if personal && w.category > 0.0 && !habits.is_empty() && !self.by_category.is_empty() {
            // The shopper's categories by decayed purchase days, then each one's best sellers.
            let mut share: HashMap<u32, f32> = HashMap::new();
            for h in &habits {
                if let Some(&c) = self.content.category.get(h.item as usize).filter(|c| **c != NONE) {
                    *share.entry(c).or_default() += h.strength;
                }
            }
            let mut top: Vec<(u32, f32)> = share.into_iter().collect();
            top.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let list = top.iter().take(CATEGORIES).flat_map(|&(c, s)| {
                self.by_category[c as usize].iter().take(PER_CATEGORY).map(move |&(i, p)| (i, s * p, None))
            });
            pool.add_list(Source::Category, list.collect::<Vec<_>>());
        }
        if personal && w.repeat > 0.0 {
            // Some things are bought again by almost everyone (milk), others once (a grill).
            let rate = |i: u32| self.repeat_rate.get(i as usize).copied().unwrap_or(0.25).sqrt();
            pool.add_list(
                Source::Repeat,
                habits.iter().map(|h| (h.item, h.score(self.config.due_lift) * rate(h.item), None)),
            );
        }
        if w.popularity > 0.0 {
            let (list, _) = self.popular_for(q.store.as_deref());
            pool.add_list(Source::Popularity, list.iter().map(|(i, s)| (*i, *s, None)));
        }
        if w.trending > 0.0 {
            pool.add_list(Source::Trending, self.trending.iter().map(|(i, s)| (*i, *s, None)));
        }
        if w.catching_on > 0.0 {
            pool.add_list(Source::CatchingOn, self.catching_on_at(q.now).iter().map(|(i, s)| (*i, *s, None)));
        }
        if w.moment > 0.0 {
            let m = Moment::at(q.now, q.utc_offset_secs);
            pool.add_list(Source::Moment, self.situations.for_moment(m).iter().map(|(i, s)| (*i, *s, None)));
        }
        if let (Some(weather), true) = (q.weather, w.weather > 0.0) {
            pool.add_list(Source::Weather, self.situations.for_weather(weather).iter().map(|(i, s)| (*i, *s, None)));
        }
        pool.habits = habits.into_iter().map(|h| (h.item, h)).collect();
        pool
    }

    /// Recommendations for one request, with the business rules applied and every item
    /// explained.
    pub fn recommend(&self, shopper: &Shopper, q: &Query, rules: &Rules<'_>) -> Answer {
        self.recommend_weighted(shopper, q, rules, &self.surface_weights(q))
    }

    /// [`Model::recommend`] with explicit blend weights (for tuning them).
    pub fn recommend_weighted(&self, shopper: &Shopper, q: &Query, rules: &Rules<'_>, weights: &Weights) -> Answer {
        let pool = self.pool(shopper, q);
        let w = *weights;
        let bought: HashSet<u32> =
            if q.novel { shopper.purchases.iter().map(|p| p.0).collect() } else { HashSet::new() };
        let mut in_view: HashSet<u32> = q.anchors.iter().copied().collect();
        let cart_categories: HashSet<u32> = if q.surface == Surface::Cart {
            in_view.extend(shopper.cart.iter().copied());
            in_view.iter().filter_map(|i| self.content.category.get(*i as usize).copied()).collect()
        } else {
            HashSet::new()
        };
        let category = |i: u32| self.content.category.get(i as usize).copied().unwrap_or(NONE);
        let brand = |i: u32| self.content.brand.get(i as usize).copied().unwrap_or(NONE);
        let allowed = |i: u32| {
            !rules.exclude.contains(&i)
                && !bought.contains(&i)
                && !in_view.contains(&i)
                && rules.categories.as_ref().is_none_or(|c| c.contains(&category(i)))
                && (rules.available)(i)
        };
        let boost = |i: u32| {
            rules
                .boosts
                .iter()
                .filter(|b| match b.target {
                    BoostTarget::Item(x) => x == i,
                    BoostTarget::Category(c) => c == category(i),
                    BoostTarget::Brand(b) => b == brand(i),
                })
                .map(|b| b.factor)
                .product::<f32>()
        };
        let mut ranked: Vec<(usize, f32, bool)> = (0..pool.items.len())
            .filter_map(|c| {
                let item = pool.items[c];
                let mut s = pool.score(c, &w);
                if cart_categories.contains(&category(item)) && category(item) != NONE {
                    // Completing a basket means other kinds of things, not a second of the same.
                    s *= 0.3;
                }
                let b = boost(item);
                (s > 0.0).then_some((c, s * b, b != 1.0))
            })
            .collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(pool.items[a.0].cmp(&pool.items[b.0])));

        let mut out: Vec<Recommendation> = Vec::with_capacity(q.k);
        let mut taken: HashSet<u32> = HashSet::new();
        let mut per_category: HashMap<u32, usize> = HashMap::new();
        let mut per_brand: HashMap<u32, usize> = HashMap::new();
        let diverse = |i: u32, per_category: &mut HashMap<u32, usize>, per_brand: &mut HashMap<u32, usize>| {
            let (c, b) = (category(i), brand(i));
            if let (Some(max), true) = (rules.max_per_category, c != NONE) {
                if per_category.get(&c).copied().unwrap_or(0) >= max {
                    return false;
                }
            }
            if let (Some(max), true) = (rules.max_per_brand, b != NONE) {
                if per_brand.get(&b).copied().unwrap_or(0) >= max {
                    return false;
                }
            }
            *per_category.entry(c).or_default() += 1;
            *per_brand.entry(b).or_default() += 1;
            true
        };
        for &pin in &rules.pins {
            if out.len() < q.k && (pin as usize) < self.items.len() && allowed(pin) && taken.insert(pin) {
                diverse(pin, &mut per_category, &mut per_brand);
                out.push(Recommendation { item: pin, score: f32::INFINITY, reasons: vec![Reason::Pinned] });
            }
        }
        for &(c, score, boosted) in &ranked {
            if out.len() >= q.k {
                break;
            }
            let item = pool.items[c];
            if !allowed(item) || taken.contains(&item) || !diverse(item, &mut per_category, &mut per_brand) {
                continue;
            }
            taken.insert(item);
            let mut reasons = self.explain(&pool, c, &w);
            if boosted {
                reasons.push(Reason::Boosted);
            }
            out.push(Recommendation { item, score, reasons });
        }
        if out.len() < q.k {
            // Thin sources (a strict category filter, a new store): fill from overall popularity.
            for &item in &self.popularity_order {
                if out.len() >= q.k {
                    break;
                }
                if allowed(item) && !taken.contains(&item) && diverse(item, &mut per_category, &mut per_brand) {
                    taken.insert(item);
                    out.push(Recommendation { item, score: 0.0, reasons: vec![Reason::Fill] });
                }
            }
        }
        let (_, scope) = self.popular_for(q.store.as_deref());
        Answer {
            items: out,
            personalized: shopper.personal,
            popularity_scope: scope,
            moment: Moment::at(q.now, q.utc_offset_secs),
        }
    }

    /// The strongest contributions to candidate `c`, as reasons.
    fn explain(&self, pool: &Pool, c: usize, w: &Weights) -> Vec<Reason> {
        let mut parts: Vec<(Source, f32)> =
            Source::ALL.iter().map(|s| (*s, s.weight(w) * pool.parts[c][*s as usize])).filter(|x| x.1 > 0.0).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top = parts.first().map_or(0.0, |x| x.1);
        parts
            .into_iter()
            .filter(|x| x.1 >= 0.25 * top)
            .take(2)
            .map(|(source, _)| {
                let item = pool.items[c];
                match source {
                    Source::Repeat => {
                        let h = pool.habits.get(&item);
                        Reason::Habit {
                            every_days: h.and_then(|h| h.interval_days.filter(|_| h.days >= 3)),
                            due: h.is_some_and(Habit::due),
                        }
                    }
                    _ => {
                        let b = pool.because[c][source as usize];
                        Reason::Source { source, item: (b != NONE).then_some(b) }
                    }
                }
            })
            .collect()
    }
}
