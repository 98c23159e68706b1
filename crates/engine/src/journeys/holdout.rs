//! Holdouts: each entry is assigned to recipients or the journey's holdout at entry (a stable
//! hash of journey and customer, so a customer stays on one side) and recorded; a held-out
//! customer goes through every step, waits and branches included, but where a message would be
//! sent it is recorded as `held_out` instead, so the report compares like with like per step.

use tailor_campaigns::entries::{self, EntryRow};
use tailor_campaigns::store::{self, LogLine, NewSend, PositionRow, Saved};

use super::intake::new_id;
use crate::{Engine, EngineError};

/// Records an entry and its holdout side; `trigger` is the event's (log seq, time).
pub(super) async fn record_entry(
    conn: &mut sqlx::AnyConnection,
    j: &Saved,
    customer: &str,
    version: i64,
    entry: i64,
    trigger: (i64, i64),
) -> Result<(), EngineError> {
    let holdout = entries::is_held_out(&j.id, customer, j.def.holdout_percent());
    let row = EntryRow {
        journey_id: j.id.clone(),
        customer_id: customer.to_string(),
        entry,
        version,
        holdout,
        entered_at: trigger.1,
        seq: trigger.0,
        targeting: super::targeting::at_entry(conn, j, customer, holdout, trigger.1).await?,
    };
    entries::record_entry(conn, &row).await?;
    Ok(())
}

/// Whether this entry is held out (an entry recorded before holdouts existed is not).
pub(super) async fn is_held_out(engine: &Engine, p: &PositionRow) -> Result<bool, EngineError> {
    let mut conn = engine.db().reader().acquire().await?;
    Ok(entries::held_out(&mut conn, &p.journey_id, &p.customer_id, p.entry).await?.unwrap_or(false))
}

/// Records the send a held-out customer would have been sent, as `held_out`, and the decision.
pub(super) async fn hold(
    engine: &Engine,
    new: &NewSend<'_>,
    pending: bool,
    percent: f64,
    now: i64,
) -> Result<(), EngineError> {
    let reason = format!("in the journey's {percent}% holdout: not sent, so the report can measure what sends cause");
    withhold(engine, new, pending, "held_out", reason, now).await
}

/// Records a send that is not made, with its status (`held_out`, `not_targeted`) and why, and
/// the decision.
pub(super) async fn withhold(
    engine: &Engine,
    new: &NewSend<'_>,
    pending: bool,
    status: &str,
    reason: String,
    now: i64,
) -> Result<(), EngineError> {
    let mut tx = engine.db().writer().begin().await?;
    if pending {
        store::settle_send(&mut tx, new.key, status, Some(&reason), now).await?;
    } else {
        store::record_send(&mut tx, new, status, Some(&reason), now).await?;
    }
    let line = LogLine {
        journey_id: new.journey_id.to_string(),
        customer_id: new.customer_id.to_string(),
        step_id: Some(new.step_id.to_string()),
        outcome: status.into(),
        reason,
        purpose: Some(new.purpose.to_string()),
        at: now,
    };
    store::log(&mut tx, &line, &new_id()).await?;
    tx.commit().await?;
    Ok(())
}
