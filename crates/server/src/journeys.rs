//! Journey routes: definitions (versioned; pause and resume), the built-in journeys, send
//! guardrails, a customer's sends, skips and decisions, on-site messages, the suppression list
//! and the one-click unsubscribe (RFC 8058) that withdraws consent at once.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Html;
use axum::Json;
use tailor_engine::{DecisionView, JourneyDef, JourneyReport, JourneyView, OnsiteMessage, SendGuardrails, SendView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::error::parse_body;
use crate::extract::{Path, Query};
use crate::page::{Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_journey, put_journey))
        .routes(routes!(report))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(builtin))
        .routes(routes!(get_guardrails, put_guardrails))
        .routes(routes!(sends))
        .routes(routes!(decisions))
        .routes(routes!(messages))
        .routes(routes!(suppress))
        .routes(routes!(unsubscribe_page, unsubscribe_one_click))
}

const JOURNEY_FIELDS: &[&str] = &[
    "name",
    "trigger",
    "steps",
    "exitOn",
    "restartOn",
    "reentry",
    "holdout",
    "goal",
    "attributionHours",
    "bestHourWithinHours",
    "targeting",
];

/// Every journey with its current version and where its customers are, by id.
#[utoipa::path(get, path = "/v1/journeys", tag = "journeys", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<JourneyView>), (status = 400, description = "Bad limit or cursor")))]
async fn list(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<JourneyView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.journeys().await?)?))
}

/// A journey: its current version, whether it is paused, and customers per step.
#[utoipa::path(get, path = "/v1/journeys/{id}", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The journey id")),
    responses((status = 200, body = JourneyView), (status = 404, description = "No such journey")))]
async fn get_journey(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
) -> Result<Json<JourneyView>, ApiError> {
    Ok(Json(state.engine.journey(&id).await?))
}

/// Saves a journey as its next version (new customers enter it; those inside finish on
/// theirs). Refused with the field named, and nothing saved: an unknown trigger event, a
/// cycle, an unknown template, a wait out of range, a webhook URL that is not http(s).
#[utoipa::path(put, path = "/v1/journeys/{id}", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The journey id")), request_body = JourneyDef,
    responses((status = 200, body = JourneyView), (status = 400, description = "Invalid field")))]
async fn put_journey(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<JourneyView>, ApiError> {
    let def: JourneyDef = parse_body(&body, JOURNEY_FIELDS)?;
    Ok(Json(state.engine.put_journey(&id, &def).await?))
}

/// What a journey caused: recipients against its random holdout on conversion (the goal
/// event within the attribution window) and revenue per customer, overall, per send step and
/// per channel, each difference with a fixed 95% interval and an always-valid one (the verdict
/// reads only the latter, so looking every hour is safe); the funnel per step and the channel
/// and hour mix of what was sent.
#[utoipa::path(get, path = "/v1/journeys/{id}/report", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The journey id")),
    responses((status = 200, body = JourneyReport), (status = 404, description = "No such journey")))]
async fn report(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(id): Path<String>,
) -> Result<Json<JourneyReport>, ApiError> {
    Ok(Json(state.engine.journey_report(&id).await?))
}

/// Pauses a journey: nobody enters and no step runs; timers keep their place.
#[utoipa::path(post, path = "/v1/journeys/{id}/pause", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The journey id")),
    responses((status = 200, body = JourneyView), (status = 404, description = "No such journey")))]
async fn pause(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<JourneyView>, ApiError> {
    Ok(Json(state.engine.pause_journey(&id, true).await?))
}

/// Resumes a paused journey; steps that fell due meanwhile run now.
#[utoipa::path(post, path = "/v1/journeys/{id}/resume", tag = "journeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The journey id")),
    responses((status = 200, body = JourneyView), (status = 404, description = "No such journey")))]
async fn resume(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<JourneyView>, ApiError> {
    Ok(Json(state.engine.pause_journey(&id, false).await?))
}

/// A built-in journey's definition (`abandoned_cart`, `welcome`), to switch on (and edit) with
/// `PUT /v1/journeys/{id}`.
#[utoipa::path(get, path = "/v1/builtin-journeys/{name}", tag = "journeys", security(("bearer" = [])),
    params(("name" = String, Path, description = "abandoned_cart or welcome")),
    responses((status = 200, body = JourneyDef), (status = 404, description = "No such built-in journey")))]
async fn builtin(_key: ReadKey, Path(name): Path<String>) -> Result<Json<JourneyDef>, ApiError> {
    tailor_engine::builtin_journey(&name).map(Json).ok_or_else(|| {
        ApiError::from(tailor_engine::EngineError::NotFound(format!(
            "no built-in journey '{name}'; there are: {}",
            tailor_engine::BUILTIN_JOURNEYS.join(", ")
        )))
    })
}

/// The guardrails every send passes: caps per day and week across channels and journeys, and
/// quiet hours in the customer's zone.
#[utoipa::path(get, path = "/v1/messaging/guardrails", tag = "journeys", security(("bearer" = [])),
    responses((status = 200, body = SendGuardrails)))]
async fn get_guardrails(State(state): State<AppState>, _key: ReadKey) -> Result<Json<SendGuardrails>, ApiError> {
    Ok(Json(state.engine.send_guardrails().await?))
}

