//! Journeys in the engine: definitions saved as versions (checked by `tailor_campaigns`), the
//! durable scheduler (events enter and exit customers, due positions are leased and fired, see
//! `intake` and `fire`), the channels, the guardrails, unsubscribe and on-site messages.

mod act;
mod channel;
mod clock;
mod compose;
mod config;
mod fire;
mod holdout;
mod intake;
mod points;
mod report;
mod sendtime;
mod shelf;
mod targeting;
mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tailor_campaigns::store::{self, SendRow};
use tailor_campaigns::{Guardrails, JourneyDef};
use tailor_core::time::format_millis;
use tailor_core::{FieldError, Purpose};

pub use clock::Clock;
pub use config::{Channels, SmtpConfig};
pub(crate) use intake::segment_moved;
pub use report::{
    ChannelLift, DifferenceView, FunnelStep, GroupView, JourneyReport, LiftView, MixItem, SideCount, StepLift,
};
pub use targeting::UpliftModelView;

use crate::{Engine, EngineError};

impl From<tailor_campaigns::StoreError> for EngineError {
    fn from(e: tailor_campaigns::StoreError) -> Self {
        match e {
            tailor_campaigns::StoreError::Db(d) => EngineError::from(d),
            tailor_campaigns::StoreError::Stored(m) => EngineError::Io(m),
        }
    }
}

/// The journey state the engine keeps in memory.
#[derive(Default)]
pub(crate) struct JourneyState {
    pub clock: Clock,
    pub channels: std::sync::RwLock<Channels>,
    pub templates: std::sync::RwLock<Option<Arc<tailor_templates::Library>>>,
    /// This engine's name on the leases it holds.
    pub owner: std::sync::OnceLock<String>,
    /// The unsubscribe tokens' key, once read (it never changes).
    pub secret: tokio::sync::OnceCell<Vec<u8>>,
    /// Held for a whole round: the supervisor's rounds and one asked for through the API never
    /// overlap in one engine, so a position leased by one is never taken up by the other
    /// mid-send (leases guard against other engines; a test clock can jump past a lease).
    pub round: tokio::sync::Mutex<()>,
    /// The population's message and engagement counts per channel, reused for a minute.
    pub population: std::sync::Mutex<Option<channel::Population>>,
    /// Sends the server accepted whose record is not committed yet, across the batches in
    /// flight: at most `fire::UNRECORDED` (what a crash can repeat).
    pub unrecorded: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
}

/// A journey as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JourneyView {
    /// The id.
    pub id: String,
    /// The current version (new entries); customers inside finish on theirs.
    pub version: i64,
    /// Whether it is paused.
    pub paused: bool,
    /// The definition of the current version.
    pub definition: JourneyDef,
    /// Customers per step and status (all versions): `{step, status, customers}`.
    pub steps: Vec<StepCount>,
}

/// Customers at a step.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepCount {
    /// The step id (null once ended).
    pub step: Option<String>,
    /// `active`, `completed` or `exited`.
    pub status: String,
    /// How many customers.
    pub customers: i64,
}

/// A send or a skip, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendView {
    /// journey/version/customer/entry/step.
    pub key: String,
    /// The journey.
    pub journey: String,
    /// The step.
    pub step: String,
    /// The channel.
    pub channel: String,
    /// The template.
    pub template: String,
    /// `pending`, `sent`, `skipped`, `failed`, `held_out`, `not_targeted`, or `done` (a trait
    /// update, grant or offer step).
    pub status: String,
    /// Why it was skipped or failed, or what it said.
    pub reason: Option<String>,
    /// The consent purpose checked at send time.
    pub consent_purpose: String,
    /// Channel calls made.
    pub attempts: i64,
    /// Last change (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
}

impl From<SendRow> for SendView {
    fn from(s: SendRow) -> Self {
        SendView {
            key: s.key,
            journey: s.journey_id,
            step: s.step_id,
            channel: s.channel,
            template: s.template,
            status: s.status,
            reason: s.reason,
            consent_purpose: s.purpose,
            attempts: s.attempts,
            at: format_millis(s.updated_at),
        }
    }
}

