//! RFC 9457 problem+json errors with a stable `type`, a human `detail` and the offending field.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tailor_core::{ErrorCode, FieldError};
use tailor_engine::EngineError;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub detail: String,
    /// The offending field, when one is at fault.
    pub field: Option<String>,
    /// Per-item errors (a batch whose every event was refused).
    pub errors: Option<Value>,
}

impl ApiError {
    /// An error with a code and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), field: None, errors: None }
    }

    /// An `invalid_field` error naming `field`.
    pub fn field(field: &str, detail: impl Into<String>) -> Self {
        Self { code: ErrorCode::InvalidField, detail: detail.into(), field: Some(field.into()), errors: None }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let detail = if e.field.is_empty() { e.message.clone() } else { format!("{}: {}", e.field, e.message) };
        Self { code: e.code, detail, field: Some(e.field), errors: None }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(f) => f.into(),
            EngineError::NotFound(m) => Self::new(ErrorCode::NotFound, without_storage_text(m)),
            EngineError::Conflict(m) => Self::new(ErrorCode::Conflict, without_storage_text(m)),
            EngineError::NotReady(m) => Self::new(ErrorCode::NotReady, without_storage_text(m)),
            EngineError::InsufficientStock(m) => Self::new(ErrorCode::InsufficientStock, without_storage_text(m)),
            EngineError::InsufficientPoints(m) => Self::new(ErrorCode::InsufficientPoints, without_storage_text(m)),
            EngineError::NoPrice(m) => Self::new(ErrorCode::NoPrice, without_storage_text(m)),
            EngineError::Db(_) | EngineError::Io(_) => {
                tracing::error!(error = %e, "internal error");
                Self::new(
                    ErrorCode::Internal,
                    "an internal error occurred; it was logged — retry, and report it if it persists",
                )
            }
        }
    }
}

/// Text that only a database driver writes. A message carrying one is logged and replaced: no
/// table, column, constraint or SQL reaches a client.
const STORAGE_MARKERS: [&str; 10] = [
    "database error",
    "error returned from database",
    "constraint failed",
    "violates",
    "sql variables",
    "sqlite",
    "sqlx",
    "pool timed out",
    "deadlock detected",
    "syntax error",
];

fn without_storage_text(message: String) -> String {
    let lower = message.to_ascii_lowercase();
    if STORAGE_MARKERS.iter().any(|m| lower.contains(m)) {
        tracing::warn!(error = %message, "a storage error was kept from the client");
        // What came before the driver's text is ours (e.g. "the reservation was not stored").
        let ours =
            message.split(": ").next().filter(|p| !STORAGE_MARKERS.iter().any(|m| p.to_ascii_lowercase().contains(m)));
        return match ours {
            Some(p) if p.len() < message.len() => {
                format!("{p}: the change conflicts with the stored data; it was logged")
            }
            _ => "the change conflicts with the stored data; it was logged".into(),
        };
    }
    message
}

impl ApiError {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problem+json body.
    fn body(self) -> Value {
        let mut body = json!({
            "type": self.code.type_uri(),
            "title": self.code.title(),
            "status": self.status().as_u16(),
            "detail": clip(self.detail),
            "code": self.code.name(),
        });
        if let Some(f) = self.field {
            // A path can hold a key the client sent, of any length.
            body["field"] = Value::String(clip(f));
        }
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        body
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        e.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], self.body().to_string()).into_response()
    }
}

/// The longest `detail` or `field` an error carries. Details may quote what was sent ("got ..."),
/// a field's path may hold a key that was sent, and a client that sent half a megabyte gets a
/// short answer, not its body back.
pub(crate) const MAX_DETAIL_CHARS: usize = 1_000;

/// `text` cut to [`MAX_DETAIL_CHARS`] characters (marked with an ellipsis when cut).
pub(crate) fn clip(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_DETAIL_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// The `Idempotency-Key` header, when sent: printable, at most 255 characters.
pub(crate) fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) if !s.trim().is_empty() && s.len() <= 255 => Ok(Some(s.trim().to_string())),
            _ => Err(ApiError::field("Idempotency-Key", "give a printable key of at most 255 characters")),
        },
    }
}

