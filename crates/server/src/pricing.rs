//! Pricing routes: quotes on any channel, the price book and its decisions, guardrails,
//! promotions, market conditions, repricing and markdown plans. Thin: the engine decides.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tailor_core::Channel;
use tailor_engine::{
    CategoryElasticity, Experiment, ExperimentInput, Guardrails, ListPriceInput, MarkdownPlan, MarkdownRequest,
    MarketInput, PriceDecision, PriceQuote, Promotion,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, ReadKey};
use crate::error::parse_body;
use crate::extract::{Path, Query};
use crate::page::{Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(put_list_price))
        .routes(routes!(history))
        .routes(routes!(reprice))
        .routes(routes!(get_guardrails, put_guardrails))
        .routes(routes!(list_promotions))
        .routes(routes!(put_promotion, delete_promotion))
        .routes(routes!(market))
        .routes(routes!(markdown))
        .routes(routes!(get_experiment, put_experiment, delete_experiment))
        .routes(routes!(step_experiment))
        .routes(routes!(get_elasticity, put_elasticity))
}

/// The prices of the SKUs asked for: all of them, so no cursor (docs/api.md).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct PriceList {
    /// One quote per SKU, in the order asked.
    items: Vec<PriceQuote>,
}

/// Prices to pay: `?sku=A,B` (up to 200) `&channel=web` `[&user=ID]` `[&zone=Z]`
/// `[&quantity=N]`. The list price is the same on every channel; a promotion applies on a
/// channel only when it declares it. With `user`, personal offers (behaviour only, with the
/// customer's personalization consent) are listed with their reasons.
#[utoipa::path(get, path = "/v1/prices", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Query, description = "SKUs, comma-separated"),
        ("channel" = String, Query, description = "web, app, store, support, chat, email or server"),
        ("user" = Option<String>, Query, description = "A profile id, for personal offers"),
        ("zone" = Option<String>, Query, description = "Price zone (default list when absent)"),
        ("quantity" = Option<u32>, Query, description = "Units (multi-buy promotions), default 1")),
    responses((status = 200, body = PriceList), (status = 400, description = "Invalid field"), (status = 404, description = "Unknown SKU or customer"),
        (status = 409, description = "A product has no price yet (no_price)")))]
async fn quote(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PriceList>, ApiError> {
    let skus: Vec<String> = q
        .get("sku")
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let channel = q.get("channel").map(String::as_str).unwrap_or("web");
    if Channel::parse(channel).is_none() {
        return Err(ApiError::field("channel", "one of web, app, store, support, chat, email, server"));
    }
    let quantity = match q.get("quantity") {
        None => 1,
        Some(v) => v.parse().map_err(|_| ApiError::field("quantity", "a whole number of units, e.g. 3"))?,
    };
    let zone = q.get("zone").map(String::as_str).unwrap_or("");
    let quotes: Vec<PriceQuote> =
        state.engine.quote_prices(&skus, channel, zone, q.get("user").map(String::as_str), quantity).await?;
    Ok(Json(PriceList { items: quotes }))
}

/// Sets a list price in the price book (per zone, with validity dates). It passes the
/// product's guardrails like every proposed price; the answer says what they did.
#[utoipa::path(put, path = "/v1/prices/{sku}", tag = "pricing", security(("bearer" = [])),
    request_body = ListPriceInput, params(("sku" = String, Path, description = "The product")),
    responses((status = 200, body = PriceDecision), (status = 400, description = "Invalid field"), (status = 404, description = "Unknown SKU")))]
async fn put_list_price(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
    body: Bytes,
) -> Result<Json<PriceDecision>, ApiError> {
    let input: ListPriceInput = parse_body(&body, &["zone", "currency", "cents", "validFrom", "validTo", "reason"])?;
    tailor_core::text::check_id("zone", &input.zone)?;
    Ok(Json(state.engine.propose_list_price(&sku, &input).await?))
}

/// The product's price decisions, newest first: proposed, set, each guardrail that clamped it,
/// and why.
#[utoipa::path(get, path = "/v1/prices/{sku}/history", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The product"), PageParams),
    responses((status = 200, body = Page<PriceDecision>), (status = 400, description = "Bad limit or cursor")))]
async fn history(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(sku): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<PriceDecision>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    // The history is read up to the end of the page asked and one more; the cursor is an offset.
    let upto = page.position('o')?.unwrap_or(0).saturating_add(page.probe() as i64);
    Ok(Json(page.slice(state.engine.price_history(&sku, upto).await?)?))
}

