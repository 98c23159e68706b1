//! Channel per customer and fatigue, from what the engine knows: consents, addresses and each
//! customer's history of messages and what followed them. A message counts as engaged when an
//! engagement on its channel (an open, a click, a reply, a tap) follows within three days, or
//! a purchase within a day; the choice itself is `tailor_targeting::channel` (Thompson sampling
//! shrunk to the population's rate per channel), the cap `tailor_targeting::fatigue`.

use std::collections::HashMap;

use rand::SeedableRng;
use tailor_campaigns::journey::{SendChannel, SendOptions};
use tailor_profiles::{Contact, EventFilter};
use tailor_store::Row;
use tailor_targeting::channel::{self as choice, Arm};
use tailor_targeting::fatigue::{self, Signals};

use super::compose;
use crate::{Engine, EngineError};

/// Events that show a customer engaged with a message, and on which channel.
pub const ENGAGEMENT_EVENTS: &[(&str, SendChannel)] = &[
    ("Email Opened", SendChannel::Email),
    ("Email Link Clicked", SendChannel::Email),
    ("Email Replied", SendChannel::Email),
    ("SMS Replied", SendChannel::Sms),
    ("SMS Link Clicked", SendChannel::Sms),
    ("Push Notification Tapped", SendChannel::Push),
    ("Push Notification Opened", SendChannel::Push),
    ("Onsite Message Clicked", SendChannel::Onsite),
];
/// The purchase event that counts as a response to the latest message before it.
const PURCHASE: &str = "Order Completed";
const DAY_MS: i64 = 86_400_000;
/// An engagement counts for a message on its channel sent up to this long before.
const ENGAGE_WINDOW_MS: i64 = 3 * DAY_MS;
/// A purchase counts for the latest message sent up to this long before.
const PURCHASE_WINDOW_MS: i64 = DAY_MS;
/// How far back a customer's history is read.
const HISTORY_MS: i64 = 180 * DAY_MS;
/// How long the population's rates are reused before they are counted again.
const POPULATION_TTL_MS: i64 = 60_000;

fn channel_of(name: &str) -> Option<SendChannel> {
    ENGAGEMENT_EVENTS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// A customer's messages and what followed them.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Per channel: (messages, engaged).
    pub per_channel: HashMap<&'static str, (u32, u32)>,
    /// The latest messages in a row, whose window has closed, with nothing after them.
    pub ignored_in_a_row: u32,
    /// Marketing consents withdrawn in the last 30 days.
    pub recent_unsubscribes: u32,
}

/// The histories of a batch's customers (root profiles), read in a few queries for all of them.
pub(super) async fn histories(
    engine: &Engine,
    contacts: &[&Contact],
    now: i64,
) -> Result<HashMap<String, History>, EngineError> {
    if contacts.is_empty() {
        return Ok(HashMap::new());
    }
    let since = now.saturating_sub(HISTORY_MS);
    let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
    let mut conn = engine.db().reader().acquire().await?;
    let sends = tailor_campaigns::batch::sent_history(&mut conn, &ids, since).await?;
    let names: Vec<&str> = ENGAGEMENT_EVENTS.iter().map(|(n, _)| *n).chain([PURCHASE]).collect();
    let filter = EventFilter { since, names: &names, ..EventFilter::default() };
    let events = tailor_profiles::events_of(&mut conn, contacts, &filter).await?;
    drop(conn);
    let unsubscribed_since = now.saturating_sub(30 * DAY_MS);
    Ok(contacts
        .iter()
        .map(|c| {
            let h = history_of(
                sends.get(&c.id).map_or(&[][..], Vec::as_slice),
                events.get(&c.id).map_or(&[][..], Vec::as_slice),
                u32::try_from(c.marketing_withdrawals_since(unsubscribed_since)).unwrap_or(u32::MAX),
                now,
            );
            (c.id.clone(), h)
        })
        .collect())
}

/// A customer's history from their sent messages (channel, when) and their engagement and
/// purchase events (name, when), both oldest first.
fn history_of(sends: &[(String, i64)], events: &[(Option<String>, i64)], unsubscribes: u32, now: i64) -> History {
    let mut engaged = vec![false; sends.len()];
    for (name, at) in events {
        let (window, channel) = match name.as_deref().and_then(channel_of) {
            Some(c) => (ENGAGE_WINDOW_MS, Some(c.as_str())),
            None => (PURCHASE_WINDOW_MS, None),
        };
        // The latest message before it, on its channel (any channel for a purchase).
        let hit = sends.iter().enumerate().rev().find(|(_, (c, sent))| {
            sent <= at && at.saturating_sub(*sent) <= window && channel.is_none_or(|ch| ch == c)
        });
        if let Some((i, _)) = hit {
            engaged[i] = true;
        }
    }
    let mut h = History { recent_unsubscribes: unsubscribes, ..History::default() };
    for ((c, _), e) in sends.iter().zip(&engaged) {
        let Some(ch) = [SendChannel::Email, SendChannel::Sms, SendChannel::Push, SendChannel::Onsite]
            .into_iter()
            .find(|x| x.as_str() == c)
        else {
            continue;
        };
        let slot = h.per_channel.entry(ch.as_str()).or_default();
        slot.0 = slot.0.saturating_add(1);
        slot.1 = slot.1.saturating_add(u32::from(*e));
    }
    for ((_, sent), e) in sends.iter().zip(&engaged).rev() {
        if *e {
            break;
        }
        if now.saturating_sub(*sent) >= ENGAGE_WINDOW_MS {
            h.ignored_in_a_row = h.ignored_in_a_row.saturating_add(1);
        }
    }
    h
}

