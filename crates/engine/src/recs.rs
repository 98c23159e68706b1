//! Recommendations in the engine: training the model from the store (orders, catalog, stores),
//! keeping versioned artifacts, hot-swapping the serving model, and answering requests with the
//! shopper's live signals, availability, the weather and the merchandisers' rules.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tailor_core::time::now_millis;
use tailor_core::{FieldError, Identifier, IdentifierKind};
use tailor_recs::content::ItemAttributes;
use tailor_recs::learn::train_with_learned_weights;
use tailor_recs::situation::Weather;
use tailor_recs::{
    Action, Boost, BoostTarget, Dataset, Model, ModelConfig, Query, Reason, Rules, Shopper, Source, Surface,
    TrainingSet,
};
use tailor_store::{Migration, Row};

use crate::{Engine, EngineError};

pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    id: "engine/002_recommendations",
    sqlite: "CREATE TABLE models (
            version BIGINT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            summary TEXT NOT NULL,
            artifact BLOB NOT NULL
        );
        CREATE TABLE store_weather (
            location_id TEXT PRIMARY KEY,
            condition TEXT NOT NULL,
            temperature_c DOUBLE PRECISION,
            observed_at BIGINT NOT NULL
        );
        CREATE TABLE merchandising (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at BIGINT NOT NULL)",
    postgres: "CREATE TABLE models (
            version BIGINT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            summary TEXT NOT NULL,
            artifact BYTEA NOT NULL
        );
        CREATE TABLE store_weather (
            location_id TEXT PRIMARY KEY,
            condition TEXT NOT NULL,
            temperature_c DOUBLE PRECISION,
            observed_at BIGINT NOT NULL
        );
        CREATE TABLE merchandising (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at BIGINT NOT NULL)",
}];

/// Model versions kept in the store.
const KEEP_VERSIONS: i64 = 3;
/// Views and adds older than this are not the current session.
const SESSION_MILLIS: i64 = 6 * 3600 * 1000;
/// A weather report older than this no longer describes the store.
const WEATHER_MILLIS: i64 = 6 * 3600 * 1000;
/// Largest `k`.
pub const MAX_K: usize = 100;

/// The serving model and its version.
pub(crate) struct Serving {
    model: Model,
    version: i64,
}

/// Merchandising rules, set by the retailer's team.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Merchandising {
    /// At most this many items of one category per list.
    pub max_per_category: Option<usize>,
    /// At most this many items of one brand per list.
    pub max_per_brand: Option<usize>,
    /// Score multipliers for items, categories or brands.
    #[serde(default)]
    pub boosts: Vec<BoostRule>,
    /// Products placed first on home, e-mail and associate lists, in order.
    #[serde(default)]
    pub pins: Vec<String>,
    /// Products never recommended.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// One boost: exactly one of `productId`, `category`, `brand`, and a factor.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BoostRule {
    /// A product.
    pub product_id: Option<String>,
    /// A category (as in the catalog).
    pub category: Option<String>,
    /// A brand (as in the catalog).
    pub brand: Option<String>,
    /// Multiplier: above 1 lifts, between 0 and 1 buries.
    pub factor: f32,
}

/// Live state of recommendations, shared by every request.
#[derive(Default)]
pub(crate) struct RecsState {
    serving: RwLock<Option<Arc<Serving>>>,
    merchandising: RwLock<Arc<Merchandising>>,
    training: tokio::sync::Mutex<()>,
    /// Shoppers' order histories, kept while unchanged.
    history: tailor_profiles::HistoryCache,
}

/// A request for recommendations.
#[derive(Debug, Clone, Default)]
pub struct RecsRequest {
    /// A profile id or a userId.
    pub user: Option<String>,
    /// An anonymousId (a visitor not identified yet).
    pub anonymous_id: Option<String>,
    /// Where the list is shown: home, item, cart, associate, email.
    pub context: String,
    /// The product in view (item context) or one more cart product.
    pub item: Option<String>,
    /// The store the shopper buys at (else their preferred store).
    pub store: Option<String>,
    /// How many items.
    pub k: usize,
    /// Cart products given by the caller (added to the customer's stored cart).
    pub cart: Vec<String>,
    /// Products not to show.
    pub exclude: Vec<String>,
    /// Only these categories.
    pub categories: Vec<String>,
    /// Leave out products the shopper already bought.
    pub novel: bool,
}

