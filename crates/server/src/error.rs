//! RFC 9457 problem+json errors with a stable `type`, a human `detail` and the offending field.

use axum::http::{header, StatusCode};
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
            EngineError::NotFound(m) => Self::new(ErrorCode::NotFound, m),
            EngineError::Conflict(m) => Self::new(ErrorCode::Conflict, m),
            EngineError::NotReady(m) => Self::new(ErrorCode::NotReady, m),
            EngineError::InsufficientStock(m) => Self::new(ErrorCode::InsufficientStock, m),
            EngineError::InsufficientPoints(m) => Self::new(ErrorCode::InsufficientPoints, m),
            EngineError::NoPrice(m) => Self::new(ErrorCode::NoPrice, m),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({
            "type": self.code.type_uri(),
            "title": self.code.title(),
            "status": status.as_u16(),
            "detail": self.detail,
            "code": self.code.name(),
        });
        if let Some(f) = self.field {
            body["field"] = Value::String(f);
        }
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
    }
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
