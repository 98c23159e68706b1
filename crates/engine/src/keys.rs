//! API keys: random secrets stored as SHA-256 hashes, each with one scope and the source it
//! speaks for. A scope is what a key may call; its trust decides whether the events it sends
//! move money, stock and points (a browser key's orders are behaviour, a server's are sales).

use serde::Serialize;
use sha2::{Digest, Sha256};
use tailor_core::time::{format_millis, now_millis};
use tailor_core::FieldError;
use tailor_store::{Migration, Row};
use tailor_stream::Source;

use crate::{Engine, EngineError};

/// The keys table.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "engine/001_api_keys",
        "CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    // The source a key speaks for: `messageId`s are unique per source, and rotating a key keeps
    // its source.
    Migration::portable(
        "engine/002_key_sources",
        "ALTER TABLE api_keys ADD COLUMN source TEXT NOT NULL DEFAULT 'default'",
    ),
];

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Event intake from a browser or app: records behaviour (views, carts, client-side order
    /// events for analytics) but never credits points, moves stock or confirms reservations.
    /// Safe to ship in a page.
    Write,
    /// Event intake from a server-side source (the shop's backend, an order system): its order
    /// events are sales that earn points and move stock.
    Source,
    /// Read profiles, catalog and decisions.
    Read,
    /// A checkout: reads availability and prices, holds, confirms and releases reservations.
    Checkout,
    /// A till: sends its sales as trusted events, reads loyalty accounts and redeems points.
    Pos,
    /// A person answering the assistant's hand-offs (customer service, store staff): reads the
    /// inbox and a conversation's context, replies and closes; nothing else.
    Agent,
    /// Everything, including privacy requests, merges, settings and keys.
    Admin,
}

/// What a route needs of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Event intake.
    Intake,
    /// Reading decisions and data.
    Read,
    /// Holding and settling reservations.
    Reserve,
    /// Redeeming points.
    Redeem,
    /// Answering the assistant's hand-offs.
    Agent,
    /// Anything else: settings, privacy requests, keys.
    Admin,
}

impl Access {
    /// The scopes that may call a route needing this, for error messages.
    pub fn scopes(self) -> &'static str {
        match self {
            Self::Intake => "write, source, pos or admin",
            Self::Read => "read or admin",
            Self::Reserve => "checkout or admin",
            Self::Redeem => "pos or admin",
            Self::Agent => "agent or admin",
            Self::Admin => "admin",
        }
    }
}

impl Scope {
    /// Every scope, for help texts.
    pub const ALL: [Scope; 7] =
        [Self::Write, Self::Source, Self::Read, Self::Checkout, Self::Pos, Self::Agent, Self::Admin];

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Source => "source",
            Self::Read => "read",
            Self::Checkout => "checkout",
            Self::Pos => "pos",
            Self::Agent => "agent",
            Self::Admin => "admin",
        }
    }

    /// Whether a key of this scope may call a route that needs `needed`.
    pub fn allows(self, needed: Access) -> bool {
        match self {
            Self::Admin => true,
            Self::Write | Self::Source => needed == Access::Intake,
            Self::Read => needed == Access::Read,
            Self::Checkout => matches!(needed, Access::Reserve),
            Self::Pos => matches!(needed, Access::Intake | Access::Redeem),
            Self::Agent => needed == Access::Agent,
        }
    }

    /// Whether the events this key sends are sales (points, stock, revenue) or behaviour only.
    pub fn trusted(self) -> bool {
        !matches!(self, Self::Write)
    }
}

/// A presented key, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (never its secret): what rate limits and logs name.
    pub key_id: String,
    /// What it may do.
    pub scope: Scope,
    /// The source its events come from.
    pub source: Source,
}

/// A key as listed (never with its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Scope.
    pub scope: Scope,
    /// A label.
    pub name: String,
    /// The source its events come from.
    pub source: String,
    /// When it was created (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// When it was revoked (RFC 3339), if it was.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<String>,
}

/// A new key: its listing and the secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewKey {
    /// The key as listed.
    pub key: ApiKey,
    /// The secret to send; stored only hashed, never shown again.
    pub secret: String,
}

/// How long an answer about a key is kept in memory.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Past [`KEY_CACHE_TTL`], while one caller reads a key again, the others answer from the old
/// answer for at most this long: at thousands of requests a second, every request arriving
/// during that read would otherwise read the keys table too, each second, in one burst.
pub const KEY_CACHE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// One kept answer: who the key is, when that was read, and whether a caller is reading it
/// again.
struct KeptKey {
    principal: Option<Principal>,
    at: std::time::Instant,
    refreshing: bool,
}

/// Recent answers about presented keys (by hash), each kept for [`KEY_CACHE_TTL`].
#[derive(Default)]
pub(crate) struct KeyCache(std::sync::Mutex<std::collections::HashMap<String, KeptKey>>);

impl KeyCache {
    /// The kept answer when it is current, or old while another caller reads it again; `None`
    /// tells the caller to read the key (and, past the age, marks it as the one reading).
    fn get(&self, hashed: &str, now: std::time::Instant) -> Option<Option<Principal>> {
        let mut map = self.0.lock().ok()?;
        let kept = map.get_mut(hashed)?;
        let age = now.saturating_duration_since(kept.at);
        if age < KEY_CACHE_TTL || (kept.refreshing && age < KEY_CACHE_TTL + KEY_CACHE_GRACE) {
            return Some(kept.principal.clone());
        }
        kept.refreshing = true;
        None
    }

