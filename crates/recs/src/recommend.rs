//! Serving: the candidate sources for one shopper on one surface, blended, filtered by the
//! business rules, diversified and explained.

// Fx hashing: these maps of item numbers are built on every request, where SipHash showed.
use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{Model, Weights};
pub use crate::pool::Pool;
use crate::pool::NONE;
use crate::replenish::{DayHabits, Habit};
use crate::situation::{Moment, Weather};

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

/// What an item page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    /// Substitutes: the same need (same category, alike by content, bought instead of it).
    Similar,
    /// Complements: other kinds of things bought with it.
    GoesWith,
}

impl ItemKind {
    /// All kinds.
    pub const ALL: [ItemKind; 2] = [ItemKind::Similar, ItemKind::GoesWith];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Similar => "similar",
            ItemKind::GoesWith => "goes_with",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|x| x.name() == s)
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

    pub(crate) fn weight(self, w: &Weights) -> f32 {
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
    /// Their purchases (item, unix seconds), including those after training; shared, so a
    /// caller that keeps a shopper between requests does not copy their history each time.
    pub purchases: Arc<Vec<(u32, i64)>>,
    /// Their habits as the caller kept them (computed per request when absent or of another
    /// day; see [`Shopper::habits_at`]).
    pub habits: Option<Arc<DayHabits>>,
    /// Recent views and adds (item, action, unix seconds), newest last.
    pub session: Vec<(u32, Action, i64)>,
    /// What is in their cart.
    pub cart: Vec<u32>,
    /// Whether they consented to personalization: without it only non-personal sources run.
    pub personal: bool,
}

impl Shopper {
    /// Their habits on the day of `now` (unix seconds): the ones the caller kept when they are
    /// of that day, else computed from the purchases.
    pub fn habits_at(&self, now: i64, half_life_days: f64) -> Arc<DayHabits> {
        match &self.habits {
            Some(h) if h.day == now.div_euclid(86_400) => h.clone(),
            _ => Arc::new(DayHabits::at(&self.purchases, now, half_life_days)),
        }
    }
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
    /// On an item page: substitutes or complements only (None: both).
    pub kind: Option<ItemKind>,
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
    /// Lower-case patterns of what is not merchandise (see [`crate::nonmerch`]); matching
    /// items are left out unless pinned.
    pub non_merchandise: Vec<String>,
    /// Whether an item can be bought where the shopper buys.
    pub available: &'a (dyn Fn(u32) -> bool + Sync),
}

