//! Error codes shared by every layer, in the style of meilisearch: a stable name, a kind, and
//! the HTTP status the server maps them to.

use serde::Serialize;

/// A stable, documented error code. The server turns it into the `type` of a problem+json body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// A field is missing, has the wrong type or an invalid value.
    InvalidField,
    /// An event carries neither `userId` nor `anonymousId`.
    MissingIdentity,
    /// An event or batch exceeds the size limit.
    PayloadTooLarge,
    /// No credentials were sent, or they are unknown.
    Unauthorized,
    /// The credentials do not have the scope the route needs.
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with the current state (e.g. an unmerge of a merge already undone).
    Conflict,
    /// The service is starting or stopping, or no recommendation model exists yet: retry later.
    NotReady,
    /// Something failed on our side.
    Internal,
    /// The route exists but not with this HTTP method.
    MethodNotAllowed,
    /// The body's `Content-Encoding` (or media type) is not one the route accepts.
    UnsupportedMediaType,
    /// Too many requests from this address or with this key; retry after `Retry-After` seconds.
    RateLimited,
    /// The server holds as many connections as it may; retry shortly.
    Overloaded,
    /// Not enough stock is available for a reservation, a transfer or a sale.
    InsufficientStock,
    /// Not enough active points for a redemption or a removal.
    InsufficientPoints,
    /// The product has no price yet (neither in the price book nor in the catalog).
    NoPrice,
}

impl ErrorCode {
    /// Every code, in the order the error documentation lists them.
    pub const ALL: [ErrorCode; 17] = [
        Self::MalformedJson,
        Self::InvalidField,
        Self::MissingIdentity,
        Self::PayloadTooLarge,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Conflict,
        Self::NotReady,
        Self::Internal,
        Self::MethodNotAllowed,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::Overloaded,
        Self::InsufficientStock,
        Self::InsufficientPoints,
        Self::NoPrice,
    ];

    /// The snake_case name used in URLs and bodies.
    pub fn name(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidField => "invalid_field",
            Self::MissingIdentity => "missing_identity",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::NotReady => "not_ready",
            Self::Internal => "internal",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::InsufficientStock => "insufficient_stock",
            Self::InsufficientPoints => "insufficient_points",
            Self::NoPrice => "no_price",
        }
    }

    /// The HTTP status this code maps to.
    pub fn status(self) -> u16 {
        match self {
            Self::MalformedJson | Self::InvalidField | Self::MissingIdentity => 400,
            Self::PayloadTooLarge => 413,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict | Self::InsufficientStock | Self::InsufficientPoints | Self::NoPrice => 409,
            Self::NotReady => 503,
            Self::Internal => 500,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType => 415,
            Self::RateLimited => 429,
            Self::Overloaded => 503,
        }
    }

    /// The problem `type` URI: a link into Tailor's own error documentation.
    pub fn type_uri(self) -> String {
        format!("/docs/errors#{}", self.name())
    }

    /// A short human title for the code.
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "Malformed JSON",
            Self::InvalidField => "Invalid field",
            Self::MissingIdentity => "Missing identity",
            Self::PayloadTooLarge => "Payload too large",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::Conflict => "Conflict",
            Self::NotReady => "Not ready",
            Self::Internal => "Internal error",
            Self::MethodNotAllowed => "Method not allowed",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::RateLimited => "Too many requests",
            Self::Overloaded => "Overloaded",
            Self::InsufficientStock => "Insufficient stock",
            Self::InsufficientPoints => "Insufficient points",
            Self::NoPrice => "No price",
        }
    }
}

/// A user error about one field of the input: the field's path (e.g. `batch[3].traits.email`),
/// a message that says what to do, and its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The error code.
    pub code: ErrorCode,
    /// The JSON path of the offending field.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl FieldError {
    /// An `invalid_field` error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: ErrorCode::InvalidField, field: field.into(), message: message.into() }
    }

    /// A `not_found` error about the thing a field names (e.g. an unknown `item`).
    pub fn unknown(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: ErrorCode::NotFound, field: field.into(), message: message.into() }
    }

    /// The same error with its field path prefixed, e.g. `batch[2].` + `userId`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}{}", self.field);
        self
    }
}
