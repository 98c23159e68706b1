//! Request rate limits kept in memory on each node: token buckets per client address, per API
//! key and for failed authentications per address. Over a limit the answer is 429 problem+json
//! with `Retry-After`.
//!
//! A key counts as valid once a route that checks keys answered it with a success or a 403; until
//! then each request without such a key spends a failed-authentication token of its address, given
//! back unless the answer is 401. So a flood of bad keys is cut off after a few tries, even when
//! the tries run at once, while requests with a known good key from the same address go on.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use tailor_core::ErrorCode;

use crate::limits::{client_key, Bucket, ServerLimits};
use crate::ApiError;

/// Buckets kept per map; past it, full buckets (the same as none) are dropped first.
const MAX_TRACKED: usize = 100_000;

/// Wraps `app` with the rate limits of `limits` (nothing when every limit is off).
pub(crate) fn layer(app: Router, limits: &ServerLimits) -> Router {
    let rate = &limits.rate;
    if rate.per_ip.is_none() && rate.per_key.is_none() && rate.failed_auth_per_ip.is_none() {
        return app;
    }
    let limiter = Arc::new(RateLimiter {
        per_ip: rate.per_ip,
        per_key: rate.per_key,
        failed_auth: rate.failed_auth_per_ip,
        trusted_proxies: limits.trusted_proxies.clone(),
        ips: Mutex::default(),
        keys: Mutex::default(),
        failed: Mutex::default(),
        hasher: RandomState::new(),
    });
    app.layer(axum::middleware::from_fn_with_state(limiter, limit))
}

struct RateLimiter {
    per_ip: Option<Bucket>,
    per_key: Option<Bucket>,
    failed_auth: Option<Bucket>,
    trusted_proxies: Vec<IpAddr>,
    ips: Mutex<HashMap<IpAddr, Tokens>>,
    /// Keys seen to be valid, by a hash of the key (the secret itself is not kept).
    keys: Mutex<HashMap<u64, Tokens>>,
    failed: Mutex<HashMap<IpAddr, Tokens>>,
    hasher: RandomState,
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

/// Takes one token for `k`, or says how long until one is back.
fn take<K: Hash + Eq + Copy>(map: &Mutex<HashMap<K, Tokens>>, k: K, b: &Bucket, now: Instant) -> Result<(), Duration> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= MAX_TRACKED && !map.contains_key(&k) {
        map.retain(|_, t| t.refilled(b, now).level < b.burst);
        if map.len() >= MAX_TRACKED {
            // More clients than buckets: let this one through rather than refuse every newcomer.
            return Ok(());
        }
    }
    let t = map.entry(k).or_insert(Tokens { level: b.burst, at: now });
    *t = t.refilled(b, now);
    if t.level >= 1.0 {
        t.level -= 1.0;
        Ok(())
    } else {
        Err(Duration::from_secs_f64((1.0 - t.level) / b.per_second))
    }
}

fn give_back<K: Hash + Eq>(map: &Mutex<HashMap<K, Tokens>>, k: &K, b: &Bucket) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = map.get_mut(k) {
        t.level = (t.level + 1.0).min(b.burst);
    }
}

impl RateLimiter {
    /// The address a request counts against: the peer, or the client a trusted proxy names in
    /// `X-Forwarded-For` (the right-most address that is not itself a trusted proxy).
    fn client(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
        if !self.trusted_proxies.contains(&peer) {
            return Some(client_key(peer));
        }
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let client = forwarded
            .iter()
            .rev()
            .filter_map(|hop| hop.parse::<IpAddr>().ok())
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer);
        Some(client_key(client))
    }

    fn is_known(&self, key: u64) -> bool {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&key)
    }

    fn remember(&self, key: u64, now: Instant) {
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_TRACKED {
            let burst = self.per_key.map_or(1.0, |b| b.burst);
            map.entry(key).or_insert(Tokens { level: (burst - 1.0).max(0.0), at: now });
        }
    }

    fn forget(&self, key: u64) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

/// The API key a request presents (Bearer token, or the HTTP Basic user name intake takes),
/// as a hash.
fn presented_key(headers: &HeaderMap, hasher: &RandomState) -> Option<u64> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let key = if let Some(token) = value.strip_prefix("Bearer ") {
        token.trim().to_string()
    } else {
        let decoded = base64::engine::general_purpose::STANDARD.decode(value.strip_prefix("Basic ")?.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        text.split(':').next().unwrap_or("").to_string()
    };
    (!key.is_empty()).then(|| hasher.hash_one(key))
}

/// Routes that check a key: every `/v1/` route and `/metrics` on the public listener.
fn checks_keys(path: &str) -> bool {
    path.starts_with("/v1/") || path == "/metrics"
}

async fn limit(State(l): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let path = req.uri().path().to_string();
    let ip = l.client(&req);
    let key = presented_key(req.headers(), &l.hasher);
    if let (Some(ip), Some(b)) = (ip, &l.per_ip) {
        if let Err(wait) = take(&l.ips, ip, b, now) {
            return too_many("ip", wait, "too many requests from this address", &path);
        }
    }
    let known = key.is_some_and(|k| l.is_known(k));
    if let (true, Some(k), Some(b)) = (known, key, &l.per_key) {
        if let Err(wait) = take(&l.keys, k, b, now) {
            return too_many("key", wait, "too many requests with this API key", &path);
        }
    }
    let mut spent = None;
    if let (false, Some(ip), Some(b)) = (known, ip, &l.failed_auth) {
        match take(&l.failed, ip, b, now) {
            Ok(()) => spent = Some((ip, b)),
            Err(wait) => {
                return too_many(
                    "auth",
                    wait,
                    "too many requests with a missing or unknown API key from this address",
                    &path,
                )
            }
        }
    }
    let matched = req.extensions().get::<MatchedPath>().is_some();
    let response = next.run(req).await;
    let status = response.status();
    let unauthorized = status == StatusCode::UNAUTHORIZED;
    if let (Some((ip, b)), false) = (spent, unauthorized) {
        give_back(&l.failed, &ip, b);
    }
    if let Some(k) = key {
        if unauthorized {
            l.forget(k);
        } else if !known && matched && checks_keys(&path) && (status.is_success() || status == StatusCode::FORBIDDEN) {
            l.remember(k, now);
        }
    }
    response
}

fn too_many(limit: &'static str, wait: Duration, what: &str, path: &str) -> Response {
    metrics::counter!("tailor_http_rate_limited_total", "limit" => limit).increment(1);
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let error = ApiError::new(ErrorCode::RateLimited, format!("{what}: retry after {secs} s"));
    let mut response = crate::error::respond(error, path);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let map = Mutex::new(HashMap::new());
        let b = Bucket { burst: 3.0, per_second: 2.0 };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(take(&map, 1u8, &b, t0).is_ok());
        }
        let wait = take(&map, 1u8, &b, t0).expect_err("empty");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(take(&map, 1u8, &b, t0 + Duration::from_millis(500)).is_ok());
        assert!(take(&map, 2u8, &b, t0).is_ok(), "another client has its own bucket");
        give_back(&map, &1u8, &b);
        assert!(take(&map, 1u8, &b, t0 + Duration::from_millis(500)).is_ok());
    }
}
