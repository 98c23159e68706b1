//! Answering a request: who is shopping and what they did (profiles), where they buy and what
//! is available there, the weather and the rules, handed to the pure ranker of
//! `tailor_recs::serve`; while no model serves, recent best sellers answer.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tailor_core::time::now_millis;
use tailor_core::{Identifier, IdentifierKind};
use tailor_profiles::Signals;
use tailor_recs::replenish::DayHabits;
use tailor_recs::serve::{self, Ask, Observed, SESSION_MILLIS};
use tailor_recs::situation::Weather;
use tailor_recs::RecommendedItem;
use tailor_recs_store::WEATHER_MILLIS;

use super::shoppers::{Cached, CachedShopper, ShopperKey};
use crate::{Engine, EngineError};

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
    /// On an item page: `similar` (substitutes) or `goes_with` (complements); None: both.
    pub kind: Option<String>,
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

/// The best sellers of this window (ms) answer first; when it holds no orders, those of all time.
const BEST_SELLER_MILLIS: i64 = 30 * 86_400_000;

impl Engine {
    /// Recommendations for one shopper and context.
    pub async fn recommend(&self, req: &RecsRequest) -> Result<RecsResponse, EngineError> {
        let surface = serve::surface_of(&req.context, req.k, req.item.as_deref()).map_err(EngineError::Invalid)?;
        let kind = serve::item_kind(req.kind.as_deref(), surface).map_err(EngineError::Invalid)?;
        let Some(serving) = self.serving() else {
            return self.best_sellers(req).await;
        };
        let model = &serving.model;
        if let Some(id) = req.item.as_ref().filter(|id| !model.item_index.contains_key(*id)) {
            if tailor_catalog::get_product(self.db(), id).await?.is_none() {
                let unknown = tailor_core::FieldError::unknown("item", format!("no product with id '{id}'"));
                return Err(EngineError::Invalid(unknown));
            }
        }
        if let Some(s) = &req.store {
            self.known_store(s, "store").await?;
        }
        let now = now_millis();
        let shopper = self.cached_shopper(req, now).await?;
        let root = shopper.root.clone();
        let no_signals = Signals::default();
        let signals = shopper.signals.as_deref().unwrap_or(&no_signals);
        let personal = signals.personalization;
        let (store, store_source) =
            serve::choose_store(req.store.as_deref(), signals.preferred_store.as_deref(), personal);
        let weather = match &store {
            Some(s) => self.weather_now(s, now).await?,
            None => None,
        };
        // Newest first: the session is what is left of it now (the entry may be a little older).
        let session_since = now - SESSION_MILLIS;
        let in_session = signals.session.iter().take_while(|s| s.2 >= session_since).count();
        let mut observed = Observed {
            members: &signals.members,
            purchases: &signals.purchases,
            session: &signals.session[..in_session],
            cart: &signals.cart,
            personal,
            indexed: None,
            habits: None,
        };
        let indexed = personal.then(|| shopper.indexed(serving.version, || observed.indexed_purchases(model)));
        let (secs, half_life) = (now / 1000, model.config.repeat_half_life);
        let habits = indexed.as_ref().map(|purchases| {
            shopper.habits(serving.version, secs.div_euclid(86_400), || DayHabits::at(purchases, secs, half_life))
        });
        observed.indexed = indexed.as_ref();
        observed.habits = habits.as_ref();
        let ask = Ask {
            surface,
            item: req.item.as_deref(),
            cart: &req.cart,
            exclude: &req.exclude,
            categories: &req.categories,
            store: store.as_deref(),
            weather,
            k: req.k,
            novel: req.novel,
            kind,
            now_millis: now,
        };
        let merchandising = self.recs().merchandising.read().unwrap_or_else(|e| e.into_inner()).clone();
        let available = self.availability(store.as_deref());
        let served = serve::serve(model, &observed, &ask, &merchandising, &available).map_err(EngineError::Invalid)?;
        Ok(RecsResponse {
            context: surface.name().to_string(),
            profile_id: root,
            personalized: served.personalized,
            consent: ConsentUse {
                purpose: "personalization",
                granted: personal,
                source: signals.consent_source.clone(),
            },
            store,
            store_source,
            weather: weather.map(|w| w.name().to_string()),
            model_version: Some(serving.version),
            items: served.items,
        })
    }

    /// Whether a product can be bought at `store` (or, without one, anywhere).
    fn availability(&self, store: Option<&str>) -> impl Fn(&str) -> bool + Sync {
        let unavailable = self.inner.stock.unavailable.read().unwrap_or_else(|e| e.into_inner()).clone();
        let store = store.map(str::to_string);
        move |id: &str| {
            let (here, everywhere) = (store.as_ref().and_then(|s| unavailable.get(s)), unavailable.get(""));
            ![everywhere, here].into_iter().flatten().any(|u| u.contains(id))
        }
    }

