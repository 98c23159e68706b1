//! Operations: health, Prometheus metrics, statistics and the request metrics middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tailor_engine::{Readiness, Stats};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(metrics)).routes(routes!(stats))
}

/// Liveness and readiness: 200 when the database answers, with `status` `ok`, or `degraded`
/// while the projection lags far behind the log; the lag, the dead letters waiting for a replay
/// and each background job's last success.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Readiness), (status = 500, description = "Database unavailable")))]
async fn healthz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    Ok(Json(state.engine.readiness().await?))
}

/// Prometheus metrics. On the public listener they need the admin key; the operations listener
/// (`--ops-listen`) serves them without one.
#[utoipa::path(get, path = "/metrics", tag = "ops", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format"), (status = 401, description = "No admin key")))]
async fn metrics(State(state): State<AppState>, _key: AdminKey) -> impl IntoResponse {
    open_metrics(State(state)).await
}

async fn open_metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// The routes of the operations listener, meant for a private network: `/metrics` without a
/// key, and `/healthz`.
pub(crate) fn operations_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/metrics", axum::routing::get(open_metrics))
        .route("/healthz", axum::routing::get(healthz))
}

/// Counts of events, profiles, merges, products, locations and orders, and the projection lag.
#[utoipa::path(get, path = "/v1/stats", tag = "ops", security(("bearer" = [])), responses((status = 200, body = Stats)))]
async fn stats(State(state): State<AppState>, _key: ReadKey) -> Result<Json<Stats>, ApiError> {
    Ok(Json(state.engine.stats().await?))
}

/// Counts requests and their latency per route and status. Labels hold the route template,
/// never the path, so no identifier reaches the metrics.
pub(crate) async fn track_metrics(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("tailor_http_requests_total", &labels).increment(1);
    metrics::histogram!("tailor_http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    response
}
