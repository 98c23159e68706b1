//! What a journey caused: recipients against its holdout on conversion (the journey's goal
//! event within its attribution window after entering) and revenue per customer, overall (by
//! the side each entry was assigned to at entry), per send step and per channel (entries that
//! reached the step: sent against held out), with a fixed-horizon 95% interval and an
//! always-valid one (`tailor_targeting::lift`); the verdict reads only the always-valid one, so
//! a dashboard refreshed every hour does not declare a winner by chance. Also the funnel per
//! step and the channel and hour mix of what was sent, for the console.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;
use tailor_campaigns::entries::{self, EntryRow};
use tailor_campaigns::{guard, store, StepKind};
use tailor_store::Row;
use tailor_targeting::lift::{self, Difference, Group, Verdict};

use crate::{Engine, EngineError};

/// The most entries and send rows a report reads.
const MAX_ROWS: i64 = 1_000_000;

/// One side of a comparison.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// Customer entries on this side.
    pub customers: u64,
    /// Of those, how many converted within the window.
    pub converted: u64,
    /// converted / customers (0 when empty).
    pub conversion_rate: f64,
    /// Their revenue in the window (major units of the events' currency).
    pub revenue: f64,
    /// revenue / customers.
    pub revenue_per_customer: f64,
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        let n = g.customers.max(1) as f64;
        GroupView {
            customers: g.customers,
            converted: g.converted,
            conversion_rate: g.converted as f64 / n,
            revenue: g.revenue,
            revenue_per_customer: g.revenue / n,
        }
    }
}

/// Recipients minus holdout, with its intervals (null bounds: not enough data yet).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DifferenceView {
    /// The estimate.
    pub estimate: f64,
    /// The 95% interval read once, at the end of the attribution window: [low, high].
    pub interval: [Option<f64>; 2],
    /// The 95% interval valid at every look while the journey runs: [low, high].
    pub always_valid: [Option<f64>; 2],
    /// `better`, `worse` or `notYetClear`, from the always-valid interval only.
    pub verdict: String,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl From<Difference> for DifferenceView {
    fn from(d: Difference) -> Self {
        let verdict = match d.verdict() {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NotYetClear => "notYetClear",
        };
        DifferenceView {
            estimate: d.estimate,
            interval: d.interval.map(finite),
            always_valid: d.always_valid.map(finite),
            verdict: verdict.into(),
        }
    }
}

/// Recipients against the holdout.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiftView {
    /// Those sent (or assigned to be sent) messages.
    pub recipients: GroupView,
    /// Those held out.
    pub holdout: GroupView,
    /// Conversion rate difference (a share: 0.04 is four points).
    pub conversion: DifferenceView,
    /// Revenue per customer difference.
    pub revenue_per_customer: DifferenceView,
}

fn view(recipients: Group, holdout: Group) -> LiftView {
    let mut l = lift::lift(recipients, holdout, 0.05);
    // A difference of two rates lies within ±1: an interval past that says no more than ±1.
    for bounds in [&mut l.conversion.interval, &mut l.conversion.always_valid] {
        *bounds = bounds.map(|b| b.clamp(-1.0, 1.0));
    }
    LiftView {
        recipients: l.recipients.into(),
        holdout: l.holdout.into(),
        conversion: l.conversion.into(),
        revenue_per_customer: l.revenue_per_customer.into(),
    }
}

/// A send step's lift: entries that reached it, sent against held out.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepLift {
    /// The step id.
    pub step: String,
    /// The lift.
    #[serde(flatten)]
    pub lift: LiftView,
}

/// A channel's lift: entries sent on it against those held out where it was chosen.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelLift {
    /// The channel.
    pub channel: String,
    /// The lift.
    #[serde(flatten)]
    pub lift: LiftView,
}

/// One step of the funnel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunnelStep {
    /// The step id.
    pub step: String,
    /// Entries that reached it (sent, held out, skipped or failed).
    pub reached: u64,
    /// Sent.
    pub sent: u64,
    /// Held out (would have been sent).
    pub held_out: u64,
    /// Skipped by a guardrail (consent, caps, no address, empty cart).
    pub skipped: u64,
    /// Left out by uplift targeting.
    pub not_targeted: u64,
    /// Dead-lettered.
    pub failed: u64,
    /// Of the entries that reached it, how many converted within the window.
    pub converted: u64,
}

