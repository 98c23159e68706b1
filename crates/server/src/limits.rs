//! What one server holds: connection caps, timeouts and request rate limits, read from the
//! configuration (every field has a default, so a file names only what it changes).

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
pub use tailor_core::bucket::Bucket;

/// Connection and request limits of a listener. The defaults suit one node facing the internet
/// directly or through proxies listed in `trusted_proxies`.
///
/// | field | default | what happens beyond it |
/// | --- | --- | --- |
/// | `max_connections` | 10,000 (lowered to fit the open-file limit) | a new connection is answered 503 and closed at once |
/// | `max_connections_per_ip` | 256 | the same, for that address only |
/// | `header_read_timeout_secs` | 10 | a request head not complete this long after its first byte (or after the connection opened) closes the connection |
/// | `idle_timeout_secs` | 75 | a keep-alive connection without a request this long is closed (above the 60 s of common load balancers) |
/// | `body_read_timeout_secs` | 30 | a request body that sends no byte this long closes the connection |
/// | `shutdown_grace_secs` | 8 | on SIGTERM, requests still running this long after are dropped (with the jobs and the store closing after, the process exits within 10 s) |
/// | `rate` | see [`RateLimits`] | 429 with `Retry-After` |
/// | `allowed_origins` | any | a browser page from another origin cannot call intake or the assistant |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// Most connections open at once on the listener.
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6 client is its /64).
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a whole request head.
    pub header_read_timeout_secs: f64,
    /// Seconds a keep-alive connection may wait for its next request.
    pub idle_timeout_secs: f64,
    /// Seconds a request body may go without sending a byte.
    pub body_read_timeout_secs: f64,
    /// Seconds in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace_secs: f64,
    /// Proxies and load balancers whose `X-Forwarded-For` is believed: their own connections
    /// are not capped per address, and requests through them are rate limited per client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Request rate limits.
    pub rate: RateLimits,
    /// Web origins (e.g. `https://shop.example`) whose pages may call the browser routes
    /// (intake, conversations) with the write key; empty: any origin.
    pub allowed_origins: Vec<String>,
}

/// Token buckets kept in memory on each node: a bucket holds up to `burst` requests and refills
/// at `per_second`. Set a limit to `null` to turn it off.
///
/// Defaults: 200/s (burst 400) per client address, 2,000/s (burst 4,000) per API key, and
/// 20 failed authentications per address (refilled at one every 5 s); an address that spent them
/// is answered 429 until refilled, except for requests with a key already seen to be valid.
/// Chat from browsers (the write key): 60 starts and messages at once per address, refilled at
/// one a second, and 12 per shopper, refilled at one every 5 s (people type slower).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Every request, per client address.
    pub per_ip: Option<Bucket>,
    /// Every request carrying a valid API key, per key.
    pub per_key: Option<Bucket>,
    /// Requests answered 401, per client address.
    pub failed_auth_per_ip: Option<Bucket>,
    /// Conversation starts and messages sent with the write key (from browsers), per client
    /// address.
    pub chat_per_ip: Option<Bucket>,
    /// The same, per shopper (the conversation's anonymousId or userId).
    pub chat_per_shopper: Option<Bucket>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_read_timeout_secs: 10.0,
            idle_timeout_secs: 75.0,
            body_read_timeout_secs: 30.0,
            shutdown_grace_secs: 8.0,
            trusted_proxies: Vec::new(),
            rate: RateLimits::default(),
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip: Some(Bucket { burst: 400.0, per_second: 200.0 }),
            per_key: Some(Bucket { burst: 4_000.0, per_second: 2_000.0 }),
            failed_auth_per_ip: Some(Bucket { burst: 20.0, per_second: 0.2 }),
            chat_per_ip: Some(Bucket { burst: 60.0, per_second: 1.0 }),
            chat_per_shopper: Some(Bucket { burst: 12.0, per_second: 0.2 }),
        }
    }
}

impl RateLimits {
    /// No request rate limit at all (benchmarks, tests of other things).
    pub fn off() -> Self {
        Self { per_ip: None, per_key: None, failed_auth_per_ip: None, chat_per_ip: None, chat_per_shopper: None }
    }
}

impl ServerLimits {
    /// The defaults without request rate limits: connection caps and timeouts only.
    pub fn without_rate_limits() -> Self {
        Self { rate: RateLimits::off(), ..Self::default() }
    }

    /// Checks that every number is usable; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let secs = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("shutdown_grace_secs", self.shutdown_grace_secs),
        ];
        for (name, v) in secs {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return Err(format!("{name} must be between 0 and 86400 seconds, not {v}"));
            }
        }
        for o in &self.allowed_origins {
            let host = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")).unwrap_or("");
            if host.is_empty() || o.len() > 256 || host.trim_end_matches('/').contains(['/', '?', '#', ' ']) {
                return Err(format!(
                    "allowed_origins: '{o}' is not an origin; write scheme://host[:port], e.g. https://shop.example"
                ));
            }
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err("max_connections and max_connections_per_ip must be at least 1".into());
        }
        let buckets = [
            ("per_ip", self.rate.per_ip),
            ("per_key", self.rate.per_key),
            ("failed_auth_per_ip", self.rate.failed_auth_per_ip),
            ("chat_per_ip", self.rate.chat_per_ip),
            ("chat_per_shopper", self.rate.chat_per_shopper),
        ];
        for (name, b) in buckets {
            if let Some(b) = b {
                if !b.is_valid() {
                    return Err(format!("rate.{name} needs burst >= 1 and per_second > 0"));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_timeout_secs)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.idle_timeout_secs)
    }

    pub(crate) fn body_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.body_read_timeout_secs)
    }

    pub(crate) fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
}

/// The address a limit counts against: an IPv4 address, or the /64 of an IPv6 one (a single
/// client usually holds a whole /64); IPv4-mapped IPv6 addresses count as IPv4.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_the_other_defaults_and_unknown_fields_are_refused() {
        let l: ServerLimits =
            serde_json::from_str(r#"{"max_connections_per_ip": 8, "rate": {"per_ip": null}}"#).expect("parse");
        assert_eq!(l.max_connections_per_ip, 8);
        assert_eq!(l.max_connections, 10_000);
        assert_eq!(l.rate.per_ip, None);
        assert_eq!(l.rate.per_key, RateLimits::default().per_key);
        assert!(serde_json::from_str::<ServerLimits>(r#"{"max_conections": 8}"#).is_err());
        assert!(ServerLimits::default().validate().is_ok());
        assert!(ServerLimits { idle_timeout_secs: 0.0, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().expect("ip"));
    }
}