/// Reprices the product's default list from market conditions (stock cover, competitor prices,
/// demand signals) inside its guardrails.
#[utoipa::path(post, path = "/v1/prices/{sku}/reprice", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The product")),
    responses((status = 200, body = PriceDecision), (status = 404, description = "Unknown SKU")))]
async fn reprice(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
) -> Result<Json<PriceDecision>, ApiError> {
    Ok(Json(state.engine.reprice(&sku).await?))
}

/// A product's guardrails (`*`: the defaults).
#[utoipa::path(get, path = "/v1/pricing/guardrails/{sku}", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The product, or * for the defaults")),
    responses((status = 200, body = Guardrails)))]
async fn get_guardrails(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(sku): Path<String>,
) -> Result<Json<Guardrails>, ApiError> {
    Ok(Json(state.engine.guardrails(&sku).await?))
}

/// Sets a product's guardrails (`*`: the defaults for products without their own): floor
/// (`unitCostCents` × (1 + `minMargin`)), `ceilingCents`, `mapCents`, `maxDailyChange`,
/// `endingCents`, `frozen`.
#[utoipa::path(put, path = "/v1/pricing/guardrails/{sku}", tag = "pricing", security(("bearer" = [])),
    request_body = Guardrails, params(("sku" = String, Path, description = "The product, or *")),
    responses((status = 200, body = Guardrails), (status = 400, description = "Invalid field")))]
async fn put_guardrails(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
    body: Bytes,
) -> Result<Json<Guardrails>, ApiError> {
    let fields = ["unitCostCents", "minMargin", "ceilingCents", "mapCents", "maxDailyChange", "endingCents", "frozen"];
    let g: Guardrails = parse_body(&body, &fields)?;
    state.engine.set_guardrails(&sku, &g).await?;
    Ok(Json(g))
}

/// The promotions, by id.
#[utoipa::path(get, path = "/v1/promotions", tag = "pricing", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<Promotion>), (status = 400, description = "Bad limit or cursor")))]
async fn list_promotions(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Promotion>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    Ok(Json(page.slice(state.engine.promotions().await?.as_ref().clone())?))
}

/// Creates or replaces a promotion: a `discount` (`percentage`, `amount` or `multi_buy`) on
/// `skus` or `categories`, optionally only on some `channels` (a declared channel promotion),
/// between `startsAt` and `endsAt` (RFC 3339), with `priority` and `stackable`.
#[utoipa::path(put, path = "/v1/promotions/{id}", tag = "pricing", security(("bearer" = [])),
    request_body = Promotion, params(("id" = String, Path, description = "The promotion's id")),
    responses((status = 200, body = Promotion), (status = 400, description = "Invalid field")))]
async fn put_promotion(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Promotion>, ApiError> {
    let fields =
        ["id", "name", "discount", "skus", "categories", "channels", "priority", "stackable", "startsAt", "endsAt"];
    let p: Promotion = parse_body(&body, &fields)?;
    if p.id != id {
        return Err(ApiError::field("id", format!("the body's id '{}' differs from the path's '{id}'", p.id)));
    }
    state.engine.put_promotion(&p).await?;
    Ok(Json(p))
}

/// Ends a promotion.
#[utoipa::path(delete, path = "/v1/promotions/{id}", tag = "pricing", security(("bearer" = [])),
    params(("id" = String, Path, description = "The promotion's id")),
    responses((status = 204), (status = 404, description = "No such promotion")))]
async fn delete_promotion(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.engine.delete_promotion(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(tailor_core::FieldError::unknown("id", format!("no promotion '{id}'")).into())
    }
}

/// Records market conditions for a product: a competitor's price (`source` = the competitor,
/// `cents`) or a demand signal (`source` = `demand`, `demandIndex`, 1.0 normal).
#[utoipa::path(post, path = "/v1/pricing/market", tag = "pricing", security(("bearer" = [])),
    request_body = MarketInput, responses((status = 204), (status = 400, description = "Invalid field"), (status = 404, description = "Unknown SKU")))]
async fn market(State(state): State<AppState>, _key: AdminKey, body: Bytes) -> Result<StatusCode, ApiError> {
    let m: MarketInput = parse_body(&body, &["sku", "source", "cents", "demandIndex"])?;
    state.engine.record_market(&m).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Plans a markdown: the price steps (never back up) that earn most from `stock` units that
/// must be gone within `periods` days, given the demand curve. With `sku`, every price must be
/// within that product's guardrails.
#[utoipa::path(post, path = "/v1/pricing/markdown", tag = "pricing", security(("bearer" = [])),
    request_body = MarkdownRequest, responses((status = 200, body = MarkdownPlan), (status = 400, description = "Invalid field")))]
