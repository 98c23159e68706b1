//! Request rate limits kept in memory on each node: token buckets per client address, per API
//! key and for failed authentications per address. Over a limit the answer is 429 problem+json
//! with `Retry-After`.
//!
//! A key counts as valid once a route that checks keys answered it with a success or a 403; until
//! then each request without such a key spends a failed-authentication token of its address, given
//! back unless the answer is 401. So a flood of bad keys is cut off after a few tries, even when
//! the tries run at once, while requests with a known good key from the same address go on.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use tailor_core::bucket::{Bucket, Buckets};
use tailor_core::ErrorCode;

use crate::chat_limits::ChatGate;
use crate::limits::{client_key, ServerLimits};
use crate::ApiError;

/// The client address a request counts against (see [`client_of`]), set on every request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub IpAddr);

/// Wraps `app` with the rate limits of `limits`, and tells every request its client address and
/// the chat limits (handlers of shopper chat check those themselves: they know the shopper).
pub(crate) fn layer(app: Router, limits: &ServerLimits) -> Router {
    let rate = &limits.rate;
    let app = if rate.per_ip.is_none() && rate.per_key.is_none() && rate.failed_auth_per_ip.is_none() {
        app
    } else {
        let limiter = Arc::new(RateLimiter {
            per_ip: rate.per_ip.map(Buckets::new),
            per_key: rate.per_key,
            failed_auth: rate.failed_auth_per_ip.map(Buckets::new),
            keys: Buckets::new(rate.per_key.unwrap_or(Bucket { burst: 1.0, per_second: 1.0 })),
            hasher: RandomState::new(),
        });
        app.layer(axum::middleware::from_fn_with_state(limiter, limit))
    };
    let origin =
        Arc::new(Origin { trusted_proxies: limits.trusted_proxies.clone(), chat: Arc::new(ChatGate::new(rate)) });
    let app = app.layer(axum::middleware::from_fn_with_state(origin, mark_origin));
    // Outermost, so that answers from the limits (429) reach the page too.
    crate::cors::layer(app, &limits.allowed_origins)
}

struct Origin {
    trusted_proxies: Vec<IpAddr>,
    chat: Arc<ChatGate>,
}

async fn mark_origin(State(o): State<Arc<Origin>>, mut req: Request, next: Next) -> Response {
    if let Some(ip) = client_of(&req, &o.trusted_proxies) {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    req.extensions_mut().insert(o.chat.clone());
    next.run(req).await
}

struct RateLimiter {
    per_ip: Option<Buckets<IpAddr>>,
    per_key: Option<Bucket>,
    failed_auth: Option<Buckets<IpAddr>>,
    /// Keys seen to be valid, by a hash of the key (the secret itself is not kept).
    keys: Buckets<u64>,
    hasher: RandomState,
}

/// The address a request counts against: the peer, or the client a trusted proxy names in
/// `X-Forwarded-For` (the right-most address that is not itself a trusted proxy).
fn client_of(req: &Request, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    if !trusted_proxies.contains(&peer) {
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
        .find(|ip| !trusted_proxies.contains(ip))
        .unwrap_or(peer);
    Some(client_key(client))
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
    let ip = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let key = presented_key(req.headers(), &l.hasher);
    if let (Some(ip), Some(b)) = (ip, &l.per_ip) {
        if let Err(wait) = b.take(&ip, now) {
            return too_many("ip", wait, "too many requests from this address", &path);
        }
    }
    let known = key.is_some_and(|k| l.keys.contains(&k));
    if let (true, Some(k), Some(_)) = (known, key, &l.per_key) {
        if let Err(wait) = l.keys.take(&k, now) {
            return too_many("key", wait, "too many requests with this API key", &path);
        }
    }
    let mut spent = None;
    if let (false, Some(ip), Some(b)) = (known, ip, &l.failed_auth) {
        match b.take(&ip, now) {
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
        b.give_back(&ip);
    }
    if let Some(k) = key {
        if unauthorized {
            l.keys.forget(&k);
        } else if !known && matched && checks_keys(&path) && (status.is_success() || status == StatusCode::FORBIDDEN) {
            l.keys.remember(k, now);
        }
    }
    response
}

pub(crate) fn too_many(limit: &'static str, wait: Duration, what: &str, path: &str) -> Response {
    metrics::counter!("tailor_http_rate_limited_total", "limit" => limit).increment(1);
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let error = ApiError::new(ErrorCode::RateLimited, format!("{what}: retry after {secs} s"));
    let mut response = crate::error::respond(error, path);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