impl Default for Rules<'_> {
    fn default() -> Self {
        Rules {
            exclude: HashSet::default(),
            categories: None,
            max_per_category: None,
            max_per_brand: None,
            boosts: Vec::new(),
            pins: Vec::new(),
            non_merchandise: crate::nonmerch::patterns(None),
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

/// The per-list maximums of one category and one brand, counting what the list holds so far.
struct Diversity {
    max_per_category: Option<usize>,
    max_per_brand: Option<usize>,
    per_category: HashMap<u32, usize>,
    per_brand: HashMap<u32, usize>,
}

impl Diversity {
    fn new(rules: &Rules<'_>) -> Diversity {
        Diversity {
            max_per_category: rules.max_per_category,
            max_per_brand: rules.max_per_brand,
            per_category: HashMap::default(),
            per_brand: HashMap::default(),
        }
    }

    /// Whether an item of category `c` and brand `b` still fits; if so it is counted.
    fn admit(&mut self, c: u32, b: u32) -> bool {
        if let (Some(max), true) = (self.max_per_category, c != NONE) {
            if self.per_category.get(&c).copied().unwrap_or(0) >= max {
                return false;
            }
        }
        if let (Some(max), true) = (self.max_per_brand, b != NONE) {
            if self.per_brand.get(&b).copied().unwrap_or(0) >= max {
                return false;
            }
        }
        *self.per_category.entry(c).or_default() += 1;
        *self.per_brand.entry(b).or_default() += 1;
        true
    }
}

impl Model {
    /// Recommendations for one request, with the business rules applied and every item
    /// explained.
    pub fn recommend(&self, shopper: &Shopper, q: &Query, rules: &Rules<'_>) -> Answer {
        self.recommend_weighted(shopper, q, rules, &self.surface_weights(q))
    }

    /// [`Model::recommend`] with explicit blend weights (for tuning them).
    pub fn recommend_weighted(&self, shopper: &Shopper, q: &Query, rules: &Rules<'_>, weights: &Weights) -> Answer {
        let mut in_view: HashSet<u32> = q.anchors.iter().copied().collect();
        let (pool, w) = if q.surface == Surface::Cart {
            // The cart has its own candidates and learned blend (see crate::cart).
            in_view.extend(shopper.cart.iter().copied());
            let cart: Vec<u32> = q.anchors.iter().chain(&shopper.cart).copied().collect();
            self.cart_pool(shopper, &cart, q.now)
        } else {
            (self.pool(shopper, q), *weights)
        };
        let bought: HashSet<u32> =
            if q.novel { shopper.purchases.iter().map(|p| p.0).collect() } else { HashSet::default() };
        let (category, brand) = (|i: u32| self.category_of(i), |i: u32| self.brand_of(i));
        let kind = |i: u32| self.content.kind.get(i as usize).map_or("", String::as_str);
        let merchandise = |i: u32| !crate::nonmerch::matches(kind(i), &rules.non_merchandise);
        // Substitutes share the anchor's category; complements are other kinds of things.
        let anchor_categories: HashSet<u32> =
            q.anchors.iter().map(|a| self.category_of(*a)).filter(|c| *c != NONE).collect();
        let fits_kind = |i: u32| match (q.surface, q.kind) {
            (Surface::Item, Some(kind)) if !anchor_categories.is_empty() => {
                anchor_categories.contains(&self.category_of(i)) == (kind == ItemKind::Similar)
            }
            _ => true,
        };
        let allowed_pin = |i: u32| {
            fits_kind(i)
                && !rules.exclude.contains(&i)
                && !bought.contains(&i)
                && !in_view.contains(&i)
                && rules.categories.as_ref().is_none_or(|c| c.contains(&category(i)))
                && (rules.available)(i)
        };
        let allowed = |i: u32| allowed_pin(i) && merchandise(i);
        let mut ranked = self.scored(&pool, &w, &rules.boosts);
        let order = |a: &(usize, f32, bool), b: &(usize, f32, bool)| {
            b.1.total_cmp(&a.1).then(pool.items[a.0].cmp(&pool.items[b.0]))
        };
        // Most lists fill from the best few hundred of thousands of candidates: those are sorted
        // first, the rest only if the rules reach them.
        let head = (q.k * 8).max(128).min(ranked.len());
        if head < ranked.len() {
            ranked.select_nth_unstable_by(head, order);
        }
        ranked[..head].sort_unstable_by(order);

        let mut out: Vec<Recommendation> = Vec::with_capacity(q.k);
        let mut taken: HashSet<u32> = HashSet::default();
        let mut diversity = Diversity::new(rules);
        let mut diverse = |i: u32| diversity.admit(category(i), brand(i));
        for &pin in &rules.pins {
            if out.len() < q.k && (pin as usize) < self.items.len() && allowed_pin(pin) && taken.insert(pin) {
                diverse(pin);
                out.push(Recommendation { item: pin, score: f32::INFINITY, reasons: vec![Reason::Pinned] });
            }
        }
        for n in 0..ranked.len() {
            if out.len() >= q.k {
                break;
            }
            if n == head {
                ranked[head..].sort_unstable_by(order);
            }
            let (c, score, boosted) = ranked[n];
            let item = pool.items[c];
            if !allowed(item) || taken.contains(&item) || !diverse(item) {
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
                if allowed(item) && !taken.contains(&item) && diverse(item) {
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

    /// Category of item `i` ([`NONE`] when unknown).
    fn category_of(&self, i: u32) -> u32 {
        self.content.category.get(i as usize).copied().unwrap_or(NONE)
    }

    /// Brand of item `i` ([`NONE`] when unknown).
    fn brand_of(&self, i: u32) -> u32 {
        self.content.brand.get(i as usize).copied().unwrap_or(NONE)
    }

    /// The pool's candidates (index, score, boosted) with a positive blended score under `w`,
    /// in pool order; boosts multiply.
    fn scored(&self, pool: &Pool, w: &Weights, boosts: &[Boost]) -> Vec<(usize, f32, bool)> {
        let boost = |i: u32| {
            boosts
                .iter()
                .filter(|b| match b.target {
                    BoostTarget::Item(x) => x == i,
                    BoostTarget::Category(c) => c == self.category_of(i),
                    BoostTarget::Brand(b) => b == self.brand_of(i),
                })
                .map(|b| b.factor)
                .product::<f32>()
        };
        (0..pool.items.len())
            .filter_map(|c| {
                let item = pool.items[c];
                let s = pool.score(c, w);
                let b = boost(item);
                (s > 0.0).then_some((c, s * b, b != 1.0))
            })
            .collect()
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
