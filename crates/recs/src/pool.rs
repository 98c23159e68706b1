//! The candidate pool of one request: every source's candidates with their normalized scores
//! and the shopper's item behind each, before rules and diversity pick the list.

// Fx hashing: these maps of item numbers are built on every request, where SipHash showed.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::{Model, Ranked, Weights};
use crate::recommend::{Action, ItemKind, Query, Shopper, Source, Surface, SOURCES};
use crate::replenish::Habit;
use crate::situation::Moment;
use crate::topk::top_k;

/// The candidates of one request with each source's normalized score.
#[derive(Debug, Default)]
pub struct Pool {
    index: HashMap<u32, usize>,
    /// Candidate items.
    pub items: Vec<u32>,
    pub(crate) parts: Vec<[f32; SOURCES]>,
    pub(crate) because: Vec<[u32; SOURCES]>,
    pub(crate) habits: HashMap<u32, Habit>,
}

/// No item (an empty `because` slot, an unknown category or brand).
pub(crate) const NONE: u32 = u32::MAX;
/// Candidates taken from each dense source.
const PER_SOURCE: usize = 300;
/// The shopper's top categories the category source looks into, and items taken from each.
const CATEGORIES: usize = 12;
const PER_CATEGORY: usize = 30;

/// Candidates a request's pool has room for before it grows (the sources give up to
/// [`PER_SOURCE`] each and overlap): growing copies every row and rehashes the index.
const ROOM: usize = 2048;

impl Pool {
    /// An empty pool with room for a request's candidates.
    fn with_room() -> Pool {
        Pool {
            index: HashMap::with_capacity_and_hasher(ROOM, Default::default()),
            items: Vec::with_capacity(ROOM),
            parts: Vec::with_capacity(ROOM),
            because: Vec::with_capacity(ROOM),
            habits: HashMap::default(),
        }
    }

    pub(crate) fn add(&mut self, source: Source, item: u32, score: f32, because: Option<u32>) {
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
    pub(crate) fn score(&self, c: usize, w: &Weights) -> f32 {
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
    let mut acc: HashMap<u32, (f32, u32, f32)> = HashMap::default();
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
            Surface::Item if q.kind == Some(ItemKind::Similar) => {
                Weights { content: 1.0, together: 0.2, popularity: 0.02, ..Weights::zero() }
            }
            Surface::Item if q.kind == Some(ItemKind::GoesWith) => {
                Weights { together: 1.0, als: 0.1 * base.als, popularity: 0.02, ..Weights::zero() }
            }
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
    pub(crate) fn popular_for(&self, store: Option<&str>) -> (&Ranked, &'static str) {
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
        let mut pool = Pool::with_room();
        let w = self.surface_weights(q);
        let personal = shopper.personal;
        let mut anchors: Vec<u32> = q.anchors.clone();
        if q.surface == Surface::Cart {
            anchors.extend(shopper.cart.iter().copied());
        }
        let in_view: HashSet<u32> = anchors.iter().copied().collect();
        let day = if personal { shopper.habits_at(q.now, self.config.repeat_half_life) } else { Default::default() };
        let habits = &day.habits;
        if personal && w.als > 0.0 {
            pool.add_list(Source::Als, self.als_candidates(shopper).into_iter().map(|(i, s)| (i, s, None)));
        }
        if personal && w.knn > 0.0 && !habits.is_empty() {
            let seeds: Vec<(u32, f32)> = habits.iter().map(|h| (h.item, h.strength)).collect();
            pool.add_list(Source::Knn, spread(&seeds, &self.knn.neighbours, &in_view));
        }
        if personal && w.ease > 0.0 && !habits.is_empty() {
            let history: Vec<u32> = habits.iter().map(|h| h.item).collect();
            // A history predicts itself; for discovery those slots go to new items.
            let own: HashSet<u32> = if q.novel { history.iter().copied().collect() } else { HashSet::default() };
            let best = self.ease.recommend(&history, PER_SOURCE, |i| in_view.contains(&i) || own.contains(&i));
            pool.add_list(Source::Ease, best.into_iter().map(|(i, s, seed)| (i, s, Some(seed))));
        }
        if personal && w.session > 0.0 && !shopper.session.is_empty() {
            self.add_session(&mut pool, shopper, q, &in_view);
        }
        if w.together > 0.0 && !anchors.is_empty() {
            let seeds: Vec<(u32, f32)> = anchors.iter().map(|a| (*a, 1.0)).collect();
            pool.add_list(Source::Together, spread(&seeds, &self.knn.neighbours, &in_view));
            if w.content > 0.0 {
                pool.add_list(Source::Content, spread(&seeds, &self.content.neighbours, &in_view));
            }
        }
        if personal && w.category > 0.0 && !habits.is_empty() && !self.by_category.is_empty() {
            pool.add_list(Source::Category, self.category_candidates(habits));
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
        pool.habits = habits.iter().map(|h| (h.item, *h)).collect();
        pool
    }

    /// The items nearest to the shopper's taste vector (trained, or folded in from their
    /// purchases and session when the model does not know them), best first.
    fn als_candidates(&self, shopper: &Shopper) -> Vec<(u32, f32)> {
        let folded;
        let x = match shopper.user {
            Some(u) if self.als.knows_user(u as usize) => self.als.user(u as usize),
            _ => {
                let mut history: HashMap<u32, f32> = HashMap::default();
                for (i, _) in shopper.purchases.iter() {
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
        if x.is_empty() {
            return Vec::new();
        }
        match &self.als_index {
            Some(index) => index.top_k(x, &self.als.item_factors, PER_SOURCE),
            None => {
                let scores: Vec<f32> = self.als_items.iter().map(|&i| self.als.score(x, i)).collect();
                let best = top_k(&scores, PER_SOURCE, |_| false);
                best.into_iter().map(|(p, s)| (self.als_items[p as usize], s)).collect()
            }
        }
    }

    /// Neighbours of what the shopper viewed or added this session (the newest and the added
    /// count most), by co-purchase and by content.
    fn add_session(&self, pool: &mut Pool, shopper: &Shopper, q: &Query, in_view: &HashSet<u32>) {
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
        let mut merged: Vec<(u32, f32, Option<u32>)> = spread(&seeds, &self.knn.neighbours, in_view).collect();
        merged.extend(spread(&seeds, &self.content.neighbours, in_view));
        pool.add_list(Source::Session, merged);
        let seeds_content: Vec<(u32, f32)> = seeds.clone();
        pool.add_list(Source::Content, spread(&seeds_content, &self.content.neighbours, in_view));
    }

    /// The best sellers of the categories the shopper buys most (by decayed purchase days).
    fn category_candidates(&self, habits: &[Habit]) -> Vec<(u32, f32, Option<u32>)> {
        let mut share: HashMap<u32, f32> = HashMap::default();
        for h in habits {
            if let Some(&c) = self.content.category.get(h.item as usize).filter(|c| **c != NONE) {
                *share.entry(c).or_default() += h.strength;
            }
        }
        let mut top: Vec<(u32, f32)> = share.into_iter().collect();
        top.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        top.iter()
            .take(CATEGORIES)
            .flat_map(|&(c, s)| {
                self.by_category[c as usize].iter().take(PER_CATEGORY).map(move |&(i, p)| (i, s * p, None))
            })
            .collect()
    }
}
