//! `Path` and `Query` extractors whose rejections are problem+json naming the parameter at fault
//! (axum's own answer text/plain).

use axum::extract::rejection::PathRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tailor_core::ErrorCode;

use crate::ApiError;

/// Path parameters, decoded from percent-encoding; a bad one is a 400 naming it.
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Every path parameter is an id: one no backend can key (a NUL, thousands of bytes) is
        // refused naming it (see tailor_core::text).
        if let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await {
            for (key, value) in raw.iter() {
                tailor_core::text::check_id(key, value)?;
            }
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => {
            let detail = e.body_text();
            match e.into_kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => {
                    ApiError::field(&key, format!("{key}: the path segment is not valid UTF-8 once percent-decoded"))
                }
                ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
                    ApiError::field(&key, detail)
                }
                _ => ApiError::field("path", detail),
            }
        }
        other => {
            tracing::error!(error = %other.body_text(), "path parameters missing for a route");
            ApiError::new(ErrorCode::Internal, "the route could not read its path parameters")
        }
    }
}

/// The query string deserialized into `T`; a bad parameter is a 400 naming it (e.g. `limit=abc`).
pub(crate) struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

pub(crate) fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        tailor_core::text::check(&key, &value)?;
        tailor_core::text::check(&key, &key)?;
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        // Missing and unknown parameters are named in backticks at the root.
        let field =
            if path == "." || path.is_empty() { msg.split('`').nth(1).unwrap_or("query").to_string() } else { path };
        ApiError::field(&field, format!("query parameter {field}: {msg}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Paging {
        limit: Option<usize>,
        cursor: Option<String>,
    }

    #[test]
    fn a_bad_query_parameter_is_named() {
        let e = parse_query::<Paging>("cursor=x&limit=abc").expect_err("bad limit");
        assert_eq!(e.field.as_deref(), Some("limit"));
        assert_eq!(e.code, ErrorCode::InvalidField);
        assert!(parse_query::<Paging>("limit=5").is_ok());
    }
}