/// A decision of the journey log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    /// The journey.
    pub journey: String,
    /// The step, if one.
    pub step: Option<String>,
    /// `entered`, `restarted`, `exited`, `completed`, `sent`, `skipped`, `deferred`, `failed`,
    /// `resumed` (a waited-for event came), `timed_out`, `trait_updated`, `points_granted`,
    /// `offer_issued`, `held_out`.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// The consent purpose used, if one.
    pub consent_purpose: Option<String>,
    /// When (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
}

/// An on-site message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnsiteMessage {
    /// Its id.
    pub id: String,
    /// The journey that sent it.
    pub journey: String,
    /// A title, if any.
    pub title: Option<String>,
    /// The text.
    pub body: String,
    /// When (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

/// What one scheduler round did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RoundSummary {
    /// Events read.
    pub events: u64,
    /// Due positions fired.
    pub fired: u64,
}

/// Built-in journeys a marketer switches on (and edits) with `PUT /v1/journeys/{id}`.
pub const BUILTIN_JOURNEYS: &[&str] = &[
    "abandoned_cart",
    "welcome",
    "browse_abandonment",
    "back_in_stock",
    "price_drop",
    "replenishment",
    "win_back",
    "points_expiring",
    "tier_at_risk",
    "birthday",
];

/// A built-in journey's definition.
pub fn builtin_journey(name: &str) -> Option<JourneyDef> {
    let body = match name {
        "abandoned_cart" => serde_json::json!({
            "name": "Abandoned cart",
            "trigger": {"event": "Product Added"},
            "steps": [
                {"id": "wait_1h", "type": "wait", "seconds": 3600},
                {"id": "reminder", "type": "send", "channel": "email", "template": "cart_reminder",
                 "options": {"similar": 3}},
                {"id": "wait_24h", "type": "wait", "seconds": 82_800},
                {"id": "still_there", "type": "branch", "condition": {"type": "cartNotEmpty"},
                 "then": "discount", "otherwise": "end"},
                {"id": "discount", "type": "send", "channel": "email", "template": "cart_discount",
                 "options": {"discountPercent": 10, "similar": 3}},
                {"id": "end", "type": "exit"}
            ],
            "exitOn": ["Order Completed"],
            "restartOn": ["Product Added", "Product Removed"],
            "reentry": "after_exit"
        }),
        "welcome" => serde_json::json!({
            "name": "Welcome",
            "trigger": {"event": "Signed Up"},
            "steps": [
                {"id": "welcome", "type": "send", "channel": "email", "template": "welcome"}
            ],
            "reentry": "never"
        }),
        // Viewed, not added within the hour: the items viewed, at today's prices, in stock.
        "browse_abandonment" => serde_json::json!({
            "name": "Browse abandonment",
            "trigger": {"event": "Product Viewed"},
            "steps": [
                {"id": "added", "type": "waitUntil", "event": "Product Added", "seconds": 3600,
                 "then": "end", "otherwise": "reminder"},
                {"id": "reminder", "type": "send", "channel": "email", "template": "browse_reminder",
                 "options": {"similar": 3}},
                {"id": "end", "type": "exit"}
            ],
            "exitOn": ["Order Completed"],
            "reentry": "after_exit"
        }),
        // After each order, the items the customer buys again and again that fall due, checked
        // a week, two and four weeks on (a check with nothing due sends nothing); the next
        // order starts over.
        "replenishment" => serde_json::json!({
            "name": "Replenishment",
            "trigger": {"event": "Order Completed"},
            "steps": [
                {"id": "wait_1w", "type": "wait", "seconds": 604_800},
                {"id": "due_1w", "type": "send", "channel": "email", "template": "replenish"},
                {"id": "wait_2w", "type": "wait", "seconds": 604_800},
                {"id": "due_2w", "type": "send", "channel": "email", "template": "replenish"},
                {"id": "wait_4w", "type": "wait", "seconds": 1_209_600},
                {"id": "due_4w", "type": "send", "channel": "email", "template": "replenish"}
            ],
            "restartOn": ["Order Completed"],
            "reentry": "after_exit"
        }),
        // Lapsing: 60 days without an order since the last one (each order starts over).
        "win_back" => serde_json::json!({
            "name": "Win-back",
            "trigger": {"event": "Order Completed"},
            "steps": [
                {"id": "wait_60d", "type": "wait", "seconds": 5_184_000},
                {"id": "miss_you", "type": "send", "channel": "email", "template": "win_back",
                 "options": {"similar": 3}}
            ],
            "restartOn": ["Order Completed"],
            "reentry": "after_exit"
        }),
        // An item the customer viewed or added while sold out is back (see `watch`).
        "back_in_stock" => serde_json::json!({
            "name": "Back in stock",
            "trigger": {"event": "back_in_stock"},
            "steps": [
                {"id": "back", "type": "send", "channel": "email", "template": "back_in_stock",
                 "options": {"similar": 3}}
            ],
            "reentry": "after_exit"
        }),
        // An item the customer viewed costs less than when they looked (see `watch`).
        "price_drop" => serde_json::json!({
            "name": "Price drop",
            "trigger": {"event": "price_drop"},
            "steps": [
                {"id": "cheaper", "type": "send", "channel": "email", "template": "price_drop",
                 "options": {"similar": 3}}
            ],
            "exitOn": ["Order Completed"],
            "reentry": "after_exit"
        }),
        // The loyalty feed warns of points expiring; a week later, if they still are, again.
        "points_expiring" => serde_json::json!({
            "name": "Points expiring",
            "trigger": {"event": "points_expiring_soon"},
            "steps": [
                {"id": "warn", "type": "send", "channel": "email", "template": "points_expiring",
                 "options": {"similar": 3}},
                {"id": "wait_week", "type": "wait", "seconds": 604_800},
                {"id": "again", "type": "send", "channel": "email", "template": "points_expiring"}
            ],
            "reentry": "after_exit"
        }),
        "tier_at_risk" => serde_json::json!({
            "name": "Tier at risk",
            "trigger": {"event": "tier_at_risk"},
            "steps": [
                {"id": "keep", "type": "send", "channel": "email", "template": "tier_at_risk",
                 "options": {"similar": 3}}
            ],
            "reentry": "after_exit"
        }),
        // The loyalty sweep grants the birthday reward; the message tells the customer.
        "birthday" => serde_json::json!({
            "name": "Birthday",
            "trigger": {"event": "birthday"},
            "steps": [
                {"id": "greet", "type": "send", "channel": "email", "template": "birthday",
                 "options": {"similar": 3}}
            ],
            "reentry": "after_exit"
        }),
        _ => return None,
    };
    serde_json::from_value(body).ok()
}

