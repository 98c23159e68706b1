//! Firing due positions. Each round leases a batch of due positions to this engine (on
//! PostgreSQL other engines skip the locked rows and take others), runs each one's step and
//! moves it on under its lease.
//!
//! A send is decided in one place, [`decide`]: who (the customer's address and consent),
//! when (quiet hours, frequency caps lowered by fatigue, the best hour when the journey asks,
//! see `sendtime`) and which channel (the step's, or chosen per customer, see `channel`); a
//! held-out customer's send is recorded as `held_out` instead (see `holdout`). Every send has an idempotency key (journey, version,
//! customer, entry, step) recorded as `pending` before the channel is called and settled after;
//! a pending send found after a crash is sent again under the same key (the e-mail's Message-ID
//! and the webhook's Idempotency-Key), so the provider can drop the repeat.

use tailor_campaigns::channels::{ChannelError, Outgoing};
use tailor_campaigns::guard::{self, SendFacts, Verdict};
use tailor_campaigns::journey::{SendChannel, SendOptions, StepKind};
use tailor_campaigns::machine::{self, Decision, Facts};
use tailor_campaigns::store::{self, LogLine, NewSend, PositionRow};
use tailor_campaigns::JourneyDef;
use tailor_templates::Channel as RenderChannel;

use super::compose;
use super::intake::new_id;
use crate::{Engine, EngineError, ProfileView};

/// Positions leased per round.
const CLAIM: i64 = 200;
/// How long a lease holds (ms): an engine that dies frees its positions after this.
const LEASE_MS: i64 = 60_000;
/// Customers fired at once.
const CONCURRENT: usize = 16;
/// Channel calls before a send is dead-lettered.
const MAX_ATTEMPTS: i64 = 5;

