//! Inventory routes: stock adjustments, bundles, reservations and availability to promise.
//! Bodies are read field by field so a fractional or negative quantity is named precisely.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use serde_json::{json, Value};
use tailor_catalog::Availability;
use tailor_engine::{
    AdjustMode, Adjustment, Allocation, ChannelPolicy, LocationAvailability, Policy, Reservation, ReserveRequest,
    StockEvent, StockLevel, Transfer, TransferState, DEFAULT_CART_TTL_MS,
};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey, ReserveKey, StockKey};
use crate::error::{idempotency_key, parse_body};
use crate::extract::{Path, Query};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_availability, put_availability))
        .routes(routes!(adjust))
        .routes(routes!(bundle))
        .routes(routes!(reserve))
        .routes(routes!(get_reservation))
        .routes(routes!(confirm))
        .routes(routes!(release))
        .routes(routes!(events))
        .routes(routes!(send_transfer))
        .routes(routes!(receive_transfer))
        .routes(routes!(cancel_transfer))
        .routes(routes!(get_policies))
        .routes(routes!(put_policy))
}

/// How each channel uses stock (channels not listed hold it at checkout: reserve_on_order).
/// At most one per channel, so a plain array (docs/api.md).
#[utoipa::path(get, path = "/v1/inventory/policies", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = [ChannelPolicy])))]
async fn get_policies(State(state): State<AppState>, _key: ReadKey) -> Result<Json<Vec<ChannelPolicy>>, ApiError> {
    Ok(Json(state.engine.channel_policies().await?))
}

/// A channel's policy body.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PolicyBody {
    /// none, track_only, reserve_on_cart or reserve_on_order.
    policy: String,
    /// How long a cart hold lasts (reserve_on_cart; default 1800).
    cart_ttl_seconds: Option<i64>,
}

/// Sets how a channel uses stock: `none` (not checked), `track_only` (sales move stock, nothing
/// is held), `reserve_on_cart` (Product Added holds units for the cart's time to live),
/// `reserve_on_order` (held at checkout through `POST /v1/reservations`).
#[utoipa::path(put, path = "/v1/inventory/policies/{channel}", tag = "inventory", security(("bearer" = [])),
    request_body = PolicyBody, params(("channel" = String, Path, description = "web, app, store, support, chat, email or server")),
    responses((status = 200, body = ChannelPolicy), (status = 400, description = "Invalid field")))]
async fn put_policy(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(channel): Path<String>,
    body: Bytes,
) -> Result<Json<ChannelPolicy>, ApiError> {
    let v = json_body(&body)?;
    unknown_fields(&v, &["policy", "cartTtlSeconds"])?;
    let Some(policy) = v.get("policy").and_then(Value::as_str).and_then(Policy::parse) else {
        return Err(ApiError::field("policy", "policy is none, track_only, reserve_on_cart or reserve_on_order"));
    };
    let ttl = whole(&v, "cartTtlSeconds", "cartTtlSeconds")?.unwrap_or(DEFAULT_CART_TTL_MS / 1000);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::field("cartTtlSeconds", format!("cartTtlSeconds is between 1 and {MAX_TTL_SECONDS}")));
    }
    let p = ChannelPolicy { channel, policy, cart_ttl_ms: ttl * 1000 };
    Ok(Json(state.engine.set_channel_policy(&p).await?))
}

/// A live feed of stock events (Server-Sent Events): out_of_stock, back_in_stock and
/// low_stock, each as JSON, for the console and for other services to react to.
#[utoipa::path(get, path = "/v1/inventory/events", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of StockEvent", body = StockEvent)))]
async fn events(
    State(state): State<AppState>,
    _key: ReadKey,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let feed = futures_util::stream::unfold(state.engine.stock_events(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    return Some((Ok(Event::default().event(e.kind).data(data)), rx));
                }
                // A slow reader missed some: go on with the next.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(feed).keep_alive(KeepAlive::default())
}

/// One line of a reservation or a bundle (for the API documentation; bodies are read field by
/// field).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct LineBody {
    /// The SKU.
    sku: String,
    /// Whole units, at least 1.
    quantity: i64,
}

