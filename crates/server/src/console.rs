//! The web console (with the assistant's hand-off inbox), the chat widget and a page showing it,
//! the browsable API docs and the OpenAPI document. Every asset is compiled
//! into the binary: nothing is fetched from a CDN.

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::{Json, Router};
use tailor_core::ErrorCode;

use crate::AppState;

const CONSOLE_HTML: &str = include_str!("assets/console.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const DOCS_HTML: &str = include_str!("assets/docs.html");
const STYLE_CSS: &str = include_str!("assets/style.css");
const INBOX_HTML: &str = include_str!("assets/inbox.html");
const INBOX_JS: &str = include_str!("assets/inbox.js");
const WIDGET_JS: &str = include_str!("assets/widget.js");
const ASSISTANT_HTML: &str = include_str!("assets/assistant.html");

const ERROR_CODES: [ErrorCode; 17] = ErrorCode::ALL;

fn errors_page() -> String {
    let rows: String = ERROR_CODES
        .iter()
        .map(|c| {
            format!(
                "<tr id=\"{n}\"><td><code>{n}</code></td><td>{s}</td><td>{t}</td></tr>",
                n = c.name(),
                s = c.status(),
                t = c.title()
            )
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Tailor error codes</title><link rel=stylesheet href=/assets/style.css></head>\
         <body><main><h1>Error codes</h1><p>Every error is <code>application/problem+json</code> (RFC 9457) with \
         <code>type</code> linking here, <code>detail</code> saying what to do and <code>field</code> naming the offending field.</p>\
         <table><tr><th>code</th><th>status</th><th>title</th></tr>{rows}</table></main></body></html>"
    )
}

pub(crate) fn routes(openapi: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    let spec = openapi.clone();
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(|| async { Html(CONSOLE_HTML) }))
        .route("/docs", get(|| async { Html(DOCS_HTML) }))
        .route("/docs/errors", get(|| async { Html(errors_page()) }))
        .route("/openapi.json", get(move || async move { Json(spec.as_ref().clone()) }))
        .route(
            "/assets/console.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], CONSOLE_JS).into_response() }),
        )
        .route("/assets/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE_CSS).into_response() }))
        .route("/console/inbox", get(|| async { Html(INBOX_HTML) }))
        .route(
            "/assets/inbox.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], INBOX_JS).into_response() }),
        )
        // The chat widget a shop page includes, and a page that includes it.
        .route(
            "/assistant/widget.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], WIDGET_JS).into_response() }),
        )
        .route("/assistant", get(|| async { Html(ASSISTANT_HTML) }))
}
