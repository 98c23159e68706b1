//! Profile routes: look-up by any identifier, the unified view, timeline, merges and unmerge,
//! consent, export and erasure; and products.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tailor_core::{Identifier, IdentifierKind, Purpose};
use tailor_engine::{MergeView, ProfileView, TimelineEntry};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::extract::{Path, Query};
use crate::page::{cursor_of_pair, Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lookup))
        .routes(routes!(get_profile, erase))
        .routes(routes!(timeline))
        .routes(routes!(merges))
        .routes(routes!(unmerge))
        .routes(routes!(export))
        .routes(routes!(set_consent))
        .routes(routes!(product))
}

/// Finds the customer holding one identifier: `email`, `phone`, `userId`, `anonymousId`,
/// `loyaltyCard`, `posCustomerId` or `deviceId` (snake_case works too).
#[utoipa::path(get, path = "/v1/profiles/lookup", tag = "profiles", security(("bearer" = [])),
    params(("email" = Option<String>, Query, description = "or phone, userId, anonymousId, loyaltyCard, posCustomerId, deviceId")),
    responses((status = 200, body = ProfileView), (status = 400, description = "No, several or an unknown identifier"), (status = 404, description = "No customer holds it")))]
async fn lookup(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<ProfileView>, ApiError> {
    let mut ids = Vec::new();
    for (name, value) in &q {
        let kind = IdentifierKind::parse(name).ok_or_else(|| {
            ApiError::field(name, "unknown identifier; use one of email, phone, userId, anonymousId, loyaltyCard, posCustomerId, deviceId")
        })?;
        ids.push(Identifier::parse(kind, value, name)?);
    }
    let [id] = ids.as_slice() else {
        return Err(ApiError::field("query", "give exactly one identifier, e.g. ?email=ann@example.com"));
    };
    let root = state.engine.lookup(id).await?.ok_or_else(|| {
        ApiError::new(tailor_core::ErrorCode::NotFound, format!("no customer holds this {}", id.kind.as_str()))
    })?;
    Ok(Json(state.engine.profile(&root).await?))
}

/// The unified profile: traits, identifiers, features, consent and cart over every merged profile.
#[utoipa::path(get, path = "/v1/profiles/{id}", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id (a merged-away id answers with its survivor)")),
    responses((status = 200, body = ProfileView), (status = 404, description = "No such profile")))]
async fn get_profile(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    Ok(Json(state.engine.profile(&id).await?))
}

/// Erases the person: personal data and identifiers are deleted; anonymous aggregates stay.
#[utoipa::path(delete, path = "/v1/profiles/{id}", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, description = "Erased"), (status = 404, description = "No such profile")))]
async fn erase(State(state): State<AppState>, _key: AdminKey, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let n = state.engine.erase(&id).await?;
    Ok(Json(json!({"erased": true, "profiles": n})))
}

/// The cross-channel timeline, newest first (by event time, then log position).
#[utoipa::path(get, path = "/v1/profiles/{id}/timeline", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id"), PageParams),
    responses((status = 200, body = Page<TimelineEntry>), (status = 400, description = "Bad limit or cursor"), (status = 404, description = "No such profile")))]
async fn timeline(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<TimelineEntry>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    let entries = state.engine.timeline(&id, page.pair('t')?, page.probe() as i64).await?;
    Ok(Json(page.cut(entries, |e| {
        cursor_of_pair('t', tailor_core::time::parse_rfc3339(&e.timestamp).unwrap_or(i64::MIN), e.seq)
    })))
}

/// Every merge of the customer's profiles, newest first, with the event and identifier that
/// caused it.
#[utoipa::path(get, path = "/v1/profiles/{id}/merges", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id"), PageParams),
    responses((status = 200, body = Page<MergeView>), (status = 400, description = "Bad limit or cursor"), (status = 404, description = "No such profile")))]
async fn merges(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<MergeView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.merges(&id).await?)?))
}

/// Which merge to undo.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UnmergeRequest {
    /// The merge to undo; default: the merge that absorbed this profile, else its latest merge.
    merge_id: Option<String>,
}

/// Undoes a merge; both profiles get back their own identifiers, traits and events.
#[utoipa::path(post, path = "/v1/profiles/{id}/unmerge", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id")), request_body = UnmergeRequest,
    responses((status = 200, body = MergeView), (status = 404, description = "No such profile"), (status = 409, description = "Nothing to undo")))]
async fn unmerge(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<MergeView>, ApiError> {
    let req: UnmergeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        UnmergeRequest::default()
    } else {
        crate::error::parse_body(&body, &["mergeId"])?
    };
    Ok(Json(state.engine.unmerge(&id, req.merge_id.as_deref()).await?))
}

/// Everything held about the person, derived data and merges included.
#[utoipa::path(get, path = "/v1/profiles/{id}/export", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, description = "The export as JSON"), (status = 404, description = "No such profile")))]
async fn export(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.engine.export(&id).await?))
}

/// A consent decision.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    /// personalization, profiling, marketing_email, marketing_sms, marketing_push or analytics.
    purpose: String,
    /// Granted (true) or withdrawn (false).
    granted: bool,
    /// Where it was given (e.g. `preference_center`, `store_tablet`); default `api`.
    source: Option<String>,
}

/// Records a consent decision for one purpose.
#[utoipa::path(put, path = "/v1/profiles/{id}/consent", tag = "profiles", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id")), request_body = ConsentRequest,
    responses((status = 204, description = "Recorded"), (status = 400, description = "Unknown purpose"), (status = 404, description = "No such profile")))]
async fn set_consent(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let req: ConsentRequest = crate::error::parse_body(&body, &["purpose", "granted", "source"])?;
    let purpose = Purpose::parse(&req.purpose).ok_or_else(|| {
        ApiError::field(
            "purpose",
            "must be one of personalization, profiling, marketing_email, marketing_sms, marketing_push, analytics",
        )
    })?;
    state.engine.set_consent(&id, purpose, req.granted, req.source.as_deref().unwrap_or("api")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One product of the catalog.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    responses((status = 200, body = tailor_catalog::Product), (status = 404, description = "No such product")))]
async fn product(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
) -> Result<Json<tailor_catalog::Product>, ApiError> {
    Ok(Json(state.engine.product(&id).await?))
}
