//! Firing due positions, a batch at a time. Each round leases a batch of due positions to this
//! engine in one statement (on PostgreSQL other engines skip the locked rows and take others),
//! reads what the batch needs in a few queries (the customers, their recent sends and history,
//! the sends already recorded, holdouts, suppressions, activity hours, products and prices: see
//! `Known`, `Hours` and `Shelf`), decides and
//! renders every message in memory, records them all as `pending` in one transaction, hands
//! them to the channel over a few kept-open connections, marks each one `sent` and moves its
//! position on right after the server accepted it (group commits, see [`Recorder`]), and moves
//! the other positions on in one transaction.
//!
//! A send is decided in one place, [`decide`]: who (the customer's address and consent),
//! when (quiet hours, frequency caps lowered by fatigue, the best hour when the journey asks,
//! see `sendtime`) and which channel (the step's, or chosen per customer, see `channel`); a
//! held-out customer's send is recorded as `held_out` instead (see `holdout`).
//!
//! **Exactly once.** Every send has an idempotency key (journey, version, customer, entry,
//! step) recorded as `pending` before the channel is called and settled after; a settled key
//! is never sent again. A key found `pending` after a crash has an unknown outcome — the
//! server may have accepted it just before the crash — and is sent again under the same key:
//! the same e-mail Message-ID and webhook `Idempotency-Key`, which mailbox stores and providers
//! de-duplicate on. No client can close the window between the server's acceptance and our
//! record of it; this one keeps it small: at most [`UNRECORDED`] accepted sends are ever
//! waiting for their record, so a crash repeats at most that many deliveries (same Message-ID)
//! and loses none.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tailor_campaigns::batch;
use tailor_campaigns::channels::{Channel, ChannelError, Outgoing};
use tailor_campaigns::guard::{self, SendFacts, Verdict};
use tailor_campaigns::journey::{SendChannel, SendOptions, StepKind};
use tailor_campaigns::machine::{self, Decision, Facts};
use tailor_campaigns::store::{self, LogLine, NewSend, PositionRow, SendRow};
use tailor_campaigns::{Guardrails, JourneyDef};
use tailor_profiles::Contact;
use tailor_templates::Channel as RenderChannel;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::act::{self, Action};
use super::channel::{History, Population};
use super::compose;
use super::intake::new_id;
use super::points::Points;
use super::sendtime::Hours;
use super::shelf::Shelf;
use crate::{Engine, EngineError};

/// Positions leased per round.
const CLAIM: i64 = 500;
/// How long a lease holds (ms): an engine that dies frees its positions after this.
const LEASE_MS: i64 = 30_000;
/// No channel call starts later than this after the lease was taken (a call may take up to
/// the channel's own timeout, 20 s), so no send outlives its lease and another engine never
/// sends what this one is still sending.
const SEND_WINDOW: Duration = Duration::from_secs(8);
/// Channel calls in flight at once (the SMTP channel keeps as many connections open).
const SENDERS: usize = 8;
/// Sends the server accepted whose `sent` record is not committed yet, at most, across the
/// batches in flight in one engine: what a crash can repeat (under the same Message-ID).
/// Senders wait for the record beyond it.
pub(crate) const UNRECORDED: usize = 32;
/// Channel calls before a send is dead-lettered.
const MAX_ATTEMPTS: i64 = 5;
/// Customers composed at once (composition reads on demand only for replacements and
/// suggestions).
const COMPOSE: usize = 16;