/// Why a product is recommended, for people and for programs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonView {
    /// Stable code, e.g. `because_you_bought`, `due_again`, `popular_at_store`, `in_stock`.
    pub code: &'static str,
    /// A sentence to show.
    pub text: String,
    /// The product behind it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

/// One recommended product.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedItem {
    /// Product id.
    pub product_id: String,
    /// Display title.
    pub title: String,
    /// Category.
    pub category: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Blended score (pinned items: null).
    pub score: Option<f32>,
    /// Why, strongest first.
    pub reasons: Vec<ReasonView>,
}

/// Which consent the answer used.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentUse {
    /// Always `personalization`.
    pub purpose: &'static str,
    /// Whether it was granted (no decision: not granted).
    pub granted: bool,
    /// Where the decision came from.
    pub source: Option<String>,
}

/// The answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecsResponse {
    /// The context asked for.
    pub context: String,
    /// The customer, when known.
    pub profile_id: Option<String>,
    /// Whether the shopper's own data was used.
    pub personalized: bool,
    /// The consent decision applied.
    pub consent: ConsentUse,
    /// The store used for availability and popularity, and where it came from.
    pub store: Option<String>,
    /// `request`, `preferred` (most orders) or null.
    pub store_source: Option<&'static str>,
    /// The weather used, when the store reported one.
    pub weather: Option<String>,
    /// The model version that answered; null when no model could serve and the non-personal
    /// fallback (recent best sellers) answered.
    pub model_version: Option<i64>,
    /// The products.
    pub items: Vec<RecommendedItem>,
}

/// What one training did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainSummary {
    /// The new version.
    pub version: i64,
    /// Purchase lines used.
    pub interactions: usize,
    /// Customers.
    pub customers: usize,
    /// Products (catalog and bought).
    pub products: usize,
    /// Seconds it took.
    pub seconds: f64,
    /// Validation NDCG@10 of repeat lists and discovery lists.
    #[serde(alias = "validation_ndcg")]
    pub validation_ndcg: Option<(f64, f64)>,
    /// When it was trained.
    #[serde(alias = "trained_at", with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub trained_at: i64,
}

impl Engine {
    fn recs(&self) -> &RecsState {
        &self.inner.recs
    }

