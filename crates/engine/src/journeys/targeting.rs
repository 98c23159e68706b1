//! Uplift targeting in running journeys. At entry each customer's facts (recency, frequency,
//! spend, tenure from their orders) are recorded with the side they fall on: the random holdout,
//! the random exploration share, or — by the journey's uplift model and rule — targeted or not.
//! Where a message would be sent to an entry the rule left out, it is recorded as `not_targeted`
//! with its reason. A journey's own randomized entries (held out against explored, or against
//! every recipient when it did not target) train the next model: `POST /v1/uplift-models`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tailor_campaigns::entries::{self, EntryRow, StoredModel};
use tailor_campaigns::store::Saved;
use tailor_core::FieldError;
use tailor_targeting::live::{self, CustomerFacts, Example, LiveModel, Rule, Side};

use crate::{Engine, EngineError};

/// The most orders read for a customer's facts.
const MAX_ORDERS: i64 = 1_000;

/// What targeting knew and decided at an entry (stored with the entry as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EntryTargeting {
    facts: CustomerFacts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    side: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uplift: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// A stored uplift model, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpliftModelView {
    /// Its name (journeys name it in `targeting.model`).
    pub name: String,
    /// The journey whose entries trained it.
    pub journey: String,
    /// When it was trained (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub trained_at: String,
    /// The features it reads, in order.
    pub features: Vec<String>,
    /// Entries sent at random it learned from, and how many converted.
    pub treated: [usize; 2],
    /// Held-out entries it learned from, and how many converted.
    pub control: [usize; 2],
    /// Predicted uplift at the 10th, 50th and 90th percentile of its customers.
    pub uplift_percentiles: [f64; 3],
}

fn view(m: &StoredModel) -> Result<UpliftModelView, EngineError> {
    let live = parse(m)?;
    Ok(UpliftModelView {
        name: m.name.clone(),
        journey: m.journey_id.clone(),
        trained_at: tailor_core::time::format_millis(m.trained_at),
        features: live::LIVE_FEATURES.iter().map(|s| s.to_string()).collect(),
        treated: [live.treated.0, live.treated.1],
        control: [live.control.0, live.control.1],
        uplift_percentiles: [live.top_threshold(0.9), live.top_threshold(0.5), live.top_threshold(0.1)],
    })
}

fn parse(m: &StoredModel) -> Result<LiveModel, EngineError> {
    serde_json::from_str(&m.body).map_err(|e| EngineError::Io(format!("uplift model '{}' is unreadable: {e}", m.name)))
}

/// A customer's facts at `at`, from the orders of every profile merged into `customer`.
async fn facts_of(conn: &mut sqlx::AnyConnection, customer: &str, at: i64) -> Result<CustomerFacts, EngineError> {
    let members = tailor_profiles::group_of(conn, customer).await?;
    let orders = tailor_profiles::recent_orders(conn, &members, MAX_ORDERS).await?;
    let orders: Vec<(i64, f64)> = orders.iter().map(|o| (o.ts, o.total_cents as f64 / 100.0)).collect();
    Ok(CustomerFacts::from_orders(&orders, at))
}

/// What to record at an entry: nothing when the journey neither holds out nor targets; else the
/// customer's facts and, when it targets, the side and why. A model that is missing (deleted
/// after the journey was saved) sends to everyone, and says so.
pub(super) async fn at_entry(
    conn: &mut sqlx::AnyConnection,
    j: &Saved,
    customer: &str,
    held_out: bool,
    at: i64,
) -> Result<Option<String>, EngineError> {
    let targeting = j.def.targeting.as_ref();
    if targeting.is_none() && j.def.holdout_percent() <= 0.0 {
        return Ok(None);
    }
    let facts = facts_of(conn, customer, at).await?;
    let mut record = EntryTargeting { facts, side: None, uplift: None, reason: None };
    if let Some(t) = targeting {
        if held_out {
            record.side = Some(Side::Holdout);
        } else {
            match entries::model(conn, &t.model).await? {
                Some(stored) => {
                    let model = parse(&stored)?;
                    let uplift = model.uplift(&facts);
                    let explore = entries::is_explored(&j.id, customer, t.explore_percent());
                    let (side, reason) = live::side(explore, uplift, rule_of(t), &model);
                    record.side = Some(side);
                    record.uplift = Some(uplift);
                    record.reason = Some(reason);
                }
                None => {
                    record.side = Some(Side::Targeted);
                    record.reason = Some(format!("uplift model '{}' is missing: sent to everyone", t.model));
                }
            }
        }
    }
    Ok(Some(serde_json::to_string(&record).unwrap_or_default()))
}

fn rule_of(t: &tailor_campaigns::journey::Targeting) -> Rule {
    match (t.top_share, t.value_per_conversion, t.cost_per_message) {
        (_, Some(v), Some(c)) => Rule::Value { per_conversion: v, per_message: c },
        (share, _, _) => Rule::TopShare(share.unwrap_or(1.0)),
    }
}