/// A bundle's definition.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct BundleBody {
    /// Its components.
    components: Vec<LineBody>,
}

/// Coordinates.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct NearBody {
    /// Latitude, degrees.
    lat: f64,
    /// Longitude, degrees.
    lon: f64,
}

/// A reservation request.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ReserveBody {
    /// What to hold.
    lines: Vec<LineBody>,
    /// The pickup store (only it).
    store: Option<String>,
    /// The shopper's position (nearest location first).
    near: Option<NearBody>,
    /// Whether several locations may share the lines.
    allow_split: Option<bool>,
    /// web, app, store…
    channel: Option<String>,
    /// How long to hold (default 900).
    ttl_seconds: Option<i64>,
}

/// Confirming a reservation.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ConfirmBody {
    /// The order that confirms it.
    order_id: Option<String>,
}

/// Releasing part of a reservation (empty body: all of it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ReleaseBody {
    /// The SKU.
    sku: Option<String>,
    /// Units to give back.
    quantity: Option<i64>,
}

/// SKUs asked at most in one availability query.
const MAX_SKUS: usize = 200;
/// Reservation time to live when none is given, and the longest allowed.
const DEFAULT_TTL_SECONDS: i64 = 900;
const MAX_TTL_SECONDS: i64 = 7 * 86_400;

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = parse_body(body, &[])?;
    if !v.is_object() {
        return Err(ApiError::field("body", "send a JSON object"));
    }
    Ok(v)
}

fn text(v: &Value, field: &str, required: bool) -> Result<Option<String>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        _ => Err(ApiError::field(field, format!("{field} must be a non-empty string"))),
    }
}

/// A time at `field`: an RFC 3339 string, or epoch milliseconds (deprecated).
fn time(v: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(t) => tailor_core::time::parse_api_time(t)
            .map(Some)
            .ok_or_else(|| ApiError::field(field, format!("{field} is {} (got {t})", tailor_core::time::TIME_HINT))),
    }
}

/// A whole number (of units, seconds…) at `field`, named by `path` in errors.
fn whole(v: &Value, field: &str, path: &str) -> Result<Option<i64>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::field(path, format!("{path} must be a whole number, e.g. 3 (got {n})"))),
    }
}

fn unknown_fields(v: &Value, known: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !known.contains(&k.as_str()))) {
        return Err(ApiError::field(k, format!("unknown field '{k}'; known fields: {}", known.join(", "))));
    }
    Ok(())
}

/// Availability of the SKUs asked for: all of it, so no cursor (docs/api.md).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct AvailabilityList {
    /// Per SKU and location.
    items: Vec<LocationAvailability>,
}

/// What can be promised per SKU and location: `?sku=A,B` (up to 200) and either `store=S1,S2`
/// or `near=lat,lon` (sorted by distance). Bundles count by their scarcest component.
#[utoipa::path(get, path = "/v1/availability", tag = "inventory", security(("bearer" = [])),
    params(("sku" = String, Query, description = "SKUs, comma-separated"),
        ("store" = Option<String>, Query, description = "Locations, comma-separated"),
        ("near" = Option<String>, Query, description = "lat,lon")),
    responses((status = 200, body = AvailabilityList), (status = 400, description = "Invalid field")))]
