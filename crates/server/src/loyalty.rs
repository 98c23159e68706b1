//! Loyalty routes: a customer's account, redemption at any channel, and admin adjustments.

use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use tailor_engine::{LoyaltyAccount, LoyaltyEvent, LoyaltyRule, LoyaltyTier, Redemption, Reward};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, LoyaltyKey, ReadKey, RedeemKey};
use crate::error::{idempotency_key, parse_body, parse_list};
use crate::extract::{Path, Query};
use crate::page::{cursor_of, Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_rules, put_rules))
        .routes(routes!(get_tiers, put_tiers))
        .routes(routes!(get_rewards, put_rewards))
        .routes(routes!(events))
        .routes(routes!(account))
        .routes(routes!(redeem))
        .routes(routes!(adjust))
}

fn body_object(body: &[u8], known: &[&str]) -> Result<Value, ApiError> {
    let v: Value = parse_body(body, known)?;
    let Some(o) = v.as_object() else { return Err(ApiError::field("body", "send a JSON object")) };
    if let Some(k) = o.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::field(k, format!("unknown field '{k}'; known fields: {}", known.join(", "))));
    }
    Ok(v)
}

fn points(v: &Value) -> Result<i64, ApiError> {
    v.get("points")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::field("points", "points is a whole number, e.g. 250"))
}

/// A redemption.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct RedeemBody {
    /// Points to spend (whole, at least 1).
    points: i64,
}

/// An adjustment.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdjustBody {
    /// Points to add (negative to remove).
    points: i64,
    /// Why.
    reason: String,
}

/// The customer's loyalty account: points pending (return window), active, used, expired and
/// owed, and the newest ledger entries. Any profile id of the customer works.
#[utoipa::path(get, path = "/v1/loyalty/{profileId}", tag = "loyalty", security(("bearer" = [])),
    params(("profileId" = String, Path, description = "A profile id of the customer")),
    responses((status = 200, body = LoyaltyAccount), (status = 404, description = "No such customer")))]
async fn account(
    State(state): State<AppState>,
    _key: LoyaltyKey,
    Path(id): Path<String>,
) -> Result<Json<LoyaltyAccount>, ApiError> {
    Ok(Json(state.engine.loyalty_account(&id).await?))
}

/// Spends active points for a discount, at any channel. Send an `Idempotency-Key`: a retry gets
/// the first answer; 409 when the points are not there.
#[utoipa::path(post, path = "/v1/loyalty/{profileId}/redeem", tag = "loyalty", security(("bearer" = [])),
    request_body = RedeemBody, params(("profileId" = String, Path, description = "A profile id of the customer")),
    responses((status = 200, body = Redemption), (status = 400, description = "Invalid field"), (status = 404, description = "No such customer"), (status = 409, description = "Not enough points")))]
async fn redeem(
    State(state): State<AppState>,
    _key: RedeemKey,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Redemption>, ApiError> {
    let key = idempotency_key(&headers)?;
    let v = body_object(&body, &["points"])?;
    Ok(Json(state.engine.redeem_points(&id, points(&v)?, key.as_deref(), &body).await?))
}

/// Corrects a balance (admin), with the reason kept in the ledger.
#[utoipa::path(post, path = "/v1/loyalty/{profileId}/adjust", tag = "loyalty", security(("bearer" = [])),
    request_body = AdjustBody, params(("profileId" = String, Path, description = "A profile id of the customer")),
    responses((status = 200, body = LoyaltyAccount), (status = 400, description = "Invalid field"), (status = 409, description = "Would go below zero")))]
async fn adjust(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<LoyaltyAccount>, ApiError> {
    let v = body_object(&body, &["points", "reason"])?;
    let reason = v.get("reason").and_then(Value::as_str).unwrap_or("");
    Ok(Json(state.engine.adjust_points(&id, points(&v)?, reason).await?))
}

/// The earning rules: rates by channel and category, and bonus multipliers between dates.
#[utoipa::path(get, path = "/v1/loyalty/rules", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = [LoyaltyRule])))]
async fn get_rules(State(state): State<AppState>, _key: ReadKey) -> Result<Json<Vec<LoyaltyRule>>, ApiError> {
    Ok(Json(state.engine.loyalty_rules().await?))
}

/// Replaces the earning rules; orders from now on earn by them. A rule has `pointsPerUnit` (the
/// rate for the lines it matches; the most specific of channel and category wins) or
/// `multiplier` (a bonus), optionally between `startsAt` and `endsAt`.
#[utoipa::path(put, path = "/v1/loyalty/rules", tag = "loyalty", security(("bearer" = [])),
    request_body = [LoyaltyRule],
    responses((status = 200, body = [LoyaltyRule]), (status = 400, description = "Invalid field")))]
