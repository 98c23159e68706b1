//! Events into journeys: reads the event log after its own cursor (never ahead of the profile
//! projection, so each event already names its customer) and, per unpaused journey, ends a
//! customer's journey on an exit event, restarts it on a restart event, and enters them on the
//! trigger. Positions, the log and the cursor commit together: a crash repeats nothing.

use tailor_campaigns::journey::{Reentry, SEGMENT_ENTERED, SEGMENT_EXITED};
use tailor_campaigns::machine::{self, Decision};
use tailor_campaigns::store::{self, LogLine, PositionRow, Saved};
use tailor_store::{Backend, Row};
use tailor_stream::save_cursor;

use crate::{Engine, EngineError};

/// The journeys' cursor on the event log.
pub(crate) const CURSOR: &str = "journeys";
const BATCH: i64 = 500;

/// The journeys' cursor on the loyalty feed.
pub(crate) const LOYALTY_CURSOR: &str = "journeys-loyalty";

/// Reads every projected event and every loyalty event not read yet; returns how many.
pub(crate) async fn catch_up(engine: &Engine) -> Result<u64, EngineError> {
    let mut total = 0;
    loop {
        let n = step(engine).await?;
        total += n;
        if n < BATCH as u64 {
            break;
        }
    }
    loop {
        let n = loyalty_step(engine).await?;
        total += n;
        if n < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// The journey trigger a loyalty event is, if any: points expiring soon, a tier at risk, a
/// birthday reward granted.
fn trigger_of(e: &tailor_loyalty::LoyaltyEvent) -> Option<&'static str> {
    match e.kind.as_str() {
        "points_expiring_soon" => Some("points_expiring_soon"),
        "tier_at_risk" => Some("tier_at_risk"),
        "reward_granted" if e.details.get("trigger").and_then(serde_json::Value::as_str) == Some("birthday") => {
            Some("birthday")
        }
        _ => None,
    }
}

/// Reads the loyalty feed after the journeys' cursor: its events start, end or restart
/// journeys as tracked events do. Positions, the log and the cursor commit together.
async fn loyalty_step(engine: &Engine) -> Result<u64, EngineError> {
    let now = engine.journey_clock().now();
    // Most rounds find nothing new: looked at on a reader, without the intake's lock.
    {
        let mut conn = engine.db().reader().acquire().await?;
        let position = crate::cursor_in(&mut conn, LOYALTY_CURSOR).await?;
        if tailor_loyalty::events_after(&mut conn, position, 1).await?.is_empty() {
            return Ok(0);
        }
    }
    let mut tx = engine.db().writer().begin().await?;
    lock_intake(engine, &mut tx).await?;
    let position = crate::cursor_in(&mut tx, LOYALTY_CURSOR).await?;
    let events = tailor_loyalty::events_after(&mut tx, position, BATCH).await?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let journeys: Vec<Saved> = store::journeys(&mut tx).await?.into_iter().filter(|j| !j.paused).collect();
    // Conversions count from the newest tracked event on.
    let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut *tx).await?.get(0);
    for e in &events {
        let Some(name) = trigger_of(e) else { continue };
        let Some(root) = tailor_profiles::root_of(&mut tx, &e.profile_id).await? else { continue };
        for j in &journeys {
            on_event(&mut tx, j, &root, name, (seq, e.at), now).await?;
        }
    }
    save_cursor(&mut tx, LOYALTY_CURSOR, last).await?;
    tx.commit().await?;
    Ok(events.len() as u64)
}