async fn get_availability(
    State(state): State<AppState>,
    _key: StockKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<AvailabilityList>, ApiError> {
    let list = |k: &str| -> Vec<String> {
        q.get(k)
            .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let skus = list("sku");
    if skus.is_empty() || skus.len() > MAX_SKUS {
        return Err(ApiError::field("sku", format!("give 1 to {MAX_SKUS} SKUs, comma-separated")));
    }
    let stores = list("store");
    let near = match q.get("near") {
        None => None,
        Some(s) => {
            let parts: Vec<Option<f64>> = s.split(',').map(|p| p.trim().parse().ok()).collect();
            match parts.as_slice() {
                [Some(lat), Some(lon)] if lat.abs() <= 90.0 && lon.abs() <= 180.0 => Some((*lat, *lon)),
                _ => return Err(ApiError::field("near", "near is lat,lon in degrees, e.g. 52.52,13.40")),
            }
        }
    };
    let rows = state.engine.stock_availability(&skus, (!stores.is_empty()).then_some(stores.as_slice()), near).await?;
    Ok(Json(AvailabilityList { items: rows }))
}

/// Marks a product available or not at a store or warehouse (the retailer's flag, used where
/// stock is not tracked); recommendations for shoppers of that location follow at once.
#[utoipa::path(put, path = "/v1/availability", tag = "inventory", security(("bearer" = [])),
    request_body = Availability, responses((status = 204), (status = 400, description = "Invalid field")))]
async fn put_availability(State(state): State<AppState>, _key: AdminKey, body: Bytes) -> Result<StatusCode, ApiError> {
    let a: Availability = parse_body(&body, &["productId", "locationId", "available"])?;
    tailor_core::text::check_id("productId", &a.product_id)?;
    tailor_core::text::check_id("locationId", &a.location_id)?;
    state.engine.set_availability(&a).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes stock of one SKU at one location: `mode` set (a count) or delta, with a reason.
/// With an `Idempotency-Key` header a retry is answered without applying twice.
#[utoipa::path(post, path = "/v1/inventory/adjustments", tag = "inventory", security(("bearer" = [])),
    request_body = Adjustment,
    responses((status = 200, body = StockLevel), (status = 400, description = "Invalid field"), (status = 404, description = "Unknown SKU or location")))]
async fn adjust(
    State(state): State<AppState>,
    _key: AdminKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<StockLevel>, ApiError> {
    let key = idempotency_key(&headers)?;
    let v = json_body(&body)?;
    unknown_fields(
        &v,
        &["sku", "locationId", "mode", "onHand", "safetyStock", "damaged", "incoming", "incomingAt", "reason"],
    )?;
    let mode = match v.get("mode").and_then(Value::as_str) {
        Some("set") => AdjustMode::Set,
        Some("delta") => AdjustMode::Delta,
        _ => return Err(ApiError::field("mode", "mode is set (a count) or delta (a change)")),
    };
    let a = Adjustment {
        sku: text(&v, "sku", true)?.unwrap_or_default(),
        location_id: text(&v, "locationId", true)?.unwrap_or_default(),
        mode,
        on_hand: whole(&v, "onHand", "onHand")?,
        safety_stock: whole(&v, "safetyStock", "safetyStock")?,
        damaged: whole(&v, "damaged", "damaged")?,
        incoming: whole(&v, "incoming", "incoming")?,
        incoming_at: time(&v, "incomingAt")?,
        reason: text(&v, "reason", true)?.unwrap_or_default(),
    };
    Ok(Json(state.engine.adjust_stock(&a, key.as_deref(), &body).await?))
}

/// Defines a bundle (kit) by its components: `{"components": [{"sku": "A", "quantity": 2}]}`.
/// Reserving it holds the components, so bundles sharing one never oversell it.
#[utoipa::path(put, path = "/v1/inventory/bundles/{sku}", tag = "inventory", security(("bearer" = [])),
    request_body = BundleBody, params(("sku" = String, Path, description = "The bundle's SKU")),
    responses((status = 204), (status = 400, description = "Invalid field")))]
