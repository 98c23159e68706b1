//! Holdouts: each entry is assigned to recipients or the journey's holdout at entry (a stable
//! hash of journey and customer, so a customer stays on one side) and recorded; a held-out
//! customer goes through every step, waits and branches included, but where a message would be
//! sent it is recorded as `held_out` instead, so the report compares like with like per step.

use tailor_campaigns::entries::{self, EntryRow};
use tailor_campaigns::store::Saved;

use crate::EngineError;

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

/// Why a held-out customer's send is recorded as `held_out` instead of sent (the scheduler
/// records it in its batch's decision step, see `fire`).
pub(super) fn reason(percent: f64) -> String {
    format!("in the journey's {percent}% holdout: not sent, so the report can measure what sends cause")
}
