//! Administration: API keys (list, create, revoke, rotate) and the dead letters of the event
//! projection (list and replay).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tailor_engine::{ApiKey, DeadLetterView, NewKey, Scope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminKey;
use crate::error::parse_body;
use crate::extract::{Path, Query};
use crate::page::{cursor_of, Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(rotate_key))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
}

/// Every API key, newest first (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "ops", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<ApiKey>), (status = 400, description = "Bad limit or cursor")))]
async fn list_keys(
    State(state): State<AppState>,
    _key: AdminKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.keys().await?)?))
}

/// A key to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateKey {
    /// write (browser/app events: behaviour only), source (server-side events: sales), read,
    /// checkout (reservations), pos (till sales and redemption) or admin.
    scope: String,
    /// A label for people.
    name: String,
    /// The source its events come from (`messageId`s are unique per source); the name if absent.
    source: Option<String>,
}

/// Creates a key; the answer holds its secret, shown this once.
#[utoipa::path(post, path = "/v1/keys", tag = "ops", security(("bearer" = [])), request_body = CreateKey,
    responses((status = 201, body = NewKey), (status = 400, description = "Invalid field")))]
async fn create_key(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let req: CreateKey = parse_body(&body, &["scope", "name", "source"])?;
    let scope = Scope::parse(&req.scope)
        .ok_or_else(|| ApiError::field("scope", "must be one of write, source, read, checkout, pos, agent, admin"))?;
    let source = req.source.as_deref().unwrap_or(&req.name);
    Ok((StatusCode::CREATED, Json(state.engine.new_key(scope, &req.name, source).await?)))
}

/// Revokes a key: refused from the next request on, on every node.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "ops", security(("bearer" = [])),
    params(("id" = String, Path, description = "Key id")), responses((status = 200, body = ApiKey), (status = 404, description = "No such key")))]
async fn revoke_key(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(state.engine.revoke_key(&id).await?))
}

/// Replaces a key by a new one of the same scope and source and revokes the old one.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "ops", security(("bearer" = [])),
    params(("id" = String, Path, description = "Key id")), responses((status = 201, body = NewKey), (status = 404, description = "No such key")))]
async fn rotate_key(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.engine.rotate_key(&id).await?)))
}

/// Events the projection could not apply, with the reason, oldest first; `replayed=true`
/// includes those already replayed.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "ops", security(("bearer" = [])),
    params(PageParams, ("replayed" = Option<bool>, Query, description = "Include those already replayed")),
    responses((status = 200, body = Page<DeadLetterView>), (status = 400, description = "Bad limit, cursor or replayed")))]
async fn dead_letters(
    State(state): State<AppState>,
    _key: AdminKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<DeadLetterView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    let replayed = match q.get("replayed").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::field("replayed", "replayed is true or false")),
    };
    let after = page.position('s')?.unwrap_or(0);
    let limit = page.limit as i64;
    let items = state.engine.dead_letters(after, limit, replayed).await?;
    // A full page is the last one only when nothing follows it.
    let more = match items.last() {
        Some(last) if items.len() as i64 == limit => {
            !state.engine.dead_letters(last.seq, 1, replayed).await?.is_empty()
        }
        _ => false,
    };
    let next_cursor = if more { items.last().map(|d| cursor_of('s', d.seq)) } else { None };
    Ok(Json(Page { items, next_cursor }))
}

/// Applies a dead letter again, after its cause was fixed; 409 with the reason when it still
/// cannot be applied (nothing changes then).
#[utoipa::path(post, path = "/v1/dead-letters/{seq}/replay", tag = "ops", security(("bearer" = [])),
    params(("seq" = i64, Path, description = "The event's log position")),
    responses((status = 200, body = DeadLetterView), (status = 404, description = "No such dead letter"), (status = 409, description = "Still fails")))]
async fn replay(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(seq): Path<i64>,
) -> Result<Json<DeadLetterView>, ApiError> {
    Ok(Json(state.engine.replay_dead_letter(seq).await?))
}