    /// The product that replaces `product` when it is sold out at `store`: in stock there, of
    /// the same need (see [`serve::substitute`]). None while no model serves, for a product the
    /// model does not know, or when nothing like it is in stock. For the abandoned-cart loop
    /// and the assistant.
    pub fn substitute(&self, product: &str, store: Option<&str>) -> Option<RecommendedItem> {
        let serving = self.serving()?;
        serve::substitute(&serving.model, product, &self.availability(store), now_millis())
    }

    /// The shopper of `req` and their signals as of `now`, from the cache while nothing they
    /// depend on changed (see [`super::shoppers`]).
    async fn cached_shopper(&self, req: &RecsRequest, now: i64) -> Result<Arc<CachedShopper>, EngineError> {
        let key = (req.user.clone(), req.anonymous_id.clone());
        match self.recs().shoppers.shopper(&key) {
            Cached::Fresh(hit) | Cached::Old { shopper: hit, refresh: false } => Ok(hit),
            Cached::Old { shopper, refresh: true } => {
                let (engine, req) = (self.clone(), req.clone());
                tokio::spawn(async move {
                    if let Err(e) = engine.read_shopper(&req, key, now).await {
                        tracing::warn!(error = %e, "a cached shopper could not be read again; the next request will");
                    }
                });
                Ok(shopper)
            }
            Cached::Missing => self.read_shopper(req, key, now).await,
        }
    }

    /// Reads the shopper of `req` and keeps them in the cache under `key`.
    async fn read_shopper(
        &self,
        req: &RecsRequest,
        key: ShopperKey,
        now: i64,
    ) -> Result<Arc<CachedShopper>, EngineError> {
        let cache = &self.recs().shoppers;
        let (generation, read_at) = (cache.generation(), Instant::now());
        let root = self.shopper_of(req).await?;
        let signals = match &root {
            Some(r) => Some(Arc::new(self.signals_of(r, now).await?)),
            None => None,
        };
        Ok(cache.keep_shopper(key, root, signals, generation, read_at))
    }

    /// The weather reported at `store`, unless older than [`WEATHER_MILLIS`] at `now`.
    async fn weather_now(&self, store: &str, now: i64) -> Result<Option<Weather>, EngineError> {
        let cache = &self.recs().shoppers;
        let report = match cache.weather(store) {
            Some(report) => report,
            None => {
                let (generation, read_at) = (cache.generation(), Instant::now());
                let report = tailor_recs_store::weather_report(self.db(), store).await?;
                cache.keep_weather(store, report, generation, read_at);
                report
            }
        };
        Ok(report.filter(|(_, at)| *at >= now - WEATHER_MILLIS).map(|(w, _)| w))
    }

    /// The customer shopping: the profile or userId given, else the visitor's anonymousId.
    pub(crate) async fn shopper_of(&self, req: &RecsRequest) -> Result<Option<String>, EngineError> {
        if let Some(u) = &req.user {
            let mut conn = self.db().reader().acquire().await?;
            if let Some(root) = tailor_profiles::root_of(&mut conn, u).await? {
                return Ok(Some(root));
            }
            if let Ok(id) = Identifier::parse(IdentifierKind::UserId, u, "user") {
                if let Some(root) = self.lookup(&id).await? {
                    return Ok(Some(root));
                }
            }
        }
        match &req.anonymous_id {
            Some(a) => {
                let id =
                    Identifier::parse(IdentifierKind::AnonymousId, a, "anonymousId").map_err(EngineError::Invalid)?;
                self.lookup(&id).await
            }
            None => Ok(None),
        }
    }

    /// The customer's consent, orders, session and cart as of `now`.
    pub(crate) async fn signals_of(&self, root: &str, now: i64) -> Result<Signals, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(tailor_profiles::signals(&mut conn, root, now - SESSION_MILLIS, &self.recs().history).await?)
    }

    /// The answer while no model can serve (none trained yet, or one of an older format being
    /// retrained): recent best sellers from the orders, the same for everyone.
    async fn best_sellers(&self, req: &RecsRequest) -> Result<RecsResponse, EngineError> {
        let mut ids = Vec::new();
        for since in [now_millis() - BEST_SELLER_MILLIS, i64::MIN] {
            let mut conn = self.db().reader().acquire().await?;
            ids = tailor_profiles::best_sellers(&mut conn, since, req.k as i64).await?;
            if !ids.is_empty() {
                break;
            }
        }
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let product = tailor_catalog::get_product(self.db(), &id).await?;
            let (title, category, brand) = product.map(|p| (p.title, p.category, p.brand)).unwrap_or_default();
            items.push(RecommendedItem::best_seller(id, title, category, brand));
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
}