async fn bundle(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let v = json_body(&body)?;
    unknown_fields(&v, &["components"])?;
    let Some(items) = v.get("components").and_then(Value::as_array) else {
        return Err(ApiError::field("components", "components is a list of {sku, quantity}"));
    };
    let mut components = Vec::new();
    for (i, c) in items.iter().enumerate() {
        let sku =
            text(c, "sku", true).map_err(|_| ApiError::field(&format!("components[{i}].sku"), "a SKU is needed"))?;
        let path = format!("components[{i}].quantity");
        let q = whole(c, "quantity", &path)?.ok_or_else(|| ApiError::field(&path, "a quantity is needed"))?;
        components.push((sku.unwrap_or_default(), q));
    }
    state.engine.set_bundle(&sku, &components).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Holds units for a cart or an order, all or nothing: `{"lines": [{"sku": "A", "quantity": 1}],
/// "store": "S1"}` holds at the pickup store; `"near": {"lat": …, "lon": …}` at the nearest
/// location with everything; neither, where most is in stock; with `"allowSplit": true` (the
/// default without a store) from several locations when none has it all. Lasts `ttlSeconds`
/// (default 900) unless confirmed. Answers 409 when not enough is available.
#[utoipa::path(post, path = "/v1/reservations", tag = "inventory", security(("bearer" = [])),
    request_body = ReserveBody, responses((status = 201, body = Reservation), (status = 400, description = "Invalid field"), (status = 409, description = "Not enough stock")))]
async fn reserve(
    State(state): State<AppState>,
    _key: ReserveKey,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Reservation>), ApiError> {
    let key = idempotency_key(&headers)?;
    let v = json_body(&body)?;
    unknown_fields(&v, &["lines", "store", "near", "allowSplit", "channel", "ttlSeconds"])?;
    let Some(items) = v.get("lines").and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return Err(ApiError::field("lines", "lines is a non-empty list of {sku, quantity}"));
    };
    let mut lines = Vec::new();
    for (i, l) in items.iter().enumerate() {
        let sku = text(l, "sku", true).map_err(|_| ApiError::field(&format!("lines[{i}].sku"), "a SKU is needed"))?;
        let path = format!("lines[{i}].quantity");
        let q = whole(l, "quantity", &path)?.ok_or_else(|| ApiError::field(&path, "a quantity is needed"))?;
        lines.push((sku.unwrap_or_default(), q));
    }
    let store = text(&v, "store", false)?;
    let near = match v.get("near") {
        None | Some(Value::Null) => None,
        Some(n) => match (n.get("lat").and_then(Value::as_f64), n.get("lon").and_then(Value::as_f64)) {
            (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => Some((lat, lon)),
            _ => return Err(ApiError::field("near", "near is {\"lat\": degrees, \"lon\": degrees}")),
        },
    };
    let allocation = match (store, near) {
        (Some(s), _) => Allocation::Pickup(s),
        (None, Some((lat, lon))) => Allocation::Near(lat, lon),
        (None, None) => Allocation::MostStock,
    };
    let allow_split = match v.get("allowSplit") {
        None | Some(Value::Null) => !matches!(allocation, Allocation::Pickup(_)),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::field("allowSplit", "allowSplit is true or false")),
    };
    let ttl = whole(&v, "ttlSeconds", "ttlSeconds")?.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(ApiError::field("ttlSeconds", format!("ttlSeconds is between 1 and {MAX_TTL_SECONDS}")));
    }
    let req = ReserveRequest {
        lines,
        allocation,
        allow_split,
        channel: match text(&v, "channel", false)? {
            None => "web".into(),
            Some(c) => tailor_core::Channel::parse(&c)
                .ok_or_else(|| ApiError::field("channel", "one of web, app, store, support, chat, email, server"))?
                .as_str()
                .to_string(),
        },
        ttl_ms: ttl * 1000,
    };
    let r = state.engine.reserve(&req, key.as_deref(), &body).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// A reservation and what it holds where.
#[utoipa::path(get, path = "/v1/reservations/{id}", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Reservation id")),
    responses((status = 200, body = Reservation), (status = 404, description = "No such reservation")))]
async fn get_reservation(
    State(state): State<AppState>,
    _key: StockKey,
    Path(id): Path<String>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(state.engine.reservation(&id).await?))
}

/// The order went through: the held units are sold. Body: `{"orderId": "…"}` (optional).
#[utoipa::path(post, path = "/v1/reservations/{id}/confirm", tag = "inventory", security(("bearer" = [])),
    request_body = ConfirmBody, params(("id" = String, Path, description = "Reservation id")),
    responses((status = 200, body = Reservation), (status = 404, description = "No such reservation"), (status = 409, description = "Not held anymore")))]
