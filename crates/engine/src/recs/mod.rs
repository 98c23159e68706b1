//! Recommendations in the engine: the serving model kept in memory and hot-swapped, and the
//! calls that compose the recommendation crates with the rest. Storage (artifacts, rules,
//! weather) is `tailor_recs_store`'s, the rules and the ranking `tailor_recs`'s, orders and
//! shoppers `tailor_profiles`'s; requests are answered in [`serving`], models trained in
//! [`training`].

mod serving;
mod shoppers;
mod training;

use std::sync::{Arc, RwLock};

use tailor_core::time::now_millis;
use tailor_core::FieldError;
use tailor_recs::situation::Weather;
use tailor_recs::Model;

pub use serving::{ConsentUse, RecsRequest, RecsResponse};
pub use tailor_recs::serve::MAX_K;
pub use tailor_recs::{BoostRule, Merchandising, ReasonView, RecommendedItem};
pub use tailor_recs_store::TrainSummary;
pub(crate) use training::retraining_job;

use crate::{Engine, EngineError};

/// The serving model and its version.
pub(crate) struct Serving {
    pub(crate) model: Model,
    pub(crate) version: i64,
}

/// Live state of recommendations, shared by every request.
#[derive(Default)]
pub(crate) struct RecsState {
    serving: RwLock<Option<Arc<Serving>>>,
    merchandising: RwLock<Arc<Merchandising>>,
    training: tokio::sync::Mutex<()>,
    /// Shoppers' order histories, kept while unchanged.
    history: tailor_profiles::HistoryCache,
    /// Shoppers, weather and stores as requests read them, kept while unchanged.
    pub(crate) shoppers: shoppers::ShopperCache,
}

/// Runs CPU-heavy model work off the async threads; a panic in it is `failed`.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    failed: fn(String) -> EngineError,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| failed(e.to_string()))
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
        if let Some(m) = tailor_recs_store::merchandising(self.db()).await? {
            *self.recs().merchandising.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        }
        let Some((version, bytes)) = tailor_recs_store::newest_artifact(self.db()).await? else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || Model::from_bytes(&bytes)).await {
            Ok(Ok(model)) => self.swap_model(model, version),
            Ok(Err(e)) => {
                tracing::warn!(version, error = %e, "the stored model cannot be served; the fallback answers until a new one is trained");
                if background {
                    self.retrain_in_background();
                }
            }
            Err(e) => tracing::warn!(error = %e, "loading the model failed"),
        }
        Ok(())
    }

    /// Trains a model from the data in a task of its own and swaps it in when done.
    fn retrain_in_background(&self) {
        let engine = self.clone();
        tokio::spawn(async move {
            match engine.train_model(Arc::new(|_| {})).await {
                Ok(s) => tracing::info!(version = s.version, "retrained the model in the current format"),
                Err(e) => tracing::warn!(error = %e, "retraining the model failed"),
            }
        });
    }

    /// Reads again where products cannot be bought: marked unavailable in the catalog, or out
    /// of tracked stock.
    pub(crate) async fn reload_unavailable(&self) -> Result<(), EngineError> {
        let mut map: std::collections::HashMap<String, std::collections::HashSet<String>> = Default::default();
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
        self.shoppers_changed_everywhere().await?;
        if let Some(s) = self.serving().filter(|s| ids.iter().any(|id| s.model.user_index.contains_key(id))) {
            let (mut model, version, ids) = (s.model.clone(), s.version, ids.to_vec());
            let model = blocking(
                move || {
                    model.forget_users(&ids);
                    model
                },
                |e| EngineError::Conflict(format!("forgetting in the model failed: {e}")),
            )
            .await?;
            self.swap_model(model, version);
        }
        for version in tailor_recs_store::versions(self.db()).await? {
            let Some(bytes) = tailor_recs_store::artifact(self.db(), version).await? else { continue };
            let ids = ids.to_vec();
            let rewritten = blocking(
                move || Model::forget_in_artifact(&bytes, &ids),
                |e| EngineError::Conflict(format!("forgetting in a stored model failed: {e}")),
            )
            .await?;
            match rewritten {
                Ok(Some(bytes)) => tailor_recs_store::replace_artifact(self.db(), version, bytes).await?,
                Ok(None) => {}
                // An artifact this version cannot read may hold the person and can never be
                // served again: it goes.
                Err(_) => tailor_recs_store::delete_version(self.db(), version).await?,
            }
        }
        Ok(())
    }

    pub(crate) fn serving(&self) -> Option<Arc<Serving>> {
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
        tailor_recs_store::set_weather(self.db(), store, weather, temperature_c, now_millis()).await?;
        self.shoppers_changed_everywhere().await?;
        Ok(())
    }

    /// Refuses a store that was never imported, naming `field`. Stores found are remembered
    /// (stores are never deleted).
    pub(crate) async fn known_store(&self, store: &str, field: &str) -> Result<(), EngineError> {
        if self.recs().shoppers.store_known(store) {
            return Ok(());
        }
        if !tailor_catalog::location_exists(self.db(), store).await? {
            return Err(EngineError::Invalid(FieldError::unknown(
                field,
                format!("no store with id '{store}'; import it with `tailor import locations`"),
            )));
        }
        self.recs().shoppers.keep_store(store);
        Ok(())
    }

    /// Profiles, orders, carts, consent or weather may have changed: requests read shoppers
    /// again (see [`shoppers`]).
    pub(crate) fn shoppers_changed(&self) {
        self.recs().shoppers.changed();
        // The same moves (a projection round, a replay) change the projection's lag.
        self.inner.health.changed();
    }

    /// Something shoppers' answers depend on changed outside the event log (an import, an
    /// erasure, a weather report): this node reads its shoppers again at once, every other one
    /// at its next projection round.
    pub(crate) async fn shoppers_changed_everywhere(&self) -> Result<(), EngineError> {
        let mut conn = self.db().writer().acquire().await?;
        stamp_shopper_change(&mut conn).await?;
        self.shoppers_changed();
        Ok(())
    }

    /// The projection cursor stands at `position` and the stamp of changes made outside the
    /// log at `stamp` (see [`shoppers::ShopperCache::cursor_at`]).
    pub(crate) fn projection_at(&self, position: i64, stamp: i64) {
        self.recs().shoppers.cursor_at(position);
        self.recs().shoppers.stamp_at(stamp);
    }

    /// The merchandising rules.
    pub fn merchandising(&self) -> Merchandising {
        (**self.recs().merchandising.read().unwrap_or_else(|e| e.into_inner())).clone()
    }

    /// Replaces the merchandising rules.
    pub async fn set_merchandising(&self, m: Merchandising) -> Result<(), EngineError> {
        m.validate().map_err(EngineError::Invalid)?;
        tailor_recs_store::set_merchandising(self.db(), &m, now_millis()).await?;
        *self.recs().merchandising.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        Ok(())
    }
}

/// The cursor row counting changes to shoppers made outside the event log (consent decisions,
/// unmerges, erasures, imports, weather): every node's projection rounds watch it.
pub(crate) const SHOPPER_CHANGES: &str = "shopper_changes";

/// Counts one change to shoppers made outside the event log, in the caller's transaction when
/// it has one, so other nodes read their cached shoppers again (see [`SHOPPER_CHANGES`]).
pub(crate) async fn stamp_shopper_change(conn: &mut sqlx::AnyConnection) -> Result<(), EngineError> {
    sqlx::query(
        "INSERT INTO cursors (name, position) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET position = cursors.position + 1",
    )
    .bind(SHOPPER_CHANGES)
    .execute(conn)
    .await?;
    Ok(())
}
