//! The `Engine` handle: opens storage, runs every domain crate's migrations, composes the event
//! log, profiles and catalog, and runs the background projection. It is the only API the server
//! and the CLI call.

mod assistant;
mod error;
mod health;
pub mod import;
mod inventory;
mod journeys;
mod keys;
mod loyalty;
mod price_experiments;
mod pricing;
mod projector;
mod recs;
mod search;
mod segments;
mod supervisor;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tailor_core::time::now_millis;
use tailor_core::{Event, Identifier, Purpose};
use tailor_profiles as profiles;
use tailor_store::{Db, Migration};
use tailor_stream::EventLog;
pub use tailor_stream::Source;
use tokio::sync::watch;

pub use assistant::{
    check_message, Caller, ConversationView, InboxItem, MessageView, StartConversation, StartedConversation, TurnView,
    UnderstoodView, BROWSER_HOLD_MAX_UNITS, PICKUP_HOLD_MS, STATE_BOT, STATE_HANDOFF,
};
pub use error::EngineError;
pub use inventory::StockEvent;
pub use journeys::{
    builtin_journey, Channels, Clock, DecisionView, JourneyView, OnsiteMessage, RoundSummary, SendView, SmtpConfig,
    StepCount, BUILTIN_JOURNEYS,
};
pub use journeys::{
    ChannelLift, DifferenceView, FunnelStep, GroupView, JourneyReport, LiftView, MixItem, SideCount, StepLift,
    UpliftModelView,
};
pub use keys::{Access, ApiKey, NewKey, Principal, Scope};
pub use loyalty::{LoyaltyAccount, LoyaltyEventPage, Redemption};
pub use profiles::{MergeView, ProfileView, TimelineEntry};
pub use recs::{
    BoostRule, ConsentUse, Merchandising, ReasonView, RecommendedItem, RecsRequest, RecsResponse, TrainSummary, MAX_K,
};
pub use search::{SearchRequest, SearchResponse, MAX_QUERY_CHARS, MAX_SEARCH_LIMIT};
pub use segments::{SegmentMember, SegmentView};
pub use supervisor::JobStatus;
pub use tailor_assistant::dialogue::ChatChannel;
pub use tailor_campaigns::segment::SegmentDef;
pub use tailor_campaigns::{Guardrails as SendGuardrails, JourneyDef};
pub use tailor_inventory::{
    AdjustMode, Adjustment, Allocation, ChannelPolicy, LocationAvailability, Policy, Reservation, ReservationLine,
    ReservationState, ReserveRequest, StockLevel, Transfer, TransferState, DEFAULT_CART_TTL_MS,
};
pub use tailor_loyalty::{
    Balance, Bucket, Entry as LoyaltyEntry, Limit as RewardLimit, LoyaltyEvent, NextTier, Qualifying, Reward,
    Rule as LoyaltyRule, Tier as LoyaltyTier, Trigger as RewardTrigger,
};
pub use tailor_pricing::book::{Applied, Discount, Promotion};
pub use tailor_pricing::decision::{ListPriceInput, PriceDecision};
pub use tailor_pricing::experiment::Objective;
pub use tailor_pricing::guardrails::Guardrails;
pub use tailor_pricing::live::{Arm, CategoryElasticity, Experiment, ExperimentInput, Prior};
pub use tailor_pricing::markdown::{MarkdownPlan, MarkdownRequest};
pub use tailor_pricing::offers::Offer;
pub use tailor_pricing::quote::PriceQuote;
pub use tailor_pricing::reprice::MarketInput;
pub use tailor_pricing::robust::{Model as PricingModel, Rule as PricingRule};
pub use tailor_search::{FacetValue, Facets, Filters as SearchFilters, Hit as SearchHit, Reason as SearchReason};

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub enum Storage {
    /// An embedded SQLite file in this directory.
    Embedded(PathBuf),
    /// A `postgres://` (or `sqlite://`) URL.
    Url(String),
}

/// How to open an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where state lives.
    pub storage: Storage,
    /// Whether this process projects the event log in the background. Off for one-shot
    /// commands; on for `serve` and `demo`.
    pub background: bool,
    /// Retrain the recommendation model this often (with `background`), when new orders came in.
    pub retrain_every: Option<std::time::Duration>,
}