/// Leases and fires the due positions; returns how many it fired.
pub(crate) async fn fire_due(engine: &Engine) -> Result<u64, EngineError> {
    let now = engine.journey_clock().now();
    let owner = owner(engine);
    let leased_at = Instant::now();
    let mut tx = engine.db().writer().begin().await?;
    let claimed =
        store::claim_due(&mut tx, engine.db().backend(), &owner, now, now.saturating_add(LEASE_MS), CLAIM).await?;
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let n = claimed.len() as u64;
    let known = Arc::new(Known::load(engine, &claimed, now).await?);
    let mut first_error = None;

    // Decide and compose every position (in memory but for replacements and suggestions).
    let mut plans: Vec<Plan> = Vec::with_capacity(claimed.len());
    let mut caps = CapCounter::default();
    let claimed = Arc::new(claimed);
    for chunk in (0..claimed.len()).collect::<Vec<_>>().chunks(COMPOSE) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (engine, known, claimed) = (engine.clone(), known.clone(), claimed.clone());
            set.spawn(async move { (i, plan(&engine, &known, &claimed[i], now).await) });
        }
        let mut done: Vec<(usize, Result<Plan, EngineError>)> = Vec::with_capacity(chunk.len());
        while let Some(joined) = set.join_next().await {
            done.push(joined.map_err(|e| EngineError::Io(format!("a journey step panicked: {e}")))?);
        }
        done.sort_by_key(|(i, _)| *i);
        for (i, r) in done {
            match r {
                Ok(plan) => plans.push(caps.hold(plan, &known)),
                Err(e) => {
                    // Its lease runs out and it is tried again; the reason names no person.
                    tracing::warn!(journey = %claimed[i].journey_id, error = %e, "a journey step failed; it will be retried");
                    first_error.get_or_insert(e);
                }
            }
        }
    }

    // Skips, deferrals, on-site messages and every pending send: one transaction.
    record_decisions(engine, &plans, now).await?;

    // Channel calls; each accepted send is marked sent right after.
    let results = send_all(engine, &owner, &plans, now, leased_at).await?;

    // Webhook steps, one by one (rare; each records itself).
    let mut webhook_outcomes = HashMap::new();
    for (i, plan) in plans.iter().enumerate() {
        if let Work::Webhook { url, step_id } = &plan.work {
            match call_webhook(engine, &plan.p, step_id, url, now).await {
                Ok(o) => {
                    webhook_outcomes.insert(i, o);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }

    // Trait updates, grants and offers, each with its record in one transaction.
    let mut acted = HashSet::new();
    for (i, plan) in plans.iter().enumerate() {
        if let Work::Act { step_id, action } = &plan.work {
            match act::perform(engine, &plan.p, step_id, action, now).await {
                Ok(()) => {
                    acted.insert(i);
                }
                Err(e) => {
                    // Its lease runs out and it is tried again under the same key.
                    tracing::warn!(journey = %plan.p.journey_id, error = %e, "a journey step failed; it will be retried");
                    first_error.get_or_insert(e);
                }
            }
        }
    }

    // Settle failures and move every position on: one transaction.
    let mut tx = engine.db().writer().begin().await?;
    let mut lines = Vec::new();
    let mut moves = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        // A customer who was waiting for an event that did not come took the other way.
        if let (Some(def), Some(at)) = (&plan.def, step_of(&plan.p)) {
            if let Some(event) = machine::waiting_for(def, Some(at)) {
                let why = format!("no {event} before the timeout: the other way");
                lines.push((new_id(), line(&plan.p, Some(&def.steps[at].id), "timed_out", why, None, now)));
            }
        }
        let outcome = match &plan.work {
            Work::Move(d) => Some(Next::Decided(d.clone())),
            Work::Done | Work::Skip(..) | Work::Withheld(..) => Some(Next::Outcome(Outcome::Done)),
            Work::Send(m) if m.channel == SendChannel::Onsite => Some(Next::Outcome(Outcome::Done)),
            Work::Defer { until, .. } => Some(Next::Outcome(Outcome::Later(*until))),
            Work::Webhook { .. } => webhook_outcomes.get(&i).map(|o| Next::Outcome(*o)),
            Work::Act { .. } => acted.contains(&i).then_some(Next::Outcome(Outcome::Done)),
            Work::Send(m) => match results.get(&i) {
                // Not called (the send window closed): the lease runs out and it is tried
                // again under the same key.
                None => None,
                // Moved on with its `sent` record (see `Recorder`).
                Some(Ok(())) => None,
                Some(Err(ChannelError::Transient(e))) if m.attempts + 1 < MAX_ATTEMPTS => {
                    let backoff = 1000_i64 << (m.attempts + 1).clamp(1, 10);
                    tracing::info!(
                        channel = m.channel.as_str(),
                        attempt = m.attempts + 1,
                        "a send failed; retrying later"
                    );
                    let why = format!("attempt {} failed ({e}); retrying", m.attempts + 1);
                    lines.push((new_id(), line(&plan.p, Some(&m.step_id), "retrying", why, Some(m.purpose), now)));
                    Some(Next::Outcome(Outcome::Later(now.saturating_add(backoff))))
                }
                Some(Err(e)) => {
                    let why = format!("dead-lettered after {} attempts: {e}", m.attempts + 1);
                    store::settle_send(&mut tx, &m.out.key, "failed", Some(&why), now).await?;
                    lines.push((new_id(), line(&plan.p, Some(&m.step_id), "failed", why, Some(m.purpose), now)));
                    Some(Next::Outcome(Outcome::Done))
                }
            },
        };
        let Some(next) = outcome else { continue };
        let decision = match next {
            Next::Decided(d) => d,
            Next::Outcome(Outcome::Done) => match (&plan.def, plan.step) {
                (Some(def), Some(step)) => machine::after(def, step, now, &facts_after(plan)),
                _ => Decision::End("completed"),
            },
            Next::Outcome(Outcome::Later(at)) => match plan.step {
                Some(step) => Decision::Wait(machine::Position { step, due_at: at }),
                None => Decision::End("completed"),
            },
        };
        moves.push(moved(&plan.p, decision, now));
    }
    let advanced = batch::advance_leased(&mut tx, &moves, &owner, now).await?;
    for m in moves.iter().filter(|m| m.status == "completed") {
        if advanced.contains(&(m.journey_id.clone(), m.customer_id.clone())) {
            let reason = m.reason.clone().unwrap_or_default();
            lines.push((new_id(), line(m, None, "completed", reason, None, now)));
        }
    }
    batch::log_many(&mut tx, &lines).await?;
    tx.commit().await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

fn owner(engine: &Engine) -> String {
    engine.journey_state().owner.get_or_init(|| uuid::Uuid::new_v4().to_string()).clone()
}

/// What became of a step.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Done (sent, skipped or dead-lettered): go on.
    Done,
    /// Try this step again at this time (quiet hours, a retry after a transient failure).
    Later(i64),
}

enum Next {
    Decided(Decision),
    Outcome(Outcome),
}

/// What a batch reads once: the journey versions, the customers, the guardrails, the sends
/// already recorded under this batch's keys, recent sends per customer, suppressions, the
/// message history of customers who may choose a channel or be fatigued, activity hours for
/// journeys that wait for the best hour, and the held-out entries.
pub(super) struct Known {
    defs: HashMap<(String, i64), Arc<JourneyDef>>,
    contacts: HashMap<String, Contact>,
    guardrails: Guardrails,
    sends: HashMap<String, SendRow>,
    /// (last day, last week) per customer.
    counts: HashMap<String, (i64, i64)>,
    suppressed: HashSet<String>,
    /// Messages and engagement per customer (only those it may matter for).
    histories: HashMap<String, History>,
    /// Everyone's messages and engagement per channel (when a step lets customers choose).
    population: Option<Population>,
    hours: Hours,
    /// Held-out entries: (journey, customer, entry).
    held_out: HashSet<(String, String, i64)>,
    /// Entries uplift targeting left out, with why.
    left_out: HashMap<(String, String, i64), String>,
    shelf: Shelf,
    /// Loyalty accounts of customers whose message shows points.
    points: Points,
}

impl Known {
    async fn load(engine: &Engine, claimed: &[PositionRow], now: i64) -> Result<Known, EngineError> {
        let mut conn = engine.db().reader().acquire().await?;
        let mut defs = HashMap::new();
        for p in claimed {
            let k = (p.journey_id.clone(), p.version);
            if let std::collections::hash_map::Entry::Vacant(slot) = defs.entry(k) {
                if let Some(def) = store::journey_version(&mut conn, &p.journey_id, p.version).await? {
                    slot.insert(Arc::new(def));
                }
            }
        }
        let customers: Vec<String> =
            claimed.iter().map(|p| p.customer_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let contacts = tailor_profiles::contacts(&mut conn, &customers).await?;
        // The keys of the sends this batch may perform: the sends the due steps lead to now.
        let mut keys = Vec::new();
        let mut addresses = Vec::new();
        let mut entries = Vec::new();
        // Entries of journey versions that target by uplift (only theirs may be left out).
        let mut targeted = Vec::new();
        // Customers with a send due, how many, and whether one may choose its channel.
        let mut sending: HashMap<&str, (usize, bool)> = HashMap::new();
        let mut best_hour: BTreeSet<&str> = BTreeSet::new();
        // Customers whose message shows loyalty points.
        let mut showing_points: BTreeSet<&str> = BTreeSet::new();
        for p in claimed {
            let (Some(def), Some(c)) = (defs.get(&(p.journey_id.clone(), p.version)), contacts.get(&p.customer_id))
            else {
                continue;
            };
            if let Decision::Act(i) = machine::due(def, step_of(p), now, &facts_of(p, c)) {
                keys.push(machine::send_key(&p.journey_id, p.version, &p.customer_id, p.entry, &def.steps[i].id));
                if let StepKind::GrantPoints { .. } | StepKind::IssueOffer { .. } = &def.steps[i].kind {
                    entries.push((p.journey_id.clone(), p.customer_id.clone(), p.entry));
                }
                if let StepKind::Send { channel, options, template } = &def.steps[i].kind {
                    let templates = engine.templates();
                    if super::points::VARIABLES.iter().any(|v| templates.shows(template, v)) {
                        showing_points.insert(c.id.as_str());
                    }
                    for ch in std::iter::once(channel).chain(&options.channels) {
                        addresses.extend(compose::address(c, *ch));
                    }
                    let due = sending.entry(c.id.as_str()).or_default();
                    due.0 += 1;
                    due.1 |= !options.channels.is_empty();
                    if def.best_hour_within_hours.is_some() {
                        best_hour.insert(c.id.as_str());
                    }
                    entries.push((p.journey_id.clone(), p.customer_id.clone(), p.entry));
                    if def.targeting.is_some() {
                        targeted.push((p.journey_id.clone(), p.customer_id.clone(), p.entry));
                    }
                }
            }
        }
        let sends = batch::sends_by_keys(&mut conn, &keys).await?;
        let counts = batch::sent_counts(
            &mut conn,
            &customers,
            now.saturating_sub(86_400_000),
            now.saturating_sub(7 * 86_400_000),
        )
        .await?;
        let suppressed = batch::suppressed_among(&mut conn, &addresses).await?;
        let guardrails = store::guardrails(&mut conn).await?;
        let held_out = batch::held_out_among(&mut conn, &entries).await?;
        let left_out = batch::targeting_among(&mut conn, &targeted)
            .await?
            .into_iter()
            .filter_map(|(k, json)| super::targeting::left_out_reason(&json).map(|r| (k, r)))
            .collect();
        drop(conn);
        // History matters where a step lets the customer's history choose the channel, and
        // where fatigue may lower a cap: something sent this week, or more than one send now.
        let choosing = sending.values().any(|(_, choose)| *choose);
        let with_history: Vec<&Contact> = sending
            .iter()
            .filter(|(id, (n, choose))| *choose || *n > 1 || counts.get(**id).is_some_and(|(_, week)| *week > 0))
            .filter_map(|(id, _)| contacts.get(*id))
            .collect();
        let histories = super::channel::histories(engine, &with_history, now).await?;
        let population = if choosing { Some(super::channel::population(engine, now).await?) } else { None };
        let timed: Vec<&Contact> = best_hour.iter().filter_map(|id| contacts.get(*id)).collect();
        let hours = Hours::load(engine, &timed, &guardrails, now).await?;
        let with_carts: Vec<&Contact> = contacts.values().collect();
        let shelf = Shelf::load(engine, &with_carts).await?;
        let with_points: Vec<&Contact> = showing_points.iter().filter_map(|id| contacts.get(*id)).collect();
        let points = Points::load(engine, &with_points, now).await?;
        Ok(Known {
            defs,
            contacts,
            guardrails,
            sends,
            counts,
            suppressed,
            histories,
            population,
            hours,
            held_out,
            left_out,
            shelf,
            points,
        })
    }
}

fn step_of(p: &PositionRow) -> Option<usize> {
    p.step.and_then(|s| usize::try_from(s).ok())
}

fn facts_of(p: &PositionRow, c: &Contact) -> Facts {
    Facts {
        cart_lines: c.cart.len(),
        traits: c.traits.clone(),
        bucket: machine::bucket(&p.journey_id, &p.customer_id, p.entry),
    }
}

/// One position's plan for this round.
struct Plan {
    p: PositionRow,
    def: Option<Arc<JourneyDef>>,
    facts: Facts,
    /// The step acted on.
    step: Option<usize>,
    work: Work,
}

/// What a position does this round.
enum Work {
    /// Nothing to perform: it moves to this decision.
    Move(Decision),
    /// The step was settled before (a crash after the record): it goes on.
    Done,
    /// The send is skipped, with the reason (recorded; the step goes on).
    Skip(Box<Message>, String),
    /// Not sent, recorded with its status and reason: `held_out` (the customer is in the
    /// journey's holdout) or `not_targeted` (uplift targeting left them out); the step goes on.
    Withheld(Box<Message>, &'static str, String),
    /// Not now (quiet hours): the step waits until then; the reason.
    Defer { until: i64, why: String, purpose: &'static str, step_id: String },
    /// A message for a channel.
    Send(Box<Message>),
    /// A webhook step.
    Webhook { url: String, step_id: String },
    /// A trait update, a grant or an offer (see `act`).
    Act { step_id: String, action: Action },
}

/// A send's message and what its records need.
struct Message {
    out: Outgoing,
    channel: SendChannel,
    step_id: String,
    template: String,
    purpose: &'static str,
    /// Channel calls made before this one.
    attempts: i64,
    /// Whether it is recorded `pending` already (a crash left it so).
    pending: bool,
    /// What it says (the send's reason).
    why: String,
    /// The customer's weekly cap (lowered by fatigue), and why when it is lowered.
    week_cap: u32,
    fatigue: Option<String>,
}

impl Message {
    fn new_send<'a>(&'a self, p: &'a PositionRow) -> NewSend<'a> {
        NewSend {
            key: &self.out.key,
            journey_id: &p.journey_id,
            version: p.version,
            customer_id: &p.customer_id,
            entry: p.entry,
            step_id: &self.step_id,
            channel: self.channel.as_str(),
            template: &self.template,
            purpose: self.purpose,
        }
    }
}

/// Holds frequency caps inside a batch too: a customer due in two journeys at once counts
/// the first send against the second.
#[derive(Default)]
struct CapCounter {
    planned: HashMap<String, i64>,
}

impl CapCounter {
    fn hold(&mut self, plan: Plan, known: &Known) -> Plan {
        let Plan { p, def, facts, step, work } = plan;
        let work = match work {
            Work::Send(m) => {
                let earlier = self.planned.entry(p.customer_id.clone()).or_default();
                let (day, week) = known.counts.get(&p.customer_id).copied().unwrap_or((0, 0));
                let g = &known.guardrails;
                if *earlier > 0 && day.saturating_add(*earlier) >= i64::from(g.per_day) {
                    let why = format!("frequency cap: {} messages in the last day", day.saturating_add(*earlier));
                    Work::Skip(m, why)
                } else if *earlier > 0 && week.saturating_add(*earlier) >= i64::from(m.week_cap) {
                    let mut why = format!("frequency cap: {} messages in the last week", week.saturating_add(*earlier));
                    if let Some(f) = &m.fatigue {
                        why = format!("{why} ({f})");
                    }
                    Work::Skip(m, why)
                } else {
                    // A pending one (left by a crash) is in the stored counts already.
                    if !m.pending {
                        *earlier += 1;
                    }
                    Work::Send(m)
                }
            }
            w => w,
        };
        Plan { p, def, facts, step, work }
    }
}

/// Works out what one due position does now.
async fn plan(engine: &Engine, known: &Known, p: &PositionRow, now: i64) -> Result<Plan, EngineError> {
    let def = known.defs.get(&(p.journey_id.clone(), p.version)).cloned();
    let bare = |work| Plan { p: p.clone(), def: def.clone(), facts: Facts::default(), step: None, work };
    let Some(def) = def.clone() else {
        return Ok(bare(Work::Move(Decision::End("its version is gone"))));
    };
    let Some(contact) = known.contacts.get(&p.customer_id) else {
        return Ok(bare(Work::Move(Decision::End("the customer was erased"))));
    };
    let facts = facts_of(p, contact);
    let decision = machine::due(&def, step_of(p), now, &facts);
    let Decision::Act(i) = decision else {
        return Ok(Plan { p: p.clone(), def: Some(def), facts, step: None, work: Work::Move(decision) });
    };
    let step = &def.steps[i];
    let work = match &step.kind {
        StepKind::Send { channel, template, options } => {
            let send = Send { def: &def, p, step_id: &step.id, channel: *channel, template, options };
            decide(engine, known, &send, contact, now).await?
        }
        StepKind::Webhook { url } => Work::Webhook { url: url.clone(), step_id: step.id.clone() },
        StepKind::UpdateTrait { name, value } => {
            act_or_done(known, p, &step.id, Action::Trait { name: name.clone(), value: value.clone() })
        }
        StepKind::GrantPoints { points, reason } => {
            let held_out = known
                .held_out
                .contains(&(p.journey_id.clone(), p.customer_id.clone(), p.entry))
                .then(|| super::holdout::reason(def.holdout_percent()));
            let reason = reason.clone().unwrap_or_else(|| format!("journey {}", def.name));
            act_or_done(known, p, &step.id, Action::Points { points: *points, reason, held_out })
        }
        StepKind::IssueOffer { percent_off, valid_days } => {
            let held_out = known
                .held_out
                .contains(&(p.journey_id.clone(), p.customer_id.clone(), p.entry))
                .then(|| super::holdout::reason(def.holdout_percent()));
            let action = Action::Offer {
                percent_off: *percent_off,
                valid_days: *valid_days,
                journey: p.journey_id.clone(),
                held_out,
            };
            act_or_done(known, p, &step.id, action)
        }
        // resolve() acts only on sends, webhooks, trait updates, grants and offers.
        _ => Work::Done,
    };
    Ok(Plan { p: p.clone(), def: Some(def.clone()), facts, step: Some(i), work })
}

/// What the steps after a plan's step see: a trait it set is seen at once (a branch right
/// after an update tests the new value).
fn facts_after(plan: &Plan) -> std::borrow::Cow<'_, Facts> {
    match &plan.work {
        Work::Act { action: Action::Trait { name, value }, .. } => {
            let mut facts = plan.facts.clone();
            if !facts.traits.is_object() {
                facts.traits = serde_json::json!({});
            }
            facts.traits[name.as_str()] = value.clone();
            std::borrow::Cow::Owned(facts)
        }
        _ => std::borrow::Cow::Borrowed(&plan.facts),
    }
}

/// The action of a step, or nothing when its key is settled already.
fn act_or_done(known: &Known, p: &PositionRow, step_id: &str, action: Action) -> Work {
    let key = machine::send_key(&p.journey_id, p.version, &p.customer_id, p.entry, step_id);
    if known.sends.contains_key(&key) {
        return Work::Done;
    }
    Work::Act { step_id: step_id.to_string(), action }
}

/// Where a position goes after `next` (written if this engine still holds its lease).
fn moved(p: &PositionRow, next: Decision, now: i64) -> PositionRow {
    match next {
        Decision::Wait(pos) => PositionRow { step: Some(pos.step as i64), due_at: pos.due_at, ..p.clone() },
        Decision::Act(i) => PositionRow { step: Some(i as i64), due_at: now, ..p.clone() },
        Decision::End(reason) => {
            PositionRow { step: None, status: "completed".into(), reason: Some(reason.to_string()), ..p.clone() }
        }
    }
}

fn line(p: &PositionRow, step: Option<&str>, outcome: &str, reason: String, purpose: Option<&str>, at: i64) -> LogLine {
    LogLine {
        journey_id: p.journey_id.clone(),
        customer_id: p.customer_id.clone(),
        step_id: step.map(str::to_string),
        outcome: outcome.to_string(),
        reason,
        purpose: purpose.map(str::to_string),
        at,
    }
}

/// A send step about to be decided.
struct Send<'a> {
    def: &'a JourneyDef,
    p: &'a PositionRow,
    step_id: &'a str,
    /// The step's channel (the customer's may be chosen among the step's `channels`).
    channel: SendChannel,
    template: &'a str,
    options: &'a SendOptions,
}

/// The one place a send is decided: the channel (the step's, or chosen from the customer's
/// consents, addresses and history), the customer's address and consent, the suppression list,
/// frequency caps (lowered by fatigue) and quiet hours in their zone, the best hour when the
/// journey waits for it, the holdout, then the message composed from today's cart, prices and
/// stock and rendered, to be handed to the channel under its idempotency key. What it reads
/// comes from the batch (`known`); it writes nothing itself.
async fn decide(engine: &Engine, known: &Known, s: &Send<'_>, c: &Contact, now: i64) -> Result<Work, EngineError> {
    let key = machine::send_key(&s.p.journey_id, s.p.version, &s.p.customer_id, s.p.entry, s.step_id);
    let existing = known.sends.get(&key);
    if existing.is_some_and(|e| e.status != "pending") {
        return Ok(Work::Done);
    }
    let (channel, why_channel) = super::channel::choose(
        &key,
        s.channel,
        s.options,
        existing.map(|e| e.channel.as_str()),
        c,
        known.histories.get(&c.id),
        known.population.as_ref(),
    );
    let purpose = channel.purpose().as_str();
    let attempts = existing.map_or(0, |e| e.attempts);
    let pending = existing.is_some();
    let (day, week) = known.counts.get(&s.p.customer_id).copied().unwrap_or((0, 0));
    // A pending send (a crash between recording and settling) counts itself: not against its cap.
    let own = i64::from(pending);
    // Fatigue lowers this customer's weekly cap (ignored messages, recent unsubscribes); its
    // history is read when something was sent this week or more is due now (a cap is at least
    // one, so with nothing sent there is nothing to lower).
    let (week_cap, fatigue) = match known.histories.get(&c.id) {
        Some(h) => super::channel::weekly_cap(h, known.guardrails.per_week),
        None => (known.guardrails.per_week, None),
    };
    let message = |out: Outgoing, why: String| {
        Box::new(Message {
            out,
            channel,
            step_id: s.step_id.to_string(),
            template: s.template.to_string(),
            purpose,
            attempts,
            pending,
            why,
            week_cap,
            fatigue: fatigue.clone(),
        })
    };
    let unsent = || Outgoing {
        key: key.clone(),
        to: String::new(),
        subject: None,
        html: None,
        text: String::new(),
        unsubscribe_url: None,
    };
    let skip = |reason: String| Work::Skip(message(unsent(), String::new()), reason);
    let address = compose::address(c, channel);
    let suppressed = address.as_ref().is_some_and(|a| known.suppressed.contains(&a.to_ascii_lowercase()));
    let zone = c.traits.get("timezone").or_else(|| c.traits.get("timeZone")).and_then(|v| v.as_str());
    let facts = SendFacts {
        consent: c.grants(channel.purpose()),
        purpose,
        suppressed,
        has_address: address.is_some() || channel == SendChannel::Onsite,
        sent_day: u32::try_from((day - own).max(0)).unwrap_or(u32::MAX),
        sent_week: u32::try_from((week - own).max(0)).unwrap_or(u32::MAX),
        time_zone: zone,
    };
    let g = Guardrails { per_week: week_cap, ..known.guardrails.clone() };
    match guard::judge(&g, &facts, now) {
        Verdict::Send => {}
        Verdict::Skip(reason) => {
            let reason = match &fatigue {
                Some(f) if reason.contains("last week") => format!("{reason} ({f})"),
                _ => reason,
            };
            return Ok(skip(reason));
        }
        Verdict::Defer(until, reason) => {
            let why = format!("{reason}: waits until {}", tailor_core::time::format_millis(until));
            return Ok(Work::Defer { until, why, purpose, step_id: s.step_id.to_string() });
        }
    }
    if let Some((until, why)) = super::sendtime::wait_for_best_hour(s.def, s.p, s.step_id, c, &known.hours, &g, now) {
        let why = format!("{why}: waits until {}", tailor_core::time::format_millis(until));
        return Ok(Work::Defer { until, why, purpose, step_id: s.step_id.to_string() });
    }
    if known.held_out.contains(&(s.p.journey_id.clone(), s.p.customer_id.clone(), s.p.entry)) {
        let reason = super::holdout::reason(s.def.holdout_percent());
        return Ok(Work::Withheld(message(unsent(), String::new()), "held_out", reason));
    }
    if let Some(reason) = known.left_out.get(&(s.p.journey_id.clone(), s.p.customer_id.clone(), s.p.entry)) {
        return Ok(Work::Withheld(message(unsent(), String::new()), "not_targeted", reason.clone()));
    }
    let mut content = compose::content(engine, &known.shelf, c, s.options).await?;
    if content.cart_empty && engine.templates().shows(s.template, "cart") {
        return Ok(skip("the cart is empty now".into()));
    }
    let unsubscribe = engine.unsubscribe_url(&s.p.customer_id, channel.purpose()).await?;
    let loyalty = known.points.show(&c.id, &content.earning, now, &mut content.explanation);
    // A message about viewed items, expiring points or a tier at risk has nothing to say once
    // that passed.
    let templates = engine.templates();
    if templates.shows(s.template, "due") {
        content.due = compose::due_again(engine, &known.shelf, c, now, &mut content.explanation).await?;
        if content.due.is_empty() {
            return Ok(skip("nothing the customer buys again and again is due and in stock now".into()));
        }
    }
    if templates.shows(s.template, "viewed") {
        content.viewed = compose::viewed(engine, &known.shelf, c, &mut content.explanation).await?;
        if content.viewed.is_empty() {
            return Ok(skip("nothing the customer viewed is in stock and out of their cart now".into()));
        }
    }
    for (name, kind, why) in [
        ("backInStock", tailor_campaigns::watches::BACK_IN_STOCK, "nothing the customer wanted is back in stock now"),
        ("priceDrop", tailor_campaigns::watches::PRICE_DROP, "nothing the customer viewed is cheaper now"),
    ] {
        if templates.shows(s.template, name) {
            let items = super::watch::shown(engine, &known.shelf, c, kind, now, &mut content.explanation).await?;
            if items.is_empty() {
                return Ok(skip(why.into()));
            }
            if kind == tailor_campaigns::watches::BACK_IN_STOCK {
                content.back_in_stock = items;
            } else {
                content.price_drop = items;
            }
        }
    }
    // Suggestions are other items than those the message shows already.
    let listed: Vec<Value> = content
        .viewed
        .iter()
        .chain(&content.due)
        .chain(&content.back_in_stock)
        .chain(&content.price_drop)
        .map(|i| i["sku"].clone())
        .collect();
    content.similar.retain(|i| !listed.contains(&i["sku"]));
    if loyalty.expiring.is_none() && templates.shows(s.template, "expiring") {
        return Ok(skip("no points expire within the warning window now".into()));
    }
    if loyalty.tier_risk.is_none() && templates.shows(s.template, "tierRisk") {
        return Ok(skip("no tier is at risk now".into()));
    }
    let ctx = compose::context(engine, c, &content, &loyalty, &unsubscribe);
    let render_channel = match channel {
        SendChannel::Email => RenderChannel::Email,
        SendChannel::Sms => RenderChannel::Sms,
        SendChannel::Push => RenderChannel::Push,
        SendChannel::Onsite => RenderChannel::Onsite,
    };
    let rendered = match engine.templates().render(s.template, render_channel, &ctx) {
        Ok(r) => r,
        Err(e) => return Ok(skip(format!("the template failed: {e}"))),
    };
    let out = Outgoing {
        key: key.clone(),
        to: address.unwrap_or_else(|| s.p.customer_id.clone()),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        unsubscribe_url: (channel == SendChannel::Email).then_some(unsubscribe),
    };
    let why = content.explanation.iter().chain(&why_channel).cloned().collect::<Vec<_>>().join("; ");
    Ok(Work::Send(message(out, why)))
}

/// Writes what the batch decided before any channel is called, in one transaction: skips
/// (recorded, or a pending one settled), deferrals, on-site messages (stored and sent in the
/// same commit: exactly once by construction), and every other send as `pending` with one
/// more attempt counted.
async fn record_decisions(engine: &Engine, plans: &[Plan], now: i64) -> Result<(), EngineError> {
    let mut tx = engine.db().writer().begin().await?;
    let mut lines = Vec::new();
    let mut pending = Vec::new();
    for plan in plans {
        let p = &plan.p;
        match &plan.work {
            Work::Skip(m, reason) => {
                if m.pending {
                    store::settle_send(&mut tx, &m.out.key, "skipped", Some(reason), now).await?;
                } else {
                    store::record_send(&mut tx, &m.new_send(p), "skipped", Some(reason), now).await?;
                }
                lines.push((new_id(), line(p, Some(&m.step_id), "skipped", reason.clone(), Some(m.purpose), now)));
            }
            Work::Withheld(m, status, reason) => {
                if m.pending {
                    store::settle_send(&mut tx, &m.out.key, status, Some(reason), now).await?;
                } else {
                    store::record_send(&mut tx, &m.new_send(p), status, Some(reason), now).await?;
                }
                lines.push((new_id(), line(p, Some(&m.step_id), status, reason.clone(), Some(m.purpose), now)));
            }
            Work::Defer { why, purpose, step_id, .. } => {
                lines.push((new_id(), line(p, Some(step_id), "deferred", why.clone(), Some(purpose), now)));
            }
            Work::Send(m) if m.channel == SendChannel::Onsite => {
                store::put_onsite(
                    &mut tx,
                    &m.out.key,
                    &p.customer_id,
                    &p.journey_id,
                    m.out.subject.as_deref(),
                    &m.out.text,
                    now,
                )
                .await?;
                if !store::record_send(&mut tx, &m.new_send(p), "sent", Some(&m.why), now).await? {
                    store::settle_send(&mut tx, &m.out.key, "sent", Some(&m.why), now).await?;
                }
                lines.push((new_id(), line(p, Some(&m.step_id), "sent", m.why.clone(), Some(m.purpose), now)));
            }
            Work::Send(m) => pending.push((m.new_send(p), m.why.clone())),
            _ => {}
        }
    }
    batch::record_pending(&mut tx, &pending, now).await?;
    batch::log_many(&mut tx, &lines).await?;
    tx.commit().await?;
    Ok(())
}

/// Hands every message of the batch to its channel, [`SENDERS`] at a time; each accepted one
/// is marked sent by the [`Recorder`] right after. Returns each called send's result by plan
/// index (a send not called because the send window closed is absent).
async fn send_all(
    engine: &Engine,
    owner: &str,
    plans: &[Plan],
    now: i64,
    leased_at: Instant,
) -> Result<HashMap<usize, Result<(), ChannelError>>, EngineError> {
    let channels = engine.channels();
    let recorder = Recorder::start(engine.clone(), owner.to_string(), now);
    let slots = Arc::new(Semaphore::new(SENDERS));
    let mut set = tokio::task::JoinSet::new();
    for (i, plan) in plans.iter().enumerate() {
        let Work::Send(m) = &plan.work else { continue };
        let target: Option<Arc<dyn Channel>> = match m.channel {
            SendChannel::Onsite => continue,
            SendChannel::Email => channels.email.clone(),
            SendChannel::Sms => channels.sms.clone(),
            SendChannel::Push => channels.push.clone(),
        };
        let out = m.out.clone();
        let sent = line(&plan.p, Some(&m.step_id), "sent", m.why.clone(), Some(m.purpose), now);
        let next = match (&plan.def, plan.step) {
            (Some(def), Some(step)) => machine::after(def, step, now, &plan.facts),
            _ => Decision::End("completed"),
        };
        let next = moved(&plan.p, next, now);
        let channel_name = m.channel.as_str();
        let (slots, unrecorded, tx) = (slots.clone(), recorder.permits.clone(), recorder.tx.clone());
        let failed = recorder.failed.clone();
        set.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else { return (i, None) };
            // Waits while too many accepted sends are unrecorded (the crash window).
            let Ok(permit) = unrecorded.acquire_owned().await else { return (i, None) };
            if leased_at.elapsed() > SEND_WINDOW || failed.load(std::sync::atomic::Ordering::SeqCst) {
                return (i, None);
            }
            let result = match target {
                Some(c) => c.send(&out).await,
                None => Err(ChannelError::Permanent(format!("no {channel_name} channel is configured"))),
            };
            if result.is_ok() {
                metrics::counter!("tailor_journey_sends_total", "channel" => channel_name).increment(1);
                let _ = tx.send(Accepted { key: out.key.clone(), line: sent, next, _permit: permit });
            }
            (i, Some(result))
        });
    }
    let mut results = HashMap::new();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.map_err(|e| EngineError::Io(format!("a send panicked: {e}")))?;
        if let Some(r) = r {
            results.insert(i, r);
        }
    }
    recorder.finish().await?;
    Ok(results)
}

