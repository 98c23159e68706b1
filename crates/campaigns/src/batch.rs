//! The scheduler's rows read and written for a whole batch of due positions at once: the sends
//! already recorded under their keys, each customer's recent sends (frequency caps) and sent
//! history (channel choice, fatigue), the entries held out, earlier deferrals, the suppressed
//! addresses among a batch, pending sends recorded before the channel is called,
//! sends marked sent right after the server accepted them, and decision lines appended —
//! each one statement (or a few) per batch instead of one per customer.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;
use tailor_store::{bind_all, placeholders, Row};

use crate::store::{LogLine, NewSend, PositionRow, SendRow};
use crate::StoreError;

/// Values per `IN` list, and bound values per multi-row statement. SQLite looks a parameter's
/// name up by a linear scan (sqlx binds each one by name), so a statement's binding costs the
/// square of its parameters: a few hundred keep it negligible next to a round-trip.
const IN_LIST: usize = 250;
const PARAMS: usize = 100;

/// The sends recorded under `keys`, by key.
pub async fn sends_by_keys(conn: &mut AnyConnection, keys: &[String]) -> Result<HashMap<String, SendRow>, StoreError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(IN_LIST) {
        let sql = format!(
            "SELECT idem_key, journey_id, customer_id, step_id, channel, template, status, reason, purpose, attempts, \
             updated_at FROM journey_sends WHERE idem_key IN {}",
            placeholders(1, chunk.len())
        );
        for r in bind_all(sqlx::query(&sql), chunk).fetch_all(&mut *conn).await? {
            let s = SendRow {
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
            };
            out.insert(s.key.clone(), s);
        }
    }
    Ok(out)
}

/// Messages sent (or pending) to each of `customers` since `day` and since `week` (unix ms;
/// `week` ≤ `day`): (last day, last week), across channels and journeys. Absent: none.
pub async fn sent_counts(
    conn: &mut AnyConnection,
    customers: &[String],
    day: i64,
    week: i64,
) -> Result<HashMap<String, (i64, i64)>, StoreError> {
    let mut out = HashMap::new();
    for chunk in customers.chunks(IN_LIST) {
        let sql = format!(
            "SELECT customer_id, CAST(SUM(CASE WHEN updated_at >= $1 THEN 1 ELSE 0 END) AS BIGINT), COUNT(*) \
             FROM journey_sends WHERE status IN ('sent', 'pending') AND updated_at >= $2 AND customer_id IN {} \
             GROUP BY customer_id",
            placeholders(3, chunk.len())
        );
        for r in bind_all(sqlx::query(&sql).bind(day).bind(week), chunk).fetch_all(&mut *conn).await? {
            out.insert(r.get::<String, _>(0), (r.get::<i64, _>(1), r.get::<i64, _>(2)));
        }
    }
    Ok(out)
}

/// Each customer's messages sent since `since` (unix ms): (channel, when), oldest first.
pub async fn sent_history(
    conn: &mut AnyConnection,
    customers: &[String],
    since: i64,
) -> Result<HashMap<String, Vec<(String, i64)>>, StoreError> {
    let mut out: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for chunk in customers.chunks(IN_LIST) {
        let sql = format!(
            "SELECT customer_id, channel, updated_at FROM journey_sends WHERE status = 'sent' AND updated_at >= $1 \
             AND customer_id IN {} ORDER BY customer_id, updated_at, idem_key",
            placeholders(2, chunk.len())
        );
        for r in bind_all(sqlx::query(&sql).bind(since), chunk).fetch_all(&mut *conn).await? {
            out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
        }
    }
    Ok(out)
}

/// Which of `entries` (journey, customer, entry) are held out; an entry recorded before
/// holdouts existed (no row) is not.
pub async fn held_out_among(
    conn: &mut AnyConnection,
    entries: &[(String, String, i64)],
) -> Result<HashSet<(String, String, i64)>, StoreError> {
    Ok(entry_rows(conn, entries, "holdout <> 0", |_| ()).await?.into_keys().collect())
}