/// Every migration of every crate, in the order they apply.
fn migrations() -> Vec<Migration> {
    [
        tailor_stream::MIGRATIONS,
        profiles::MIGRATIONS,
        tailor_catalog::MIGRATIONS,
        keys::MIGRATIONS,
        tailor_recs_store::MIGRATIONS,
        tailor_inventory::MIGRATIONS,
        tailor_loyalty::MIGRATIONS,
        tailor_pricing::MIGRATIONS,
        tailor_campaigns::MIGRATIONS,
        tailor_assistant::store::MIGRATIONS,
    ]
    .concat()
}

struct Inner {
    db: Db,
    log: EventLog,
    shutdown: watch::Sender<bool>,
    recs: recs::RecsState,
    /// Group commit of reservations, on the embedded store.
    reservations: Option<inventory::ReservationQueue>,
    /// What other engines see of stock.
    stock: Arc<inventory::StockView>,
    /// Promotions in memory.
    prices: tailor_pricing::store::PromotionCache,
    /// The background jobs.
    jobs: supervisor::Supervisor,
    /// Recent answers about API keys.
    key_cache: keys::KeyCache,
    /// Journeys: the clock, channels and templates.
    journeys: journeys::JourneyState,
    /// The product search index.
    search: search::SearchState,
    /// The assistant's understanding, turn locks and live feed.
    assistant: assistant::AssistantState,
    /// Readiness figures read from the store, kept briefly.
    health: health::HealthCache,
}

/// A handle to a running Tailor: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("backend", &self.inner.db.backend()).finish()
    }
}