/// A send the server accepted, waiting for its `sent` record and its position's move to the
/// step after; the permit is released once they are committed.
struct Accepted {
    key: String,
    line: LogLine,
    next: PositionRow,
    _permit: OwnedSemaphorePermit,
}

/// Marks accepted sends `sent` as they come and moves their positions on in the same commit
/// (so a send seen `sent` has gone on to its next step), each group in one commit (a commit
/// takes as long as one fsync; the sends accepted meanwhile form the next group).
struct Recorder {
    tx: mpsc::UnboundedSender<Accepted>,
    /// The engine's unrecorded sends (shared by the batches in flight).
    permits: Arc<Semaphore>,
    /// Set when a record failed: no more sends start in this batch.
    failed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Result<(), EngineError>>,
}

impl Recorder {
    fn start(engine: Engine, owner: String, now: i64) -> Recorder {
        let (tx, mut rx) = mpsc::unbounded_channel::<Accepted>();
        let permits = engine.journey_state().unrecorded.get_or_init(|| Arc::new(Semaphore::new(UNRECORDED))).clone();
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let closing = failed.clone();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while let Ok(more) = rx.try_recv() {
                    group.push(more);
                }
                let keys: Vec<&str> = group.iter().map(|a| a.key.as_str()).collect();
                let mut lines: Vec<(String, LogLine)> = group.iter().map(|a| (new_id(), a.line.clone())).collect();
                let moves: Vec<PositionRow> = group.iter().map(|a| a.next.clone()).collect();
                let written = async {
                    let mut t = engine.db().writer().begin().await?;
                    let advanced = batch::advance_leased(&mut t, &moves, &owner, now).await?;
                    for m in moves.iter().filter(|m| m.status == "completed") {
                        if advanced.contains(&(m.journey_id.clone(), m.customer_id.clone())) {
                            let reason = m.reason.clone().unwrap_or_default();
                            lines.push((new_id(), line(m, None, "completed", reason, None, now)));
                        }
                    }
                    batch::mark_sent(&mut t, &keys, &lines, now).await?;
                    t.commit().await?;
                    Ok::<_, EngineError>(())
                }
                .await;
                if let Err(e) = written {
                    // No more sends start: what is unrecorded stays pending and is sent again
                    // under the same key when its lease runs out.
                    closing.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            }
            Ok(())
        });
        Recorder { tx, permits, failed, task }
    }

    async fn finish(self) -> Result<(), EngineError> {
        drop(self.tx);
        self.task.await.map_err(|e| EngineError::Io(format!("the send recorder panicked: {e}")))?
    }
}

