//! Recommendation routes: the recommendations themselves, and what shapes them — store
//! availability, store weather, merchandising rules — and model training.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tailor_engine::{Merchandising, RecsRequest, RecsResponse, TrainSummary, MAX_K};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::error::parse_body;
use crate::extract::Query;
use crate::page::{Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recommendations))
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(weather))
        .routes(routes!(train))
        .routes(routes!(models))
}

const PARAMS: [&str; 11] =
    ["user", "anonymousId", "context", "item", "kind", "store", "k", "exclude", "category", "novel", "cart"];

fn list(v: Option<&String>) -> Vec<String> {
    v.map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// Recommendations for a shopper in a context, each explained, with the consent used.
/// Unknown users and visitors get non-personal lists (popular at the store, trending, time and
/// weather); customers without the personalization consent too, marked `personalized: false`.
#[utoipa::path(get, path = "/v1/recommendations", tag = "recommendations", security(("bearer" = [])),
    params(
        ("user" = Option<String>, Query, description = "Profile id or userId"),
        ("anonymousId" = Option<String>, Query, description = "A visitor's anonymousId"),
        ("context" = Option<String>, Query, description = "home (default), item, cart, associate, email"),
        ("item" = Option<String>, Query, description = "The product in view (required for context=item)"),
        ("kind" = Option<String>, Query, description = "context=item only: similar (substitutes) or goes_with (complements); default both"),
        ("store" = Option<String>, Query, description = "The store the shopper buys at (default: their preferred store)"),
        ("k" = Option<usize>, Query, description = "How many, 1–100 (default 10)"),
        ("exclude" = Option<String>, Query, description = "Comma-separated product ids not to show"),
        ("category" = Option<String>, Query, description = "Comma-separated categories to keep"),
        ("novel" = Option<bool>, Query, description = "Leave out products the shopper already bought"),
        ("cart" = Option<String>, Query, description = "Comma-separated cart product ids (context=cart), besides the stored cart"),
    ),
    responses((status = 200, body = RecsResponse), (status = 400, description = "Bad parameter (named in `field`)"),
        (status = 404, description = "Unknown item, store or category"), (status = 503, description = "No model trained yet")))]
async fn recommendations(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<RecsResponse>, ApiError> {
    if let Some(bad) = q.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(ApiError::field(bad, format!("unknown parameter; use {}", PARAMS.join(", "))));
    }
    let k = match q.get("k") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=MAX_K).contains(k))
            .ok_or_else(|| ApiError::field("k", format!("k is a whole number between 1 and {MAX_K}")))?,
    };
    let novel = match q.get("novel").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::field("novel", "novel is true or false")),
    };
    let req = RecsRequest {
        user: q.get("user").cloned(),
        anonymous_id: q.get("anonymousId").cloned(),
        context: q.get("context").cloned().unwrap_or_else(|| "home".into()),
        item: q.get("item").cloned(),
        store: q.get("store").cloned(),
        k,
        cart: list(q.get("cart")),
        exclude: list(q.get("exclude")),
        categories: list(q.get("category")),
        novel,
        kind: q.get("kind").cloned(),
    };
    Ok(Json(state.engine.recommend(&req).await?))
}

/// The merchandising rules: diversity caps, boosts, pins and exclusions.
#[utoipa::path(get, path = "/v1/recommendations/rules", tag = "recommendations", security(("bearer" = [])),
    responses((status = 200, body = Merchandising)))]
async fn get_rules(State(state): State<AppState>, _key: AdminKey) -> Json<Merchandising> {
    Json(state.engine.merchandising())
}

/// Replaces the merchandising rules; the next answer uses them.
#[utoipa::path(put, path = "/v1/recommendations/rules", tag = "recommendations", security(("bearer" = [])),
    request_body = Merchandising, responses((status = 200, body = Merchandising), (status = 400, description = "Invalid rule")))]
async fn put_rules(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<Json<Merchandising>, ApiError> {
    let m: Merchandising =
        parse_body(&body, &["maxPerCategory", "maxPerBrand", "boosts", "pins", "exclude", "nonMerchandise", "factor"])?;
    state.engine.set_merchandising(m.clone()).await?;
    Ok(Json(m))
}

/// The weather at a store, e.g. from a weather service.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WeatherReport {
    /// Store id.
    store_id: String,
    /// rain, snow, hot, cold or clear.
    condition: String,
    /// Temperature in °C.
    temperature_c: Option<f64>,
}

/// Reports the weather at a store; for six hours it lifts what fits it (rain: umbrellas, soups).
#[utoipa::path(post, path = "/v1/context/weather", tag = "recommendations", security(("bearer" = [])),
    request_body = WeatherReport, responses((status = 204), (status = 400, description = "Invalid field"), (status = 404, description = "Unknown store")))]
async fn weather(State(state): State<AppState>, _key: AdminKey, body: Bytes) -> Result<StatusCode, ApiError> {
    let w: WeatherReport = parse_body(&body, &["storeId", "condition", "temperatureC"])?;
    state.engine.set_weather(&w.store_id, &w.condition, w.temperature_c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The answer to a training request.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TrainingStarted {
    /// Always `training`.
    status: &'static str,
    /// The model version served until the new one is ready, if any.
    serving: Option<i64>,
}

/// Starts training a new model version in the background; it is served when ready.
#[utoipa::path(post, path = "/v1/models/train", tag = "recommendations", security(("bearer" = [])),
    responses((status = 202, body = TrainingStarted, description = "Training started")))]
async fn train(State(state): State<AppState>, _key: AdminKey) -> (StatusCode, Json<TrainingStarted>) {
    let engine = state.engine.clone();
    tokio::spawn(async move {
        if let Err(e) = engine.train_model(Arc::new(|_| {})).await {
            tracing::warn!(error = %e, "training failed");
        }
    });
    (StatusCode::ACCEPTED, Json(TrainingStarted { status: "training", serving: state.engine.model_version() }))
}

/// The stored model versions, newest first; the newest is served.
#[utoipa::path(get, path = "/v1/models", tag = "recommendations", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<TrainSummary>), (status = 400, description = "Bad limit or cursor")))]
async fn models(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<TrainSummary>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.models().await?)?))
}
