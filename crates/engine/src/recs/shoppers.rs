//! What a recommendation request reads besides the model — who the shopper is and what they did
//! (root profile, consent, orders, session, cart), the weather at their store, whether a store
//! exists — kept in memory between requests, so a request at 2,000 a second does not read the
//! database seven times.
//!
//! Every cached shopper carries the generation it was read at. The generation moves whenever
//! something a shopper's answer depends on may have changed in this process: a projection
//! round that applied events (orders, carts, views, identities, merges), a round that finds the
//! log projected further by another node, a consent decision, an unmerge, an erasure, an
//! import. An entry of an older generation is read again. Changes made directly by another node
//! (a consent set through its API) count in a shared stamp (`recs::SHOPPER_CHANGES`) that this
//! node's next projection round reads. [`MAX_AGE`] is the net under both: an entry past it but
//! of the current generation still answers while one task reads it again, so a burst of
//! shoppers growing old together never puts their reads on the requests' path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tailor_profiles::Signals;
use tailor_recs::replenish::DayHabits;
use tailor_recs::situation::Weather;

/// The longest a cached entry is used, whatever the generation says.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Shoppers cached at most; past it the cache starts over (a bound, not an eviction policy).
const MAX_SHOPPERS: usize = 100_000;

/// A request's shopper as it named them: (user, anonymousId).
pub(crate) type ShopperKey = (Option<String>, Option<String>);
/// A store's last weather report (condition, observed at, ms), with the generation and time it
/// was read at.
type WeatherEntry = (Option<(Weather, i64)>, u64, Instant);
/// Purchases in the terms of one model version.
type Indexed = Option<(i64, Arc<Vec<(u32, i64)>>)>;

/// One shopper as read: their root profile and, when known, their signals.
pub(crate) struct CachedShopper {
    pub(crate) root: Option<String>,
    pub(crate) signals: Option<Arc<Signals>>,
    generation: u64,
    read_at: Instant,
    /// Their purchases in the terms of a model version (see `Observed::indexed`).
    indexed: Mutex<Indexed>,
    /// Their habits as of a day, in the terms of a model version (see `Observed::habits`).
    habits: Mutex<Option<(i64, Arc<DayHabits>)>>,
    /// Whether a background read of this shopper is under way.
    refreshing: AtomicBool,
}

/// What the cache holds for a shopper.
pub(crate) enum Cached {
    /// Current: answer from it.
    Fresh(Arc<CachedShopper>),
    /// Of the current generation but past [`MAX_AGE`]: answer from it; when `refresh` is true
    /// the caller reads the shopper again in the background (only one caller is told to).
    Old { shopper: Arc<CachedShopper>, refresh: bool },
    /// Absent, or something it depends on changed: read it before answering.
    Missing,
}

impl CachedShopper {
    /// Their purchases in the terms of model `version`, made by `convert` once per version.
    pub(crate) fn indexed(&self, version: i64, convert: impl FnOnce() -> Vec<(u32, i64)>) -> Arc<Vec<(u32, i64)>> {
        let mut slot = self.indexed.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some((v, p)) if *v == version => p.clone(),
            _ => {
                let p = Arc::new(convert());
                *slot = Some((version, p.clone()));
                p
            }
        }
    }
}

impl CachedShopper {
    /// Their habits on `day` in the terms of model `version`, made by `compute` once per day
    /// and version.
    pub(crate) fn habits(&self, version: i64, day: i64, compute: impl FnOnce() -> DayHabits) -> Arc<DayHabits> {
        let mut slot = self.habits.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some((v, h)) if *v == version && h.day == day => h.clone(),
            _ => {
                let h = Arc::new(compute());
                *slot = Some((version, h.clone()));
                h
            }
        }
    }
}

/// The request-side caches of recommendations.
#[derive(Default)]
pub(crate) struct ShopperCache {
    generation: AtomicU64,
    /// The projection cursor this process last saw or left, to notice another node's rounds.
    cursor_seen: AtomicI64,
    /// The count of changes made outside the log this process last saw (see
    /// `recs::SHOPPER_CHANGES`), to notice another node's consent decisions and erasures.
    stamp_seen: AtomicI64,
    /// By (user, anonymousId) as the request gave them.
    shoppers: Mutex<HashMap<ShopperKey, Arc<CachedShopper>>>,
    /// Store → its latest weather report (condition, observed at, ms) and when it was read.
    weather: Mutex<HashMap<String, WeatherEntry>>,
    /// Stores known to exist (a store is never deleted; one imported later is simply not here).
    stores: Mutex<HashSet<String>>,
}

fn fresh(generation: u64, read_at: Instant, now: u64) -> bool {
    generation == now && read_at.elapsed() < MAX_AGE
}

/// An entry the shopper cache hands out past [`MAX_AGE`] answers at most this long (a bound
/// for a background read that fails or stalls).
const STALE_GRACE: Duration = Duration::from_secs(60);

impl ShopperCache {
    /// The current generation, read before the database so a change during the read is not
    /// hidden by it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Something shoppers' answers depend on may have changed: read them again.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The projection cursor stands at `position`: when someone else moved it since this
    /// process last saw it, their changes are not in the cache.
    pub(crate) fn cursor_at(&self, position: i64) {
        if self.cursor_seen.swap(position, Ordering::AcqRel) != position {
            self.changed();
        }
    }

