//! The HTTP API and web console of Tailor: thin axum handlers over the [`Engine`], API-key auth,
//! RFC 9457 problem+json errors, OpenAPI 3.1 with browsable docs, `/healthz` and `/metrics`.

mod admin;
mod auth;
mod console;
mod error;
mod intake;
mod inventory;
mod loyalty;
mod ops;
mod page;
mod pricing;
mod profiles;
mod recommendations;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::DefaultBodyLimit;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tailor_engine::Engine;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use auth::SecuritySchemes;
pub use error::ApiError;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    engine: Engine,
    metrics: PrometheusHandle,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tailor API", description = "Personalization and omnichannel engine for retailers. \
        Intake routes take the write key as the HTTP Basic user name (as Segment SDKs send it); \
        every other route takes `Authorization: Bearer KEY`."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "intake", description = "Segment-compatible event intake"),
        (name = "profiles", description = "Unified customer profiles, consent and privacy requests"),
        (name = "recommendations", description = "Recommendations, merchandising rules, store context and models"),
        (name = "catalog", description = "Products"),
        (name = "inventory", description = "Stock, bundles, reservations and availability to promise"),
        (name = "loyalty", description = "Points accounts, redemption and adjustments"),
        (name = "pricing", description = "Prices on every channel, the price book, guardrails, promotions, repricing and markdowns"),
        (name = "ops", description = "Health, metrics and statistics"),
    )
)]
struct ApiDoc;

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // A second server in the same process (tests) shares the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The whole application: API, docs and console.
pub fn app(engine: Engine) -> Router {
    let state = AppState { engine, metrics: metrics_handle() };
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(intake::routes())
        .merge(profiles::routes())
        .merge(recommendations::routes())
        .merge(inventory::routes())
        .merge(loyalty::routes())
        .merge(pricing::routes())
        .merge(ops::routes())
        .merge(admin::routes())
        .split_for_parts();
    let openapi = Arc::new(openapi);
    api.merge(console::routes(openapi))
        .layer(axum::middleware::from_fn(ops::track_metrics))
        .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(state)
}

pub use axum::Router;

/// Serves an already built router (tests build it with [`app`]).
pub async fn serve_router(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

/// Serves the application on `listener` until Ctrl-C or SIGTERM.
pub async fn serve(engine: Engine, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "serving");
    axum::serve(listener, app(engine)).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
