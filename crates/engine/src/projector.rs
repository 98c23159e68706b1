//! The background projection: reads the event log in order and applies each event to profiles,
//! orders, carts, points and stock, committing its position with the effects. An event that
//! cannot be applied (it breaks a bound, or a rule makes it overflow) goes to the dead-letter
//! table with its reason and the projection moves on: one bad event never stops the engine.

use std::time::Duration;

use serde_json::Value;
use tailor_core::time::now_millis;
use tailor_core::Commerce;
use tailor_store::Backend;
use tailor_stream::{record_dead_letter, save_cursor};

use crate::{Engine, EngineError};

/// The cursor name of the profile projection.
pub(crate) const CURSOR: &str = "profiles";
/// Events applied per transaction.
const BATCH: i64 = 500;

/// One event as the projection reads it from the log.
pub(crate) struct LoggedEvent {
    pub seq: i64,
    pub body: String,
    pub channel: String,
    pub ts: i64,
    /// Whether its source may move money, stock and points.
    pub trusted: bool,
}

/// Whether an error may go away on a retry (a lost connection, a lock, a deadlock), as opposed
/// to one the event itself causes every time.
fn is_transient(e: &EngineError) -> bool {
    match e {
        EngineError::Db(_) | EngineError::Io(_) => {
            let text = e.to_string();
            let deterministic = ["overflow", "constraint", "out of range", "invalid input", "UNIQUE", "CHECK"];
            !deterministic.iter().any(|d| text.contains(d))
        }
        _ => false,
    }
}

/// Applies every projection to one event inside `conn`; returns the stock it moved.
pub(crate) async fn apply_event(
    conn: &mut sqlx::AnyConnection,
    program: &crate::loyalty::Program,
    tracked: bool,
    e: &LoggedEvent,
) -> Result<Vec<(String, String)>, EngineError> {
    let body: Value = serde_json::from_str(&e.body)
        .map_err(|err| EngineError::Invalid(tailor_core::FieldError::invalid("", format!("unreadable: {err}"))))?;
    let commerce = Commerce::from_event(&body).map_err(EngineError::Invalid)?;
    // An untrusted source (a browser or app key) records behaviour: its carts count, its order
    // events stay on the timeline and move no money, stock or points.
    let sale = |c: &&Commerce| e.trusted || matches!(c, Commerce::ProductAdded(_) | Commerce::ProductRemoved(_));
    let commerce = commerce.as_ref().filter(sale);
    let profile = tailor_profiles::project_event(conn, e.seq, &body, commerce, &e.channel, e.ts).await?;
    if !e.trusted {
        return Ok(Vec::new());
    }
    let completed;
    let commerce = match commerce {
        // A cancellation or refund that does not repeat the order's store, or a cancellation that
        // names only the order, is read with what the order recorded: the units go back where
        // they were sold.
        Some(Commerce::OrderCancelled(o) | Commerce::OrderRefunded(o))
            if o.store_id.is_none()
                || (o.lines.is_empty() && matches!(commerce, Some(Commerce::OrderCancelled(_)))) =>
        {
            match tailor_profiles::recorded_order(conn, &o.order_id).await? {
                Some(recorded) => {
                    let cancelled = matches!(commerce, Some(Commerce::OrderCancelled(_)));
                    let order = tailor_core::commerce::Order {
                        store_id: o.store_id.clone().or(recorded.store_id),
                        lines: if cancelled && o.lines.is_empty() { recorded.lines } else { o.lines.clone() },
                        ..o.clone()
                    };
                    completed =
                        if cancelled { Commerce::OrderCancelled(order) } else { Commerce::OrderRefunded(order) };
                    Some(&completed)
                }
                None => commerce,
            }
        }
        other => other,
    };
    if let Some(p) = &profile {
        crate::loyalty::project(conn, &body, commerce, p, &e.channel, program, e.ts).await?;
    }
    let mut moved = Vec::new();
    if let (true, Some(c)) = (tracked, commerce) {
        moved = tailor_inventory::apply_order_event(conn, c, &e.channel, profile.as_deref(), e.ts).await?;
    }
    Ok(moved)
}

