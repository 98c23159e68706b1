//! The journeys' clock: the wall clock, or a time a test sets and moves (no sleeps in tests).

use std::sync::atomic::{AtomicI64, Ordering};

use tailor_core::time::now_millis;

/// What time journeys run at.
#[derive(Debug, Default)]
pub struct Clock {
    /// A fixed time (unix ms) a test set; 0: the wall clock.
    pinned: AtomicI64,
}

impl Clock {
    /// The time now (unix ms).
    pub fn now(&self) -> i64 {
        match self.pinned.load(Ordering::SeqCst) {
            0 => now_millis(),
            t => t,
        }
    }

    /// Fixes the time at `t` (unix ms; tests and replays).
    pub fn set(&self, t: i64) {
        self.pinned.store(t.max(1), Ordering::SeqCst);
    }

    /// Moves a fixed time on by `ms` (from the wall clock when none is fixed).
    pub fn advance(&self, ms: i64) {
        let now = self.now();
        self.set(now.saturating_add(ms));
    }

    /// Back to the wall clock (a benchmark that set up its state at a fixed time).
    pub fn unpin(&self) {
        self.pinned.store(0, Ordering::SeqCst);
    }
}