async fn put_rules(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<Json<Vec<LoyaltyRule>>, ApiError> {
    let rules: Vec<LoyaltyRule> =
        parse_list(&body, &["name", "channel", "category", "pointsPerUnit", "multiplier", "startsAt", "endsAt"])?;
    state.engine.set_loyalty_rules(&rules).await?;
    Ok(Json(rules))
}

/// The tiers, lowest first: reached with qualifying points or spend (the last year's, net of
/// reversals); their members earn a multiple and keep the tier for its grace period after
/// falling below it.
#[utoipa::path(get, path = "/v1/loyalty/tiers", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = [LoyaltyTier])))]
async fn get_tiers(State(state): State<AppState>, _key: ReadKey) -> Result<Json<Vec<LoyaltyTier>>, ApiError> {
    Ok(Json(state.engine.loyalty_tiers().await?))
}

/// Replaces the tiers, lowest first: `[{"name": "Gold", "minPoints": 5000, "minSpendCents":
/// 500000, "multiplier": 1.5, "graceDays": 90}]`; either threshold reaches a tier.
#[utoipa::path(put, path = "/v1/loyalty/tiers", tag = "loyalty", security(("bearer" = [])),
    request_body = [LoyaltyTier],
    responses((status = 200, body = [LoyaltyTier]), (status = 400, description = "Invalid field")))]
async fn put_tiers(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<Json<Vec<LoyaltyTier>>, ApiError> {
    let tiers: Vec<LoyaltyTier> =
        parse_list(&body, &["name", "minPoints", "minSpendCents", "multiplier", "graceDays"])?;
    state.engine.set_loyalty_tiers(&tiers).await?;
    Ok(Json(state.engine.loyalty_tiers().await?))
}

/// The reward rules: points for joining (`welcome`, on a `Signed Up` event), on birthdays
/// (`birthday`, from the `birthday` trait) and for engagement actions (`event`, any tracked
/// event such as `Product Reviewed`), each at most once per `limit`.
#[utoipa::path(get, path = "/v1/loyalty/rewards", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = [Reward])))]
async fn get_rewards(State(state): State<AppState>, _key: ReadKey) -> Result<Json<Vec<Reward>>, ApiError> {
    Ok(Json(state.engine.loyalty_rewards().await?))
}

/// Replaces the reward rules: `[{"name": "Review", "trigger": "event", "event": "Product
/// Reviewed", "points": 25, "limit": "per_day"}]`.
#[utoipa::path(put, path = "/v1/loyalty/rewards", tag = "loyalty", security(("bearer" = [])),
    request_body = [Reward],
    responses((status = 200, body = [Reward]), (status = 400, description = "Invalid field")))]
async fn put_rewards(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<Json<Vec<Reward>>, ApiError> {
    let rewards: Vec<Reward> = parse_list(&body, &["name", "trigger", "event", "points", "limit"])?;
    state.engine.set_loyalty_rewards(&rewards).await?;
    Ok(Json(state.engine.loyalty_rewards().await?))
}

/// The loyalty event feed, for journeys: `points_earned`, `reward_granted`,
/// `points_expiring_soon`, `points_expired`, `tier_at_risk` and `tier_changed`, oldest first.
/// A feed never ends: `nextCursor` is always given (the position after this page, or the cursor
/// sent when nothing is new); keep it and ask again later. Empty `items` means caught up.
#[utoipa::path(get, path = "/v1/loyalty/events", tag = "loyalty", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Page<LoyaltyEvent>), (status = 400, description = "Bad limit or cursor")))]
async fn events(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<LoyaltyEvent>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    let read = state.engine.loyalty_events(page.position('s')?.unwrap_or(0), page.limit as i64).await?;
    Ok(Json(Page { items: read.events, next_cursor: Some(cursor_of('s', read.next)) }))
}