/// Sends per channel or per hour.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MixItem {
    /// The channel, or the hour of day (`00`–`23`, in the shop's default zone).
    pub key: String,
    /// Messages sent.
    pub sends: u64,
}

/// A journey's report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JourneyReport {
    /// The journey.
    pub journey: String,
    /// The event counted as a conversion.
    pub goal: String,
    /// The attribution window after entering, in hours.
    pub attribution_hours: u32,
    /// The holdout share new entries get, in percent.
    pub holdout_percent: f64,
    /// Entries so far.
    pub entries: u64,
    /// Every entry by the side it was assigned to at entry.
    pub overall: LiftView,
    /// Per send step.
    pub steps: Vec<StepLift>,
    /// Per channel.
    pub channels: Vec<ChannelLift>,
    /// The funnel: entries, then each send step of the current version.
    pub funnel: Vec<FunnelStep>,
    /// Messages sent per channel.
    pub channel_mix: Vec<MixItem>,
    /// Messages sent per hour of day in `zone`.
    pub hour_mix: Vec<MixItem>,
    /// The zone of `hourMix`.
    pub zone: String,
    /// With uplift targeting: entries per side (holdout, explore, targeted, not_targeted) and
    /// how many converted.
    pub sides: Vec<SideCount>,
}

/// Entries on one side of targeting.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideCount {
    /// holdout, explore, targeted or not_targeted.
    pub side: String,
    /// Entries.
    pub customers: u64,
    /// Of those, converted within the window.
    pub converted: u64,
}

/// The revenue an event carries, as intake reads an order's amount: `total`, else `revenue`,
/// else the sum of its lines.
fn revenue_of(body: &Value) -> f64 {
    let props = body.get("properties").unwrap_or(&Value::Null);
    let num = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let direct = props.get("total").and_then(num).or_else(|| props.get("revenue").and_then(num));
    let r = direct.unwrap_or_else(|| {
        props.get("products").and_then(Value::as_array).map_or(0.0, |ps| {
            ps.iter()
                .map(|p| p.get("price").and_then(num).unwrap_or(0.0) * p.get("quantity").and_then(num).unwrap_or(1.0))
                .sum()
        })
    });
    if r.is_finite() {
        r.clamp(-1e12, 1e12)
    } else {
        0.0
    }
}

/// Each entry's outcome: (converted, revenue), by (customer, entry).
fn outcomes(
    entries: &[EntryRow],
    goals: &HashMap<String, Vec<(i64, i64, f64)>>,
    window_ms: i64,
) -> HashMap<(String, i64), (bool, f64)> {
    let mut by_customer: HashMap<&str, Vec<&EntryRow>> = HashMap::new();
    for e in entries {
        by_customer.entry(&e.customer_id).or_default().push(e);
    }
    let mut out = HashMap::new();
    for (customer, mut es) in by_customer {
        es.sort_by_key(|e| e.seq);
        let events = goals.get(customer).map(Vec::as_slice).unwrap_or_default();
        for (k, e) in es.iter().enumerate() {
            // A goal event belongs to the latest entry before it, within that entry's window.
            let next_seq = es.get(k + 1).map_or(i64::MAX, |n| n.seq);
            let mut converted = false;
            let mut revenue = 0.0;
            for &(seq, ts, r) in events {
                if seq > e.seq && seq < next_seq && ts >= e.entered_at && ts - e.entered_at <= window_ms {
                    converted = true;
                    revenue += r;
                }
            }
            out.insert((e.customer_id.clone(), e.entry), (converted, revenue));
        }
    }
    out
}