async fn call_webhook(
    engine: &Engine,
    p: &PositionRow,
    step_id: &str,
    url: &str,
    now: i64,
) -> Result<Outcome, EngineError> {
    let key = machine::send_key(&p.journey_id, p.version, &p.customer_id, p.entry, step_id);
    let new = NewSend {
        key: &key,
        journey_id: &p.journey_id,
        version: p.version,
        customer_id: &p.customer_id,
        entry: p.entry,
        step_id,
        channel: "webhook",
        template: "",
        purpose: "personalization",
    };
    let mut conn = engine.db().writer().acquire().await?;
    let existing = store::send(&mut conn, &key).await?;
    if existing.as_ref().is_some_and(|e| e.status != "pending") {
        return Ok(Outcome::Done);
    }
    let attempts = existing.as_ref().map_or(0, |e| e.attempts);
    if existing.is_none() {
        store::record_send(&mut conn, &new, "pending", None, now).await?;
    }
    store::count_attempt(&mut conn, &key, now).await?;
    drop(conn);
    let secret = engine.unsubscribe_secret().await?;
    let hook = tailor_campaigns::channels::Webhook::new("journey", url, &secret, std::time::Duration::from_secs(10))
        .map_err(EngineError::Io)?;
    let out = Outgoing {
        key: key.clone(),
        to: p.customer_id.clone(),
        subject: Some(p.journey_id.clone()),
        html: None,
        text: step_id.to_string(),
        unsubscribe_url: None,
    };
    let result = tailor_campaigns::channels::Channel::send(&hook, &out).await;
    let mut conn = engine.db().writer().acquire().await?;
    match result {
        Ok(()) => {
            store::settle_send(&mut conn, &key, "sent", None, now).await?;
            Ok(Outcome::Done)
        }
        Err(ChannelError::Transient(e)) if attempts + 1 < MAX_ATTEMPTS => {
            let why = format!("attempt {} failed ({e}); retrying", attempts + 1);
            store::log(&mut conn, &line(p, Some(step_id), "retrying", why, None, now), &new_id()).await?;
            Ok(Outcome::Later(now.saturating_add(1000_i64 << (attempts + 1).clamp(1, 10))))
        }
        Err(e) => {
            let why = format!("dead-lettered after {} attempts: {e}", attempts + 1);
            store::settle_send(&mut conn, &key, "failed", Some(&why), now).await?;
            store::log(&mut conn, &line(p, Some(step_id), "failed", why, None, now), &new_id()).await?;
            Ok(Outcome::Done)
        }
    }
}