/// Takes the intake's lock (PostgreSQL): one engine at a time reads triggers and watches, so
/// each starts its journeys once.
pub(crate) async fn lock_intake(engine: &Engine, tx: &mut sqlx::AnyConnection) -> Result<(), EngineError> {
    if engine.db().backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(tailor_store::lock_key("journeys-intake"))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn step(engine: &Engine) -> Result<u64, EngineError> {
    let now = engine.journey_clock().now();
    let mut tx = engine.db().writer().begin().await?;
    lock_intake(engine, &mut tx).await?;
    let position = crate::cursor_in(&mut tx, CURSOR).await?;
    let projected = crate::cursor_in(&mut tx, crate::projector::CURSOR).await?;
    if projected <= position {
        return Ok(0);
    }
    let journeys: Vec<Saved> = store::journeys(&mut tx).await?.into_iter().filter(|j| !j.paused).collect();
    let wanted = super::watch::wanted(&journeys);
    // Views and adds carry their product, read only for the watches journeys need.
    let body = if wanted == (false, false) {
        "CAST(NULL AS TEXT)"
    } else {
        "CASE WHEN name IN ('Product Viewed', 'Product Added') THEN body END"
    };
    let sql = format!(
        "SELECT seq, name, profile_id, ts, {body} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
    );
    let rows = sqlx::query(&sql).bind(position).bind(projected).bind(BATCH).fetch_all(&mut *tx).await?;
    let Some(last) = rows.last().map(|r| r.get::<i64, _>(0)) else {
        return Ok(0);
    };
    // Segments judge again each customer these events name.
    if crate::segments::any(&mut tx).await? {
        let mut touched = std::collections::BTreeSet::new();
        for r in &rows {
            if let Some(profile) = r.get::<Option<String>, _>(2) {
                if let Some(root) = tailor_profiles::root_of(&mut tx, &profile).await? {
                    touched.insert(root);
                }
            }
        }
        for moved in crate::segments::on_customers(&mut tx, &touched, now).await? {
            segment_moved_at(&mut tx, &journeys, &moved, (last, now), now).await?;
        }
    }
    if !journeys.is_empty() {
        for r in &rows {
            let (Some(name), Some(profile)) = (r.get::<Option<String>, _>(1), r.get::<Option<String>, _>(2)) else {
                continue;
            };
            let Some(root) = tailor_profiles::root_of(&mut tx, &profile).await? else { continue };
            let trigger = (r.get::<i64, _>(0), r.get::<i64, _>(3));
            for j in &journeys {
                on_event(&mut tx, j, &root, &name, trigger, now).await?;
            }
            if wanted != (false, false) {
                if let Some(sku) = r.get::<Option<String>, _>(4).as_deref().and_then(super::watch::product_of) {
                    super::watch::on_interest(engine, &mut tx, wanted, &root, &name, &sku, now).await?;
                }
            }
        }
    }
    save_cursor(&mut tx, CURSOR, last).await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// What `event` of `customer` does to journey `j`: ends, restarts, moves on a wait, or enters.
pub(super) async fn on_event(
    conn: &mut sqlx::AnyConnection,
    j: &Saved,
    customer: &str,
    event: &str,
    trigger: (i64, i64),
    now: i64,
) -> Result<(), EngineError> {
    let current = store::position(conn, &j.id, customer).await?;
    let active = current.as_ref().filter(|p| p.status == "active");
    let log = |outcome: &str, reason: String| LogLine {
        journey_id: j.id.clone(),
        customer_id: customer.to_string(),
        step_id: None,
        outcome: outcome.to_string(),
        reason,
        purpose: None,
        at: now,
    };
    if let Some(p) = active {
        if j.def.exit_on.iter().any(|e| e == event) {
            let ended = PositionRow {
                status: "exited".into(),
                reason: Some(format!("{event} (the goal)")),
                step: None,
                ..p.clone()
            };
            store::put_position(conn, &ended, now).await?;
            store::log(conn, &log("exited", format!("{event} ended the journey")), &new_id()).await?;
            return Ok(());
        }
        if j.def.restart_on.iter().any(|e| e == event) {
            // A restart keeps the version the customer is on and starts a new entry, so its
            // sends have new keys.
            let def = store::journey_version(conn, &j.id, p.version).await?.unwrap_or_else(|| j.def.clone());
            let entry = p.entry.saturating_add(1);
            let moved = place(&j.id, customer, p.version, entry, &def, now);
            store::put_position(conn, &moved, now).await?;
            super::holdout::record_entry(conn, j, customer, p.version, entry, trigger).await?;
            store::log(conn, &log("restarted", format!("{event} restarted the journey")), &new_id()).await?;
            return Ok(());
        }
        // A customer waiting for this event goes on (the version they are on decides).
        let step = p.step.and_then(|s| usize::try_from(s).ok());
        let def = if p.version == j.version {
            std::borrow::Cow::Borrowed(&j.def)
        } else {
            match store::journey_version(conn, &j.id, p.version).await? {
                Some(d) => std::borrow::Cow::Owned(d),
                None => return Ok(()),
            }
        };
        if let Some(decision) = machine::on_event(&def, step, p.due_at, event, now) {
            let waited = step.and_then(|i| def.steps.get(i)).map(|s| s.id.clone());
            let moved = row_of(p, decision);
            store::put_position(conn, &moved, now).await?;
            let line =
                LogLine { step_id: waited, ..log("resumed", format!("{event} arrived in time: the wait is over")) };
            store::log(conn, &line, &new_id()).await?;
            if moved.status == "completed" {
                let done = LogLine { step_id: None, ..log("completed", "completed".into()) };
                store::log(conn, &done, &new_id()).await?;
            }
        }
        return Ok(());
    }
    if j.def.trigger.event != event {
        return Ok(());
    }
    if j.def.reentry == Reentry::Never && current.is_some() {
        return Ok(());
    }
    let entry = current.map_or(1, |p| p.entry.saturating_add(1));
    let placed = place(&j.id, customer, j.version, entry, &j.def, now);
    store::put_position(conn, &placed, now).await?;
    super::holdout::record_entry(conn, j, customer, j.version, entry, trigger).await?;
    store::log(conn, &log("entered", format!("{event} started version {}", j.version)), &new_id()).await?;
    Ok(())
}

/// Starts the journeys triggered by a customer entering or leaving a segment; `trigger` is the
/// (log position, time) the move counts from.
async fn segment_moved_at(
    conn: &mut sqlx::AnyConnection,
    journeys: &[Saved],
    moved: &crate::segments::Moved,
    trigger: (i64, i64),
    now: i64,
) -> Result<(), EngineError> {
    let event = if moved.entered { SEGMENT_ENTERED } else { SEGMENT_EXITED };
    for j in journeys {
        if j.def.trigger.event == event && j.def.trigger.segment.as_deref() == Some(moved.segment.as_str()) {
            on_event(conn, j, &moved.customer, event, trigger, now).await?;
        }
    }
    Ok(())
}

/// Starts the journeys triggered by a segment move found outside the intake (time moved a
/// member out), counted from the newest log position.
pub(crate) async fn segment_moved(
    conn: &mut sqlx::AnyConnection,
    moved: &crate::segments::Moved,
    now: i64,
) -> Result<(), EngineError> {
    let journeys: Vec<Saved> = store::journeys(conn).await?.into_iter().filter(|j| !j.paused).collect();
    let last: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut *conn).await?.get(0);
    segment_moved_at(conn, &journeys, moved, (last, now), now).await
}

/// Where a customer entering at `now` stands. Branches right at the start are decided when
/// the first position falls due, so the entry itself needs no facts about the customer.
fn place(
    journey: &str,
    customer: &str,
    version: i64,
    entry: i64,
    def: &tailor_campaigns::JourneyDef,
    now: i64,
) -> PositionRow {
    let base = PositionRow {
        journey_id: journey.to_string(),
        customer_id: customer.to_string(),
        version,
        entry,
        step: Some(0),
        due_at: now,
        status: "active".into(),
        reason: None,
    };
    row_of(&base, machine::arrive(def, 0, now))
}

/// `p` moved to where `decision` says (a position due later, or ended).
fn row_of(p: &PositionRow, decision: Decision) -> PositionRow {
    match decision {
        Decision::Wait(at) => PositionRow { step: Some(at.step as i64), due_at: at.due_at, ..p.clone() },
        Decision::Act(i) => PositionRow { step: Some(i as i64), ..p.clone() },
        Decision::End(reason) => {
            PositionRow { step: None, status: "completed".into(), reason: Some(reason.to_string()), ..p.clone() }
        }
    }
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