impl Engine {
    /// A journey's definition, its entries and each entry's outcome (converted, revenue) by its
    /// goal within its attribution window.
    pub(super) async fn journey_outcomes(
        &self,
        id: &str,
    ) -> Result<(tailor_campaigns::JourneyDef, Vec<EntryRow>, super::targeting::Outcomes), EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let saved = store::journey(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("journey", id))?;
        let def = saved.def;
        let goal = def.goal_event().to_string();
        let window_ms = i64::from(def.attribution_window_hours()) * 3_600_000;
        let entries = entries::entries_of(&mut conn, id, MAX_ROWS).await?;
        let since = entries.iter().map(|e| e.entered_at).min().unwrap_or(0);
        // The goal events since the first entry, by the customer (root profile) they belong to.
        let rows = sqlx::query(
            "SELECT seq, profile_id, ts, body, trusted FROM events WHERE name = $1 AND ts >= $2 ORDER BY seq",
        )
        .bind(&goal)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        let mut roots: HashMap<String, Option<String>> = HashMap::new();
        let mut goals: HashMap<String, Vec<(i64, i64, f64)>> = HashMap::new();
        for r in rows {
            let Some(profile) = r.get::<Option<String>, _>(1) else { continue };
            let root = match roots.get(&profile) {
                Some(x) => x.clone(),
                None => {
                    let x = tailor_profiles::root_of(&mut conn, &profile).await?;
                    roots.insert(profile, x.clone());
                    x
                }
            };
            let Some(root) = root else { continue };
            // A browser's order event is behaviour, never revenue (docs/api.md): it converts,
            // but only the shop's server reports money.
            let revenue = if r.get::<i64, _>(4) != 0 {
                revenue_of(&serde_json::from_str(&r.get::<String, _>(3)).unwrap_or(Value::Null))
            } else {
                0.0
            };
            goals.entry(root).or_default().push((r.get(0), r.get(2), revenue));
        }
        drop(conn);
        let result = outcomes(&entries, &goals, window_ms);
        Ok((def, entries, result))
    }

    /// A journey's report: recipients against its holdout, overall, per send step and per
    /// channel, with the funnel and the channel and hour mix.
    pub async fn journey_report(&self, id: &str) -> Result<JourneyReport, EngineError> {
        let (def, entries, result) = self.journey_outcomes(id).await?;
        let def = &def;
        let goal = def.goal_event().to_string();
        let mut conn = self.db().reader().acquire().await?;
        let sends = entries::outcomes_of(&mut conn, id, MAX_ROWS).await?;
        let g = store::guardrails(&mut conn).await?;
        drop(conn);
        let side: HashMap<(&str, i64), bool> =
            entries.iter().map(|e| ((e.customer_id.as_str(), e.entry), e.holdout)).collect();

        let (mut recipients, mut holdout) = (Group::default(), Group::default());
        for e in &entries {
            let (c, r) = result.get(&(e.customer_id.clone(), e.entry)).copied().unwrap_or((false, 0.0));
            if e.holdout { &mut holdout } else { &mut recipients }.add(c, r);
        }

        // Per step and per channel: each entry once per step (or channel), sent or held out.
        let mut per_step: BTreeMap<String, (Group, Group)> = BTreeMap::new();
        let mut per_channel: BTreeMap<String, (Group, Group)> = BTreeMap::new();
        let mut funnel: BTreeMap<String, FunnelStep> = BTreeMap::new();
        let mut seen_step = std::collections::HashSet::new();
        let mut seen_channel = std::collections::HashSet::new();
        let mut channel_mix: BTreeMap<String, u64> = BTreeMap::new();
        let mut hour_mix = [0u64; 24];
        let zone = guard::zone_of(None, &g.default_time_zone);
        for s in &sends {
            if !side.contains_key(&(s.customer_id.as_str(), s.entry)) {
                continue;
            }
            let (c, r) = result.get(&(s.customer_id.clone(), s.entry)).copied().unwrap_or((false, 0.0));
            let f = funnel.entry(s.step_id.clone()).or_insert_with(|| FunnelStep {
                step: s.step_id.clone(),
                reached: 0,
                sent: 0,
                held_out: 0,
                skipped: 0,
                not_targeted: 0,
                failed: 0,
                converted: 0,
            });
            f.reached += 1;
            f.converted += u64::from(c);
            match s.status.as_str() {
                "sent" => f.sent += 1,
                "held_out" => f.held_out += 1,
                "skipped" => f.skipped += 1,
                "not_targeted" => f.not_targeted += 1,
                "failed" => f.failed += 1,
                _ => {}
            }
            let held = match s.status.as_str() {
                "sent" => false,
                "held_out" => true,
                _ => continue,
            };
            if !held {
                *channel_mix.entry(s.channel.clone()).or_default() += 1;
                if let Some(t) = DateTime::<Utc>::from_timestamp_millis(s.at) {
                    hour_mix[t.with_timezone(&zone).hour() as usize] += 1;
                }
            }
            if seen_step.insert((s.customer_id.clone(), s.entry, s.step_id.clone())) {
                let pair = per_step.entry(s.step_id.clone()).or_default();
                if held { &mut pair.1 } else { &mut pair.0 }.add(c, r);
            }
            if seen_channel.insert((s.customer_id.clone(), s.entry, s.channel.clone())) {
                let pair = per_channel.entry(s.channel.clone()).or_default();
                if held { &mut pair.1 } else { &mut pair.0 }.add(c, r);
            }
        }
        // The funnel in the order of the current version's send steps (others after).
        let mut ordered = Vec::new();
        let converted_all = result.values().filter(|(c, _)| *c).count() as u64;
        ordered.push(FunnelStep {
            step: "entered".into(),
            reached: entries.len() as u64,
            sent: 0,
            held_out: entries.iter().filter(|e| e.holdout).count() as u64,
            skipped: 0,
            not_targeted: 0,
            failed: 0,
            converted: converted_all,
        });
        for step in &def.steps {
            if matches!(step.kind, StepKind::Send { .. }) {
                if let Some(f) = funnel.remove(&step.id) {
                    ordered.push(f);
                }
            }
        }
        ordered.extend(funnel.into_values());
        let step_order: Vec<&str> = def.steps.iter().map(|s| s.id.as_str()).collect();
        let mut steps: Vec<StepLift> =
            per_step.into_iter().map(|(step, (r, h))| StepLift { step, lift: view(r, h) }).collect();
        steps.sort_by_key(|s| step_order.iter().position(|x| *x == s.step).unwrap_or(usize::MAX));
        Ok(JourneyReport {
            journey: id.to_string(),
            goal,
            attribution_hours: def.attribution_window_hours(),
            holdout_percent: def.holdout_percent(),
            entries: entries.len() as u64,
            overall: view(recipients, holdout),
            steps,
            channels: per_channel
                .into_iter()
                .map(|(channel, (r, h))| ChannelLift { channel, lift: view(r, h) })
                .collect(),
            funnel: ordered,
            channel_mix: channel_mix.into_iter().map(|(key, sends)| MixItem { key, sends }).collect(),
            hour_mix: hour_mix.iter().enumerate().map(|(h, n)| MixItem { key: format!("{h:02}"), sends: *n }).collect(),
            zone: zone.name().to_string(),
            sides: super::targeting::side_counts(&entries, &result),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(customer: &str, entry: i64, seq: i64, at: i64, holdout: bool) -> EntryRow {
        EntryRow {
            journey_id: "j".into(),
            customer_id: customer.into(),
            entry,
            version: 1,
            holdout,
            entered_at: at,
            seq,
            targeting: None,
        }
    }

    #[test]
    fn a_goal_counts_for_the_latest_entry_before_it_within_the_window() {
        let es = vec![entry("a", 1, 10, 1_000, false), entry("a", 2, 20, 2_000, false), entry("b", 1, 11, 1_000, true)];
        let mut goals = HashMap::new();
        goals.insert("a".to_string(), vec![(25, 2_500, 30.0), (5, 900, 99.0)]);
        goals.insert("b".to_string(), vec![(12, 1_000 + 10_000, 5.0)]);
        let r = outcomes(&es, &goals, 5_000);
        assert_eq!(r[&("a".to_string(), 1)], (false, 0.0), "before the second entry: nothing");
        assert_eq!(r[&("a".to_string(), 2)], (true, 30.0));
        assert_eq!(r[&("b".to_string(), 1)], (false, 0.0), "outside the window");
        let body = serde_json::json!({"properties": {"products": [{"price": 2.5, "quantity": 2}]}});
        assert_eq!(revenue_of(&body), 5.0);
        assert_eq!(revenue_of(&serde_json::json!({"properties": {"revenue": 3, "total": "12.5"}})), 12.5);
    }
}
