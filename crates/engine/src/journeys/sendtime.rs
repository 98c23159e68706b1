//! Send time in the scheduler: when a journey asks for it, a send that falls due waits for the
//! customer's best hour (`tailor_targeting::sendtime`: their own hours of activity in their
//! zone, shrunk toward everyone's) — at most the journey's `bestHourWithinHours`, never into
//! quiet hours, and only once per step, so a changing pattern cannot postpone it twice.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use tailor_campaigns::guard;
use tailor_campaigns::journey::Guardrails;
use tailor_campaigns::store::PositionRow;
use tailor_campaigns::JourneyDef;
use tailor_profiles::{Contact, EventFilter};
use tailor_store::Row;
use tailor_targeting::sendtime::{choose_allowed_hour, HourProfile, HOURS};

use crate::{Engine, EngineError};

const DAY_MS: i64 = 86_400_000;
/// How far back activity is read.
const HISTORY_MS: i64 = 180 * DAY_MS;
/// Own engagements worth as much as the population's pattern (the offline evaluation's 5).
const PRIOR_STRENGTH: f64 = 5.0;
/// The most recent events read for a customer, and for the population's pattern.
const OWN_EVENTS: i64 = 2_000;
const POPULATION_EVENTS: i64 = 5_000;

/// What every best-hour deferral's reason starts with.
const MARKER_PREFIX: &str = "best hour (entry ";

/// The reason's prefix of a best-hour deferral, per entry (found again on the second look).
fn marker(entry: i64) -> String {
    format!("{MARKER_PREFIX}{entry})")
}

/// The weight of an event in the hour profile: a purchase says most about when a customer acts.
fn weight(name: &str) -> f64 {
    match name {
        "Order Completed" => 2.0,
        n if super::channel::ENGAGEMENT_EVENTS.iter().any(|(e, _)| *e == n) => 1.5,
        _ => 1.0,
    }
}

/// What a batch reads for send times: the best-hour deferrals already made, each customer's
/// recent activity, and everyone's purchase hours.
#[derive(Default)]
pub(super) struct Hours {
    /// Best-hour deferral reasons per (customer, journey, step).
    waited: HashMap<(String, String, String), Vec<String>>,
    /// Each customer's latest track events (name, when), oldest first.
    own: HashMap<String, Vec<(Option<String>, i64)>>,
    /// Everyone's purchases by hour, in the shop's default zone.
    everyone: HourProfile,
}

impl Hours {
    /// Reads what the send times of `contacts` need, in a few queries for all of them.
    pub(super) async fn load(
        engine: &Engine,
        contacts: &[&Contact],
        g: &Guardrails,
        now: i64,
    ) -> Result<Hours, EngineError> {
        if contacts.is_empty() {
            return Ok(Hours::default());
        }
        let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
        let mut conn = engine.db().reader().acquire().await?;
        let mut waited: HashMap<(String, String, String), Vec<String>> = HashMap::new();
        for (customer, journey, step, reason) in
            tailor_campaigns::batch::deferrals(&mut conn, &ids, MARKER_PREFIX).await?
        {
            let Some(step) = step else { continue };
            waited.entry((customer, journey, step)).or_default().push(reason);
        }
        let since = now.saturating_sub(HISTORY_MS);
        let filter = EventFilter { since, until: Some(now), track_only: true, latest: Some(OWN_EVENTS), names: &[] };
        let own = tailor_profiles::events_of(&mut conn, contacts, &filter).await?;
        // Everyone's purchases, in the shop's default zone: the pattern a new customer starts from.
        let default_zone = guard::zone_of(None, &g.default_time_zone);
        let mut everyone = HourProfile::default();
        for r in sqlx::query(&format!(
            "SELECT ts FROM events WHERE name = 'Order Completed' AND ts >= $1 AND ts <= $2 \
             ORDER BY seq DESC LIMIT {POPULATION_EVENTS}"
        ))
        .bind(since)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?
        {
            if let Some(h) =
                DateTime::<Utc>::from_timestamp_millis(r.get(0)).map(|t| t.with_timezone(&default_zone).hour())
            {
                everyone.record(h, 1.0);
            }
        }
        Ok(Hours { waited, own, everyone })
    }
}

/// When this send should wait for the customer's best hour: the time (unix ms) and why.
pub(super) fn wait_for_best_hour(
    def: &JourneyDef,
    p: &PositionRow,
    step_id: &str,
    contact: &Contact,
    hours: &Hours,
    g: &Guardrails,
    now: i64,
) -> Option<(i64, String)> {
    let within = def.best_hour_within_hours?;
    let key = (p.customer_id.clone(), p.journey_id.clone(), step_id.to_string());
    let marker = marker(p.entry);
    if hours.waited.get(&key).is_some_and(|reasons| reasons.iter().any(|r| r.starts_with(&marker))) {
        return None;
    }
    let zone_name = contact.traits.get("timezone").or_else(|| contact.traits.get("timeZone")).and_then(|v| v.as_str());
    let zone = guard::zone_of(zone_name, &g.default_time_zone);
    let mut own = HourProfile::default();
    for (name, ts) in hours.own.get(&contact.id).map_or(&[][..], Vec::as_slice) {
        if let Some(h) = DateTime::<Utc>::from_timestamp_millis(*ts).map(|t| t.with_timezone(&zone).hour()) {
            own.record(h, weight(name.as_deref().unwrap_or("")));
        }
    }
    let mut allowed = [true; HOURS];
    if g.quiet_from_hour != g.quiet_until_hour {
        for (h, a) in allowed.iter_mut().enumerate() {
            let h = h as u32;
            let (from, until) = (g.quiet_from_hour, g.quiet_until_hour);
            *a = !if from < until { h >= from && h < until } else { h >= from || h < until };
        }
    }
    let best = choose_allowed_hour(&own, &hours.everyone, PRIOR_STRENGTH, &allowed)?;
    let local_now = DateTime::<Utc>::from_timestamp_millis(now).map(|t| t.with_timezone(&zone))?;
    if local_now.hour() == best.hour {
        return None;
    }
    let mut day = local_now.date_naive();
    if best.hour < local_now.hour() {
        day = day.succ_opt().unwrap_or(day);
    }
    let at = NaiveTime::from_hms_opt(best.hour, 0, 0).map(|t| day.and_time(t))?;
    // An hour skipped by a daylight-saving change: the hour after.
    let at = zone
        .from_local_datetime(&at)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(at + Duration::hours(1))).earliest())?;
    let at = at.timestamp_millis();
    let limit = i64::from(within).saturating_mul(3_600_000);
    if at <= now || at.saturating_sub(now) > limit {
        return None;
    }
    let why = format!(
        "{marker}: {:02}:00 in {} ({:.0}% own history, {:.0}% of activity within an hour of it)",
        best.hour,
        zone.name(),
        best.own_weight * 100.0,
        best.window_share * 100.0
    );
    Some((at, why))
}