/// The longest list a journey read returns.
const MAX_LIST: i64 = 1000;

impl Engine {
    pub(crate) fn journey_state(&self) -> &JourneyState {
        &self.inner.journeys
    }

    /// The clock journeys run on (tests fix and move it).
    pub fn journey_clock(&self) -> &Clock {
        &self.inner.journeys.clock
    }

    /// Sets the channels and brand messages are sent with.
    pub fn set_channels(&self, channels: Channels) {
        if let Ok(mut c) = self.inner.journeys.channels.write() {
            *c = channels;
        }
    }

    /// An SMTP e-mail channel.
    pub fn smtp_channel(config: &SmtpConfig) -> Result<Arc<dyn tailor_campaigns::channels::Channel>, EngineError> {
        let smtp = tailor_campaigns::channels::Smtp::new(&config.host, config.port, &config.from)
            .map_err(|m| EngineError::Invalid(FieldError::invalid("smtp.from", m)))?;
        Ok(Arc::new(smtp))
    }

    /// An SMS or push channel through a webhook (`kind` is `sms` or `push`), HMAC-signed with
    /// `secret`; a call slower than `timeout` counts as failed and is retried.
    pub fn webhook_channel(
        kind: &'static str,
        url: &str,
        secret: &[u8],
        timeout: Duration,
    ) -> Result<Arc<dyn tailor_campaigns::channels::Channel>, EngineError> {
        let hook = tailor_campaigns::channels::Webhook::new(kind, url, secret, timeout)
            .map_err(|m| EngineError::Invalid(FieldError::invalid("url", m)))?;
        Ok(Arc::new(hook))
    }

