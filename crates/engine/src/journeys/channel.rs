//! Channel per customer and fatigue, from what the engine knows: consents, addresses and each
//! customer's history of messages and what followed them. A message counts as engaged when an
//! engagement on its channel (an open, a click, a reply, a tap) follows within three days, or
//! a purchase within a day; the choice itself is `tailor_targeting::channel` (Thompson sampling
//! shrunk to the population's rate per channel), the cap `tailor_targeting::fatigue`.

use std::collections::HashMap;

use rand::SeedableRng;
use tailor_campaigns::journey::{SendChannel, SendOptions};
use tailor_campaigns::store::PositionRow;
use tailor_store::Row;
use tailor_targeting::channel::{self as choice, Arm};
use tailor_targeting::fatigue::{self, Signals};

use super::compose;
use crate::{Engine, EngineError, ProfileView};

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

/// Reads a customer's history (`customer` is the root profile id).
pub(super) async fn history(engine: &Engine, customer: &str, now: i64) -> Result<History, EngineError> {
    let mut conn = engine.db().reader().acquire().await?;
    let members = tailor_profiles::group_of(&mut conn, customer).await?;
    let since = now.saturating_sub(HISTORY_MS);
    let sends: Vec<(String, i64)> = sqlx::query(
        "SELECT channel, updated_at FROM journey_sends WHERE customer_id = $1 AND status = 'sent' \
         AND updated_at >= $2 ORDER BY updated_at, idem_key",
    )
    .bind(customer)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let names: Vec<&str> = ENGAGEMENT_EVENTS.iter().map(|(n, _)| *n).chain([PURCHASE]).collect();
    let sql = format!(
        "SELECT name, ts FROM events WHERE profile_id IN {} AND ts >= ${} AND name IN {} ORDER BY ts, seq",
        tailor_store::placeholders(1, members.len()),
        members.len() + 1,
        tailor_store::placeholders(members.len() + 2, names.len()),
    );
    let events: Vec<(String, i64)> =
        tailor_store::bind_all(tailor_store::bind_all(sqlx::query(&sql), &members).bind(since), &names)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let sql = format!(
        "SELECT COUNT(*) FROM consents WHERE profile_id IN {} AND granted = 0 AND purpose LIKE 'marketing_%' \
         AND at >= ${}",
        tailor_store::placeholders(1, members.len()),
        members.len() + 1
    );
    let unsubscribes: i64 = tailor_store::bind_all(sqlx::query(&sql), &members)
        .bind(now.saturating_sub(30 * DAY_MS))
        .fetch_one(&mut *conn)
        .await?
        .get(0);
    let mut engaged = vec![false; sends.len()];
    for (name, at) in &events {
        let (window, channel) = match channel_of(name) {
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
    let mut h = History { recent_unsubscribes: u32::try_from(unsubscribes).unwrap_or(u32::MAX), ..History::default() };
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
    Ok(h)
}

/// Messages and engagements per channel across all customers (last 180 days), counted at most
/// once a minute per engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct Population {
    at: i64,
    per_channel: HashMap<String, (u64, u64)>,
}

async fn population(engine: &Engine, now: i64) -> Result<Population, EngineError> {
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
/// recorded under its key), else the choice among the step's channels, with why.
pub(super) async fn choose(
    engine: &Engine,
    key: &str,
    step_channel: SendChannel,
    options: &SendOptions,
    p: &PositionRow,
    profile: &ProfileView,
    now: i64,
) -> Result<(SendChannel, Option<String>), EngineError> {
    if options.channels.is_empty() {
        return Ok((step_channel, None));
    }
    let mut conn = engine.db().reader().acquire().await?;
    if let Some(existing) = tailor_campaigns::store::send(&mut conn, key).await? {
        if let Some(c) = options.channels.iter().chain([&step_channel]).find(|c| c.as_str() == existing.channel) {
            return Ok((*c, None));
        }
    }
    let members = tailor_profiles::group_of(&mut conn, &p.customer_id).await?;
    let mut candidates = options.channels.clone();
    if !candidates.contains(&step_channel) {
        candidates.insert(0, step_channel);
    }
    let mut consents = Vec::with_capacity(candidates.len());
    for c in &candidates {
        consents.push(tailor_profiles::has_consent(&mut conn, &members, c.purpose()).await?);
    }
    drop(conn);
    let history = history(engine, &p.customer_id, now).await?;
    let population = population(engine, now).await?;
    let arms: Vec<Arm> = candidates
        .iter()
        .zip(consents)
        .map(|(c, consent)| {
            let (sends, engaged) = history.per_channel.get(c.as_str()).copied().unwrap_or_default();
            let (population_sends, population_engaged) =
                population.per_channel.get(c.as_str()).copied().unwrap_or_default();
            Arm {
                name: c.as_str().to_string(),
                consent,
                reachable: *c == SendChannel::Onsite || compose::address(profile, *c).is_some(),
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
    Ok((channel, Some(format!("channel {}", picked.explanation))))
}

/// The customer's weekly cap after fatigue, and why when it is lower than `global`.
pub(super) async fn weekly_cap(
    engine: &Engine,
    customer: &str,
    global: u32,
    now: i64,
) -> Result<(u32, Option<String>), EngineError> {
    let h = history(engine, customer, now).await?;
    let signals = Signals { ignored_in_a_row: h.ignored_in_a_row, recent_unsubscribes: h.recent_unsubscribes };
    Ok(fatigue::weekly_cap(global, signals, fatigue::IGNORED_BEFORE_FATIGUE))
}