/// Leases and fires the due positions; returns how many it fired.
pub(crate) async fn fire_due(engine: &Engine) -> Result<u64, EngineError> {
    let now = engine.journey_clock().now();
    let owner = owner(engine);
    let mut tx = engine.db().writer().begin().await?;
    let claimed =
        store::claim_due(&mut tx, engine.db().backend(), &owner, now, now.saturating_add(LEASE_MS), CLAIM).await?;
    tx.commit().await?;
    let n = claimed.len() as u64;
    let mut first_error = None;
    // Customers are independent: a few at a time, so one slow channel call or query does not
    // hold up the rest of the batch.
    for chunk in claimed.chunks(CONCURRENT) {
        let mut set = tokio::task::JoinSet::new();
        for p in chunk.iter().cloned() {
            let (engine, owner) = (engine.clone(), owner.clone());
            set.spawn(async move {
                let r = fire_one(&engine, &owner, &p, now).await;
                (p.journey_id, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            // One failing customer never holds up the others: its lease runs out and it is
            // tried again; the reason names no person.
            let (journey, r) = joined.map_err(|e| EngineError::Io(format!("a journey step panicked: {e}")))?;
            if let Err(e) = r {
                tracing::warn!(journey = %journey, error = %e, "a journey step failed; it will be retried");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

fn owner(engine: &Engine) -> String {
    engine.journey_state().owner.get_or_init(|| uuid::Uuid::new_v4().to_string()).clone()
}

/// What became of a step.
enum Outcome {
    /// Done (sent, skipped or dead-lettered): go on.
    Done,
    /// Try this step again at this time (quiet hours, a retry after a transient failure).
    Later(i64),
}

async fn fire_one(engine: &Engine, owner: &str, p: &PositionRow, now: i64) -> Result<(), EngineError> {
    let def = {
        let mut conn = engine.db().reader().acquire().await?;
        store::journey_version(&mut conn, &p.journey_id, p.version).await?
    };
    let Some(def) = def else {
        return finish(engine, owner, p, Decision::End("its version is gone"), None, now).await;
    };
    let profile = match engine.profile(&p.customer_id).await {
        Ok(v) => Some(v),
        Err(EngineError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let Some(profile) = profile else {
        return finish(engine, owner, p, Decision::End("the customer was erased"), None, now).await;
    };
    let facts = Facts {
        cart_lines: profile.cart.len(),
        traits: profile.traits.clone(),
        bucket: machine::bucket(&p.journey_id, &p.customer_id, p.entry),
    };
    let from = p.step.and_then(|s| usize::try_from(s).ok());
    let decision = machine::resolve(&def, from, now, &facts);
    let Decision::Act(i) = decision else {
        return finish(engine, owner, p, decision, None, now).await;
    };
    let step = &def.steps[i];
    let outcome = match &step.kind {
        StepKind::Send { channel, template, options } => {
            let key = machine::send_key(&p.journey_id, p.version, &p.customer_id, p.entry, &step.id);
            let (channel, why) = super::channel::choose(engine, &key, *channel, options, p, &profile, now).await?;
            let send = Send { def: &def, p, step_id: &step.id, channel, why_channel: why, template, options };
            decide(engine, &send, &profile, now).await?
        }
        StepKind::Webhook { url } => call_webhook(engine, p, &step.id, url, &profile, now).await?,
        // resolve() acts only on sends and webhooks.
        _ => Outcome::Done,
    };
    let next = match outcome {
        Outcome::Done => machine::after(&def, i, now, &facts),
        Outcome::Later(at) => Decision::Wait(machine::Position { step: i, due_at: at }),
    };
    finish(engine, owner, p, next, Some(&step.id), now).await
}

async fn finish(
    engine: &Engine,
    owner: &str,
    p: &PositionRow,
    next: Decision,
    _step: Option<&str>,
    now: i64,
) -> Result<(), EngineError> {
    let moved = match next {
        Decision::Wait(pos) => PositionRow { step: Some(pos.step as i64), due_at: pos.due_at, ..p.clone() },
        Decision::Act(i) => PositionRow { step: Some(i as i64), due_at: now, ..p.clone() },
        Decision::End(reason) => {
            PositionRow { step: None, status: "completed".into(), reason: Some(reason.to_string()), ..p.clone() }
        }
    };
    let mut tx = engine.db().writer().begin().await?;
    if store::advance_leased(&mut tx, &moved, owner, now).await? && moved.status == "completed" {
        store::log(
            &mut tx,
            &line(p, None, "completed", moved.reason.clone().unwrap_or_default(), None, now),
            &new_id(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
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
    channel: SendChannel,
    /// Why this channel, when the step let the customer's history choose it.
    why_channel: Option<String>,
    template: &'a str,
    options: &'a SendOptions,
}

/// The one place a send is decided: the customer's address and consent, the suppression list,
/// frequency caps and quiet hours in their zone, then the message composed from today's cart,
/// prices and stock, handed to the channel under its idempotency key.
async fn decide(engine: &Engine, s: &Send<'_>, profile: &ProfileView, now: i64) -> Result<Outcome, EngineError> {
    let key = machine::send_key(&s.p.journey_id, s.p.version, &s.p.customer_id, s.p.entry, s.step_id);
    let purpose = s.channel.purpose().as_str();
    let new = NewSend {
        key: &key,
        journey_id: &s.p.journey_id,
        version: s.p.version,
        customer_id: &s.p.customer_id,
        entry: s.p.entry,
        step_id: s.step_id,
        channel: s.channel.as_str(),
        template: s.template,
        purpose,
    };
    let mut conn = engine.db().writer().acquire().await?;
    let existing = store::send(&mut conn, &key).await?;
    if existing.as_ref().is_some_and(|e| e.status != "pending") {
        return Ok(Outcome::Done);
    }
    let attempts = existing.as_ref().map_or(0, |e| e.attempts);
    let members = tailor_profiles::group_of(&mut conn, &s.p.customer_id).await?;
    let consent = tailor_profiles::has_consent(&mut conn, &members, s.channel.purpose()).await?;
    let address = compose::address(profile, s.channel);
    let suppressed = match &address {
        Some(a) => store::is_suppressed(&mut conn, a).await?,
        None => false,
    };
    let day = store::sent_since(&mut conn, &s.p.customer_id, now.saturating_sub(86_400_000)).await?;
    let week = store::sent_since(&mut conn, &s.p.customer_id, now.saturating_sub(7 * 86_400_000)).await?;
    // A pending send (a crash between recording and settling) counts itself: not against its cap.
    let own = i64::from(existing.is_some());
    let g = store::guardrails(&mut conn).await?;
    drop(conn);
    // Fatigue lowers this customer's weekly cap (ignored messages, recent unsubscribes); a cap
    // is at least one, so with nothing sent this week there is no history to read.
    let (per_week, fatigue) = if week - own > 0 {
        super::channel::weekly_cap(engine, &s.p.customer_id, g.per_week, now).await?
    } else {
        (g.per_week, None)
    };
    let g = tailor_campaigns::Guardrails { per_week, ..g };
    let zone = profile.traits.get("timezone").or_else(|| profile.traits.get("timeZone")).and_then(|v| v.as_str());
    let facts = SendFacts {
        consent,
        purpose,
        suppressed,
        has_address: address.is_some() || s.channel == SendChannel::Onsite,
        sent_day: u32::try_from((day - own).max(0)).unwrap_or(u32::MAX),
        sent_week: u32::try_from((week - own).max(0)).unwrap_or(u32::MAX),
        time_zone: zone,
    };
    match guard::judge(&g, &facts, now) {
        Verdict::Send => {}
        Verdict::Skip(reason) => {
            let reason = match &fatigue {
                Some(f) if reason.contains("last week") => format!("{reason} ({f})"),
                _ => reason,
            };
            return skip(engine, &new, existing.is_some(), &reason, s, now).await;
        }
        Verdict::Defer(until, reason) => {
            let mut conn = engine.db().writer().acquire().await?;
            let why = format!("{reason}: waits until {}", tailor_core::time::format_millis(until));
            store::log(&mut conn, &line(s.p, Some(s.step_id), "deferred", why, Some(purpose), now), &new_id()).await?;
            return Ok(Outcome::Later(until));
        }
    }
    if let Some((until, why)) =
        super::sendtime::wait_for_best_hour(engine, s.def, s.p, s.step_id, profile, &g, now).await?
    {
        let mut conn = engine.db().writer().acquire().await?;
        let why = format!("{why}: waits until {}", tailor_core::time::format_millis(until));
        store::log(&mut conn, &line(s.p, Some(s.step_id), "deferred", why, Some(purpose), now), &new_id()).await?;
        return Ok(Outcome::Later(until));
    }
    if super::holdout::is_held_out(engine, s.p).await? {
        super::holdout::hold(engine, &new, existing.is_some(), s.def.holdout_percent(), now).await?;
        return Ok(Outcome::Done);
    }
    if let Some(reason) = super::targeting::left_out(engine, s.p).await? {
        super::holdout::withhold(engine, &new, existing.is_some(), "not_targeted", reason, now).await?;
        return Ok(Outcome::Done);
    }
    let content = compose::content(engine, profile, s.options, now).await?;
    if content.cart_empty {
        return skip(engine, &new, existing.is_some(), "the cart is empty now", s, now).await;
    }
    let unsubscribe = engine.unsubscribe_url(&s.p.customer_id, s.channel.purpose()).await?;
    let ctx = compose::context(engine, profile, &content, &unsubscribe);
    let render_channel = match s.channel {
        SendChannel::Email => RenderChannel::Email,
        SendChannel::Sms => RenderChannel::Sms,
        SendChannel::Push => RenderChannel::Push,
        SendChannel::Onsite => RenderChannel::Onsite,
    };
    let rendered = match engine.templates().render(s.template, render_channel, &ctx) {
        Ok(r) => r,
        Err(e) => return skip(engine, &new, existing.is_some(), &format!("the template failed: {e}"), s, now).await,
    };
    // Recorded (and the attempt counted) before the channel is called, in one commit.
    let mut tx = engine.db().writer().begin().await?;
    if existing.is_none() {
        store::record_send(&mut tx, &new, "pending", None, now).await?;
    }
    store::count_attempt(&mut tx, &key, now).await?;
    tx.commit().await?;
    let out = Outgoing {
        key: key.clone(),
        to: address.unwrap_or_else(|| s.p.customer_id.clone()),
        subject: rendered.subject.clone(),
        html: rendered.html.clone(),
        text: rendered.text.clone(),
        unsubscribe_url: (s.channel == SendChannel::Email).then_some(unsubscribe),
    };
    let result = match s.channel {
        SendChannel::Onsite => {
            let mut conn = engine.db().writer().acquire().await?;
            store::put_onsite(
                &mut conn,
                &key,
                &s.p.customer_id,
                &s.p.journey_id,
                out.subject.as_deref(),
                &out.text,
                now,
            )
            .await?;
            Ok(())
        }
        ch => {
            let channels = engine.channels();
            let target = match ch {
                SendChannel::Email => channels.email,
                SendChannel::Sms => channels.sms,
                _ => channels.push,
            };
            match target {
                Some(c) => c.send(&out).await,
                None => Err(ChannelError::Permanent(format!("no {} channel is configured", ch.as_str()))),
            }
        }
    };
    let mut conn = engine.db().writer().begin().await?;
    let outcome = match result {
        Ok(()) => {
            let why = content.explanation.iter().chain(&s.why_channel).cloned().collect::<Vec<_>>().join("; ");
            store::settle_send(&mut conn, &key, "sent", Some(&why), now).await?;
            store::log(&mut conn, &line(s.p, Some(s.step_id), "sent", why, Some(purpose), now), &new_id()).await?;
            metrics::counter!("tailor_journey_sends_total", "channel" => s.channel.as_str()).increment(1);
            Outcome::Done
        }
        Err(ChannelError::Transient(e)) if attempts + 1 < MAX_ATTEMPTS => {
            let backoff = 1000_i64 << (attempts + 1).clamp(1, 10);
            tracing::info!(channel = s.channel.as_str(), attempt = attempts + 1, "a send failed; retrying later");
            let why = format!("attempt {} failed ({e}); retrying", attempts + 1);
            store::log(&mut conn, &line(s.p, Some(s.step_id), "retrying", why, Some(purpose), now), &new_id()).await?;
            Outcome::Later(now.saturating_add(backoff))
        }
        Err(e) => {
            let why = format!("dead-lettered after {} attempts: {e}", attempts + 1);
            store::settle_send(&mut conn, &key, "failed", Some(&why), now).await?;
            store::log(&mut conn, &line(s.p, Some(s.step_id), "failed", why, Some(purpose), now), &new_id()).await?;
            Outcome::Done
        }
    };
    conn.commit().await?;
    Ok(outcome)
}

async fn skip(
    engine: &Engine,
    new: &NewSend<'_>,
    pending: bool,
    reason: &str,
    s: &Send<'_>,
    now: i64,
) -> Result<Outcome, EngineError> {
    let mut conn = engine.db().writer().acquire().await?;
    if pending {
        store::settle_send(&mut conn, new.key, "skipped", Some(reason), now).await?;
    } else {
        store::record_send(&mut conn, new, "skipped", Some(reason), now).await?;
    }
    store::log(
        &mut conn,
        &line(s.p, Some(s.step_id), "skipped", reason.to_string(), Some(new.purpose), now),
        &new_id(),
    )
    .await?;
    Ok(Outcome::Done)
}

async fn call_webhook(
    engine: &Engine,
    p: &PositionRow,
    step_id: &str,
    url: &str,
    _profile: &ProfileView,
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
