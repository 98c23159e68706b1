//! Send time in the scheduler: when a journey asks for it, a send that falls due waits for the
//! customer's best hour (`tailor_targeting::sendtime`: their own hours of activity in their
//! zone, shrunk toward everyone's) — at most the journey's `bestHourWithinHours`, never into
//! quiet hours, and only once per step, so a changing pattern cannot postpone it twice.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use tailor_campaigns::guard;
use tailor_campaigns::journey::Guardrails;
use tailor_campaigns::store::PositionRow;
use tailor_campaigns::JourneyDef;
use tailor_store::Row;
use tailor_targeting::sendtime::{choose_allowed_hour, HourProfile, HOURS};

use crate::{Engine, EngineError, ProfileView};

const DAY_MS: i64 = 86_400_000;
/// How far back activity is read.
const HISTORY_MS: i64 = 180 * DAY_MS;
/// Own engagements worth as much as the population's pattern (the offline evaluation's 5).
const PRIOR_STRENGTH: f64 = 5.0;
/// The most recent events read for a customer, and for the population's pattern.
const OWN_EVENTS: i64 = 2_000;
const POPULATION_EVENTS: i64 = 5_000;

/// The reason's prefix of a best-hour deferral, per entry (found again on the second look).
fn marker(entry: i64) -> String {
    format!("best hour (entry {entry})")
}

/// The weight of an event in the hour profile: a purchase says most about when a customer acts.
fn weight(name: &str) -> f64 {
    match name {
        "Order Completed" => 2.0,
        n if super::channel::ENGAGEMENT_EVENTS.iter().any(|(e, _)| *e == n) => 1.5,
        _ => 1.0,
    }
}

/// When this send should wait for the customer's best hour: the time (unix ms) and why.
pub(super) async fn wait_for_best_hour(
    engine: &Engine,
    def: &JourneyDef,
    p: &PositionRow,
    step_id: &str,
    profile: &ProfileView,
    g: &Guardrails,
    now: i64,
) -> Result<Option<(i64, String)>, EngineError> {
    let Some(within) = def.best_hour_within_hours else { return Ok(None) };
    let mut conn = engine.db().reader().acquire().await?;
    let waited = sqlx::query(
        "SELECT 1 FROM journey_log WHERE customer_id = $1 AND journey_id = $2 AND step_id = $3 \
         AND outcome = 'deferred' AND reason LIKE $4 LIMIT 1",
    )
    .bind(&p.customer_id)
    .bind(&p.journey_id)
    .bind(step_id)
    .bind(format!("{}%", marker(p.entry)))
    .fetch_optional(&mut *conn)
    .await?
    .is_some();
    if waited {
        return Ok(None);
    }
    let zone_name = profile.traits.get("timezone").or_else(|| profile.traits.get("timeZone")).and_then(|v| v.as_str());
    let zone = guard::zone_of(zone_name, &g.default_time_zone);
    let default_zone = guard::zone_of(None, &g.default_time_zone);
    let members = tailor_profiles::group_of(&mut conn, &p.customer_id).await?;
    let since = now.saturating_sub(HISTORY_MS);
    let sql = format!(
        "SELECT name, ts FROM events WHERE profile_id IN {} AND kind = 'track' AND ts >= ${} AND ts <= ${} \
         ORDER BY ts DESC LIMIT {OWN_EVENTS}",
        tailor_store::placeholders(1, members.len()),
        members.len() + 1,
        members.len() + 2
    );
    let mut own = HourProfile::default();
    for r in tailor_store::bind_all(sqlx::query(&sql), &members).bind(since).bind(now).fetch_all(&mut *conn).await? {
        let (name, ts): (Option<String>, i64) = (r.get(0), r.get(1));
        if let Some(h) = DateTime::<Utc>::from_timestamp_millis(ts).map(|t| t.with_timezone(&zone).hour()) {
            own.record(h, weight(name.as_deref().unwrap_or("")));
        }
    }
    // Everyone's purchases, in the shop's default zone: the pattern a new customer starts from.
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
        if let Some(h) = DateTime::<Utc>::from_timestamp_millis(r.get(0)).map(|t| t.with_timezone(&default_zone).hour())
        {
            everyone.record(h, 1.0);
        }
    }
    drop(conn);
    let mut allowed = [true; HOURS];
    if g.quiet_from_hour != g.quiet_until_hour {
        for (h, a) in allowed.iter_mut().enumerate() {
            let h = h as u32;
            let (from, until) = (g.quiet_from_hour, g.quiet_until_hour);
            *a = !if from < until { h >= from && h < until } else { h >= from || h < until };
        }
    }
    let Some(best) = choose_allowed_hour(&own, &everyone, PRIOR_STRENGTH, &allowed) else { return Ok(None) };
    let Some(local_now) = DateTime::<Utc>::from_timestamp_millis(now).map(|t| t.with_timezone(&zone)) else {
        return Ok(None);
    };
    if local_now.hour() == best.hour {
        return Ok(None);
    }
    let mut day = local_now.date_naive();
    if best.hour < local_now.hour() {
        day = day.succ_opt().unwrap_or(day);
    }
    let Some(at) = NaiveTime::from_hms_opt(best.hour, 0, 0).map(|t| day.and_time(t)) else { return Ok(None) };
    // An hour skipped by a daylight-saving change: the hour after.
    let Some(at) = zone
        .from_local_datetime(&at)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(at + Duration::hours(1))).earliest())
    else {
        return Ok(None);
    };
    let at = at.timestamp_millis();
    let limit = i64::from(within).saturating_mul(3_600_000);
    if at <= now || at.saturating_sub(now) > limit {
        return Ok(None);
    }
    let why = format!(
        "{}: {:02}:00 in {} ({:.0}% own history, {:.0}% of activity within an hour of it)",
        marker(p.entry),
        best.hour,
        zone.name(),
        best.own_weight * 100.0,
        best.window_share * 100.0
    );
    Ok(Some((at, why)))
}