    /// Loads the newest stored model, availability and rules (at start). A model stored in
    /// another format is not served; with `background`, a new one is trained from the data in
    /// the background and swapped in, so no operator has to. Until then the non-personal
    /// fallback answers.
    pub(crate) async fn load_recs_state(&self, background: bool) -> Result<(), EngineError> {
        self.reload_unavailable().await?;
        if let Some(row) = sqlx::query("SELECT body FROM merchandising WHERE id = 'default'")
            .fetch_optional(self.db().reader())
            .await?
        {
            let m: Merchandising = serde_json::from_str(&row.get::<String, _>(0)).unwrap_or_default();
            *self.recs().merchandising.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        }
        let row = sqlx::query("SELECT version, artifact FROM models ORDER BY version DESC LIMIT 1")
            .fetch_optional(self.db().reader())
            .await?;
        if let Some(row) = row {
            let version: i64 = row.get(0);
            let bytes: Vec<u8> = row.get(1);
            match tokio::task::spawn_blocking(move || Model::from_bytes(&bytes)).await {
                Ok(Ok(model)) => self.swap_model(model, version),
                Ok(Err(e)) => {
                    tracing::warn!(version, error = %e, "the stored model cannot be served; the fallback answers until a new one is trained");
                    if background {
                        let engine = self.clone();
                        tokio::spawn(async move {
                            match engine.train_model(Arc::new(|_| {})).await {
                                Ok(s) => {
                                    tracing::info!(version = s.version, "retrained the model in the current format")
                                }
                                Err(e) => tracing::warn!(error = %e, "retraining the model failed"),
                            }
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "loading the model failed"),
            }
        }
        Ok(())
    }

    pub(crate) async fn reload_unavailable(&self) -> Result<(), EngineError> {
        let mut map: HashMap<String, HashSet<String>> = HashMap::new();
        for (loc, product) in tailor_catalog::unavailable(self.db()).await? {
            map.entry(loc.unwrap_or_default()).or_default().insert(product);
        }
        // Tracked stock: nothing available means not available there.
        for (loc, product) in tailor_inventory::out_of_stock(self.db()).await? {
            map.entry(loc).or_default().insert(product);
        }
        *self.inner.stock.unavailable.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(())
    }

    fn swap_model(&self, model: Model, version: i64) {
        let serving = Arc::new(Serving { model, version });
        *self.recs().serving.write().unwrap_or_else(|e| e.into_inner()) = Some(serving);
        tracing::info!(version, "serving recommendation model");
    }

    /// Forgets erased customers in the serving model at once and in every stored artifact, so
    /// no model holds their vectors; training waits meanwhile, so none is stored with them.
    pub(crate) async fn forget_in_models(&self, ids: &[String]) -> Result<(), EngineError> {
        let _no_training = self.recs().training.lock().await;
        self.recs().history.forget(ids);
        if let Some(s) = self.serving().filter(|s| ids.iter().any(|id| s.model.user_index.contains_key(id))) {
            let (mut model, version, ids) = (s.model.clone(), s.version, ids.to_vec());
            let model = tokio::task::spawn_blocking(move || {
                model.forget_users(&ids);
                model
            })
            .await
            .map_err(|e| EngineError::Conflict(format!("forgetting in the model failed: {e}")))?;
            self.swap_model(model, version);
        }
        let versions: Vec<i64> = sqlx::query("SELECT version FROM models")
            .fetch_all(self.db().reader())
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for version in versions {
            let bytes: Vec<u8> = sqlx::query("SELECT artifact FROM models WHERE version = $1")
                .bind(version)
                .fetch_one(self.db().reader())
                .await?
                .get(0);
            let ids = ids.to_vec();
            let rewritten = tokio::task::spawn_blocking(move || match Model::from_bytes(&bytes) {
                Ok(mut model) => Ok((model.forget_users(&ids) > 0).then(|| model.to_bytes().ok()).flatten()),
                Err(e) => Err(e),
            })
            .await
            .map_err(|e| EngineError::Conflict(format!("forgetting in a stored model failed: {e}")))?;
            // An artifact this version cannot read may hold the person and can never be served
            // again: it goes.
            let Ok(rewritten) = rewritten else {
                sqlx::query("DELETE FROM models WHERE version = $1").bind(version).execute(self.db().writer()).await?;
                continue;
            };
            if let Some(bytes) = rewritten {
                sqlx::query("UPDATE models SET artifact = $1 WHERE version = $2")
                    .bind(bytes)
                    .bind(version)
                    .execute(self.db().writer())
                    .await?;
            }
        }
        Ok(())
    }

    fn serving(&self) -> Option<Arc<Serving>> {
        self.recs().serving.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The version of the serving model, if any.
    pub fn model_version(&self) -> Option<i64> {
        self.serving().map(|s| s.version)
    }

    /// Records whether a product can be bought at a location; recommendations see it at once.
    pub async fn set_availability(&self, a: &tailor_catalog::Availability) -> Result<(), EngineError> {
        if a.product_id.trim().is_empty() {
            return Err(EngineError::Invalid(FieldError::invalid("productId", "give the product id")));
        }
        if a.location_id.trim().is_empty() {
            return Err(EngineError::Invalid(FieldError::invalid("locationId", "give the store or warehouse id")));
        }
        tailor_catalog::set_availability(self.db(), a, now_millis()).await?;
        self.inner.stock.mark(&a.location_id, &a.product_id, a.available);
        Ok(())
    }

    /// Records the weather at a store.
    pub async fn set_weather(
        &self,
        store: &str,
        condition: &str,
        temperature_c: Option<f64>,
    ) -> Result<(), EngineError> {
        let known = Weather::ALL.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ");
        let weather = Weather::parse(condition).ok_or_else(|| {
            EngineError::Invalid(FieldError::invalid("condition", format!("unknown weather; use one of {known}")))
        })?;
        if store.trim().is_empty() {
            return Err(EngineError::Invalid(FieldError::invalid("storeId", "give the store id")));
        }
        self.known_store(store, "storeId").await?;
        sqlx::query(
            "INSERT INTO store_weather (location_id, condition, temperature_c, observed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (location_id) DO UPDATE SET condition = excluded.condition, \
             temperature_c = excluded.temperature_c, observed_at = excluded.observed_at",
        )
        .bind(store)
        .bind(weather.name())
        .bind(temperature_c)
        .bind(now_millis())
        .execute(self.db().writer())
        .await?;
        Ok(())
    }

    async fn known_store(&self, store: &str, field: &str) -> Result<(), EngineError> {
        let row = sqlx::query("SELECT COUNT(*) FROM locations WHERE id = $1")
            .bind(store)
            .fetch_one(self.db().reader())
            .await?;
        if row.get::<i64, _>(0) == 0 {
            return Err(EngineError::Invalid(FieldError::unknown(
                field,
                format!("no store with id '{store}'; import it with `tailor import locations`"),
            )));
        }
        Ok(())
    }

    async fn weather_at(&self, store: &str) -> Result<Option<Weather>, EngineError> {
        let row = sqlx::query("SELECT condition, observed_at FROM store_weather WHERE location_id = $1")
            .bind(store)
            .fetch_optional(self.db().reader())
            .await?;
        Ok(row
            .filter(|r| r.get::<i64, _>(1) >= now_millis() - WEATHER_MILLIS)
            .and_then(|r| Weather::parse(&r.get::<String, _>(0))))
    }

    /// The merchandising rules.
    pub fn merchandising(&self) -> Merchandising {
        (**self.recs().merchandising.read().unwrap_or_else(|e| e.into_inner())).clone()
    }

    /// Replaces the merchandising rules.
    pub async fn set_merchandising(&self, m: Merchandising) -> Result<(), EngineError> {
        for (i, b) in m.boosts.iter().enumerate() {
            let targets = [&b.product_id, &b.category, &b.brand].iter().filter(|t| t.is_some()).count();
            if targets != 1 {
                return Err(EngineError::Invalid(FieldError::invalid(
                    format!("boosts[{i}]"),
                    "give exactly one of productId, category, brand",
                )));
            }
            if !(b.factor.is_finite() && b.factor >= 0.0) {
                return Err(EngineError::Invalid(FieldError::invalid(
                    format!("boosts[{i}].factor"),
                    "a factor is a number ≥ 0 (above 1 lifts, below 1 buries)",
                )));
            }
        }
        for (name, v) in [("maxPerCategory", m.max_per_category), ("maxPerBrand", m.max_per_brand)] {
            if v == Some(0) {
                return Err(EngineError::Invalid(FieldError::invalid(name, "at least 1, or leave it out")));
            }
        }
        let body = serde_json::to_string(&m).map_err(|e| EngineError::Io(e.to_string()))?;
        sqlx::query(
            "INSERT INTO merchandising (id, body, updated_at) VALUES ('default', $1, $2) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(body)
        .bind(now_millis())
        .execute(self.db().writer())
        .await?;
        *self.recs().merchandising.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        Ok(())
    }

    /// Trains a new model from every order, the catalog and the stores, stores it as the next
    /// version and serves it (requests in flight finish on the old one).
    pub async fn train_model(&self, progress: Arc<dyn Fn(&str) + Send + Sync>) -> Result<TrainSummary, EngineError> {
        let _one_at_a_time = self.recs().training.lock().await;
        let started = std::time::Instant::now();
        self.sync().await?;
        progress("reading orders and catalog");
        let (data, set_parts) = self.training_data().await?;
        let interactions = data.rows.len();
        let customers = data.users.len();
        let products = data.items.len();
        if interactions == 0 {
            return Err(EngineError::NotReady(
                "there are no orders to learn from yet: send Order Completed events or `tailor import orders`".into(),
            ));
        }
        let p = progress.clone();
        let model = tokio::task::spawn_blocking(move || {
            let (attributes, store_region) = set_parts;
            let set = TrainingSet { data: &data, attributes, store_region };
            train_with_learned_weights(&set, &ModelConfig::default(), &|m| p(m))
        })
        .await
        .map_err(|e| EngineError::Io(format!("training failed: {e}")))?;
        progress("saving the model");
        let validation_ndcg = model.validation.map(|(r, n)| (r.ndcg10, n.ndcg10));
        let bytes = {
            let m = model.clone();
            tokio::task::spawn_blocking(move || m.to_bytes())
                .await
                .map_err(|e| EngineError::Io(e.to_string()))?
                .map_err(EngineError::Io)?
        };
        let trained_at = now_millis();
        let mut tx = self.db().writer().begin().await?;
        let version: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM models").fetch_one(&mut *tx).await?.get(0);
        let mut summary =
            TrainSummary { version, interactions, customers, products, seconds: 0.0, validation_ndcg, trained_at };
        summary.seconds = started.elapsed().as_secs_f64();
        sqlx::query("INSERT INTO models (version, created_at, summary, artifact) VALUES ($1, $2, $3, $4)")
            .bind(version)
            .bind(trained_at)
            .bind(serde_json::to_string(&summary).unwrap_or_default())
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM models WHERE version <= $1").bind(version - KEEP_VERSIONS).execute(&mut *tx).await?;
        tx.commit().await?;
        self.swap_model(model, version);
        Ok(summary)
    }

    /// The stored model versions, newest first.
    pub async fn models(&self) -> Result<Vec<TrainSummary>, EngineError> {
        let rows =
            sqlx::query("SELECT summary FROM models ORDER BY version DESC").fetch_all(self.db().reader()).await?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()).collect())
    }

    #[allow(clippy::type_complexity)]
    async fn training_data(
        &self,
    ) -> Result<(Dataset, (Vec<Option<ItemAttributes>>, HashMap<String, String>)), EngineError> {
        let db = self.db();
        // Each profile's root, so a merged customer is one user.
        let mut parent: HashMap<String, Option<String>> = HashMap::new();
        for r in sqlx::query("SELECT id, merged_into FROM profiles").fetch_all(db.reader()).await? {
            parent.insert(r.get(0), r.get(1));
        }
        let root = |id: &str| {
            let mut cur = id.to_string();
            for _ in 0..64 {
                match parent.get(&cur) {
                    Some(Some(next)) => cur = next.clone(),
                    _ => break,
                }
            }
            cur
        };
        let mut data = Dataset::default();
        let products = tailor_catalog::all_products(db).await?;
        let mut attributes: Vec<Option<ItemAttributes>> = Vec::with_capacity(products.len());
        for p in products {
            data.item(&p.id);
            attributes.push(Some(ItemAttributes {
                title: p.title,
                department: p.department,
                category: p.category,
                subcategory: p.subcategory,
                brand: p.brand,
            }));
        }
        let rows = sqlx::query(
            "SELECT o.profile_id, l.product_id, o.ts, l.quantity, o.store_id FROM orders o \
             JOIN order_lines l ON l.order_id = o.order_id WHERE o.profile_id IS NOT NULL",
        )
        .fetch_all(db.reader())
        .await?;
        let mut roots: HashMap<String, String> = HashMap::new();
        for r in &rows {
            let profile: String = r.get(0);
            let user = roots.entry(profile.clone()).or_insert_with(|| root(&profile)).clone();
            let product: String = r.get(1);
            let ts: i64 = r.get(2);
            let quantity: i64 = r.get(3);
            let store: Option<String> = r.get(4);
            data.push(&user, &product, ts / 1000, quantity as f32, store.as_deref());
        }
        attributes.resize(data.items.len(), None);
        let mut store_region = HashMap::new();
        for r in sqlx::query("SELECT id, region FROM locations WHERE region IS NOT NULL").fetch_all(db.reader()).await?
        {
            store_region.insert(r.get(0), r.get(1));
        }
        Ok((data, (attributes, store_region)))
    }

    /// The answer while no model can serve (none trained yet, or one of an older format being
    /// retrained): recent best sellers from the orders, the same for everyone.
    async fn best_sellers(&self, req: &RecsRequest) -> Result<RecsResponse, EngineError> {
        let since = now_millis() - 30 * 86_400_000;
        let mut rows = Vec::new();
        for from in [since, i64::MIN] {
            rows = sqlx::query(
                "SELECT l.product_id, COUNT(*) FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
                 WHERE o.ts >= $1 GROUP BY l.product_id ORDER BY COUNT(*) DESC, l.product_id LIMIT $2",
            )
            .bind(from)
            .bind(req.k as i64)
            .fetch_all(self.db().reader())
            .await?;
            if !rows.is_empty() {
                break;
            }
        }
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get(0);
            let product = tailor_catalog::get_product(self.db(), &id).await?;
            items.push(RecommendedItem {
                title: product.as_ref().map(|p| p.title.clone()).unwrap_or_default(),
                category: product.as_ref().and_then(|p| p.category.clone()),
                brand: product.as_ref().and_then(|p| p.brand.clone()),
                product_id: id,
                score: None,
                reasons: vec![ReasonView { code: "popular", text: "A best seller lately".into(), product_id: None }],
            });
        }
        Ok(RecsResponse {
            context: req.context.clone(),
            profile_id: None,
            personalized: false,
            consent: ConsentUse { purpose: "personalization", granted: false, source: None },
            store: req.store.clone(),
            store_source: req.store.as_ref().map(|_| "request"),
            weather: None,
            model_version: None,
            items,
        })
    }

    /// Recommendations for one shopper and context.
    pub async fn recommend(&self, req: &RecsRequest) -> Result<RecsResponse, EngineError> {
        let names = Surface::ALL.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
        let surface = Surface::parse(&req.context).ok_or_else(|| {
            EngineError::Invalid(FieldError::invalid("context", format!("unknown context; use one of {names}")))
        })?;
        if req.k == 0 || req.k > MAX_K {
            return Err(EngineError::Invalid(FieldError::invalid("k", format!("k is between 1 and {MAX_K}"))));
        }
        if surface == Surface::Item && req.item.is_none() {
            return Err(EngineError::Invalid(FieldError::invalid("item", "the item context needs ?item=PRODUCT_ID")));
        }
        let Some(serving) = self.serving() else {
            return self.best_sellers(req).await;
        };
        let model = &serving.model;
        let anchor = match &req.item {
            Some(id) => {
                let known = model.item_index.get(id).copied();
                if known.is_none() && tailor_catalog::get_product(self.db(), id).await?.is_none() {
                    return Err(EngineError::Invalid(FieldError::unknown(
                        "item",
                        format!("no product with id '{id}'"),
                    )));
                }
                known
            }
            None => None,
        };
        if let Some(s) = &req.store {
            self.known_store(s, "store").await?;
        }
        // Who is shopping.
        let mut root = None;
        if let Some(u) = &req.user {
            let mut conn = self.db().reader().acquire().await?;
            root = tailor_profiles::root_of(&mut conn, u).await?;
            if root.is_none() {
                if let Ok(id) = Identifier::parse(IdentifierKind::UserId, u, "user") {
                    root = self.lookup(&id).await?;
                }
            }
        }
        if root.is_none() {
            if let Some(a) = &req.anonymous_id {
                let id =
                    Identifier::parse(IdentifierKind::AnonymousId, a, "anonymousId").map_err(EngineError::Invalid)?;
                root = self.lookup(&id).await?;
            }
        }
        let now = now_millis();
        let signals = match &root {
            Some(r) => {
                let mut conn = self.db().reader().acquire().await?;
                Some(tailor_profiles::signals(&mut conn, r, now - SESSION_MILLIS, &self.recs().history).await?)
            }
            None => None,
        };
        let personal = signals.as_ref().is_some_and(|s| s.personalization);
        let (store, store_source) = match (&req.store, signals.as_ref().and_then(|s| s.preferred_store.clone())) {
            (Some(s), _) => (Some(s.clone()), Some("request")),
            (None, Some(p)) if personal => (Some(p), Some("preferred")),
            _ => (None, None),
        };
        let weather = match &store {
            Some(s) => self.weather_at(s).await?,
            None => None,
        };
        let idx = |id: &str| model.item_index.get(id).copied();
        let mut shopper = Shopper { personal, ..Shopper::default() };
        if let (Some(s), true) = (&signals, personal) {
            shopper.user = s.members.iter().find_map(|m| model.user_index.get(m).copied());
            shopper.purchases = s.purchases.iter().rev().filter_map(|(p, ts)| Some((idx(p)?, ts / 1000))).collect();
            shopper.session = s
                .session
                .iter()
                .rev()
                .filter_map(|(p, added, ts)| {
                    Some((idx(p)?, if *added { Action::Added } else { Action::Viewed }, ts / 1000))
                })
                .collect();
            shopper.cart = s.cart.iter().filter_map(|p| idx(p)).collect();
        }
        let query = Query {
            surface,
            anchors: anchor.into_iter().chain(req.cart.iter().filter_map(|p| idx(p))).collect(),
            store: store.clone(),
            k: req.k,
            now: now / 1000,
            utc_offset_secs: 0,
            weather,
            novel: req.novel,
        };
        let merch = self.recs().merchandising.read().unwrap_or_else(|e| e.into_inner()).clone();
        let unavailable = self.inner.stock.unavailable.read().unwrap_or_else(|e| e.into_inner()).clone();
        let here = store.as_ref().and_then(|s| unavailable.get(s));
        let everywhere = unavailable.get("");
        let available = |i: u32| {
            let id = &model.items[i as usize];
            !everywhere.is_some_and(|u| u.contains(id)) && !here.is_some_and(|u| u.contains(id))
        };
        let category_idx = |name: &str| model.content.categories.iter().position(|c| c == name).map(|c| c as u32);
        let brand_idx = |name: &str| model.content.brands.iter().position(|c| c == name).map(|c| c as u32);
        let mut categories = None;
        if !req.categories.is_empty() {
            let mut set = HashSet::new();
            for c in &req.categories {
                set.insert(category_idx(c).ok_or_else(|| {
                    EngineError::Invalid(FieldError::unknown("category", format!("no category named '{c}'")))
                })?);
            }
            categories = Some(set);
        }
        let boosts = merch
            .boosts
            .iter()
            .filter_map(|b| {
                let target = match (&b.product_id, &b.category, &b.brand) {
                    (Some(p), _, _) => BoostTarget::Item(idx(p)?),
                    (_, Some(c), _) => BoostTarget::Category(category_idx(c)?),
                    (_, _, Some(b)) => BoostTarget::Brand(brand_idx(b)?),
                    _ => return None,
                };
                Some(Boost { target, factor: b.factor })
            })
            .collect();
        let pins = match surface {
            Surface::Home | Surface::Email | Surface::Associate => merch.pins.iter().filter_map(|p| idx(p)).collect(),
            Surface::Item | Surface::Cart => Vec::new(),
        };
        let rules = Rules {
            exclude: req.exclude.iter().chain(&merch.exclude).filter_map(|p| idx(p)).collect(),
            categories,
            max_per_category: merch.max_per_category,
            max_per_brand: merch.max_per_brand,
            boosts,
            pins,
            available: &available,
        };
        let answer = model.recommend(&shopper, &query, &rules);
        let title = |i: u32| display(model, i);
        let items = answer
            .items
            .iter()
            .map(|r| {
                let mut reasons: Vec<ReasonView> = r
                    .reasons
                    .iter()
                    .map(|reason| explain(r.item, reason, model, &title, store.as_deref(), &query))
                    .collect();
                if let Some(s) = &store {
                    reasons.push(ReasonView {
                        code: "in_stock",
                        text: format!("Available at store {s}"),
                        product_id: None,
                    });
                }
                RecommendedItem {
                    product_id: model.items[r.item as usize].clone(),
                    title: display(model, r.item),
                    category: model.content.category_of(r.item).map(str::to_string),
                    brand: model.content.brand_of(r.item).map(str::to_string),
                    score: r.score.is_finite().then_some(r.score),
                    reasons,
                }
            })
            .collect();
        Ok(RecsResponse {
            context: surface.name().to_string(),
            profile_id: root,
            personalized: answer.personalized,
            consent: ConsentUse {
                purpose: "personalization",
                granted: personal,
                source: signals.and_then(|s| s.consent_source),
            },
            store,
            store_source,
            weather: weather.map(|w| w.name().to_string()),
            model_version: Some(serving.version),
            items,
        })
    }
}

/// The product's title as the catalog knows it (its id when it is not in the catalog).
fn display(model: &Model, i: u32) -> String {
    model.titles.get(i as usize).filter(|t| !t.is_empty()).cloned().unwrap_or_else(|| model.items[i as usize].clone())
}

fn explain(
    recommended: u32,
    reason: &Reason,
    model: &Model,
    title: &dyn Fn(u32) -> String,
    store: Option<&str>,
    q: &Query,
) -> ReasonView {
    let product = |i: &Option<u32>| i.map(|i| model.items[i as usize].clone());
    let about = |i: &Option<u32>| i.map(title).unwrap_or_else(|| "items like this".into());
    let (code, text, product_id) = match reason {
        Reason::Source { source, item } => match source {
            Source::Als => ("your_taste", "Picked for your taste from what you buy".to_string(), None),
            Source::Knn | Source::Ease => {
                ("because_you_bought", format!("Because you bought {}", about(item)), product(item))
            }
            Source::Session => ("because_you_viewed", format!("Because you looked at {}", about(item)), product(item)),
            Source::Together => ("bought_together", format!("Often bought with {}", about(item)), product(item)),
            Source::Content => ("similar", format!("Similar to {}", about(item)), product(item)),
            Source::Repeat => ("buy_again", "You buy this regularly".to_string(), None),
            Source::Popularity => match store {
                Some(s) if model.by_store.contains_key(s) => {
                    ("popular_at_store", format!("Popular at store {s}"), None)
                }
                Some(_) => ("popular_in_region", "Popular in your region".to_string(), None),
                None => ("popular", "Popular right now".to_string(), None),
            },
            Source::Trending => ("trending", "Trending: selling more than usual lately".to_string(), None),
            Source::CatchingOn => {
                ("catching_on", "Catching on: many shoppers tried it for the first time lately".to_string(), None)
            }
            Source::Moment => (
                "right_now",
                format!("Sells well on {}", tailor_recs::situation::Moment::at(q.now, q.utc_offset_secs).describe()),
                None,
            ),
            Source::Weather => {
                ("weather", format!("Fits the weather at your store ({})", q.weather.map_or("", |w| w.name())), None)
            }
            Source::Category => (
                "favourite_category",
                format!(
                    "A best seller in {}, which you buy often",
                    model.content.category_of(recommended).unwrap_or("a category")
                ),
                None,
            ),
        },
        Reason::Habit { every_days, due } => match (every_days, due) {
            (Some(d), true) => ("due_again", format!("You buy this about every {} — it's due", period(*d)), None),
            (Some(d), false) => ("buy_again", format!("You buy this about every {}", period(*d)), None),
            _ => ("buy_again", "You bought this before".to_string(), None),
        },
        Reason::Boosted => ("promoted", "Promoted by the store".to_string(), None),
        Reason::Pinned => ("featured", "Featured by the store".to_string(), None),
        Reason::Fill => ("popular", "Popular overall".to_string(), None),
    };
    ReasonView { code, text, product_id }
}

/// "3 weeks", "10 days", "2 months".
fn period(days: f32) -> String {
    let d = days.round().max(1.0) as i64;
    match d {
        1 => "day".into(),
        2..=13 => format!("{d} days"),
        14..=59 => format!("{} weeks", (days / 7.0).round() as i64),
        _ => format!("{} months", (days / 30.0).round() as i64),
    }
}

/// Retrains every `every` when orders arrived since the serving model was trained.
pub(crate) fn retraining_job(every: std::time::Duration) -> crate::supervisor::Job {
    // The order count the last model saw: no new orders, no new model.
    let trained_orders = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    crate::supervisor::Job {
        name: "retraining",
        first_after: every,
        every,
        wake: None,
        round: Arc::new(move |engine: Engine| {
            let trained_orders = trained_orders.clone();
            Box::pin(async move {
                let orders: i64 =
                    sqlx::query("SELECT COUNT(*) FROM orders").fetch_one(engine.db().reader()).await?.get(0);
                if orders == 0 || orders == trained_orders.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(());
                }
                let s = engine.train_model(Arc::new(|_| {})).await?;
                trained_orders.store(orders, std::sync::atomic::Ordering::SeqCst);
                tracing::info!(version = s.version, seconds = s.seconds, "scheduled training done");
                Ok(())
            })
        }),
    }
}
