//! Cross-origin access for the routes a shop's pages call from the browser with the write key:
//! Segment-style intake and the assistant's conversations (the chat widget is loaded from Tailor
//! into the shop's page, so its calls are cross-origin). Those routes answer preflights and carry
//! `Access-Control-Allow-Origin` for the origins allowed (`allowed_origins`; none listed: any,
//! since the write key is public anyway). Every other route gets no CORS headers: a browser
//! never holds a read or admin key, so no other site's page may call them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tailor_core::ErrorCode;

use crate::ApiError;

const ALLOW_HEADERS: &str = "authorization, content-type, content-encoding, idempotency-key, x-conversation-token";
const EXPOSE_HEADERS: &str = "retry-after";

struct Origins {
    /// Allowed origins, e.g. `https://shop.example`; empty: any.
    allowed: Vec<String>,
}

/// Wraps `app` with cross-origin access for the browser routes.
pub(crate) fn layer(app: Router, allowed: &[String]) -> Router {
    let origins = Arc::new(Origins { allowed: allowed.iter().map(|o| o.trim_end_matches('/').to_string()).collect() });
    app.layer(axum::middleware::from_fn_with_state(origins, cors))
}

/// Routes a browser calls with the write key.
fn is_browser_route(path: &str) -> bool {
    crate::error::is_intake(path) || path == "/v1/conversations" || path.starts_with("/v1/conversations/")
}

impl Origins {
    /// The `Access-Control-Allow-Origin` value for `origin`, when it is allowed.
    fn allow(&self, origin: &str) -> Option<HeaderValue> {
        if self.allowed.is_empty() {
            return Some(HeaderValue::from_static("*"));
        }
        self.allowed.iter().any(|o| o == origin).then(|| HeaderValue::from_str(origin).ok()).flatten()
    }
}

async fn cors(State(o): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(origin), true) = (origin, is_browser_route(&path)) else { return next.run(req).await };
    let allowed = o.allow(&origin);
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(allow) = allowed else {
            let e = ApiError::new(
                ErrorCode::Forbidden,
                "this origin may not call Tailor from the browser: add it to allowed_origins in the server's configuration",
            );
            return crate::error::respond(e, &path);
        };
        let mut res = Response::new(axum::body::Body::empty());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return res;
    }
    let mut res = next.run(req).await;
    if let Some(allow) = allowed {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}
