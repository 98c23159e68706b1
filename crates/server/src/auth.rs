//! API-key authentication. Intake takes the write key as the HTTP Basic user name, as Segment
//! SDKs send it (a Bearer token works too); every other route takes `Authorization: Bearer KEY`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use tailor_core::ErrorCode;
use tailor_engine::Scope;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{ApiError, AppState};

/// Recently seen keys, so a request does not cost a database read. Entries live a minute, so a
/// revoked key stops working within a minute.
#[derive(Default)]
pub(crate) struct KeyCache(Mutex<HashMap<String, (Option<Scope>, Instant)>>);

const KEY_TTL: Duration = Duration::from_secs(60);

impl KeyCache {
    async fn scope(&self, state: &AppState, secret: &str) -> Result<Option<Scope>, ApiError> {
        if let Ok(map) = self.0.lock() {
            if let Some((scope, at)) = map.get(secret) {
                if at.elapsed() < KEY_TTL {
                    return Ok(*scope);
                }
            }
        }
        let scope = state.engine.authenticate(secret).await?;
        if let Ok(mut map) = self.0.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(secret.to_string(), (scope, Instant::now()));
        }
        Ok(scope)
    }
}

fn presented_key(parts: &Parts, basic_allowed: bool) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    if basic_allowed {
        if let Some(b64) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let user = text.split(':').next().unwrap_or("").to_string();
            return (!user.is_empty()).then_some(user);
        }
    }
    None
}

async fn authorize(parts: &Parts, state: &AppState, needed: Scope) -> Result<(), ApiError> {
    let basic = needed == Scope::Write;
    let Some(key) = presented_key(parts, basic) else {
        let how = if basic {
            "send the write key as the HTTP Basic user name (as Segment SDKs do) or as Authorization: Bearer KEY"
        } else {
            "send Authorization: Bearer KEY; create a key with `tailor keys create --scope read|admin`"
        };
        return Err(ApiError::new(ErrorCode::Unauthorized, format!("no API key: {how}")));
    };
    match state.keys.scope(state, &key).await? {
        None => Err(ApiError::new(ErrorCode::Unauthorized, "unknown or revoked API key")),
        Some(scope) if scope.allows(needed) => Ok(()),
        Some(scope) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this {} key cannot call this route: it needs a {} or admin key", scope.as_str(), needed.as_str()),
        )),
    }
}

macro_rules! key_extractor {
    ($name:ident, $scope:expr, $doc:literal) => {
        #[doc = $doc]
        pub(crate) struct $name;

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;
            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
                authorize(parts, state, $scope).await.map(|_| $name)
            }
        }
    };
}

key_extractor!(WriteKey, Scope::Write, "Proof that the request carries a write (or admin) key.");
key_extractor!(ReadKey, Scope::Read, "Proof that the request carries a read (or admin) key.");
key_extractor!(AdminKey, Scope::Admin, "Proof that the request carries an admin key.");

/// Declares the two auth schemes in the OpenAPI document.
pub(crate) struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API key")).build(),
            ),
        );
        components.add_security_scheme(
            "write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The write key as user name, empty password (Segment SDKs)"))
                    .build(),
            ),
        );
    }
}