    /// Changes outside the log stand at `stamp`: when it moved since this process last looked,
    /// another node changed shoppers (this process's own changes moved it too, harmlessly).
    pub(crate) fn stamp_at(&self, stamp: i64) {
        if self.stamp_seen.swap(stamp, Ordering::AcqRel) != stamp {
            self.changed();
        }
    }

    /// What is cached for `key` (see [`Cached`]).
    pub(crate) fn shopper(&self, key: &ShopperKey) -> Cached {
        let now = self.generation();
        let map = self.shoppers.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = map.get(key).filter(|c| c.generation == now) else { return Cached::Missing };
        let age = c.read_at.elapsed();
        if age < MAX_AGE {
            Cached::Fresh(c.clone())
        } else if age < MAX_AGE + STALE_GRACE {
            let refresh = !c.refreshing.swap(true, Ordering::AcqRel);
            Cached::Old { shopper: c.clone(), refresh }
        } else {
            Cached::Missing
        }
    }

    /// Keeps a shopper read at `generation`.
    pub(crate) fn keep_shopper(
        &self,
        key: ShopperKey,
        root: Option<String>,
        signals: Option<Arc<Signals>>,
        generation: u64,
        read_at: Instant,
    ) -> Arc<CachedShopper> {
        let entry = Arc::new(CachedShopper {
            root,
            signals,
            generation,
            read_at,
            indexed: Mutex::new(None),
            habits: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        });
        let mut map = self.shoppers.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SHOPPERS {
            map.clear();
        }
        map.insert(key, entry.clone());
        entry
    }

    /// The weather report cached for `store`: `Some(report)` when current.
    pub(crate) fn weather(&self, store: &str) -> Option<Option<(Weather, i64)>> {
        let now = self.generation();
        let map = self.weather.lock().unwrap_or_else(|e| e.into_inner());
        map.get(store).filter(|(_, g, at)| fresh(*g, *at, now)).map(|(w, _, _)| *w)
    }

    /// Keeps the weather report of `store` read at `generation`.
    pub(crate) fn keep_weather(&self, store: &str, report: Option<(Weather, i64)>, generation: u64, read_at: Instant) {
        let mut map = self.weather.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SHOPPERS {
            map.clear();
        }
        map.insert(store.to_string(), (report, generation, read_at));
    }

    /// Whether `store` is known to exist.
    pub(crate) fn store_known(&self, store: &str) -> bool {
        self.stores.lock().unwrap_or_else(|e| e.into_inner()).contains(store)
    }

    /// Remembers that `store` exists.
    pub(crate) fn keep_store(&self, store: &str) {
        let mut set = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= MAX_SHOPPERS {
            set.clear();
        }
        set.insert(store.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_or_another_nodes_round_makes_cached_shoppers_stale() {
        let cache = ShopperCache::default();
        let key = (Some("p1".to_string()), None);
        let fresh = |c: &ShopperCache| matches!(c.shopper(&key), Cached::Fresh(_));
        let missing = |c: &ShopperCache| matches!(c.shopper(&key), Cached::Missing);
        let g = cache.generation();
        cache.keep_shopper(key.clone(), Some("p1".into()), None, g, Instant::now());
        assert!(fresh(&cache), "read again at once: cached");
        cache.changed();
        assert!(missing(&cache), "a change in this process");
        let g = cache.generation();
        cache.cursor_at(10);
        cache.keep_shopper(key.clone(), Some("p1".into()), None, cache.generation(), Instant::now());
        assert_ne!(g, cache.generation(), "the first cursor seen counts as a move");
        cache.cursor_at(10);
        assert!(fresh(&cache), "the cursor where this process left it");
        cache.cursor_at(12);
        assert!(missing(&cache), "another node projected");
    }

    #[test]
    fn an_old_shopper_answers_while_exactly_one_caller_reads_it_again() {
        let cache = ShopperCache::default();
        let key = (Some("p1".to_string()), None);
        let old = Instant::now().checked_sub(MAX_AGE).expect("uptime past MAX_AGE");
        cache.keep_shopper(key.clone(), Some("p1".into()), None, cache.generation(), old);
        assert!(matches!(cache.shopper(&key), Cached::Old { refresh: true, .. }), "the first caller reads again");
        assert!(matches!(cache.shopper(&key), Cached::Old { refresh: false, .. }), "the next ones do not");
        cache.keep_shopper(key.clone(), Some("p1".into()), None, cache.generation(), Instant::now());
        assert!(matches!(cache.shopper(&key), Cached::Fresh(_)), "the read came back");
        cache.keep_shopper(key.clone(), Some("p1".into()), None, cache.generation(), old);
        cache.changed();
        assert!(matches!(cache.shopper(&key), Cached::Missing), "a known change is never answered from");
        let older = Instant::now().checked_sub(MAX_AGE + STALE_GRACE).expect("uptime");
        cache.keep_shopper(key.clone(), None, None, cache.generation(), older);
        assert!(matches!(cache.shopper(&key), Cached::Missing), "too old whatever the generation");
    }
}