/// What targeting recorded at each of `entries` (journey, customer, entry) that is not held out
/// (its JSON), where anything was.
pub async fn targeting_among(
    conn: &mut AnyConnection,
    entries: &[(String, String, i64)],
) -> Result<HashMap<(String, String, i64), String>, StoreError> {
    entry_rows(conn, entries, "holdout = 0 AND targeting IS NOT NULL", |r| r.get(3)).await
}

/// The rows of `journey_entries` for `entries` where `filter` holds, each read by `read` (the
/// row's columns: journey, customer, entry, targeting), by entry.
async fn entry_rows<T>(
    conn: &mut AnyConnection,
    entries: &[(String, String, i64)],
    filter: &str,
    read: impl Fn(&tailor_store::AnyRow) -> T,
) -> Result<HashMap<(String, String, i64), T>, StoreError> {
    let wanted: HashSet<&(String, String, i64)> = entries.iter().collect();
    let mut by_journey: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> = Default::default();
    for (j, c, _) in entries {
        by_journey.entry(j.as_str()).or_default().insert(c.as_str());
    }
    let mut out = HashMap::new();
    for (journey, customers) in by_journey {
        let customers: Vec<&str> = customers.into_iter().collect();
        for chunk in customers.chunks(IN_LIST) {
            let sql = format!(
                "SELECT journey_id, customer_id, entry, targeting FROM journey_entries WHERE journey_id = $1 \
                 AND {filter} AND customer_id IN {}",
                placeholders(2, chunk.len())
            );
            for r in bind_all(sqlx::query(&sql).bind(journey), chunk).fetch_all(&mut *conn).await? {
                let k: (String, String, i64) = (r.get(0), r.get(1), r.get(2));
                if wanted.contains(&k) {
                    out.insert(k, read(&r));
                }
            }
        }
    }
    Ok(out)
}

/// The deferrals logged for `customers` whose reason starts with `prefix`: (customer,
/// journey, step, reason).
pub async fn deferrals(
    conn: &mut AnyConnection,
    customers: &[String],
    prefix: &str,
) -> Result<Vec<(String, String, Option<String>, String)>, StoreError> {
    let mut out = Vec::new();
    for chunk in customers.chunks(IN_LIST) {
        let sql = format!(
            "SELECT customer_id, journey_id, step_id, reason FROM journey_log WHERE outcome = 'deferred' \
             AND reason LIKE $1 AND customer_id IN {}",
            placeholders(2, chunk.len())
        );
        for r in bind_all(sqlx::query(&sql).bind(format!("{prefix}%")), chunk).fetch_all(&mut *conn).await? {
            out.push((r.get(0), r.get(1), r.get(2), r.get(3)));
        }
    }
    Ok(out)
}

/// Which of `addresses` are on the suppression list (lower-cased).
pub async fn suppressed_among(conn: &mut AnyConnection, addresses: &[String]) -> Result<HashSet<String>, StoreError> {
    let lower: Vec<String> = addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mut out = HashSet::new();
    for chunk in lower.chunks(IN_LIST) {
        let sql = format!("SELECT address FROM suppressions WHERE address IN {}", placeholders(1, chunk.len()));
        for r in bind_all(sqlx::query(&sql), chunk).fetch_all(&mut *conn).await? {
            out.insert(r.get::<String, _>(0));
        }
    }
    Ok(out)
}