    pub(crate) fn channels(&self) -> Channels {
        self.inner.journeys.channels.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub(crate) fn templates(&self) -> Arc<tailor_templates::Library> {
        // Read on every send: the shared lock first, the exclusive one only to build it once.
        if let Some(lib) = self.inner.journeys.templates.read().ok().and_then(|slot| slot.clone()) {
            return lib;
        }
        let mut slot = self.inner.journeys.templates.write().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| Arc::new(tailor_templates::Library::builtin())).clone()
    }

    /// Saves `def` as the next version of journey `id` (refused with the field named when it
    /// does not check; nothing is saved then). Customers inside finish on their version.
    pub async fn put_journey(&self, id: &str, def: &JourneyDef) -> Result<JourneyView, EngineError> {
        check_id(id)?;
        let templates: BTreeSet<String> = self.templates().messages().keys().cloned().collect();
        def.check(&templates).map_err(EngineError::Invalid)?;
        targeting::check_model(self, def).await?;
        crate::segments::check_trigger(self, def).await?;
        let mut tx = self.db().writer().begin().await?;
        store::save_journey(&mut tx, id, def, self.journey_clock().now()).await?;
        tx.commit().await?;
        self.journey(id).await
    }

    /// A journey's current version and where its customers are.
    pub async fn journey(&self, id: &str) -> Result<JourneyView, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let saved = store::journey(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("journey", id))?;
        let mut steps = Vec::new();
        for (step, status, customers) in store::step_counts(&mut conn, id).await? {
            // Counts over all versions; a step index names the current version's step.
            let step = step.and_then(|i| usize::try_from(i).ok()).and_then(|i| saved.def.steps.get(i));
            steps.push(StepCount { step: step.map(|s| s.id.clone()), status, customers });
        }
        Ok(JourneyView { id: saved.id, version: saved.version, paused: saved.paused, definition: saved.def, steps })
    }

    /// Every journey.
    pub async fn journeys(&self) -> Result<Vec<JourneyView>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let ids: Vec<String> = store::journeys(&mut conn).await?.into_iter().map(|s| s.id).collect();
        drop(conn);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.journey(&id).await?);
        }
        Ok(out)
    }

    /// Pauses (no entries, no steps run; timers keep) or resumes a journey.
    pub async fn pause_journey(&self, id: &str, paused: bool) -> Result<JourneyView, EngineError> {
        let mut conn = self.db().writer().acquire().await?;
        if !store::set_paused(&mut conn, id, paused, self.journey_clock().now()).await? {
            return Err(EngineError::not_found("journey", id));
        }
        drop(conn);
        self.journey(id).await
    }

    /// The send guardrails.
    pub async fn send_guardrails(&self) -> Result<Guardrails, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::guardrails(&mut conn).await?)
    }

    /// Sets the send guardrails (checked: a cap of 0 is refused naming the field).
    pub async fn set_send_guardrails(&self, g: &Guardrails) -> Result<Guardrails, EngineError> {
        g.check().map_err(EngineError::Invalid)?;
        let mut conn = self.db().writer().acquire().await?;
        store::set_guardrails(&mut conn, g).await?;
        Ok(g.clone())
    }

    /// A customer's sends and skips, newest first (of one journey when given).
    pub async fn journey_sends(&self, user: &str, journey: Option<&str>) -> Result<Vec<SendView>, EngineError> {
        let root = self.customer_root(user).await?;
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::sends_of(&mut conn, &root, journey, MAX_LIST).await?.into_iter().map(SendView::from).collect())
    }

    /// A customer's journey decisions (entries, exits, sends, skips, deferrals), oldest first.
    pub async fn journey_decisions(&self, user: &str) -> Result<Vec<DecisionView>, EngineError> {
        let root = self.customer_root(user).await?;
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::log_of(&mut conn, &root, MAX_LIST)
            .await?
            .into_iter()
            .map(|l| DecisionView {
                journey: l.journey_id,
                step: l.step_id,
                outcome: l.outcome,
                reason: l.reason,
                consent_purpose: l.purpose,
                at: format_millis(l.at),
            })
            .collect())
    }

    /// A customer's on-site messages, newest first.
    pub async fn onsite_messages(&self, user: &str, limit: i64) -> Result<Vec<OnsiteMessage>, EngineError> {
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(EngineError::Invalid(FieldError::invalid("limit", "must be between 1 and 1000")));
        }
        let root = self.customer_root(user).await?;
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::onsite_of(&mut conn, &root, limit)
            .await?
            .into_iter()
            .map(|(id, journey, title, body, at)| OnsiteMessage {
                id,
                journey,
                title,
                body,
                created_at: format_millis(at),
            })
            .collect())
    }

    /// Applies a one-click unsubscribe (RFC 8058): the token's consent purpose is withdrawn at
    /// once, so the next send is skipped. Returns the purpose withdrawn.
    pub async fn unsubscribe(&self, token: &str) -> Result<Purpose, EngineError> {
        let secret = self.unsubscribe_secret().await?;
        let (customer, purpose) = compose::read_unsubscribe_token(&secret, token)
            .ok_or_else(|| EngineError::Invalid(FieldError::invalid("token", "not a valid unsubscribe token")))?;
        self.set_consent(&customer, purpose, false, "unsubscribe").await?;
        Ok(purpose)
    }

    /// Puts an address on the suppression list (a bounce or complaint webhook).
    pub async fn suppress_address(&self, address: &str, reason: &str) -> Result<(), EngineError> {
        if address.is_empty() || address.len() > 320 {
            return Err(EngineError::Invalid(FieldError::invalid("address", "an address is 1 to 320 characters")));
        }
        let mut conn = self.db().writer().acquire().await?;
        Ok(store::suppress(&mut conn, address, reason, self.journey_clock().now()).await?)
    }

    /// One scheduler round at the journeys' clock: reads new events (entries, restarts, exits),
    /// then fires every due position, until nothing more is due now.
    pub async fn run_journeys(&self) -> Result<RoundSummary, EngineError> {
        let _round = self.journey_state().round.lock().await;
        let events = intake::catch_up(self).await?;
        watch::fire(self).await?;
        self.recheck_segments().await?;
        // Two batches in flight: one is sending while the other is read, decided and
        // rendered (each leases its own positions, so they never overlap).
        let drain = || async {
            let mut fired = 0;
            loop {
                let n = fire::fire_due(self).await?;
                fired += n;
                if n == 0 {
                    return Ok::<u64, EngineError>(fired);
                }
            }
        };
        let (a, b) = tokio::join!(drain(), drain());
        Ok(RoundSummary { events, fired: a?.saturating_add(b?) })
    }

    async fn customer_root(&self, user: &str) -> Result<String, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let (root, _) = crate::loyalty::account_of(&mut conn, user).await.map_err(|e| match e {
            EngineError::Invalid(f) => EngineError::Invalid(FieldError { field: "user".into(), ..f }),
            e => e,
        })?;
        Ok(root)
    }

    async fn unsubscribe_secret(&self) -> Result<Vec<u8>, EngineError> {
        self.inner.journeys.secret.get_or_try_init(|| self.read_unsubscribe_secret()).await.cloned()
    }

    async fn read_unsubscribe_secret(&self) -> Result<Vec<u8>, EngineError> {
        use tailor_store::Row;
        let mut conn = self.db().writer().acquire().await?;
        let fresh = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO campaign_settings (name, body) VALUES ('unsubscribe_secret', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(fresh)
        .execute(&mut *conn)
        .await?;
        let row = sqlx::query("SELECT body FROM campaign_settings WHERE name = 'unsubscribe_secret'")
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.get::<String, _>(0).into_bytes())
    }
}

fn check_id(id: &str) -> Result<(), EngineError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(EngineError::Invalid(FieldError::invalid(
            "id",
            "a journey id is 1 to 128 letters, digits, '_' or '-'",
        )));
    }
    Ok(())
}

/// The scheduler as a supervised job: reads events and fires due steps every 250 ms (a step's
/// lateness is at most about a round).
pub(crate) fn job() -> crate::supervisor::Job {
    crate::supervisor::Job {
        name: "journeys",
        first_after: Duration::from_millis(200),
        every: Duration::from_millis(250),
        wake: None,
        round: Arc::new(|engine: Engine| Box::pin(async move { engine.run_journeys().await.map(|_| ()) })),
    }
}