async fn confirm(
    State(state): State<AppState>,
    _key: ReserveKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Reservation>, ApiError> {
    let v = json_body(&body)?;
    unknown_fields(&v, &["orderId"])?;
    let order = text(&v, "orderId", false)?;
    Ok(Json(state.engine.confirm_reservation(&id, order.as_deref()).await?))
}

/// Gives held units back: all, or `{"sku": "A", "quantity": 1}` of one SKU.
#[utoipa::path(post, path = "/v1/reservations/{id}/release", tag = "inventory", security(("bearer" = [])),
    request_body = ReleaseBody, params(("id" = String, Path, description = "Reservation id")),
    responses((status = 200, body = Reservation), (status = 400, description = "Invalid field"), (status = 404, description = "No such reservation"), (status = 409, description = "Not held anymore")))]
async fn release(
    State(state): State<AppState>,
    _key: ReserveKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Reservation>, ApiError> {
    let v = json_body(&body)?;
    unknown_fields(&v, &["sku", "quantity"])?;
    let partial = match (text(&v, "sku", false)?, whole(&v, "quantity", "quantity")?) {
        (Some(s), Some(q)) => Some((s, q)),
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::field("quantity", "give the quantity to release with the sku")),
        (None, Some(_)) => return Err(ApiError::field("sku", "give the sku to release the quantity of")),
    };
    let partial = partial.as_ref().map(|(s, q)| (s.as_str(), *q));
    Ok(Json(state.engine.release_reservation(&id, partial).await?))
}

/// A transfer request.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TransferBody {
    /// The SKU.
    sku: String,
    /// Where the units leave.
    from_location_id: String,
    /// Where they go.
    to_location_id: String,
    /// Whole units.
    quantity: i64,
    /// When they are expected.
    #[schema(format = DateTime)]
    expected_at: Option<String>,
}

/// Sends units between locations: off the source's shelf now, incoming at the destination
/// (promised from `expectedAt`) until received. 409 when the source lacks them.
#[utoipa::path(post, path = "/v1/inventory/transfers", tag = "inventory", security(("bearer" = [])),
    request_body = TransferBody,
    responses((status = 201, body = Transfer), (status = 400, description = "Invalid field"), (status = 409, description = "Not enough available")))]
async fn send_transfer(
    State(state): State<AppState>,
    _key: AdminKey,
    body: Bytes,
) -> Result<(StatusCode, Json<Transfer>), ApiError> {
    let v = json_body(&body)?;
    unknown_fields(&v, &["sku", "fromLocationId", "toLocationId", "quantity", "expectedAt"])?;
    let sku = text(&v, "sku", true)?.unwrap_or_default();
    let from = text(&v, "fromLocationId", true)?.unwrap_or_default();
    let to = text(&v, "toLocationId", true)?.unwrap_or_default();
    let q = whole(&v, "quantity", "quantity")?.ok_or_else(|| ApiError::field("quantity", "a quantity is needed"))?;
    let expected = time(&v, "expectedAt")?;
    let t = state.engine.transfer_stock(&sku, &from, &to, q, expected).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// The transfer arrived: its units go onto the destination's shelf.
#[utoipa::path(post, path = "/v1/inventory/transfers/{id}/receive", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 404, description = "No such transfer"), (status = 409, description = "Not in transit")))]
async fn receive_transfer(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<Transfer>, ApiError> {
    Ok(Json(state.engine.finish_transfer(&id, TransferState::Received).await?))
}

/// The transfer is called off: its units go back to the source.
#[utoipa::path(post, path = "/v1/inventory/transfers/{id}/cancel", tag = "inventory", security(("bearer" = [])),
    params(("id" = String, Path, description = "Transfer id")),
    responses((status = 200, body = Transfer), (status = 404, description = "No such transfer"), (status = 409, description = "Not in transit")))]
async fn cancel_transfer(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<Json<Transfer>, ApiError> {
    Ok(Json(state.engine.finish_transfer(&id, TransferState::Cancelled).await?))
}
