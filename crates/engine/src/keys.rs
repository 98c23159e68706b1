//! API keys: random secrets stored as SHA-256 hashes, each with one scope.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tailor_core::time::now_millis;
use tailor_store::{Migration, Row};

use crate::{Engine, EngineError};

/// The keys table.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration::portable(
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
)];

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Event intake only: safe to ship in a browser or app.
    Write,
    /// Read profiles, catalog and decisions.
    Read,
    /// Everything, including privacy requests and merges.
    Admin,
}

impl Scope {
    /// Parses `write`, `read` or `admin`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "write" => Some(Self::Write),
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// Whether a key of this scope may call a route that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self == Self::Admin || self == needed
    }
}

/// A key as listed (never with its secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Scope.
    pub scope: Scope,
    /// A label.
    pub name: String,
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Engine {
    /// Creates a key and returns its secret, which is shown once and stored only hashed.
    pub async fn create_key(&self, scope: Scope, name: &str) -> Result<String, EngineError> {
        let secret =
            format!("tk_{}_{}{}", scope.as_str(), uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        sqlx::query("INSERT INTO api_keys (id, hash, scope, name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(hash(&secret))
            .bind(scope.as_str())
            .bind(name)
            .bind(now_millis())
            .execute(self.db().writer())
            .await?;
        Ok(secret)
    }

    /// The scope of a presented key, `None` if it is unknown or revoked.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Scope>, EngineError> {
        let row = sqlx::query("SELECT scope FROM api_keys WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash(secret))
            .fetch_optional(self.db().reader())
            .await?;
        Ok(row.and_then(|r| Scope::parse(&r.get::<String, _>(0))))
    }
}
