//! The store's part of readiness (log head, projection cursor, dead letters), kept briefly:
//! probes and load balancers may ask many times a second, and each read is three queries on
//! the same cores that answer shoppers. Anything on this node that moves those figures (an
//! ingest, a projection round, a replay) drops them at once; other nodes' moves show within
//! [`MAX_AGE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long figures read from the store answer when nothing on this node moved them.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(500);

/// The store's figures of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub(crate) head: i64,
    pub(crate) cursor: i64,
    pub(crate) dead_letters: i64,
}

/// Figures kept with when they were read and the change count they were read at.
#[derive(Default)]
pub(crate) struct HealthCache {
    changes: AtomicU64,
    kept: Mutex<Option<(Instant, u64, Figures)>>,
}

impl HealthCache {
    /// Something on this node moved the figures.
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// The change count to read figures at (take it before reading them).
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The kept figures, when nothing moved them since and they are younger than [`MAX_AGE`].
    pub(crate) fn get(&self, now: Instant) -> Option<Figures> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.filter(|(at, changes, _)| *changes == self.changes() && now.duration_since(*at) < MAX_AGE).map(|k| k.2)
    }

    /// Keeps figures read at change count `changes`, starting at `read_at`.
    pub(crate) fn keep(&self, read_at: Instant, changes: u64, figures: Figures) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some((read_at, changes, figures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_figures_answer_until_a_change_or_their_age() {
        let cache = HealthCache::default();
        let (t0, f) = (Instant::now(), Figures { head: 10, cursor: 9, dead_letters: 1 });
        assert_eq!(cache.get(t0), None, "nothing kept yet");
        let changes = cache.changes();
        cache.keep(t0, changes, f);
        assert_eq!(cache.get(t0 + Duration::from_millis(100)), Some(f));
        assert_eq!(cache.get(t0 + MAX_AGE), None, "too old");
        cache.changed();
        assert_eq!(cache.get(t0), None, "a change on this node drops them");
        // Figures read while a change happened are not kept as current.
        let before = cache.changes();
        cache.changed();
        cache.keep(t0, before, f);
        assert_eq!(cache.get(t0), None);
    }
}
