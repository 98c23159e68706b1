//! The background projection: reads the event log in order and applies each event to profiles,
//! orders and carts, committing its position with the effects.

use std::time::Duration;

use tailor_store::Backend;

use crate::{Engine, EngineError};

/// The cursor name of the profile projection.
pub(crate) const CURSOR: &str = "profiles";
/// Events applied per transaction.
const BATCH: i64 = 500;

/// Applies one batch after the saved position; returns how many events it applied.
async fn step(engine: &Engine) -> Result<u64, EngineError> {
    let db = engine.db();
    let mut tx = db.writer().begin().await?;
    if db.backend() == Backend::Postgres {
        // One projector at a time across nodes; the others wait, then find nothing to do.
        sqlx::query("SELECT pg_advisory_xact_lock(727302)").execute(&mut *tx).await?;
        // Loyalty effects lock accounts after the loyalty feed; take the feed first, like them.
        tailor_loyalty::lock_feed(&mut tx).await.map_err(EngineError::from)?;
    }
    let position: i64 = {
        use tailor_store::Row;
        sqlx::query("SELECT position FROM cursors WHERE name = $1")
            .bind(CURSOR)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0)
    };
    let events = {
        use tailor_store::Row;
        sqlx::query("SELECT seq, body, channel, ts FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(position)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1), r.get::<String, _>(2), r.get::<i64, _>(3)))
            .collect::<Vec<_>>()
    };
    let Some(last) = events.last().map(|e| e.0) else {
        return Ok(0);
    };
    let mut stock_moved = Vec::new();
    let program = crate::loyalty::Program::load(&mut tx, engine.loyalty_policy()).await?;
    let tracked = tailor_inventory::tracks_stock(&mut tx).await?;
    for (seq, body, channel, ts) in &events {
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        let profile = tailor_profiles::project_event(&mut tx, *seq, &body, channel, *ts).await?;
        if let Some(p) = &profile {
            crate::loyalty::project(&mut tx, &body, p, channel, &program, *ts).await?;
        }
        if tracked {
            let moved = tailor_inventory::apply_order_event(&mut tx, &body, channel, profile.as_deref(), *ts).await?;
            stock_moved.extend(moved);
        }
    }
    tailor_stream::save_cursor(&mut tx, CURSOR, last).await?;
    tx.commit().await?;
    engine.stock_moved(stock_moved).await;
    Ok(events.len() as u64)
}

/// Projects until the log is exhausted.
pub(crate) async fn catch_up(engine: &Engine) -> Result<u64, EngineError> {
    let mut total = 0;
    loop {
        let n = step(engine).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Runs the projection until the engine closes: wakes on every append in this process and
/// polls for appends from other nodes.
pub(crate) fn spawn(engine: Engine) {
    tokio::spawn(async move {
        let wake = engine.log().appended();
        let mut shutdown = engine.shutdown_signal();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = catch_up(&engine).await {
                tracing::error!(error = %e, "projection failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}
