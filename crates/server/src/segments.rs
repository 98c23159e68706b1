//! Segment routes: definitions with their live counts, and members page by page. Thin: the
//! engine keeps membership up as events arrive.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tailor_engine::{SegmentDef, SegmentMember, SegmentView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::error::parse_body;
use crate::extract::{Path, Query};
use crate::page::{cursor_of_text, Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_segment, put_segment, delete_segment))
        .routes(routes!(members))
}

/// Every segment with its live count, by id.
#[utoipa::path(get, path = "/v1/segments", tag = "journeys", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<SegmentView>), (status = 400, description = "Bad limit or cursor")))]
async fn list(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<SegmentView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.segments().await?)?))
}

/// A segment: its definition and how many members it has now.
#[utoipa::path(get, path = "/v1/segments/{id}", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The segment id")),
    responses((status = 200, body = SegmentView), (status = 404, description = "No such segment")))]
async fn get_segment(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
) -> Result<Json<SegmentView>, ApiError> {
    Ok(Json(state.engine.segment(&id).await?))
}

/// Saves a segment (conditions over traits, orders, spend and events counted in a window, all
/// of which must hold) and fills it from every customer; from then on membership follows events
/// as they arrive and time as it passes. Refused naming the field, and nothing saved, when a
/// condition is out of range.
#[utoipa::path(put, path = "/v1/segments/{id}", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The segment id")), request_body = SegmentDef,
    responses((status = 200, body = SegmentView), (status = 400, description = "Invalid field")))]
async fn put_segment(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SegmentView>, ApiError> {
    let def: SegmentDef = parse_body(&body, &["name", "conditions"])?;
    Ok(Json(state.engine.put_segment(&id, &def).await?))
}

/// Deletes a segment.
#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The segment id")),
    responses((status = 204), (status = 404, description = "No such segment")))]
async fn delete_segment(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_segment(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A segment's members now, by profile id, page by page.
#[utoipa::path(get, path = "/v1/segments/{id}/members", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The segment id"), PageParams),
    responses((status = 200, body = Page<SegmentMember>), (status = 400, description = "Bad limit or cursor"),
        (status = 404, description = "No such segment")))]
async fn members(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<SegmentMember>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    let after = page.text('m')?.unwrap_or("").to_string();
    let items = state.engine.segment_members(&id, &after, page.probe() as i64).await?;
    Ok(Json(page.cut(items, |m| cursor_of_text('m', &m.profile_id))))
}
