//! API-key authentication. Intake takes the write key as the HTTP Basic user name, as Segment
//! SDKs send it (a Bearer token works too); every other route takes `Authorization: Bearer KEY`.
//! Each route names what it needs; each scope allows a fixed set (see `tailor_engine::Scope`).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use tailor_core::ErrorCode;
use tailor_engine::{Access, Principal};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{ApiError, AppState};

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

/// The key's principal when it may call a route needing any of `needed`. Keys are read on
/// every request (an indexed lookup), so a revoked key is refused at once on every node.
async fn authorize(parts: &Parts, state: &AppState, needed: &[Access]) -> Result<Principal, ApiError> {
    let basic = needed.contains(&Access::Intake);
    let Some(key) = presented_key(parts, basic) else {
        let how = if basic {
            "send the write key as the HTTP Basic user name (as Segment SDKs do) or as Authorization: Bearer KEY"
        } else {
            "send Authorization: Bearer KEY; create a key with `tailor keys create --scope SCOPE`"
        };
        return Err(ApiError::new(ErrorCode::Unauthorized, format!("no API key: {how}")));
    };
    match state.engine.authenticate(&key).await? {
        None => Err(ApiError::new(ErrorCode::Unauthorized, "unknown or revoked API key")),
        Some(p) if needed.iter().any(|n| p.scope.allows(*n)) => Ok(p),
        Some(p) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this {} key cannot call this route: it needs a {} key",
                p.scope.as_str(),
                needed.iter().map(|n| n.scopes()).collect::<Vec<_>>().join(" or ")
            ),
        )),
    }
}

macro_rules! key_extractor {
    ($name:ident, [$($need:expr),+], $doc:literal) => {
        #[doc = $doc]
        pub(crate) struct $name(#[allow(dead_code)] pub(crate) Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;
            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
                authorize(parts, state, &[$($need),+]).await.map($name)
            }
        }
    };
}

key_extractor!(
    WriteKey,
    [Access::Intake],
    "A key that may send events (write, source, pos or admin); its source says whether they are trusted."
);
key_extractor!(ReadKey, [Access::Read], "A key that may read (read or admin).");
key_extractor!(
    ChatKey,
    [Access::Intake],
    "A key that may converse with the assistant (write, source, pos or admin); a write key only with the conversation's token."
);
key_extractor!(
    StockKey,
    [Access::Read, Access::Reserve],
    "A key that may read stock and reservations (read, checkout or admin)."
);
key_extractor!(ReserveKey, [Access::Reserve], "A key that may hold and settle reservations (checkout or admin).");
key_extractor!(
    LoyaltyKey,
    [Access::Read, Access::Redeem],
    "A key that may read loyalty accounts (read, pos or admin)."
);
key_extractor!(RedeemKey, [Access::Redeem], "A key that may redeem points (pos or admin).");
key_extractor!(AgentKey, [Access::Agent], "A key that may answer the assistant's hand-offs (agent or admin).");
key_extractor!(AdminKey, [Access::Admin], "An admin key.");

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
