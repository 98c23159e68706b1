//! The HTTP API and web console of Tailor: thin axum handlers over the [`Engine`], API-key auth,
//! RFC 9457 problem+json errors, OpenAPI 3.1 with browsable docs, `/healthz` and `/metrics`,
//! served by our own accept loop with connection caps, timeouts and rate limits
//! ([`ServerLimits`]).

mod admin;
mod auth;
mod chat_limits;
mod console;
mod conversations;
mod cors;
mod encoding;
mod error;
mod extract;
mod intake;
mod inventory;
mod journeys;
mod limits;
mod listener;
mod loyalty;
mod ops;
mod page;
mod pricing;
mod profiles;
mod ratelimit;
mod recommendations;
mod search;
mod segments;
mod uplift;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::DefaultBodyLimit;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tailor_engine::Engine;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use auth::SecuritySchemes;
pub use error::ApiError;
pub use limits::{Bucket, RateLimits, ServerLimits};

/// The largest request body any route reads (after decompression); intake's own limits are lower.
pub(crate) const BODY_LIMIT: usize = 4 * 1024 * 1024;

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
        (name = "catalog", description = "Products and product search"),
        (name = "inventory", description = "Stock, bundles, reservations and availability to promise"),
        (name = "loyalty", description = "Points accounts, redemption and adjustments"),
        (name = "pricing", description = "Prices on every channel, the price book, guardrails, promotions, repricing and markdowns"),
        (name = "journeys", description = "Journeys, send guardrails, sends and skips, on-site messages, suppressions and unsubscribe"),
        (name = "assistant", description = "The shopping assistant: conversations, live feeds, the hand-off inbox and the knowledge base"),
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

fn state(engine: Engine) -> AppState {
    AppState { engine, metrics: metrics_handle() }
}

/// The whole application: API, docs and console. Every error it answers is problem+json.
pub fn app(engine: Engine) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(intake::routes())
        .merge(profiles::routes())
        .merge(recommendations::routes())
        .merge(search::routes())
        .merge(conversations::routes())
        .merge(inventory::routes())
        .merge(loyalty::routes())
        .merge(pricing::routes())
        .merge(journeys::routes())
        .merge(uplift::routes())
        .merge(segments::routes())
        .merge(ops::routes())
        .merge(admin::routes())
        .split_for_parts();
    let openapi = Arc::new(openapi);
    api.merge(console::routes(openapi))
        .fallback(error::no_route)
        .layer(axum::middleware::from_fn(encoding::decode))
        .layer(axum::middleware::from_fn(ops::track_metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(error::problem_json))
        .with_state(state(engine))
}

/// The operations application, for a private listen address: `/metrics` without a key and
/// `/healthz`.
pub fn ops_app(engine: Engine) -> Router {
    ops::operations_routes()
        .fallback(error::no_route)
        .layer(axum::middleware::from_fn(error::problem_json))
        .with_state(state(engine))
}

pub use axum::Router;

/// Serves an already built router (tests and benchmarks build it with [`app`]) with the default
/// connection caps and timeouts but no request rate limit, until the task is dropped.
pub async fn serve_router(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    serve_router_with(listener, app, ServerLimits::without_rate_limits(), std::future::pending()).await
}

/// Serves a router under `limits` (connection caps, timeouts, rate limits) until `shutdown`
/// completes, then stops accepting and lets in-flight requests finish within the grace period.
pub async fn serve_router_with(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    limits.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let app = ratelimit::layer(app, &limits);
    listener::run(listener, app, limits, shutdown).await
}

/// Serves the application on `listener` with the default [`ServerLimits`] until Ctrl-C or
/// SIGTERM.
pub async fn serve(engine: Engine, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_with(engine, listener, None, ServerLimits::default()).await
}

/// Serves the application on `listener` under `limits` until Ctrl-C or SIGTERM, and, when `ops`
/// is given, `/metrics` and `/healthz` on it (without a key, no rate limit: keep it private).
/// Without `ops`, `/metrics` on the public listener needs the admin key.
pub async fn serve_with(
    engine: Engine,
    listener: tokio::net::TcpListener,
    ops: Option<tokio::net::TcpListener>,
    limits: ServerLimits,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let ops_addr: Option<SocketAddr> = ops.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(?addr, ?ops_addr, ?limits, "serving");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let public = serve_router_with(listener, app(engine.clone()), limits.clone(), until_stopped(stopped.clone()));
    match ops {
        None => public.await,
        Some(ops) => {
            let ops_limits = ServerLimits { max_connections: 256, rate: RateLimits::off(), ..limits };
            let operations = serve_router_with(ops, ops_app(engine), ops_limits, until_stopped(stopped));
            let (public, operations) = tokio::join!(public, operations);
            public.and(operations)
        }
    }
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
