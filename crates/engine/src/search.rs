//! Product search in the engine: the index kept in step with the catalog (on disk beside the
//! embedded store, in memory on PostgreSQL), and a search composed from the customer's
//! purchases (only with the personalization consent) and the stock where they shop. The index
//! holds the catalog only, never a person: what personalizes a search is read per request, so
//! an erased customer's tastes are gone with their orders.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tailor_core::time::now_millis;
use tailor_core::FieldError;
use tailor_search::{Affinity, CatalogStamp, Facets, Filters, Hit, ProductDoc, SearchIndex, SearchQuery, Synonyms};
use tokio::sync::OnceCell;

use crate::recs::ConsentUse;
use crate::{Engine, EngineError, RecsRequest};

pub use tailor_search::{MAX_LIMIT as MAX_SEARCH_LIMIT, MAX_QUERY_CHARS};

/// Another process (an import, another API node) may change the catalog; the index looks at
/// most this often whether it did. Changes made through this engine are seen at once.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Interest per product id, in [0, 1].
type Popularity = Arc<HashMap<String, f32>>;

/// The live search index and how fresh it is.
pub(crate) struct SearchState {
    /// Where the index lives on disk; `None` keeps it in memory.
    dir: Option<PathBuf>,
    index: OnceCell<Arc<SearchIndex>>,
    /// One refresh at a time.
    refresh: tokio::sync::Mutex<()>,
    /// When the catalog was last compared with the index.
    checked: Mutex<Option<Instant>>,
    /// Set when this engine changed the catalog.
    dirty: AtomicBool,
    synonyms: Arc<Synonyms>,
    /// Everyone's recent interest per product, from the serving recommendation model's version.
    popularity: Mutex<Option<(i64, Popularity)>>,
}

impl SearchState {
    pub(crate) fn new(dir: Option<PathBuf>) -> SearchState {
        SearchState {
            dir,
            index: OnceCell::new(),
            refresh: Default::default(),
            checked: Mutex::new(None),
            dirty: AtomicBool::new(true),
            synonyms: Arc::new(Synonyms::defaults()),
            popularity: Mutex::new(None),
        }
    }
}

/// A product search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// What the shopper typed.
    pub q: String,
    /// A profile id or userId.
    pub user: Option<String>,
    /// A visitor's anonymousId.
    pub anonymous_id: Option<String>,
    /// The store whose stock decides availability.
    pub store: Option<String>,
    /// Results wanted, 1–100.
    pub limit: usize,
    /// Facet filters.
    pub filters: Filters,
}

/// The answer to a search.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// The query as asked.
    pub query: String,
    /// The customer, when known.
    pub profile_id: Option<String>,
    /// Whether the customer's purchases changed the order.
    pub personalized: bool,
    /// The consent decision applied.
    pub consent: ConsentUse,
    /// The store whose stock decided availability, if any.
    pub store: Option<String>,
    /// Products matching the query and filters.
    pub total: u64,
    /// The best matches, best first.
    pub items: Vec<Hit>,
    /// Counts by brand, category, size, price band and availability, to narrow the search.
    pub facets: Facets,
}

fn doc_of(p: tailor_catalog::Product) -> ProductDoc {
    ProductDoc {
        id: p.id,
        title: p.title,
        brand: p.brand,
        department: p.department,
        category: p.category,
        subcategory: p.subcategory,
        size: p.size,
        price_cents: p.price_cents,
        currency: p.currency,
        available: p.available,
    }
}

impl Engine {
    fn search_state(&self) -> &SearchState {
        &self.inner.search
    }

    /// Marks the catalog changed by this engine: the next search brings the index up to date.
    pub(crate) fn catalog_changed(&self) {
        self.search_state().dirty.store(true, Ordering::SeqCst);
    }

    /// The index, brought up to date with the catalog when it changed.
    pub(crate) async fn search_index(&self) -> Result<Arc<SearchIndex>, EngineError> {
        let state = self.search_state();
        let index = state
            .index
            .get_or_try_init(|| async {
                let dir = state.dir.clone();
                let opened = tokio::task::spawn_blocking(move || match dir {
                    Some(d) => SearchIndex::open_in_dir(&d),
                    None => SearchIndex::in_ram(),
                })
                .await
                .map_err(|e| EngineError::Io(format!("opening the search index failed: {e}")))?;
                opened.map(Arc::new).map_err(|e| EngineError::Io(e.to_string()))
            })
            .await?
            .clone();
        // None: never compared; Some(true): the periodic look is due (and now taken by this
        // search, so one search a second starts it).
        let due = {
            let mut checked = state.checked.lock().unwrap_or_else(|e| e.into_inner());
            match *checked {
                None => None,
                Some(t) if t.elapsed() >= CHECK_EVERY => {
                    *checked = Some(Instant::now());
                    Some(true)
                }
                Some(_) => Some(false),
            }
        };
        if due.is_none() || state.dirty.load(Ordering::SeqCst) || index.stamp().is_none() {
            // changed through this engine, or never compared: this search waits for the index
            self.refresh_search(&index).await?;
        } else if due == Some(true) {
            // Whether another process changed the catalog is looked at in the background (the
            // look scans the products table): this search answers from the index as it is.
            let (engine, index) = (self.clone(), index.clone());
            tokio::spawn(async move {
                if let Err(e) = engine.refresh_search(&index).await {
                    tracing::warn!(error = %e, "the search index could not be compared with the catalog");
                }
            });
        }
        Ok(index)
    }

