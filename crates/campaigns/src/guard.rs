//! Send-time guardrails as pure functions: quiet hours in the customer's zone and frequency
//! caps. Consent and the suppression list are read by the caller and passed in.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::journey::Guardrails;

/// What the guardrails say about a send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Never send it (this step is skipped); the reason.
    Skip(String),
    /// Not now: try again at this time (unix ms); the reason.
    Defer(i64, String),
}

/// The facts a send is judged on.
#[derive(Debug, Clone)]
pub struct SendFacts<'a> {
    /// Whether the customer grants the channel's consent purpose now.
    pub consent: bool,
    /// The purpose's name.
    pub purpose: &'a str,
    /// Whether the address is on the suppression list (bounce, complaint, unsubscribe).
    pub suppressed: bool,
    /// Whether the customer has an address on this channel.
    pub has_address: bool,
    /// Messages sent to them in the last 24 hours and 7 days, across channels and journeys.
    pub sent_day: u32,
    /// See `sent_day`.
    pub sent_week: u32,
    /// Their time zone (IANA), if known.
    pub time_zone: Option<&'a str>,
}

/// Judges a send at `now`; the first guardrail that holds it back says why.
pub fn judge(g: &Guardrails, f: &SendFacts<'_>, now: i64) -> Verdict {
    if !f.consent {
        return Verdict::Skip(format!("no {} consent at send time", f.purpose));
    }
    if !f.has_address {
        return Verdict::Skip("no address on this channel".into());
    }
    if f.suppressed {
        return Verdict::Skip("the address is on the suppression list".into());
    }
    if f.sent_day >= g.per_day {
        return Verdict::Skip(format!("frequency cap: {} messages in the last day", f.sent_day));
    }
    if f.sent_week >= g.per_week {
        return Verdict::Skip(format!("frequency cap: {} messages in the last week", f.sent_week));
    }
    let zone = zone_of(f.time_zone, &g.default_time_zone);
    if let Some(until) = quiet_until(g, zone, now) {
        return Verdict::Defer(until, format!("quiet hours in {}", zone.name()));
    }
    Verdict::Send
}

/// The customer's zone, else the default, else UTC.
pub fn zone_of(tz: Option<&str>, default: &str) -> Tz {
    tz.and_then(|z| z.parse().ok()).or_else(|| default.parse().ok()).unwrap_or(Tz::UTC)
}

/// When quiet hours in `zone` end, if `now` falls inside them.
pub fn quiet_until(g: &Guardrails, zone: Tz, now: i64) -> Option<i64> {
    if g.quiet_from_hour == g.quiet_until_hour {
        return None;
    }
    let local = DateTime::<Utc>::from_timestamp_millis(now)?.with_timezone(&zone);
    let hour = chrono::Timelike::hour(&local);
    let (from, until) = (g.quiet_from_hour, g.quiet_until_hour);
    let quiet = if from < until { hour >= from && hour < until } else { hour >= from || hour < until };
    if !quiet {
        return None;
    }
    let mut day = local.date_naive();
    if hour >= until {
        day = day.succ_opt()?;
    }
    let morning = day.and_time(NaiveTime::from_hms_opt(until, 0, 0)?);
    // A morning skipped by a daylight-saving change: the hour after.
    let at = zone
        .from_local_datetime(&morning)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(morning + Duration::hours(1))).earliest())?;
    Some(at.timestamp_millis())
}