async fn markdown(State(state): State<AppState>, _key: AdminKey, body: Bytes) -> Result<Json<MarkdownPlan>, ApiError> {
    let fields =
        ["sku", "stock", "periods", "prices", "referencePrice", "unitCost", "salvageValue", "demand", "objective"];
    let r: MarkdownRequest = parse_body(&body, &fields)?;
    Ok(Json(state.engine.plan_markdown(&r).await?))
}

/// A product's price experiment: each candidate's exposure, units and expected value, the
/// elasticity it believes, and whether it stopped.
#[utoipa::path(get, path = "/v1/pricing/experiments/{sku}", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The product")),
    responses((status = 200, body = Experiment), (status = 404, description = "No experiment")))]
async fn get_experiment(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(sku): Path<String>,
) -> Result<Json<Experiment>, ApiError> {
    Ok(Json(state.engine.price_experiment(&sku).await?))
}

/// Starts a price experiment: `pricesCents` (2–10 candidates, each within the guardrails; the
/// list price is always one), `objective` (revenue, margin or margin_with_volume_floor with
/// `volumeFloor`), `minExposure` periods per price, `periodHours` per choice and `alpha`, the
/// share of the list price's earnings it may give up. Its prior on the elasticity is the
/// product's category estimate (`/v1/pricing/elasticities/{category}`); the model is checked
/// against each price's sales and falls back to a per-price model when it does not fit; each
/// price's explanation says which rule chose it.
#[utoipa::path(put, path = "/v1/pricing/experiments/{sku}", tag = "pricing", security(("bearer" = [])),
    request_body = ExperimentInput, params(("sku" = String, Path, description = "The product")),
    responses((status = 200, body = Experiment), (status = 400, description = "Invalid field"), (status = 409, description = "One is running")))]
async fn put_experiment(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
    body: Bytes,
) -> Result<Json<Experiment>, ApiError> {
    let input: ExperimentInput =
        parse_body(&body, &["pricesCents", "objective", "minExposure", "periodHours", "alpha", "volumeFloor"])?;
    Ok(Json(state.engine.start_price_experiment(&sku, &input).await?))
}

/// Stops a price experiment; the price stays where it is.
#[utoipa::path(delete, path = "/v1/pricing/experiments/{sku}", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The product")),
    responses((status = 200, body = Experiment), (status = 404, description = "No experiment")))]
async fn delete_experiment(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
) -> Result<Json<Experiment>, ApiError> {
    Ok(Json(state.engine.stop_price_experiment(&sku).await?))
}

/// Moves the experiment on now if its period is over (the server also does this every 15 minutes).
#[utoipa::path(post, path = "/v1/pricing/experiments/{sku}/step", tag = "pricing", security(("bearer" = [])),
    params(("sku" = String, Path, description = "The product")),
    responses((status = 200, body = Experiment), (status = 404, description = "No experiment")))]
async fn step_experiment(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(sku): Path<String>,
) -> Result<Json<Experiment>, ApiError> {
    Ok(Json(state.engine.step_price_experiment_at(&sku, tailor_core::time::now_millis()).await?))
}

/// A category's stored elasticity estimate, the prior new experiments on its products start from.
#[utoipa::path(get, path = "/v1/pricing/elasticities/{category}", tag = "pricing", security(("bearer" = [])),
    params(("category" = String, Path, description = "The category")),
    responses((status = 200, body = CategoryElasticity), (status = 404, description = "No estimate")))]
async fn get_elasticity(
    State(state): State<AppState>,
    _key: ReadKey,
    Path(category): Path<String>,
) -> Result<Json<CategoryElasticity>, ApiError> {
    Ok(Json(state.engine.category_elasticity(&category).await?))
}

/// Stores a category's elasticity estimate (as `tailor pricing elasticity` reports it: `mean`,
/// `meanSd`, `tau`, `products`); experiments started afterwards on its products start from it.
#[utoipa::path(put, path = "/v1/pricing/elasticities/{category}", tag = "pricing", security(("bearer" = [])),
    request_body = CategoryElasticity, params(("category" = String, Path, description = "The category")),
    responses((status = 200, body = CategoryElasticity), (status = 400, description = "Invalid field")))]
async fn put_elasticity(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(category): Path<String>,
    body: Bytes,
) -> Result<Json<CategoryElasticity>, ApiError> {
    let input: CategoryElasticity = parse_body(&body, &["mean", "meanSd", "tau", "products"])?;
    Ok(Json(state.engine.set_category_elasticity(&category, &input).await?))
}
