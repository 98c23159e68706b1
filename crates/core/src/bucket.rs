//! Token buckets kept in memory: how often a client, a key or a shopper may do something. Each
//! key has a bucket of up to `burst` tokens refilled at `per_second`; an action takes one token
//! or learns how long until one is back. Used by the server's request limits and the
//! assistant's caps on holds.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Buckets kept per map; past it, full buckets (the same as none) are dropped first.
const MAX_TRACKED: usize = 100_000;

/// One token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Actions allowed at once after a quiet period.
    pub burst: f64,
    /// Actions added back per second.
    pub per_second: f64,
}

impl Bucket {
    /// Whether the numbers are usable: burst ≥ 1, a positive finite refill.
    pub fn is_valid(&self) -> bool {
        self.burst.is_finite() && self.burst >= 1.0 && self.per_second.is_finite() && self.per_second > 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Tokens {
    level: f64,
    at: Instant,
}

impl Tokens {
    fn refilled(self, b: &Bucket, now: Instant) -> Tokens {
        let level = (self.level + now.saturating_duration_since(self.at).as_secs_f64() * b.per_second).min(b.burst);
        Tokens { level, at: now }
    }
}

/// A bucket per key, all of the same size.
#[derive(Debug)]
pub struct Buckets<K> {
    bucket: Bucket,
    map: Mutex<HashMap<K, Tokens>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Buckets of `bucket`'s size, none taken yet.
    pub fn new(bucket: Bucket) -> Self {
        Self { bucket, map: Mutex::default() }
    }

    /// The size of each bucket.
    pub fn bucket(&self) -> Bucket {
        self.bucket
    }

    /// Takes one token for `k`, or says how long until one is back.
    pub fn take(&self, k: &K, now: Instant) -> Result<(), Duration> {
        let b = &self.bucket;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(k) {
            map.retain(|_, t| t.refilled(b, now).level < b.burst);
            if map.len() >= MAX_TRACKED {
                // More clients than buckets: let this one through rather than refuse every newcomer.
                return Ok(());
            }
        }
        let t = map.entry(k.clone()).or_insert(Tokens { level: b.burst, at: now });
        *t = t.refilled(b, now);
        if t.level >= 1.0 {
            t.level -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - t.level) / b.per_second))
        }
    }

    /// Gives back a token taken for an action that did not happen.
    pub fn give_back(&self, k: &K) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = map.get_mut(k) {
            t.level = (t.level + 1.0).min(self.bucket.burst);
        }
    }

    /// Whether `k` has a bucket.
    pub fn contains(&self, k: &K) -> bool {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).contains_key(k)
    }

    /// Gives `k` a bucket with one token already spent, unless it has one (or too many are kept).
    pub fn remember(&self, k: K, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_TRACKED {
            map.entry(k).or_insert(Tokens { level: (self.bucket.burst - 1.0).max(0.0), at: now });
        }
    }

    /// Drops `k`'s bucket.
    pub fn forget(&self, k: &K) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let buckets = Buckets::new(Bucket { burst: 3.0, per_second: 2.0 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take(&1u8, t0).is_ok());
        }
        let wait = buckets.take(&1u8, t0).expect_err("empty");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(buckets.take(&1u8, t0 + Duration::from_millis(500)).is_ok());
        assert!(buckets.take(&2u8, t0).is_ok(), "another client has its own bucket");
        buckets.give_back(&1u8);
        assert!(buckets.take(&1u8, t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn buckets_out_of_range_are_invalid() {
        assert!(Bucket { burst: 1.0, per_second: 0.01 }.is_valid());
        assert!(!Bucket { burst: 0.5, per_second: 1.0 }.is_valid());
        assert!(!Bucket { burst: 3.0, per_second: 0.0 }.is_valid());
        assert!(!Bucket { burst: f64::INFINITY, per_second: 1.0 }.is_valid());
    }
}