    fn put(&self, hashed: String, principal: Option<Principal>, at: std::time::Instant) {
        if let Ok(mut map) = self.0.lock() {
            // A bound, not an eviction policy: guessed keys cannot grow it without limit.
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(hashed, KeptKey { principal, at, refreshing: false });
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
    }
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn check_label(field: &str, v: &str) -> Result<(), EngineError> {
    if v.trim().is_empty() || v.len() > 100 {
        return Err(EngineError::Invalid(FieldError::invalid(field, "give 1 to 100 characters")));
    }
    Ok(())
}

const KEY_COLUMNS: &str = "id, scope, name, source, created_at, revoked_at";

fn key_from(r: &tailor_store::AnyRow) -> ApiKey {
    ApiKey {
        id: r.get(0),
        scope: Scope::parse(&r.get::<String, _>(1)).unwrap_or(Scope::Read),
        name: r.get(2),
        source: r.get(3),
        created_at: format_millis(r.get(4)),
        revoked_at: r.get::<Option<i64>, _>(5).map(format_millis),
    }
}

impl Engine {
    /// Creates a key and returns its secret, which is shown once and stored only hashed. Its
    /// source is `name`.
    pub async fn create_key(&self, scope: Scope, name: &str) -> Result<String, EngineError> {
        Ok(self.new_key(scope, name, name).await?.secret)
    }

    /// Creates a key for `source` (events it sends are deduplicated within that source).
    pub async fn new_key(&self, scope: Scope, name: &str, source: &str) -> Result<NewKey, EngineError> {
        check_label("name", name)?;
        check_label("source", source)?;
        let secret =
            format!("tk_{}_{}{}", scope.as_str(), uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO api_keys (id, hash, scope, name, source, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.clone())
            .bind(hash(&secret))
            .bind(scope.as_str())
            .bind(name)
            .bind(source)
            .bind(now_millis())
            .execute(self.db().writer())
            .await?;
        Ok(NewKey { key: self.key(&id).await?, secret })
    }

    async fn key(&self, id: &str) -> Result<ApiKey, EngineError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db().reader())
            .await?;
        row.as_ref().map(key_from).ok_or_else(|| EngineError::not_found("key", id))
    }

    /// Every key, newest first (never their secrets).
    pub async fn keys(&self) -> Result<Vec<ApiKey>, EngineError> {
        let rows = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"))
            .fetch_all(self.db().reader())
            .await?;
        Ok(rows.iter().map(key_from).collect())
    }

    /// Revokes a key: refused from the next request on this node, and within
    /// [`KEY_CACHE_TTL`] on every other node.
    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey, EngineError> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_millis())
            .bind(id)
            .execute(self.db().writer())
            .await?;
        self.inner.key_cache.clear();
        self.key(id).await
    }

    /// Replaces a key by a new one of the same scope, name and source, and revokes the old one.
    pub async fn rotate_key(&self, id: &str) -> Result<NewKey, EngineError> {
        let old = self.key(id).await?;
        if old.revoked_at.is_some() {
            return Err(EngineError::Conflict(format!("key {id} is revoked; create a new one instead")));
        }
        let new = self.new_key(old.scope, &old.name, &old.source).await?;
        self.revoke_key(id).await?;
        Ok(new)
    }

    /// Who a presented key is, `None` if it is unknown or revoked. Answers are kept for
    /// [`KEY_CACHE_TTL`] (and [`KEY_CACHE_GRACE`] more while one caller reads the key again): a
    /// revocation holds at once on the node that made it and within that time on every other
    /// node, while a busy checkout does not read the keys table on every request.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, EngineError> {
        let hashed = hash(secret);
        let now = std::time::Instant::now();
        if let Some(p) = self.inner.key_cache.get(&hashed, now) {
            return Ok(p);
        }
        let row = sqlx::query("SELECT id, scope, source FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hashed.clone())
            .fetch_optional(self.db().reader())
            .await?;
        let principal = row.and_then(|r| {
            let scope = Scope::parse(&r.get::<String, _>(1))?;
            let source = Source { name: r.get(2), trusted: scope.trusted() };
            Some(Principal { key_id: r.get(0), scope, source })
        });
        self.inner.key_cache.put(hashed, principal.clone(), now);
        Ok(principal)
    }
}

#[cfg(test)]
mod cache_tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn principal() -> Option<Principal> {
        Some(Principal { key_id: "k".into(), scope: Scope::Read, source: Source { name: "s".into(), trusted: false } })
    }

    #[test]
    fn one_caller_reads_an_old_key_again_while_the_others_answer_from_it_for_a_moment() {
        let (cache, t0) = (KeyCache::default(), Instant::now());
        assert!(cache.get("h", t0).is_none(), "unknown: read it");
        cache.put("h".into(), principal(), t0);
        assert_eq!(cache.get("h", t0 + Duration::from_millis(900)), Some(principal()), "current");
        let old = t0 + KEY_CACHE_TTL;
        assert!(cache.get("h", old).is_none(), "old: the first caller reads it again");
        assert_eq!(cache.get("h", old), Some(principal()), "the others answer meanwhile");
        assert!(cache.get("h", old + KEY_CACHE_GRACE).is_none(), "but not past the grace: a slow read is read again");
        cache.put("h".into(), None, old);
        assert_eq!(cache.get("h", old + Duration::from_millis(1)), Some(None), "revoked");
    }
}