/// Why an entry is not sent messages, from what targeting recorded at its entry (its JSON),
/// when targeting left it out.
pub(super) fn left_out_reason(json: &str) -> Option<String> {
    let record: EntryTargeting = serde_json::from_str(json).ok()?;
    (record.side == Some(Side::NotTargeted)).then(|| format!("not targeted: {}", record.reason.unwrap_or_default()))
}

/// Checks that a journey's uplift model exists, naming the field.
pub(super) async fn check_model(engine: &Engine, def: &tailor_campaigns::JourneyDef) -> Result<(), EngineError> {
    let Some(t) = &def.targeting else { return Ok(()) };
    let mut conn = engine.db().reader().acquire().await?;
    if entries::model(&mut conn, &t.model).await?.is_none() {
        return Err(EngineError::Invalid(FieldError::invalid(
            "targeting.model",
            format!("no uplift model '{}': train one from a journey with POST /v1/uplift-models", t.model),
        )));
    }
    Ok(())
}

impl Engine {
    /// Trains uplift model `name` from journey `journey`'s randomized entries whose attribution
    /// window has closed: held out against sent at random (the exploration share, or every
    /// recipient when the journey did not target), converted or not by its goal. Refused with
    /// the counts when either side has too few.
    pub async fn train_uplift_model(&self, name: &str, journey: &str) -> Result<UpliftModelView, EngineError> {
        if name.is_empty()
            || name.len() > 128
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(EngineError::Invalid(FieldError::invalid("name", "a model name: letters, digits, '-' or '_'")));
        }
        let now = self.journey_clock().now();
        let (def, found, outcomes) = self.journey_outcomes(journey).await?;
        let window_ms = i64::from(def.attribution_window_hours()) * 3_600_000;
        let mut examples = Vec::new();
        for e in &found {
            if e.entered_at.saturating_add(window_ms) > now {
                continue;
            }
            let Some(record) = e.targeting.as_deref().and_then(|j| serde_json::from_str::<EntryTargeting>(j).ok())
            else {
                continue;
            };
            let treated = match record.side {
                None => !e.holdout,
                Some(Side::Holdout) => false,
                Some(Side::Explore) => true,
                // Chosen by the last model: not a random sample.
                Some(Side::Targeted | Side::NotTargeted) => continue,
            };
            let converted = outcomes.get(&(e.customer_id.clone(), e.entry)).is_some_and(|o| o.0);
            examples.push(Example { facts: record.facts, treated, converted });
        }
        let model = LiveModel::train(&examples)
            .map_err(|e| EngineError::Conflict(format!("journey '{journey}' cannot train a model yet: {e}")))?;
        let stored = StoredModel {
            name: name.to_string(),
            body: serde_json::to_string(&model).map_err(|e| EngineError::Io(e.to_string()))?,
            journey_id: journey.to_string(),
            trained_at: now,
        };
        let mut conn = self.db().writer().acquire().await?;
        entries::put_model(&mut conn, &stored).await?;
        view(&stored)
    }

    /// Every uplift model.
    pub async fn uplift_models(&self) -> Result<Vec<UpliftModelView>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        entries::models(&mut conn).await?.iter().map(view).collect()
    }

    /// One uplift model.
    pub async fn uplift_model(&self, name: &str) -> Result<UpliftModelView, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let m = entries::model(&mut conn, name).await?.ok_or_else(|| EngineError::not_found("uplift model", name))?;
        view(&m)
    }

    /// Deletes an uplift model (journeys naming it then send to everyone, and say so).
    pub async fn delete_uplift_model(&self, name: &str) -> Result<(), EngineError> {
        let mut conn = self.db().writer().acquire().await?;
        if !entries::delete_model(&mut conn, name).await? {
            return Err(EngineError::not_found("uplift model", name));
        }
        Ok(())
    }
}

/// Converted and revenue by (customer, entry).
pub(super) type Outcomes = HashMap<(String, i64), (bool, f64)>;

/// Entries per targeting side and how many converted (empty when the journey never targeted).
pub(super) fn side_counts(entries: &[EntryRow], outcomes: &Outcomes) -> Vec<super::report::SideCount> {
    let mut counts: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for e in entries {
        let Some(side) =
            e.targeting.as_deref().and_then(|j| serde_json::from_str::<EntryTargeting>(j).ok()).and_then(|r| r.side)
        else {
            continue;
        };
        let name = serde_json::to_value(side).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let c = counts.entry(name).or_default();
        c.0 += 1;
        c.1 += u64::from(outcomes.get(&(e.customer_id.clone(), e.entry)).is_some_and(|o| o.0));
    }
    counts
        .into_iter()
        .map(|(side, (customers, converted))| super::report::SideCount { side, customers, converted })
        .collect()
}
