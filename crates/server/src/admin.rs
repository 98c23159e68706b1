//! Administration: API keys (list, create, revoke, rotate) and the dead letters of the event
//! projection (list and replay).

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
#[utoipa::path(get, path = "/v1/keys", tag = "ops", security(("bearer" = [])), responses((status = 200, body = [ApiKey])))]
async fn list_keys(State(state): State<AppState>, _key: AdminKey) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(state.engine.keys().await?))
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
        .ok_or_else(|| ApiError::field("scope", "must be one of write, source, read, checkout, pos, admin"))?;
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

/// Paging of dead letters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct DeadLetterQuery {
    /// Only dead letters after this log position (`nextCursor` of the previous page).
    cursor: Option<i64>,
    /// At most this many (1..=1000, default 100).
    limit: Option<i64>,
    /// Include those already replayed.
    replayed: Option<bool>,
}

/// A page of dead letters.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeadLetterPage {
    /// Oldest first.
    items: Vec<DeadLetterView>,
    /// The cursor of the next page, when there may be one.
    next_cursor: Option<i64>,
}

/// Events the projection could not apply, with the reason, oldest first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "ops", security(("bearer" = [])), params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage)))]
async fn dead_letters(
    State(state): State<AppState>,
    _key: AdminKey,
    Query(q): Query<DeadLetterQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    let items = state.engine.dead_letters(q.cursor.unwrap_or(0), limit, q.replayed.unwrap_or(false)).await?;
    let next_cursor = (items.len() as i64 == limit).then(|| items.last().map(|d| d.seq)).flatten();
    Ok(Json(DeadLetterPage { items, next_cursor }))
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