/// Applies one batch after the saved position; returns how many events it read. With
/// `careful`, each event runs in a savepoint and a failing one becomes a dead letter.
async fn step(engine: &Engine, careful: bool) -> Result<u64, EngineError> {
    let db = engine.db();
    let mut tx = db.writer().begin().await?;
    lock(engine, &mut tx).await?;
    let position = crate::cursor_in(&mut tx, CURSOR).await?;
    let stamp = crate::cursor_in(&mut tx, crate::recs::SHOPPER_CHANGES).await?;
    // Another node's rounds or changes (or a first look) make cached shoppers stale.
    engine.projection_at(position, stamp);
    let events = read_after(&mut tx, position, BATCH).await?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let mut stock_moved = Vec::new();
    let program = crate::loyalty::Program::load(&mut tx, engine.loyalty_policy()).await?;
    let tracked = tailor_inventory::tracks_stock(&mut tx).await?;
    for e in &events {
        if !careful {
            stock_moved.extend(apply_event(&mut tx, &program, tracked, e).await?);
            continue;
        }
        let mut point = sqlx::Connection::begin(&mut *tx).await?;
        match apply_event(&mut point, &program, tracked, e).await {
            Ok(moved) => {
                point.commit().await?;
                stock_moved.extend(moved);
            }
            Err(err) if is_transient(&err) => return Err(err),
            Err(err) => {
                point.rollback().await?;
                let field = match &err {
                    EngineError::Invalid(f) => Some(f.field.clone()),
                    _ => None,
                };
                // The reason names the rule or the field, never the person.
                tracing::warn!(seq = e.seq, error = %err, "an event could not be projected; it is a dead letter now");
                metrics::counter!("tailor_dead_letters_total").increment(1);
                record_dead_letter(&mut tx, e.seq, CURSOR, &err.to_string(), field.as_deref(), now_millis()).await?;
            }
        }
    }
    save_cursor(&mut tx, CURSOR, last).await?;
    tx.commit().await?;
    engine.projection_at(last, stamp);
    engine.shoppers_changed();
    engine.stock_moved(stock_moved).await;
    Ok(events.len() as u64)
}

/// Takes the projection's lock (PostgreSQL): one projector at a time across nodes; the others
/// wait, then find nothing to do.
pub(crate) async fn lock(engine: &Engine, conn: &mut sqlx::AnyConnection) -> Result<(), EngineError> {
    if engine.db().backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(tailor_store::lock_key("projector"))
            .execute(&mut *conn)
            .await?;
        // Loyalty effects lock accounts after the loyalty feed; take the feed first, like them.
        tailor_loyalty::lock_feed(conn).await.map_err(EngineError::from)?;
    }
    Ok(())
}

/// Up to `limit` events after `position`, in order.
pub(crate) async fn read_after(
    conn: &mut sqlx::AnyConnection,
    position: i64,
    limit: i64,
) -> Result<Vec<LoggedEvent>, EngineError> {
    use tailor_store::Row;
    Ok(sqlx::query("SELECT seq, body, channel, ts, trusted FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(position)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| LoggedEvent {
            seq: r.get(0),
            body: r.get(1),
            channel: r.get(2),
            ts: r.get(3),
            trusted: r.get::<i64, _>(4) != 0,
        })
        .collect())
}

/// Projects until the log is exhausted. A batch that fails is run again event by event, so
/// the event at fault becomes a dead letter and the rest apply.
pub(crate) async fn catch_up(engine: &Engine) -> Result<u64, EngineError> {
    let mut total = 0;
    loop {
        let n = match step(engine, false).await {
            Ok(n) => n,
            Err(e) if is_transient(&e) => return Err(e),
            Err(_) => step(engine, true).await?,
        };
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// The projection as a supervised job: wakes on every append in this process and polls for
/// appends from other nodes.
pub(crate) fn job(engine: &Engine) -> crate::supervisor::Job {
    crate::supervisor::Job {
        name: "projector",
        first_after: Duration::ZERO,
        every: Duration::from_millis(250),
        wake: Some(engine.log().appended()),
        round: std::sync::Arc::new(|engine: Engine| Box::pin(async move { catch_up(&engine).await.map(|_| ()) })),
    }
}
