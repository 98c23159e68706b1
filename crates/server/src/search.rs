//! Product search: the shop's search box and the assistant's product finding.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use tailor_engine::{SearchFilters, SearchRequest, SearchResponse, MAX_SEARCH_LIMIT};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::ReadKey;
use crate::extract::Query;
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

const PARAMS: [&str; 10] =
    ["q", "user", "anonymousId", "store", "limit", "brand", "category", "minPrice", "maxPrice", "inStock"];

fn price(q: &HashMap<String, String>, field: &str) -> Result<Option<i64>, ApiError> {
    match q.get(field) {
        None => Ok(None),
        Some(v) => tailor_core::money::cents(&Value::String(v.clone()))
            .filter(|c| *c >= 0)
            .map(Some)
            .ok_or_else(|| ApiError::field(field, format!("{field} is a price like 4.99, not negative"))),
    }
}

/// Searches the catalog: words match titles, brands and categories (with synonyms and typo
/// tolerance); with the personalization consent, what the customer buys comes first; stock at
/// `store` decides availability. Each item says why it is there; facets count the matches by
/// brand, category, size, price band and availability.
#[utoipa::path(get, path = "/v1/search", tag = "catalog", security(("bearer" = [])),
    params(
        ("q" = String, Query, description = "What the shopper typed (1–200 characters)"),
        ("user" = Option<String>, Query, description = "Profile id or userId (personal order with consent)"),
        ("anonymousId" = Option<String>, Query, description = "A visitor's anonymousId"),
        ("store" = Option<String>, Query, description = "The store whose stock decides availability"),
        ("limit" = Option<usize>, Query, description = "How many, 1–100 (default 20)"),
        ("brand" = Option<String>, Query, description = "Only this brand"),
        ("category" = Option<String>, Query, description = "Only this department, category or sub-category"),
        ("minPrice" = Option<String>, Query, description = "Only at or above this price"),
        ("maxPrice" = Option<String>, Query, description = "Only at or below this price"),
        ("inStock" = Option<bool>, Query, description = "Only what is available (at `store` when given)"),
    ),
    responses((status = 200, body = SearchResponse), (status = 400, description = "Bad parameter (named in `field`)"),
        (status = 404, description = "Unknown store")))]
async fn search(
    State(state): State<AppState>,
    _key: ReadKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SearchResponse>, ApiError> {
    if let Some(bad) = q.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(ApiError::field(bad, format!("unknown parameter; use {}", PARAMS.join(", "))));
    }
    let text = q.get("q").ok_or_else(|| ApiError::field("q", "give the words to search for in q"))?;
    let limit = match q.get("limit") {
        None => 20,
        Some(v) => v.parse::<usize>().ok().filter(|k| (1..=MAX_SEARCH_LIMIT).contains(k)).ok_or_else(|| {
            ApiError::field("limit", format!("limit is a whole number between 1 and {MAX_SEARCH_LIMIT}"))
        })?,
    };
    let in_stock = match q.get("inStock").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::field("inStock", "inStock is true or false")),
    };
    let (min, max) = (price(&q, "minPrice")?, price(&q, "maxPrice")?);
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(ApiError::field("minPrice", "minPrice is above maxPrice"));
        }
    }
    let nonempty = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string);
    let req = SearchRequest {
        q: text.clone(),
        user: nonempty("user"),
        anonymous_id: nonempty("anonymousId"),
        store: nonempty("store"),
        limit,
        filters: SearchFilters {
            brand: nonempty("brand"),
            category: nonempty("category"),
            min_price_cents: min,
            max_price_cents: max,
            in_stock,
        },
    };
    Ok(Json(state.engine.search(&req).await?))
}
