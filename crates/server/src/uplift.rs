//! Uplift model routes: train a model from a journey's randomized entries, list, read and
//! delete models. Journeys name a model in `targeting.model` to send only to those a message
//! changes. Thin: the engine trains and scores.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tailor_engine::UpliftModelView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::error::parse_body;
use crate::extract::{Path, Query};
use crate::page::{Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, train)).routes(routes!(get_model, delete_model))
}

/// What to train.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TrainBody {
    /// The model's name (letters, digits, '-', '_'); an existing model of that name is replaced.
    name: String,
    /// The journey whose randomized entries it learns from.
    journey: String,
}

/// Trains (or retrains) an uplift model from a journey's randomized entries whose attribution
/// window has closed: its holdout against those sent at random (the exploration share, or every
/// recipient of a journey that did not target). 409 with the counts when either side is too small.
#[utoipa::path(post, path = "/v1/uplift-models", tag = "journeys", security(("bearer" = [])),
    request_body = TrainBody,
    responses((status = 201, body = UpliftModelView), (status = 400, description = "Invalid field"),
        (status = 404, description = "No such journey"), (status = 409, description = "Too few randomized entries")))]
async fn train(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<(StatusCode, Json<UpliftModelView>), ApiError> {
    let b: TrainBody = parse_body(&body, &["name", "journey"])?;
    Ok((StatusCode::CREATED, Json(state.engine.train_uplift_model(&b.name, &b.journey).await?)))
}

/// Every uplift model, by name.
#[utoipa::path(get, path = "/v1/uplift-models", tag = "journeys", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<UpliftModelView>), (status = 400, description = "Bad limit or cursor")))]
async fn list(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<UpliftModelView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.uplift_models().await?)?))
}

/// One uplift model: what it learned from and the spread of its predictions.
#[utoipa::path(get, path = "/v1/uplift-models/{name}", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model")),
    responses((status = 200, body = UpliftModelView), (status = 404, description = "No such model")))]
async fn get_model(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(name): Path<String>,
) -> Result<Json<UpliftModelView>, ApiError> {
    Ok(Json(state.engine.uplift_model(&name).await?))
}

/// Deletes an uplift model; journeys naming it then send to everyone, and say so.
#[utoipa::path(delete, path = "/v1/uplift-models/{name}", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model")),
    responses((status = 204), (status = 404, description = "No such model")))]
async fn delete_model(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_uplift_model(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
