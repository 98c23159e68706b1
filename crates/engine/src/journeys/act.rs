//! Steps that change the customer rather than message them: set a trait, grant loyalty
//! points, issue a personal offer through pricing.
//! Each runs in one transaction with its record under the step's idempotency key (journey,
//! version, customer, entry, step): the change and the record commit together, so a crash or a
//! second engine never applies one twice. The record's status is `done` (not `sent`: it counts
//! against no frequency cap) and its reason says what changed.

use std::collections::BTreeSet;

use serde_json::Value;
use tailor_campaigns::machine;
use tailor_campaigns::store::{self, LogLine, NewSend, PositionRow};
use tailor_loyalty as loyalty;

use super::intake::new_id;
use crate::{Engine, EngineError};

/// A change a step makes.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// Set a trait.
    Trait { name: String, value: Value },
    /// Credit points (as a held-out customer: recorded, not credited).
    Points { points: i64, reason: String, held_out: Option<String> },
    /// Issue a personal offer through pricing (as a held-out customer: recorded, not issued).
    Offer { percent_off: u32, valid_days: u32, journey: String, held_out: Option<String> },
}

impl Action {
    fn channel(&self) -> &'static str {
        match self {
            Action::Trait { .. } => "trait",
            Action::Points { .. } => "loyalty",
            Action::Offer { .. } => "offer",
        }
    }
}

/// Performs `action` for the position `p` at step `step_id`, exactly once.
pub(super) async fn perform(
    engine: &Engine,
    p: &PositionRow,
    step_id: &str,
    action: &Action,
    now: i64,
) -> Result<(), EngineError> {
    let key = machine::send_key(&p.journey_id, p.version, &p.customer_id, p.entry, step_id);
    let mut tx = engine.db().writer().begin().await?;
    if store::send(&mut tx, &key).await?.is_some() {
        // Done before (by this engine before a crash, or by another).
        return Ok(());
    }
    let record = NewSend {
        key: &key,
        journey_id: &p.journey_id,
        version: p.version,
        customer_id: &p.customer_id,
        entry: p.entry,
        step_id,
        channel: action.channel(),
        template: "",
        purpose: "none",
    };
    let line = |outcome: &str, reason: String| LogLine {
        journey_id: p.journey_id.clone(),
        customer_id: p.customer_id.clone(),
        step_id: Some(step_id.to_string()),
        outcome: outcome.to_string(),
        reason,
        purpose: None,
        at: now,
    };
    let Some(root) = tailor_profiles::root_of(&mut tx, &p.customer_id).await? else {
        let why = "the customer was erased".to_string();
        store::record_send(&mut tx, &record, "skipped", Some(&why), now).await?;
        store::log(&mut tx, &line("skipped", why), &new_id()).await?;
        tx.commit().await?;
        return Ok(());
    };
    let changed_profile = match action {
        Action::Trait { name, value } => {
            tailor_profiles::set_trait(&mut tx, &root, name, value, now).await?;
            crate::recs::stamp_shopper_change(&mut tx).await?;
            let why = format!("set trait {name} to {value}");
            store::record_send(&mut tx, &record, "done", Some(&why), now).await?;
            store::log(&mut tx, &line("trait_updated", why), &new_id()).await?;
            // Segments judge the customer again at once; a move starts its journeys.
            let one: BTreeSet<String> = std::iter::once(root.clone()).collect();
            for moved in crate::segments::on_customers(&mut tx, &one, now).await? {
                super::intake::segment_moved(&mut tx, &moved, now).await?;
            }
            true
        }
        Action::Points { held_out: Some(why), .. } | Action::Offer { held_out: Some(why), .. } => {
            store::record_send(&mut tx, &record, "held_out", Some(why), now).await?;
            store::log(&mut tx, &line("held_out", why.clone()), &new_id()).await?;
            false
        }
        Action::Points { points, reason, held_out: None } => {
            let members = tailor_profiles::group_of(&mut tx, &root).await?;
            let granted = loyalty::grant_once(&mut tx, &members, &root, *points, &key, reason, now).await?;
            let why = if granted {
                format!("granted {points} points: {reason}")
            } else {
                format!("{points} points were granted under this key before: {reason}")
            };
            store::record_send(&mut tx, &record, "done", Some(&why), now).await?;
            store::log(&mut tx, &line("points_granted", why), &new_id()).await?;
            false
        }
        Action::Offer { percent_off, valid_days, journey, held_out: None } => {
            let members = tailor_profiles::group_of(&mut tx, &root).await?;
            let (status, outcome, why) =
                issue_offer(&mut tx, &root, &members, (*percent_off, *valid_days), journey, now).await?;
            store::record_send(&mut tx, &record, status, Some(&why), now).await?;
            store::log(&mut tx, &line(outcome, why), &new_id()).await?;
            false
        }
    };
    tx.commit().await?;
    if changed_profile {
        engine.shoppers_changed();
    }
    Ok(())
}

/// Issues a personal offer of `percent_off` for `valid_days` to the customer `root` in the
/// caller's transaction, under pricing's offer policy: personalization consent, at most the
/// per-offer cap, and what the per-customer cap leaves of its period. Returns the record's
/// status, the log outcome and why.
async fn issue_offer(
    conn: &mut sqlx::AnyConnection,
    root: &str,
    members: &[String],
    (percent_off, valid_days): (u32, u32),
    journey: &str,
    now: i64,
) -> Result<(&'static str, &'static str, String), EngineError> {
    use tailor_pricing::offers::{Offer, OfferPolicy};
    use tailor_pricing::store as offers;
    let purpose = tailor_core::Purpose::Personalization;
    if !tailor_profiles::has_consent(conn, members, purpose).await? {
        return Ok(("skipped", "skipped", "no personalization consent: no personal offer".into()));
    }
    let policy = OfferPolicy::default();
    offers::lock_offers(conn, root).await?;
    let issued = offers::offers_issued(conn, root, &policy, now).await?;
    let left = policy.max_per_customer_cents.saturating_sub(issued.offered_cents);
    let budget = left.min(policy.max_per_offer_cents);
    if budget <= 0 {
        let why = format!(
            "the per-customer cap is reached: {} cents offered in the last {} days (cap {})",
            issued.offered_cents, policy.period_days, policy.max_per_customer_cents
        );
        return Ok(("skipped", "skipped", why));
    }
    let offer = Offer {
        kind: "journey".into(),
        percent_off: f64::from(percent_off),
        max_discount_cents: budget,
        valid_days,
        reason: format!("journey {journey}: {percent_off}% off for {valid_days} days"),
    };
    offers::issue_offers(conn, root, std::slice::from_ref(&offer), purpose.as_str(), now).await?;
    let why = format!(
        "issued {percent_off}% off, at most {budget} cents, valid {valid_days} days (caps: {} cents an offer, {} cents per {} days)",
        policy.max_per_offer_cents, policy.max_per_customer_cents, policy.period_days
    );
    Ok(("done", "offer_issued", why))
}
