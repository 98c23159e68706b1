//! The scheduler's rows: journey versions, positions (timers) leased by one engine at a time,
//! sends keyed for idempotency, the decision log, suppressions and on-site messages.

use sqlx::AnyConnection;
use tailor_store::{Backend, Row};

use crate::StoreError;

use crate::journey::{Guardrails, JourneyDef};

/// A saved journey: its current version and whether it is paused.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The journey id.
    pub id: String,
    /// The current version (new customers enter it).
    pub version: i64,
    /// Whether it is paused (no entries, no steps run).
    pub paused: bool,
    /// The definition of that version.
    pub def: JourneyDef,
}

fn parse_def(body: &str) -> Result<JourneyDef, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Stored(format!("a stored journey is unreadable: {e}")))
}

/// Saves `def` as the next version of journey `id`; returns the version.
pub async fn save_journey(conn: &mut AnyConnection, id: &str, def: &JourneyDef, now: i64) -> Result<i64, StoreError> {
    let body = serde_json::to_string(def).map_err(|e| StoreError::Stored(e.to_string()))?;
    let current: Option<i64> =
        sqlx::query("SELECT MAX(version) FROM journeys WHERE id = $1").bind(id).fetch_one(&mut *conn).await?.get(0);
    let version = current.unwrap_or(0).checked_add(1).ok_or_else(|| StoreError::Stored("too many versions".into()))?;
    sqlx::query("INSERT INTO journeys (id, version, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(version)
        .bind(&body)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO journey_heads (id, version, paused, updated_at) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(version)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(version)
}

/// Pauses or resumes a journey; false when there is none.
pub async fn set_paused(conn: &mut AnyConnection, id: &str, paused: bool, now: i64) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE journey_heads SET paused = $1, updated_at = $2 WHERE id = $3")
        .bind(paused as i64)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// A journey's current version.
pub async fn journey(conn: &mut AnyConnection, id: &str) -> Result<Option<Saved>, StoreError> {
    let row = sqlx::query(
        "SELECT h.id, h.version, h.paused, j.body FROM journey_heads h \
         JOIN journeys j ON j.id = h.id AND j.version = h.version WHERE h.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Saved {
            id: r.get(0),
            version: r.get(1),
            paused: r.get::<i64, _>(2) != 0,
            def: parse_def(&r.get::<String, _>(3))?,
        })
    })
    .transpose()
}

/// Every journey's current version.
pub async fn journeys(conn: &mut AnyConnection) -> Result<Vec<Saved>, StoreError> {
    let rows = sqlx::query(
        "SELECT h.id, h.version, h.paused, j.body FROM journey_heads h \
         JOIN journeys j ON j.id = h.id AND j.version = h.version ORDER BY h.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Saved {
                id: r.get(0),
                version: r.get(1),
                paused: r.get::<i64, _>(2) != 0,
                def: parse_def(&r.get::<String, _>(3))?,
            })
        })
        .collect()
}

/// One version of a journey (customers finish on the version they entered).
pub async fn journey_version(
    conn: &mut AnyConnection,
    id: &str,
    version: i64,
) -> Result<Option<JourneyDef>, StoreError> {
    let row = sqlx::query("SELECT body FROM journeys WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| parse_def(&r.get::<String, _>(0))).transpose()
}

/// Where a customer is in a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionRow {
    /// The journey.
    pub journey_id: String,
    /// The customer (root profile id).
    pub customer_id: String,
    /// The version they entered.
    pub version: i64,
    /// Their entry number (1 for the first; a restart is a new entry).
    pub entry: i64,
    /// The step to run when due (None once ended).
    pub step: Option<i64>,
    /// When it falls due (unix ms).
    pub due_at: i64,
    /// `active`, `completed` or `exited`.
    pub status: String,
    /// Why it ended, once it has.
    pub reason: Option<String>,
}

const POSITION_COLUMNS: &str = "journey_id, customer_id, version, entry, step, due_at, status, reason";

fn position_of_row(r: &sqlx::any::AnyRow) -> PositionRow {
    PositionRow {
        journey_id: r.get(0),
        customer_id: r.get(1),
        version: r.get(2),
        entry: r.get(3),
        step: r.get(4),
        due_at: r.get(5),
        status: r.get(6),
        reason: r.get(7),
    }
}

