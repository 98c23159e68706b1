//! Limits on shopper chat from browsers. The write key ships in every shop page, so a script
//! can start conversations and send messages as fast as it likes: each conversation start and
//! message sent with the write key takes a token per client address and one per shopper (the
//! conversation's anonymousId or userId). Keys of the shop's own servers are limited per key
//! only (see [`crate::ratelimit`]): they speak for many shoppers from one address.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use tailor_core::bucket::Buckets;

use crate::limits::RateLimits;
use crate::ratelimit::{too_many, ClientAddr};

/// The chat limits of a server.
pub(crate) struct ChatGate {
    per_ip: Option<Buckets<IpAddr>>,
    per_shopper: Option<Buckets<String>>,
}

impl ChatGate {
    pub(crate) fn new(rate: &RateLimits) -> Self {
        Self { per_ip: rate.chat_per_ip.map(Buckets::new), per_shopper: rate.chat_per_shopper.map(Buckets::new) }
    }
}

/// Where a chat request comes from: its client address and the server's chat limits.
pub(crate) struct ChatOrigin {
    /// The client address (after trusted proxies), when known.
    pub client: Option<IpAddr>,
    gate: Option<std::sync::Arc<ChatGate>>,
}

impl ChatOrigin {
    /// Takes a token of the client's address, or says how long to wait.
    pub(crate) fn admit_client(&self, path: &'static str) -> Result<(), Throttled> {
        let Some(b) = self.gate.as_ref().and_then(|g| g.per_ip.as_ref()) else { return Ok(()) };
        let Some(ip) = self.client else { return Ok(()) };
        b.take(&ip, Instant::now()).map_err(|wait| Throttled {
            limit: "chat_ip",
            wait,
            what: "too many chat messages from this address",
            path,
        })
    }

    /// Takes a token of `shopper` (an anonymousId, a userId or the conversation), or says how
    /// long to wait.
    pub(crate) fn admit_shopper(&self, shopper: &str, path: &'static str) -> Result<(), Throttled> {
        let Some(b) = self.gate.as_ref().and_then(|g| g.per_shopper.as_ref()) else { return Ok(()) };
        b.take(&shopper.to_string(), Instant::now()).map_err(|wait| Throttled {
            limit: "chat_shopper",
            wait,
            what: "too many chat messages from this shopper",
            path,
        })
    }
}

/// A chat limit reached: answered 429 with `Retry-After`.
pub(crate) struct Throttled {
    limit: &'static str,
    wait: Duration,
    what: &'static str,
    path: &'static str,
}

impl From<Throttled> for Response {
    fn from(t: Throttled) -> Response {
        too_many(t.limit, t.wait, t.what, t.path)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ChatOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ChatOrigin {
            client: parts.extensions.get::<ClientAddr>().map(|c| c.0),
            gate: parts.extensions.get::<std::sync::Arc<ChatGate>>().cloned(),
        })
    }
}