/// Sets the send guardrails (a cap of 0 is refused, naming the field).
#[utoipa::path(put, path = "/v1/messaging/guardrails", tag = "journeys", security(("bearer" = [])),
    request_body = SendGuardrails,
    responses((status = 200, body = SendGuardrails), (status = 400, description = "Invalid field")))]
async fn put_guardrails(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<Json<SendGuardrails>, ApiError> {
    let g: SendGuardrails =
        parse_body(&body, &["perDay", "perWeek", "quietFromHour", "quietUntilHour", "defaultTimeZone"])?;
    Ok(Json(state.engine.set_send_guardrails(&g).await?))
}

fn user_of(q: &HashMap<String, String>) -> Result<&str, ApiError> {
    q.get("user")
        .map(String::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::field("user", "give ?user=PROFILE_ID"))
}

/// A customer's sends and skips (the latest 1,000), newest first, each with its reason and the
/// consent purpose checked at send time: `?user=PROFILE_ID[&journey=ID]`.
#[utoipa::path(get, path = "/v1/messages/sends", tag = "journeys", security(("bearer" = [])),
    params(("user" = String, Query, description = "A profile id"), ("journey" = Option<String>, Query, description = "One journey"), PageParams),
    responses((status = 200, body = Page<SendView>), (status = 400, description = "Invalid field")))]
async fn sends(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<SendView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    let items = state.engine.journey_sends(user_of(&q)?, q.get("journey").map(String::as_str)).await?;
    Ok(Json(page.slice(items)?))
}

/// A customer's journey decisions (the first 1,000), oldest first: entries, restarts, exits,
/// sends, skips and deferrals (quiet hours), with why: `?user=PROFILE_ID`.
#[utoipa::path(get, path = "/v1/messages/decisions", tag = "journeys", security(("bearer" = [])),
    params(("user" = String, Query, description = "A profile id"), PageParams),
    responses((status = 200, body = Page<DecisionView>), (status = 400, description = "Invalid field")))]
async fn decisions(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<DecisionView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.journey_decisions(user_of(&q)?).await?)?))
}

/// A customer's on-site and in-app messages (the latest 1,000), newest first: `?user=PROFILE_ID`.
#[utoipa::path(get, path = "/v1/messages", tag = "journeys", security(("bearer" = [])),
    params(("user" = String, Query, description = "A profile id"), PageParams),
    responses((status = 200, body = Page<OnsiteMessage>), (status = 400, description = "Invalid field")))]
async fn messages(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<OnsiteMessage>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.onsite_messages(user_of(&q)?, 1000).await?)?))
}

/// A bounce or complaint.
#[derive(Debug, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Suppression {
    /// The address (e-mail or phone).
    address: String,
    /// `bounce`, `complaint` or another reason.
    reason: String,
}

/// Puts an address on the suppression list (the e-mail provider's bounce and complaint
/// webhook): nothing is sent to it again.
#[utoipa::path(post, path = "/v1/suppressions", tag = "journeys", security(("bearer" = [])),
    request_body = Suppression,
    responses((status = 200, body = Suppression), (status = 400, description = "Invalid field")))]
async fn suppress(State(state): State<AppState>, _key: AdminKey, body: Bytes) -> Result<Json<Suppression>, ApiError> {
    let s: Suppression = parse_body(&body, &["address", "reason"])?;
    state.engine.suppress_address(&s.address, &s.reason).await?;
    Ok(Json(s))
}

fn token_of(q: &HashMap<String, String>) -> Result<&str, ApiError> {
    q.get("token").map(String::as_str).ok_or_else(|| ApiError::field("token", "the link's token is missing"))
}

/// The unsubscribe link's page (no key: the signed token is the credential). It changes
/// nothing: mail scanners follow links; the button posts.
#[utoipa::path(get, path = "/v1/unsubscribe", tag = "journeys",
    params(("token" = String, Query, description = "The signed token from the message")),
    responses((status = 200, description = "A page with the unsubscribe button")))]
async fn unsubscribe_page(Query(q): Query<HashMap<String, String>>) -> Result<Html<String>, ApiError> {
    let token = token_of(&q)?;
    let safe: String = token.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_').collect();
    Ok(Html(format!(
        "<!doctype html><title>Unsubscribe</title><form method=post action=\"/v1/unsubscribe?token={safe}\">\
         <input type=hidden name=List-Unsubscribe value=One-Click><button>Unsubscribe</button></form>"
    )))
}

/// What an unsubscribe did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Unsubscribed {
    /// The consent purpose withdrawn.
    withdrawn: String,
}

/// One-click unsubscribe (RFC 8058, `List-Unsubscribe=One-Click`): withdraws the token's
/// consent purpose at once; the next send is skipped and recorded so.
#[utoipa::path(post, path = "/v1/unsubscribe", tag = "journeys",
    params(("token" = String, Query, description = "The signed token from the message")),
    responses((status = 200, body = Unsubscribed), (status = 400, description = "Invalid token")))]
async fn unsubscribe_one_click(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Unsubscribed>, ApiError> {
    let purpose = state.engine.unsubscribe(token_of(&q)?).await?;
    Ok(Json(Unsubscribed { withdrawn: purpose.as_str().to_string() }))
}