/// A customer's position in a journey.
pub async fn position(
    conn: &mut AnyConnection,
    journey: &str,
    customer: &str,
) -> Result<Option<PositionRow>, StoreError> {
    let sql = format!("SELECT {POSITION_COLUMNS} FROM journey_positions WHERE journey_id = $1 AND customer_id = $2");
    Ok(sqlx::query(&sql).bind(journey).bind(customer).fetch_optional(&mut *conn).await?.as_ref().map(position_of_row))
}

/// Writes a customer's position (entering, restarting, exiting), clearing any lease.
pub async fn put_position(conn: &mut AnyConnection, p: &PositionRow, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_positions (journey_id, customer_id, version, entry, step, due_at, status, reason, \
         lease_owner, lease_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9) \
         ON CONFLICT (journey_id, customer_id) DO UPDATE SET version = excluded.version, entry = excluded.entry, \
         step = excluded.step, due_at = excluded.due_at, status = excluded.status, reason = excluded.reason, \
         lease_owner = NULL, lease_until = NULL, updated_at = excluded.updated_at",
    )
    .bind(&p.journey_id)
    .bind(&p.customer_id)
    .bind(p.version)
    .bind(p.entry)
    .bind(p.step)
    .bind(p.due_at)
    .bind(&p.status)
    .bind(&p.reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a leased position on, if `owner` still holds its lease for that entry; false when
/// another engine took it over (then this one's result is dropped).
pub async fn advance_leased(
    conn: &mut AnyConnection,
    p: &PositionRow,
    owner: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE journey_positions SET step = $1, due_at = $2, status = $3, reason = $4, lease_owner = NULL, \
         lease_until = NULL, updated_at = $5 WHERE journey_id = $6 AND customer_id = $7 AND entry = $8 \
         AND lease_owner = $9",
    )
    .bind(p.step)
    .bind(p.due_at)
    .bind(&p.status)
    .bind(&p.reason)
    .bind(now)
    .bind(&p.journey_id)
    .bind(&p.customer_id)
    .bind(p.entry)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Leases up to `limit` due positions of unpaused journeys to `owner` until `lease_until`.
/// On PostgreSQL several engines claim at once without waiting on each other
/// (`FOR UPDATE SKIP LOCKED`); a lease that ran out (its engine died) is claimed again.
pub async fn claim_due(
    conn: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<PositionRow>, StoreError> {
    let lock = if backend == Backend::Postgres { "FOR UPDATE OF p SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE journey_positions SET lease_owner = $1, lease_until = $2 WHERE (journey_id, customer_id) IN (\
           SELECT p.journey_id, p.customer_id FROM journey_positions p JOIN journey_heads h ON h.id = p.journey_id \
           WHERE p.status = 'active' AND p.due_at <= $3 AND h.paused = 0 \
           AND (p.lease_until IS NULL OR p.lease_until < $3) ORDER BY p.due_at LIMIT $4 {lock}) \
         RETURNING {POSITION_COLUMNS}"
    );
    let rows = sqlx::query(&sql).bind(owner).bind(lease_until).bind(now).bind(limit).fetch_all(&mut *conn).await?;
    let mut out: Vec<PositionRow> = rows.iter().map(position_of_row).collect();
    out.sort_by_key(|p| p.due_at);
    Ok(out)
}

/// Positions per journey and step, for the console: (step index or None when ended, status, count).
pub async fn step_counts(
    conn: &mut AnyConnection,
    journey: &str,
) -> Result<Vec<(Option<i64>, String, i64)>, StoreError> {
    Ok(sqlx::query(
        "SELECT step, status, COUNT(*) FROM journey_positions WHERE journey_id = $1 GROUP BY step, status ORDER BY step",
    )
    .bind(journey)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect())
}

/// A send as recorded under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRow {
    /// journey/version/customer/entry/step.
    pub key: String,
    /// The journey.
    pub journey_id: String,
    /// The customer.
    pub customer_id: String,
    /// The step id.
    pub step_id: String,
    /// The channel.
    pub channel: String,
    /// The template.
    pub template: String,
    /// `pending` (recorded before the channel was called), `sent`, `skipped` or `failed`.
    pub status: String,
    /// Why it was skipped or failed, or what was used.
    pub reason: Option<String>,
    /// The consent purpose checked.
    pub purpose: String,
    /// Channel calls made.
    pub attempts: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

const SEND_COLUMNS: &str =
    "idem_key, journey_id, customer_id, step_id, channel, template, status, reason, purpose, attempts, updated_at";

fn send_of_row(r: &sqlx::any::AnyRow) -> SendRow {
    SendRow {
        key: r.get(0),
        journey_id: r.get(1),
        customer_id: r.get(2),
        step_id: r.get(3),
        channel: r.get(4),
        template: r.get(5),
        status: r.get(6),
        reason: r.get(7),
        purpose: r.get(8),
        attempts: r.get(9),
        updated_at: r.get(10),
    }
}

/// A send by its key.
pub async fn send(conn: &mut AnyConnection, key: &str) -> Result<Option<SendRow>, StoreError> {
    let sql = format!("SELECT {SEND_COLUMNS} FROM journey_sends WHERE idem_key = $1");
    Ok(sqlx::query(&sql).bind(key).fetch_optional(&mut *conn).await?.as_ref().map(send_of_row))
}

/// What a send step is, before the channel is called.
#[derive(Debug, Clone)]
pub struct NewSend<'a> {
    /// The idempotency key.
    pub key: &'a str,
    /// The journey.
    pub journey_id: &'a str,
    /// The version.
    pub version: i64,
    /// The customer.
    pub customer_id: &'a str,
    /// The entry.
    pub entry: i64,
    /// The step id.
    pub step_id: &'a str,
    /// The channel.
    pub channel: &'a str,
    /// The template.
    pub template: &'a str,
    /// The consent purpose.
    pub purpose: &'a str,
}

/// Records a send under its key with `status` (`pending` before the channel is called, or
/// `skipped` with the reason); does nothing when the key is recorded already. Returns whether
/// this call recorded it.
pub async fn record_send(
    conn: &mut AnyConnection,
    s: &NewSend<'_>,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO journey_sends (idem_key, journey_id, version, customer_id, entry, step_id, channel, template, \
         status, reason, purpose, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $12) ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(s.key)
    .bind(s.journey_id)
    .bind(s.version)
    .bind(s.customer_id)
    .bind(s.entry)
    .bind(s.step_id)
    .bind(s.channel)
    .bind(s.template)
    .bind(status)
    .bind(reason)
    .bind(s.purpose)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Counts one more channel call for a pending send (before it is made).
pub async fn count_attempt(conn: &mut AnyConnection, key: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE journey_sends SET attempts = attempts + 1, updated_at = $1 WHERE idem_key = $2")
        .bind(now)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Settles a pending send: `sent`, `failed` (dead-lettered) or `skipped`, with the reason.
pub async fn settle_send(
    conn: &mut AnyConnection,
    key: &str,
    status: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE journey_sends SET status = $1, reason = $2, updated_at = $3 WHERE idem_key = $4")
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A customer's sends, newest first (all journeys when `journey` is None).
pub async fn sends_of(
    conn: &mut AnyConnection,
    customer: &str,
    journey: Option<&str>,
    limit: i64,
) -> Result<Vec<SendRow>, StoreError> {
    let sql = format!(
        "SELECT {SEND_COLUMNS} FROM journey_sends WHERE customer_id = $1 AND ($2 = '' OR journey_id = $2) \
         ORDER BY updated_at DESC, idem_key LIMIT $3"
    );
    Ok(sqlx::query(&sql)
        .bind(customer)
        .bind(journey.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(send_of_row)
        .collect())
}

/// Messages sent to a customer since `since` (unix ms), across channels and journeys.
pub async fn sent_since(conn: &mut AnyConnection, customer: &str, since: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) FROM journey_sends WHERE customer_id = $1 AND status IN ('sent', 'pending') AND updated_at >= $2",
    )
    .bind(customer)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?
    .get(0))
}

/// One line of the decision log: a send, a skip, a deferral, an entry or an exit, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The journey.
    pub journey_id: String,
    /// The customer.
    pub customer_id: String,
    /// The step, if one.
    pub step_id: Option<String>,
    /// `entered`, `restarted`, `exited`, `completed`, `sent`, `skipped`, `deferred`, `failed`,
    /// `resumed` (a waited-for event came), `timed_out`, `trait_updated`, `points_granted`,
    /// `offer_issued`, `held_out`.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// The consent purpose used, if one.
    pub purpose: Option<String>,
    /// When (unix ms).
    pub at: i64,
}

/// Appends a decision.
pub async fn log(conn: &mut AnyConnection, l: &LogLine, id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_log (id, journey_id, customer_id, step_id, outcome, reason, purpose, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(&l.journey_id)
    .bind(&l.customer_id)
    .bind(&l.step_id)
    .bind(&l.outcome)
    .bind(&l.reason)
    .bind(&l.purpose)
    .bind(l.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A customer's decisions, oldest first.
pub async fn log_of(conn: &mut AnyConnection, customer: &str, limit: i64) -> Result<Vec<LogLine>, StoreError> {
    Ok(sqlx::query(
        "SELECT journey_id, customer_id, step_id, outcome, reason, purpose, at FROM journey_log \
         WHERE customer_id = $1 ORDER BY at, id LIMIT $2",
    )
    .bind(customer)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| LogLine {
        journey_id: r.get(0),
        customer_id: r.get(1),
        step_id: r.get(2),
        outcome: r.get(3),
        reason: r.get(4),
        purpose: r.get(5),
        at: r.get(6),
    })
    .collect())
}

/// Puts an address on the suppression list (bounce, complaint, unsubscribe).
pub async fn suppress(conn: &mut AnyConnection, address: &str, reason: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO suppressions (address, reason, at) VALUES ($1, $2, $3) \
         ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, at = excluded.at",
    )
    .bind(address.to_ascii_lowercase())
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether an address is suppressed.
pub async fn is_suppressed(conn: &mut AnyConnection, address: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM suppressions WHERE address = $1")
        .bind(address.to_ascii_lowercase())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Stores an on-site message for a customer.
pub async fn put_onsite(
    conn: &mut AnyConnection,
    id: &str,
    customer: &str,
    journey: &str,
    title: Option<&str>,
    body: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO onsite_messages (id, customer_id, journey_id, title, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(customer)
    .bind(journey)
    .bind(title)
    .bind(body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A customer's on-site messages, newest first: (id, journey, title, body, created_at).
#[allow(clippy::type_complexity)]
pub async fn onsite_of(
    conn: &mut AnyConnection,
    customer: &str,
    limit: i64,
) -> Result<Vec<(String, String, Option<String>, String, i64)>, StoreError> {
    Ok(sqlx::query(
        "SELECT id, journey_id, title, body, created_at FROM onsite_messages WHERE customer_id = $1 \
         ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(customer)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect())
}

/// The send guardrails (defaults until set).
pub async fn guardrails(conn: &mut AnyConnection) -> Result<Guardrails, StoreError> {
    let row =
        sqlx::query("SELECT body FROM campaign_settings WHERE name = 'guardrails'").fetch_optional(&mut *conn).await?;
    match row {
        Some(r) => serde_json::from_str(&r.get::<String, _>(0)).map_err(|e| StoreError::Stored(e.to_string())),
        None => Ok(Guardrails::default()),
    }
}

/// Saves the send guardrails (checked by the caller).
pub async fn set_guardrails(conn: &mut AnyConnection, g: &Guardrails) -> Result<(), StoreError> {
    let body = serde_json::to_string(g).map_err(|e| StoreError::Stored(e.to_string()))?;
    sqlx::query(
        "INSERT INTO campaign_settings (name, body) VALUES ('guardrails', $1) \
         ON CONFLICT (name) DO UPDATE SET body = excluded.body",
    )
    .bind(body)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes a person's journey rows (erasure): positions, sends, log, on-site messages and watches.
pub async fn forget(conn: &mut AnyConnection, customers: &[String]) -> Result<(), StoreError> {
    if customers.is_empty() {
        return Ok(());
    }
    for table in ["journey_positions", "journey_sends", "journey_log", "onsite_messages", "journey_watches"] {
        let sql =
            format!("DELETE FROM {table} WHERE customer_id IN {}", tailor_store::placeholders(1, customers.len()));
        tailor_store::bind_all(sqlx::query(&sql), customers).execute(&mut *conn).await?;
    }
    Ok(())
}