impl Engine {
    /// Opens storage, applies migrations and, if asked, starts the background projection.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let db = match &config.storage {
            Storage::Embedded(dir) => Db::open_sqlite(dir).await?,
            Storage::Url(url) => Db::open(url).await?,
        };
        db.migrate(&migrations()).await?;
        let (shutdown, _) = watch::channel(false);
        let stock = Arc::new(inventory::StockView::new());
        let engine = Engine {
            inner: Arc::new(Inner {
                log: EventLog::new(db.clone()),
                reservations: (db.backend() == tailor_store::Backend::Sqlite)
                    .then(|| inventory::ReservationQueue::start(db.clone(), stock.clone())),
                stock,
                db,
                shutdown,
                recs: recs::RecsState::default(),
                prices: Default::default(),
                jobs: Default::default(),
                key_cache: Default::default(),
                journeys: Default::default(),
                search: search::SearchState::new(match &config.storage {
                    Storage::Embedded(dir) => Some(dir.join("search")),
                    Storage::Url(_) => None,
                }),
                assistant: Default::default(),
                health: Default::default(),
            }),
        };
        engine.load_recs_state(config.background).await?;
        if config.background {
            // The first search should not wait for the catalog to be indexed.
            let warm = engine.clone();
            tokio::spawn(async move {
                if let Err(e) = warm.search_index().await {
                    tracing::warn!(error = %e, "indexing the catalog for search failed; the next search retries");
                }
            });
            for job in [
                projector::job(&engine),
                inventory::expiry_job(),
                loyalty::sweep_job(),
                price_experiments::steps_job(),
                journeys::job(),
            ]
            .into_iter()
            .chain(config.retrain_every.map(recs::retraining_job))
            {
                engine.inner.jobs.start(&engine, job);
            }
        }
        Ok(engine)
    }

    /// The database, for components that own their tables (catalog imports, benchmarks).
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    /// Stops background work (rounds in flight finish, for up to 5 s) and closes the database.
    pub async fn close(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.jobs.stop(std::time::Duration::from_secs(5)).await;
        self.inner.db.close().await;
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Commits validated events from Tailor itself (imports, the demo) to the log, as a trusted
    /// source; returns how many were new. When it returns, the events are durable.
    pub async fn ingest(&self, events: &[Event]) -> Result<u64, EngineError> {
        self.ingest_from(events, &Source::internal()).await
    }

    /// Commits validated events from `source` (deduplicated by `messageId` within the source);
    /// returns how many were new. When it returns, the events are durable.
    pub async fn ingest_from(&self, events: &[Event], source: &Source) -> Result<u64, EngineError> {
        let n = self.inner.log.append(events, source).await?;
        if n > 0 {
            self.inner.health.changed();
        }
        metrics_counter(n);
        Ok(n)
    }

    /// What an operator needs to know to trust the engine: projection lag, dead letters waiting
    /// for a replay, and each background job's last success.
    pub async fn readiness(&self) -> Result<Readiness, EngineError> {
        let figures = match self.inner.health.get(std::time::Instant::now()) {
            Some(figures) => figures,
            None => {
                let (read_at, changes) = (std::time::Instant::now(), self.inner.health.changes());
                let figures = health::Figures {
                    head: self.inner.log.head().await?,
                    cursor: self.inner.log.cursor(projector::CURSOR).await?,
                    dead_letters: self.inner.log.dead_letter_count().await?,
                };
                self.inner.health.keep(read_at, changes, figures);
                figures
            }
        };
        let jobs = self.inner.jobs.status();
        let lag = figures.head.saturating_sub(figures.cursor);
        let failing = jobs.values().any(|j| j.failing_for >= 3);
        let status = if lag > READY_LAG || failing { "degraded" } else { "ok" };
        Ok(Readiness {
            status,
            projection_lag: lag,
            dead_letters: figures.dead_letters,
            jobs: jobs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
    }

    /// Events the projection could not apply, oldest first, after position `after`.
    pub async fn dead_letters(
        &self,
        after: i64,
        limit: i64,
        replayed: bool,
    ) -> Result<Vec<DeadLetterView>, EngineError> {
        if !(1..=1000).contains(&limit) {
            return Err(EngineError::Invalid(tailor_core::FieldError::invalid("limit", "must be between 1 and 1000")));
        }
        let letters = self.inner.log.dead_letters(after, limit, replayed).await?;
        Ok(letters.into_iter().map(DeadLetterView::from).collect())
    }

    /// Applies a dead letter again (after the cause was fixed, e.g. an earning rule corrected).
    /// Nothing changes when it fails again; the error says why.
    pub async fn replay_dead_letter(&self, seq: i64) -> Result<DeadLetterView, EngineError> {
        let mut tx = self.inner.db.writer().begin().await?;
        projector::lock(self, &mut tx).await?;
        let event = projector::read_after(&mut tx, seq.saturating_sub(1), 1).await?.into_iter().find(|e| e.seq == seq);
        let pending =
            self.inner.log.dead_letters(seq.saturating_sub(1), 1, false).await?.into_iter().find(|d| d.seq == seq);
        let (Some(event), Some(_)) = (event, pending) else {
            return Err(EngineError::not_found("dead letter", &seq.to_string()));
        };
        let program = loyalty::Program::load(&mut tx, self.loyalty_policy()).await?;
        let tracked = tailor_inventory::tracks_stock(&mut tx).await?;
        let moved = match projector::apply_event(&mut tx, &program, tracked, &event).await {
            Ok(moved) => moved,
            Err(e) => {
                tx.rollback().await?;
                return Err(EngineError::Conflict(format!("the event still cannot be applied: {e}")));
            }
        };
        tailor_stream::mark_replayed(&mut tx, seq, projector::CURSOR, now_millis()).await?;
        recs::stamp_shopper_change(&mut tx).await?;
        tx.commit().await?;
        self.shoppers_changed();
        self.stock_moved(moved).await;
        let done =
            self.inner.log.dead_letters(seq.saturating_sub(1), 1, true).await?.into_iter().find(|d| d.seq == seq);
        done.map(DeadLetterView::from).ok_or_else(|| EngineError::not_found("dead letter", &seq.to_string()))
    }

    /// Projects every event logged so far; returns how many it applied. The background
    /// projection calls this too; both can run at once safely.
    pub async fn sync(&self) -> Result<u64, EngineError> {
        projector::catch_up(self).await
    }

    /// The profile `id` belongs to.
    pub async fn profile(&self, id: &str) -> Result<ProfileView, EngineError> {
        let mut conn = self.inner.db.reader().acquire().await?;
        profiles::profile_view(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("profile", id))
    }

    /// The root profile holding an identifier.
    pub async fn lookup(&self, id: &Identifier) -> Result<Option<String>, EngineError> {
        let mut conn = self.inner.db.reader().acquire().await?;
        Ok(profiles::lookup(&mut conn, id).await?)
    }

    /// A page of the customer's cross-channel timeline, newest first.
    pub async fn timeline(
        &self,
        id: &str,
        before: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<TimelineEntry>, EngineError> {
        let mut conn = self.inner.db.reader().acquire().await?;
        profiles::timeline(&mut conn, id, before, limit).await?.ok_or_else(|| EngineError::not_found("profile", id))
    }

    /// The merges of the customer's profiles, with provenance.
    pub async fn merges(&self, id: &str) -> Result<Vec<MergeView>, EngineError> {
        let mut conn = self.inner.db.reader().acquire().await?;
        profiles::merges(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("profile", id))
    }

    /// Undoes a merge of profile `id`: `merge_id` if given, else the merge that absorbed `id`,
    /// else the latest merge into `id`. Returns the undone merge.
    pub async fn unmerge(&self, id: &str, merge_id: Option<&str>) -> Result<MergeView, EngineError> {
        self.sync().await?;
        let merges = self.merges(id).await?;
        let active = |m: &&MergeView| m.undone_at.is_none();
        let chosen = match merge_id {
            Some(mid) => merges.iter().find(|m| m.id == mid).ok_or_else(|| {
                EngineError::Invalid(tailor_core::FieldError::invalid(
                    "mergeId",
                    format!("merge {mid} does not involve profile {id}: list them with GET /v1/profiles/{id}/merges"),
                ))
            })?,
            None => merges
                .iter()
                .filter(active)
                .find(|m| m.absorbed == id)
                .or_else(|| merges.iter().filter(active).find(|m| m.survivor == id))
                .ok_or_else(|| EngineError::Conflict(format!("profile {id} has no merge to undo")))?,
        };
        let merge_id = chosen.id.clone();
        let mut tx = self.inner.db.writer().begin().await?;
        profiles::unmerge(&mut tx, &merge_id, now_millis()).await?;
        recs::stamp_shopper_change(&mut tx).await?;
        tx.commit().await?;
        self.shoppers_changed();
        let merges = self.merges(id).await?;
        merges.into_iter().find(|m| m.id == merge_id).ok_or_else(|| EngineError::not_found("merge", &merge_id))
    }

    /// Records a consent decision for the customer `id` belongs to.
    pub async fn set_consent(
        &self,
        id: &str,
        purpose: Purpose,
        granted: bool,
        source: &str,
    ) -> Result<(), EngineError> {
        let mut tx = self.inner.db.writer().begin().await?;
        let root = profiles::root_of(&mut tx, id).await?.ok_or_else(|| EngineError::not_found("profile", id))?;
        profiles::set_consent(&mut tx, &root, purpose, granted, now_millis(), source).await?;
        recs::stamp_shopper_change(&mut tx).await?;
        tx.commit().await?;
        self.shoppers_changed();
        Ok(())
    }

    /// Everything held about the person `id` belongs to: profiles, events, orders and merges,
    /// their loyalty ledger, personal offers and cart holds.
    pub async fn export(&self, id: &str) -> Result<Value, EngineError> {
        self.sync().await?;
        let mut conn = self.inner.db.reader().acquire().await?;
        let mut out = profiles::export(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("profile", id))?;
        let (ids, _) = profiles::person(&mut conn, id).await?.unwrap_or_default();
        let entries = tailor_loyalty::history(&mut conn, &ids, 100_000).await?;
        let offers = tailor_pricing::store::offers_of(&mut conn, &ids).await?;
        let holds = tailor_inventory::cart_holds(&mut conn, &ids).await?;
        out["loyalty"] = serde_json::json!({ "entries": entries });
        out["offers"] = offers.iter().filter_map(|o| serde_json::to_value(o).ok()).collect();
        out["cartHolds"] =
            holds.into_iter().map(|(sku, r)| serde_json::json!({"sku": sku, "reservationId": r})).collect();
        let (_, values) = profiles::person(&mut conn, id).await?.unwrap_or_default();
        out["conversations"] = self.conversations_of(&mut conn, &values).await?;
        Ok(out)
    }

    /// Erases the person `id` belongs to: every profile of theirs (found by any identifier they
    /// used), their events, consent, carts and cart holds, loyalty ledger, personal offers and
    /// model vectors; orders stay as anonymous aggregates. Pending events are projected first,
    /// so none of theirs recreates the profile afterwards. Returns how many profiles were erased.
    pub async fn erase(&self, id: &str) -> Result<usize, EngineError> {
        self.sync().await?;
        let now = now_millis();
        let mut tx = self.inner.db.writer().begin().await?;
        // Transcripts go with the person: found by the identifiers they used, before those go.
        let (_, values) = profiles::person(&mut tx, id).await?.unwrap_or_default();
        let conversations: Vec<String> =
            tailor_assistant::store::of_people(&mut tx, &values).await?.into_iter().map(|c| c.id).collect();
        tailor_assistant::store::delete(&mut tx, &conversations).await?;
        let ids = profiles::erase(&mut tx, id, now).await?.ok_or_else(|| EngineError::not_found("profile", id))?;
        tailor_loyalty::forget(&mut tx, &ids).await?;
        let moved = tailor_inventory::forget_customers(&mut tx, &ids, now).await?;
        tailor_pricing::store::forget_offers(&mut tx, &ids).await?;
        tailor_campaigns::store::forget(&mut tx, &ids).await?;
        tailor_campaigns::entries::forget(&mut tx, &ids).await?;
        tailor_campaigns::segment_store::forget(&mut tx, &ids).await?;
        tx.commit().await?;
        self.stock_moved(moved).await;
        self.forget_in_models(&ids).await?;
        if self.inner.db.backend() == tailor_store::Backend::Sqlite {
            // Old page images of the erased rows live in the write-ahead log until a checkpoint;
            // secure_delete has zeroed them in the database file itself.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(self.inner.db.writer()).await {
                tracing::warn!(error = %e, "checkpoint after an erasure failed; the next one will carry it");
            }
        }
        tracing::info!(profiles = ids.len(), "erased a person on request");
        Ok(ids.len())
    }

    /// One product.
    pub async fn product(&self, id: &str) -> Result<tailor_catalog::Product, EngineError> {
        tailor_catalog::get_product(&self.inner.db, id).await?.ok_or_else(|| EngineError::not_found("product", id))
    }

    /// Counts for the console and health: events, profiles, products, locations, orders and
    /// how far the projection lags.
    pub async fn stats(&self) -> Result<Stats, EngineError> {
        use tailor_store::Row;
        let mut counts = [0_i64; 6];
        for (n, sql) in counts.iter_mut().zip([
            "SELECT COUNT(*) FROM events",
            "SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL",
            "SELECT COUNT(*) FROM merges WHERE undone_at IS NULL",
            "SELECT COUNT(*) FROM products",
            "SELECT COUNT(*) FROM locations",
            "SELECT COUNT(*) FROM orders",
        ]) {
            *n = sqlx::query(sql).fetch_one(self.inner.db.reader()).await?.get::<i64, _>(0);
        }
        let head = self.inner.log.head().await?;
        let cursor = self.inner.log.cursor(projector::CURSOR).await?;
        let [events, profiles, merges, products, locations, orders] = counts;
        Ok(Stats { events, profiles, merges, products, locations, orders, projection_lag: head - cursor })
    }
}

/// Counts of what the engine holds, and how far the projection lags.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Events logged.
    pub events: i64,
    /// Customers (profiles not merged into another).
    pub profiles: i64,
    /// Merges in force.
    pub merges: i64,
    /// Products in the catalog.
    pub products: i64,
    /// Stores and warehouses.
    pub locations: i64,
    /// Orders.
    pub orders: i64,
    /// Events logged but not yet projected.
    pub projection_lag: i64,
}

/// Beyond this many events behind the log, readiness reports `degraded`.
const READY_LAG: i64 = 10_000;

/// The engine's readiness: `ok`, or `degraded` while the projection lags far behind or a
/// background job has failed three rounds in a row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// Events logged but not yet projected.
    pub projection_lag: i64,
    /// Events the projection could not apply, waiting for a replay.
    pub dead_letters: i64,
    /// Each background job: its last success and failures (the reasons are in the log).
    pub jobs: std::collections::BTreeMap<String, JobStatus>,
}