    /// Brings the index up to the catalog: the products changed since its stamp, or all of
    /// them when it has none or products went away.
    async fn refresh_search(&self, index: &Arc<SearchIndex>) -> Result<(), EngineError> {
        let state = self.search_state();
        let _one = state.refresh.lock().await;
        // Cleared before reading: a change landing meanwhile sets it again for the next search.
        state.dirty.store(false, Ordering::SeqCst);
        *state.checked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let (count, updated_at) = tailor_catalog::catalog_stamp(self.db()).await?;
        let stamp = CatalogStamp { count, updated_at };
        let held = index.stamp();
        if held == Some(stamp) {
            return Ok(());
        }
        let whole = match held {
            None => true,
            Some(h) => count < h.count || count < index.len() as i64,
        };
        let products = if whole {
            tailor_catalog::all_products(self.db()).await?
        } else {
            tailor_catalog::products_changed_since(self.db(), held.map_or(0, |h| h.updated_at)).await?
        };
        let docs: Vec<ProductDoc> = products.into_iter().map(doc_of).collect();
        let index = index.clone();
        let n = docs.len();
        tokio::task::spawn_blocking(
            move || if whole { index.replace_all(&docs, stamp) } else { index.upsert(&docs, stamp) },
        )
        .await
        .map_err(|e| EngineError::Io(format!("indexing failed: {e}")))?
        .map_err(|e| EngineError::Io(e.to_string()))?;
        tracing::info!(products = n, whole, "search index brought up to the catalog");
        Ok(())
    }

    /// Everyone's recent interest in each product, log-scaled to [0, 1], from the serving
    /// recommendation model (none until one is trained); rebuilt when the model changes.
    fn search_popularity(&self) -> Option<Arc<HashMap<String, f32>>> {
        let serving = self.serving()?;
        let mut cached = self.search_state().popularity.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, map)) = cached.as_ref().filter(|(v, _)| *v == serving.version) {
            return Some(map.clone());
        }
        let model = &serving.model;
        let top = model.popularity_dense.iter().copied().filter(|p| p.is_finite()).fold(0.0_f32, f32::max);
        let map: HashMap<String, f32> = if top > 0.0 {
            model
                .items
                .iter()
                .zip(&model.popularity_dense)
                .filter(|(_, p)| p.is_finite() && **p > 0.0)
                .map(|(id, p)| (id.clone(), (1.0 + p).ln() / (1.0 + top).ln()))
                .collect()
        } else {
            HashMap::new()
        };
        let map = Arc::new(map);
        *cached = Some((serving.version, map.clone()));
        Some(map)
    }

    /// Searches the catalog: matches by words (synonyms, typos), re-ranked by what sells (the
    /// recommendation model's recent popularity), by the customer's purchases when they granted
    /// the personalization consent, and by stock at `store`.
    pub async fn search(&self, req: &SearchRequest) -> Result<SearchResponse, EngineError> {
        let q = req.q.trim();
        if q.is_empty() {
            return Err(EngineError::Invalid(FieldError::invalid("q", "give the words to search for")));
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(EngineError::Invalid(FieldError::invalid(
                "q",
                format!("at most {MAX_QUERY_CHARS} characters"),
            )));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&req.limit) {
            return Err(EngineError::Invalid(FieldError::invalid(
                "limit",
                format!("a whole number between 1 and {MAX_SEARCH_LIMIT}"),
            )));
        }
        if let Some(s) = &req.store {
            self.known_store(s, "store").await?;
        }
        let shopper =
            RecsRequest { user: req.user.clone(), anonymous_id: req.anonymous_id.clone(), ..Default::default() };
        let root = self.shopper_of(&shopper).await?;
        let signals = match &root {
            Some(r) => Some(self.signals_of(r, now_millis()).await?),
            None => None,
        };
        let consent = ConsentUse {
            purpose: "personalization",
            granted: signals.as_ref().is_some_and(|s| s.personalization),
            source: signals.as_ref().and_then(|s| s.consent_source.clone()),
        };
        let index = self.search_index().await?;
        // Without the consent the purchases are not even read into tastes.
        let affinity = signals.filter(|s| s.personalization).map(|s| {
            let products = index.products();
            Affinity::from_purchases(s.purchases.iter().map(|(id, _)| id.as_str()), |id| products.get(id).cloned())
        });
        let popularity = self.search_popularity();
        let unavailable = self.inner.stock.unavailable.read().unwrap_or_else(|e| e.into_inner()).clone();
        let store = req.store.clone();
        let filters = req.filters.clone();
        let (text, limit, synonyms) = (q.to_string(), req.limit, self.search_state().synonyms.clone());
        let results = tokio::task::spawn_blocking(move || {
            let (here, everywhere) = (store.as_ref().and_then(|s| unavailable.get(s)), unavailable.get(""));
            let available = |p: &ProductDoc| ![everywhere, here].into_iter().flatten().any(|u| u.contains(&p.id));
            index.search(
                &SearchQuery {
                    text: &text,
                    limit,
                    filters,
                    affinity: affinity.as_ref(),
                    popularity: popularity.as_deref(),
                    semantic: &[],
                    available: &available,
                    weights: Default::default(),
                },
                &synonyms,
            )
        })
        .await
        .map_err(|e| EngineError::Io(format!("search failed: {e}")))?
        .map_err(|e| match e {
            tailor_search::SearchError::Invalid { field, reason } => {
                EngineError::Invalid(FieldError::invalid(field, reason))
            }
            other => EngineError::Io(other.to_string()),
        })?;
        Ok(SearchResponse {
            query: req.q.clone(),
            profile_id: root,
            personalized: results.personalized,
            consent,
            store: req.store.clone(),
            total: results.total,
            items: results.hits,
            facets: results.facets,
        })
    }
}