/// Messages and engagements per channel across all customers (last 180 days), counted at most
/// once a minute per engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Population {
    at: i64,
    per_channel: HashMap<String, (u64, u64)>,
}

pub(super) async fn population(engine: &Engine, now: i64) -> Result<Population, EngineError> {
    let cache = &engine.journey_state().population;
    if let Some(p) = cache.lock().ok().and_then(|c| c.clone()) {
        if now >= p.at && now - p.at < POPULATION_TTL_MS {
            return Ok(p);
        }
    }
    let since = now.saturating_sub(HISTORY_MS);
    let mut conn = engine.db().reader().acquire().await?;
    let mut per_channel: HashMap<String, (u64, u64)> = HashMap::new();
    for r in sqlx::query(
        "SELECT channel, COUNT(*) FROM journey_sends WHERE status = 'sent' AND updated_at >= $1 GROUP BY channel",
    )
    .bind(since)
    .fetch_all(&mut *conn)
    .await?
    {
        per_channel.entry(r.get(0)).or_default().0 = u64::try_from(r.get::<i64, _>(1)).unwrap_or(0);
    }
    let names: Vec<&str> = ENGAGEMENT_EVENTS.iter().map(|(n, _)| *n).collect();
    let sql = format!(
        "SELECT name, COUNT(*) FROM events WHERE ts >= $1 AND name IN {} GROUP BY name",
        tailor_store::placeholders(2, names.len())
    );
    for r in tailor_store::bind_all(sqlx::query(&sql).bind(since), &names).fetch_all(&mut *conn).await? {
        let name: String = r.get(0);
        if let Some(c) = channel_of(&name) {
            let slot = per_channel.entry(c.as_str().to_string()).or_default();
            slot.1 = slot.1.saturating_add(u64::try_from(r.get::<i64, _>(1)).unwrap_or(0));
        }
    }
    // An engagement without a message before it (organic opens) cannot push a rate past one.
    for v in per_channel.values_mut() {
        v.1 = v.1.min(v.0);
    }
    let p = Population { at: now, per_channel };
    if let Ok(mut c) = cache.lock() {
        *c = Some(p.clone());
    }
    Ok(p)
}

/// The channel for this send: the step's own when it offers no choice (or the one already
/// recorded under its key, `recorded`), else the choice among the step's channels from the
/// customer's consents, addresses and `history` against the `population`'s, with why.
pub(super) fn choose(
    key: &str,
    step_channel: SendChannel,
    options: &SendOptions,
    recorded: Option<&str>,
    contact: &Contact,
    history: Option<&History>,
    population: Option<&Population>,
) -> (SendChannel, Option<String>) {
    if options.channels.is_empty() {
        return (step_channel, None);
    }
    if let Some(existing) = recorded {
        if let Some(c) = options.channels.iter().chain([&step_channel]).find(|c| c.as_str() == existing) {
            return (*c, None);
        }
    }
    let mut candidates = options.channels.clone();
    if !candidates.contains(&step_channel) {
        candidates.insert(0, step_channel);
    }
    let empty = History::default();
    let history = history.unwrap_or(&empty);
    let arms: Vec<Arm> = candidates
        .iter()
        .map(|c| {
            let (sends, engaged) = history.per_channel.get(c.as_str()).copied().unwrap_or_default();
            let (population_sends, population_engaged) =
                population.and_then(|p| p.per_channel.get(c.as_str()).copied()).unwrap_or_default();
            Arm {
                name: c.as_str().to_string(),
                consent: contact.grants(c.purpose()),
                reachable: *c == SendChannel::Onsite || compose::address(contact, *c).is_some(),
                sends,
                engaged,
                population_sends,
                population_engaged,
            }
        })
        .collect();
    // Seeded by the send's key: a replay after a crash draws the same.
    let seed = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let picked = choice::choose(&arms, choice::PRIOR_STRENGTH, &mut rng);
    // No channel allowed: the step's own channel, whose guardrails record why it is skipped.
    let channel = picked.chosen.map_or(step_channel, |i| candidates[i]);
    (channel, Some(format!("channel {}", picked.explanation)))
}

/// The customer's weekly cap after fatigue, and why when it is lower than `global`.
pub(super) fn weekly_cap(h: &History, global: u32) -> (u32, Option<String>) {
    let signals = Signals { ignored_in_a_row: h.ignored_in_a_row, recent_unsubscribes: h.recent_unsubscribes };
    fatigue::weekly_cap(global, signals, fatigue::IGNORED_BEFORE_FATIGUE)
}