/// An event the projection could not apply, as the admin API lists it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    /// The event's position in the log (the id to replay it by).
    pub seq: i64,
    /// The projection that failed.
    pub projection: String,
    /// Why it failed.
    pub error: String,
    /// The offending field, when the failure names one.
    pub field: Option<String>,
    /// When it failed (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub failed_at: String,
    /// When a replay applied it (RFC 3339), if one did.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub replayed_at: Option<String>,
    /// The source that sent it.
    pub source: String,
    /// The event as stored.
    #[schema(value_type = Object)]
    pub event: Value,
}

impl From<tailor_stream::DeadLetter> for DeadLetterView {
    fn from(d: tailor_stream::DeadLetter) -> Self {
        use tailor_core::time::format_millis;
        DeadLetterView {
            seq: d.seq,
            projection: d.projection,
            error: d.error,
            field: d.field,
            failed_at: format_millis(d.failed_at),
            replayed_at: d.replayed_at.map(format_millis),
            source: d.source,
            event: d.body,
        }
    }
}

/// A reader's saved position inside `conn` (0 if it never ran).
pub(crate) async fn cursor_in(conn: &mut sqlx::AnyConnection, name: &str) -> Result<i64, EngineError> {
    use tailor_store::Row;
    Ok(sqlx::query("SELECT position FROM cursors WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0))
}

fn metrics_counter(n: u64) {
    tracing::debug!(events = n, "ingested");
}