/// Records each send as `pending` with what it says (`reason`) and one more channel call counted,
/// before any channel is called: a new key is inserted with one attempt, a key left pending
/// by a crash counts another attempt. A key settled already is left as it is.
pub async fn record_pending(
    conn: &mut AnyConnection,
    sends: &[(NewSend<'_>, String)],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in sends.chunks(PARAMS / 11) {
        let mut sql = String::from(
            "INSERT INTO journey_sends (idem_key, journey_id, version, customer_id, entry, step_id, channel, template, \
             status, reason, purpose, attempts, created_at, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 11;
            if i > 0 {
                sql.push(',');
            }
            let p: Vec<String> = (1..=11).map(|k| format!("${}", b + k)).collect();
            sql.push_str(&format!(
                "({},{},{},{},{},{},{},{},'pending',{},{},1,{},{})",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[10]
            ));
        }
        sql.push_str(
            " ON CONFLICT (idem_key) DO UPDATE SET attempts = journey_sends.attempts + 1, \
             reason = excluded.reason, updated_at = excluded.updated_at WHERE journey_sends.status = 'pending'",
        );
        let mut q = sqlx::query(&sql);
        for (s, reason) in chunk {
            q = q
                .bind(s.key)
                .bind(s.journey_id)
                .bind(s.version)
                .bind(s.customer_id)
                .bind(s.entry)
                .bind(s.step_id)
                .bind(s.channel)
                .bind(s.template)
                .bind(reason.as_str())
                .bind(s.purpose)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Marks sends `sent` (the server accepted them) and appends their decision lines, in the
/// caller's transaction.
pub async fn mark_sent(
    conn: &mut AnyConnection,
    keys: &[&str],
    lines: &[(String, LogLine)],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in keys.chunks(IN_LIST) {
        let sql = format!(
            "UPDATE journey_sends SET status = 'sent', updated_at = $1 WHERE status = 'pending' AND idem_key IN {}",
            placeholders(2, chunk.len())
        );
        bind_all(sqlx::query(&sql).bind(now), chunk).execute(&mut *conn).await?;
    }
    log_many(conn, lines).await
}

/// Moves leased positions on (step, due time, status, reason; the lease cleared) where `owner`
/// still holds their lease, a few rows per statement; returns the (journey, customer) of each
/// position moved (another engine took the others over, and this one's result is dropped).
pub async fn advance_leased(
    conn: &mut AnyConnection,
    moved: &[PositionRow],
    owner: &str,
    now: i64,
) -> Result<HashSet<(String, String)>, StoreError> {
    let mut out = HashSet::new();
    for chunk in moved.chunks(PARAMS / 7) {
        let mut rows = Vec::with_capacity(chunk.len());
        for i in 0..chunk.len() {
            let b = 2 + i * 7;
            rows.push(format!("(${},${},${},${},${},${},${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7));
        }
        // VALUES columns are column1… on both backends.
        let sql = format!(
            "UPDATE journey_positions SET step = v.column4, due_at = v.column5, status = v.column6, \
             reason = v.column7, lease_owner = NULL, lease_until = NULL, updated_at = $1 \
             FROM (VALUES {}) AS v WHERE journey_positions.journey_id = v.column1 \
             AND journey_positions.customer_id = v.column2 AND journey_positions.entry = v.column3 \
             AND journey_positions.lease_owner = $2 \
             RETURNING journey_positions.journey_id, journey_positions.customer_id",
            rows.join(",")
        );
        let mut q = sqlx::query(&sql).bind(now).bind(owner);
        for p in chunk {
            q = q
                .bind(p.journey_id.as_str())
                .bind(p.customer_id.as_str())
                .bind(p.entry)
                .bind(p.step)
                .bind(p.due_at)
                .bind(p.status.as_str())
                .bind(p.reason.as_deref());
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.insert((r.get(0), r.get(1)));
        }
    }
    Ok(out)
}

/// Appends decision lines `(id, line)`.
pub async fn log_many(conn: &mut AnyConnection, lines: &[(String, LogLine)]) -> Result<(), StoreError> {
    for chunk in lines.chunks(PARAMS / 8) {
        let mut sql = String::from(
            "INSERT INTO journey_log (id, journey_id, customer_id, step_id, outcome, reason, purpose, at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 8;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
        }
        let mut q = sqlx::query(&sql);
        for (id, l) in chunk {
            q = q
                .bind(id.as_str())
                .bind(l.journey_id.as_str())
                .bind(l.customer_id.as_str())
                .bind(l.step_id.as_deref())
                .bind(l.outcome.as_str())
                .bind(l.reason.as_str())
                .bind(l.purpose.as_deref())
                .bind(l.at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