/// Parses a JSON object body into `T`, naming the offending field when serde can tell which.
/// Any other JSON value is refused: serde would read an array into a struct's fields in order,
/// so `[]` would mean "every setting absent".
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], fields: &[&str]) -> Result<T, ApiError> {
    parse_shaped(body, fields, b'{', "a JSON object")
}

/// Parses a JSON array body (a list of rules, tiers, rewards) into `T`.
pub(crate) fn parse_list<T: serde::de::DeserializeOwned>(body: &[u8], fields: &[&str]) -> Result<T, ApiError> {
    parse_shaped(body, fields, b'[', "a JSON array")
}

fn parse_shaped<T: serde::de::DeserializeOwned>(
    body: &[u8],
    fields: &[&str],
    opener: u8,
    what: &str,
) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != opener && matches!(b, b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9'))
    {
        return Err(ApiError::field("body", format!("the body must be {what}")));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| {
            let key = e.path().iter().rev().find_map(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            let e = e.into_inner();
            let msg = e.to_string();
            // A number no f64 holds (1e999) is valid JSON but no finite value: name its key.
            if let (true, Some(key)) = (msg.starts_with("number out of range"), &key) {
                return ApiError::field(key, format!("invalid body: {msg}; give a finite number"));
            }
            if e.is_syntax() || e.is_eof() {
                return ApiError {
                    code: ErrorCode::MalformedJson,
                    detail: format!("the body is not valid JSON: {msg}"),
                    field: Some("body".into()),
                    errors: None,
                };
            }
            // Missing and unknown fields are named in backticks; a wrong value sits at its key.
            let quoted = msg.split('`').nth(1).map(str::to_string);
            let named = msg.starts_with("missing field") || msg.starts_with("unknown field");
            let field = if named { quoted } else { key.or(quoted) }
                .or_else(|| fields.iter().find(|f| msg.contains(*f)).map(|f| f.to_string()))
                .unwrap_or_default();
            ApiError::field(&field, format!("invalid body: {msg}"))
        })
        .and_then(|v| {
            // A NUL can only arrive escaped; no backend stores it as text (see tailor_core::text).
            if body.windows(6).any(|w| w == b"\\u0000") {
                if let Ok(value) = serde_json::from_slice::<Value>(body) {
                    tailor_core::text::check_value(&value)?;
                }
            }
            // Trailing data after the value is not JSON a client meant to send.
            let mut rest = serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
            rest.next();
            match rest.next() {
                None => Ok(v),
                Some(_) => Err(ApiError {
                    code: ErrorCode::MalformedJson,
                    detail: "the body has data after its JSON value".into(),
                    field: Some("body".into()),
                    errors: None,
                }),
            }
        })
}

/// Whether `path` is a Segment intake route (whose errors also carry `message`, which Segment's
/// libraries log).
pub(crate) fn is_intake(path: &str) -> bool {
    matches!(path, "/v1/track" | "/v1/identify" | "/v1/page" | "/v1/screen" | "/v1/group" | "/v1/alias" | "/v1/batch")
}

/// The response for `error` on `path`: problem+json, with `message` on intake routes.
pub(crate) fn respond(error: ApiError, path: &str) -> Response {
    if !is_intake(path) {
        return error.into_response();
    }
    let status = error.status();
    let body = with_message(error.body());
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

fn with_message(mut v: Value) -> Value {
    if let Some(detail) = v.get("detail").cloned() {
        v["message"] = detail;
    }
    v
}

fn problem_response(mut parts: axum::http::response::Parts, v: Value) -> Response {
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

/// The answer to a path no route matches.
pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route {method} {}: the API is listed at /docs and /openapi.json", uri.path()),
    )
}

/// Makes every 4xx and 5xx answer problem+json: the framework's own answers (405, a body over the
/// limit, ...) are rewritten with a code, and a 5xx never carries its original text. On intake
/// routes every problem also carries `message`.
pub(crate) async fn problem_json(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"));
    let intake = is_intake(&path);
    if is_problem && !intake {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Read whole: a problem cut short here would reach the client as `{}`, without its code.
    let text = to_bytes(body, crate::BODY_LIMIT).await.unwrap_or_default();
    let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).map(str::to_string);
    let problem = if is_problem {
        serde_json::from_slice::<Value>(&text)
            .ok()
            .filter(|v| v.get("code").is_some_and(Value::is_string))
            .unwrap_or_else(|| framework_problem(status, &method, &path, "", allow.as_deref()))
    } else {
        let text = clip(String::from_utf8_lossy(&text).trim().to_string());
        framework_problem(status, &method, &path, &text, allow.as_deref())
    };
    problem_response(parts, if intake { with_message(problem) } else { problem })
}

fn framework_problem(status: StatusCode, method: &Method, path: &str, text: &str, allow: Option<&str>) -> Value {
    let (code, detail, field) = match status.as_u16() {
        404 => (ErrorCode::NotFound, format!("no route {method} {path}: the API is listed at /docs"), None),
        405 => (
            ErrorCode::MethodNotAllowed,
            match allow {
                Some(allow) => format!("{method} is not allowed on {path}; allowed: {allow}"),
                None => format!("{method} is not allowed on {path}: the Allow header lists the methods it takes"),
            },
            None,
        ),
        413 => (ErrorCode::PayloadTooLarge, format!("the body is too large: {text}"), Some("body")),
        415 => (ErrorCode::UnsupportedMediaType, text.to_string(), Some("Content-Type")),
        429 => (ErrorCode::RateLimited, text.to_string(), None),
        401 => (ErrorCode::Unauthorized, text.to_string(), None),
        403 => (ErrorCode::Forbidden, text.to_string(), None),
        409 => (ErrorCode::Conflict, without_storage_text(text.to_string()), None),
        503 => (ErrorCode::NotReady, "the service is not ready; retry shortly".to_string(), None),
        400..=499 => (ErrorCode::InvalidField, text.to_string(), Some("body")),
        _ => {
            tracing::error!(status = status.as_u16(), text, "an internal error without a problem body");
            (
                ErrorCode::Internal,
                "an internal error occurred; it was logged — retry, and report it if it persists".into(),
                None,
            )
        }
    };
    let detail = if detail.is_empty() { code.title().to_string() } else { detail };
    let mut v = json!({
        "type": code.type_uri(),
        "title": code.title(),
        "status": status.as_u16(),
        "detail": detail,
        "code": code.name(),
    });
    if let Some(f) = field {
        v["field"] = Value::String(f.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_text_never_reaches_a_client() {
        let e = ApiError::from(EngineError::Conflict(
            "the reservation was not stored: database error: error returned from database: (code: 275) CHECK constraint failed: quantity > 0".into(),
        ));
        assert_eq!(
            e.detail,
            "the reservation was not stored: the change conflicts with the stored data; it was logged"
        );
        let e = ApiError::from(EngineError::Conflict("reservation 'r1' is released, not held".into()));
        assert_eq!(e.detail, "reservation 'r1' is released, not held");
    }

    #[test]
    fn a_detail_quoting_a_huge_value_is_clipped() {
        let e = ApiError::field("quantity", format!("must be a whole number (got {})", "9".repeat(600_000)));
        let detail = e.body()["detail"].as_str().map(str::to_string).unwrap_or_default();
        assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(detail.ends_with('…'));
        assert_eq!(clip("short".into()), "short");
    }

    #[test]
    fn trailing_data_after_the_json_value_is_refused() {
        let e = parse_body::<Value>(b"{\"a\": 1} x", &[]).expect_err("trailing");
        assert_eq!(e.code, ErrorCode::MalformedJson);
        assert!(parse_body::<Value>(b"{\"a\": 1}  \n", &[]).is_ok());
    }
}
