//! Segment-compatible intake: `/v1/track`, `/identify`, `/page`, `/screen`, `/group`, `/alias`
//! and `/batch`. An answer of 200 means the events are committed.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tailor_core::event::{Event, EventKind, MAX_BATCH_BYTES, MAX_EVENT_BYTES};
use tailor_core::time::now_millis;
use tailor_core::ErrorCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::WriteKey;
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(track))
        .routes(routes!(identify))
        .routes(routes!(page))
        .routes(routes!(screen))
        .routes(routes!(group))
        .routes(routes!(alias))
        .routes(routes!(batch))
}

/// The answer to an accepted call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    /// Always true on 200, as Segment answers.
    success: bool,
    /// Events accepted (duplicates included: they were already stored).
    accepted: usize,
    /// Events refused, with their index in the batch and the reason.
    rejected: Vec<RejectedEvent>,
}

/// One refused event of a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RejectedEvent {
    /// Position in `batch`.
    index: usize,
    /// Error code.
    code: String,
    /// The offending field, e.g. `batch[3].traits.email`.
    field: String,
    /// What is wrong.
    detail: String,
}

fn malformed(e: serde_json::Error) -> ApiError {
    ApiError {
        code: ErrorCode::MalformedJson,
        detail: format!("the body is not valid JSON: {e}"),
        field: Some("body".into()),
        errors: None,
    }
}

fn body_json(body: Result<Bytes, BytesRejection>, limit: usize, what: &str) -> Result<Value, ApiError> {
    let body = body_bytes(body, limit, what)?;
    serde_json::from_slice(&body).map_err(malformed)
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let too_large = |detail: String| ApiError {
        code: ErrorCode::PayloadTooLarge,
        detail,
        field: Some("body".into()),
        errors: None,
    };
    let body = body.map_err(|e| too_large(format!("cannot read the body: {e}")))?;
    if body.len() > limit {
        return Err(too_large(format!(
            "{what} is {} bytes; the limit is {} KB: send fewer or smaller events",
            body.len(),
            limit / 1024
        )));
    }
    Ok(body)
}

async fn single(
    state: AppState,
    key: WriteKey,
    body: Result<Bytes, BytesRejection>,
    kind: EventKind,
) -> Result<Json<Accepted>, ApiError> {
    let raw = body_json(body, MAX_EVENT_BYTES, "the event")?;
    let event = Event::parse(raw, Some(kind), now_millis())?;
    state.engine.ingest_from(std::slice::from_ref(&event), &key.0.source).await?;
    Ok(Json(Accepted { success: true, accepted: 1, rejected: vec![] }))
}

macro_rules! single_route {
    ($name:ident, $path:literal, $kind:expr, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "intake", request_body = Object,
            security(("write_key" = []), ("bearer" = [])),
            responses((status = 200, body = Accepted), (status = 400, description = "Invalid event (problem+json)"),
                (status = 401, description = "No or unknown key"), (status = 413, description = "Over 32 KB")))]
        async fn $name(State(state): State<AppState>, key: WriteKey, body: Result<Bytes, BytesRejection>) -> Result<Json<Accepted>, ApiError> {
            single(state, key, body, $kind).await
        }
    };
}

single_route!(
    track,
    "/v1/track",
    EventKind::Track,
    "Records an action (Segment track), e.g. Product Viewed or Order Completed."
);
single_route!(
    identify,
    "/v1/identify",
    EventKind::Identify,
    "Says who the customer is, with traits (Segment identify)."
);
single_route!(page, "/v1/page", EventKind::Page, "Records a web page view (Segment page).");
single_route!(screen, "/v1/screen", EventKind::Screen, "Records an app screen view (Segment screen).");
single_route!(group, "/v1/group", EventKind::Group, "Records membership of a group (Segment group).");
single_route!(alias, "/v1/alias", EventKind::Alias, "Links a previous id to a userId (Segment alias).");

/// Merges the batch-level `context` and `integrations` into an event (the event's own keys win).
fn with_batch_defaults(mut event: Value, defaults: &Map<String, Value>) -> Value {
    if let Value::Object(obj) = &mut event {
        for (key, value) in defaults {
            match (obj.get_mut(key), value) {
                (Some(Value::Object(own)), Value::Object(shared)) => {
                    for (k, v) in shared {
                        own.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                (None, v) => {
                    obj.insert(key.clone(), v.clone());
                }
                _ => {}
            }
        }
    }
    event
}

/// Records many events at once (Segment batch, up to 500 KB, each event up to 32 KB). Good
/// events are committed even when others are refused; the answer lists the refused ones.
#[utoipa::path(post, path = "/v1/batch", tag = "intake", request_body = Object,
    security(("write_key" = []), ("bearer" = [])),
    responses((status = 200, body = Accepted), (status = 400, description = "No event could be accepted (problem+json with `errors`)"),
        (status = 401, description = "No or unknown key"), (status = 413, description = "Over 500 KB")))]
async fn batch(
    State(state): State<AppState>,
    key: WriteKey,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let body = body_bytes(body, MAX_BATCH_BYTES, "the batch")?;
    // Events stay raw text until each is parsed once, so their size needs no re-serialization.
    let envelope: HashMap<String, Box<RawValue>> = serde_json::from_slice(&body).map_err(|e| {
        if body.first().is_some_and(|b| *b == b'{') || body.iter().all(u8::is_ascii_whitespace) {
            malformed(e)
        } else {
            ApiError::field("", "a batch is a JSON object with a `batch` array")
        }
    })?;
    let items: Vec<&RawValue> = match envelope.get("batch") {
        Some(raw) => {
            serde_json::from_str(raw.get()).map_err(|_| ApiError::field("batch", "must be an array of events"))?
        }
        None => return Err(ApiError::field("batch", "is required: {\"batch\": [ ...events ]}")),
    };
    let defaults: Map<String, Value> = ["context", "integrations"]
        .iter()
        .filter_map(|k: &&str| {
            envelope.get(*k).and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok()).map(|v| (k.to_string(), v))
        })
        .filter(|(_, v)| v.is_object())
        .collect();
    let now = now_millis();
    let mut events = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let size = item.get().len();
        if size > MAX_EVENT_BYTES {
            rejected.push(RejectedEvent {
                index,
                code: ErrorCode::PayloadTooLarge.name().into(),
                field: format!("batch[{index}]"),
                detail: format!("the event is {size} bytes; the limit is 32 KB"),
            });
            continue;
        }
        let parsed = serde_json::from_str::<Value>(item.get())
            .map_err(|e| tailor_core::FieldError::invalid("", format!("not valid JSON: {e}")))
            .and_then(|raw| Event::parse(with_batch_defaults(raw, &defaults), None, now));
        match parsed {
            Ok(e) => events.push(e),
            Err(e) => {
                let e = e.within(&format!("batch[{index}]."));
                rejected.push(RejectedEvent {
                    index,
                    code: e.code.name().into(),
                    field: crate::error::clip(e.field.trim_end_matches('.').to_string()),
                    detail: crate::error::clip(e.message),
                });
            }
        }
    }
    if events.is_empty() && !rejected.is_empty() {
        let first = &rejected[0];
        return Err(ApiError {
            code: ErrorCode::InvalidField,
            detail: format!("no event of the batch was accepted; first: {}: {}", first.field, first.detail),
            field: Some(first.field.clone()),
            errors: Some(json!(rejected)),
        });
    }
    state.engine.ingest_from(&events, &key.0.source).await?;
    Ok(Json(Accepted { success: true, accepted: events.len(), rejected }))
}
