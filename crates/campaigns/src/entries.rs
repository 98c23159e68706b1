//! Entries and holdouts: every entry into a journey is recorded with whether the customer is
//! held out, assigned at entry from a stable hash of (journey, customer) so the same customer is
//! always on the same side of a journey's holdout; the report reads these rows.

use sqlx::AnyConnection;
use tailor_store::Row;

use crate::StoreError;

/// A stable number in 0..10,000 for a customer in a journey (FNV-1a, a different salt from the
/// splits' bucket so a split and the holdout do not line up).
pub fn holdout_bucket(journey: &str, customer: &str) -> u32 {
    bucket(b"holdout\0", journey, customer)
}

/// Whether a customer is in a journey's exploration share of `percent` percent: sent whatever
/// their predicted uplift (a salt of its own, so it does not line up with the holdout).
pub fn is_explored(journey: &str, customer: &str, percent: f64) -> bool {
    let share = (percent.clamp(0.0, 100.0) * 100.0).round() as u32;
    bucket(b"explore\0", journey, customer) < share
}

fn bucket(salt: &[u8], journey: &str, customer: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.iter().copied().chain(journey.bytes()).chain([0]).chain(customer.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A final avalanche: FNV's low bits are weak on short keys that differ at the end.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % 10_000) as u32
}

/// Whether a customer is in a journey's holdout of `percent` (0–50) percent.
pub fn is_held_out(journey: &str, customer: &str, percent: f64) -> bool {
    let share = (percent.clamp(0.0, 100.0) * 100.0).round() as u32;
    holdout_bucket(journey, customer) < share
}

/// One entry into a journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    /// The journey.
    pub journey_id: String,
    /// The customer (root profile id).
    pub customer_id: String,
    /// The entry number.
    pub entry: i64,
    /// The version entered.
    pub version: i64,
    /// Whether the customer is held out (sent nothing).
    pub holdout: bool,
    /// When the trigger happened (the event's time, unix ms): the attribution window starts here.
    pub entered_at: i64,
    /// The trigger event's place in the log: only later goal events count.
    pub seq: i64,
    /// What targeting knew and decided at entry (JSON: the customer's facts, predicted uplift,
    /// side and why), kept so that entries train the next uplift model; none when neither a
    /// holdout nor targeting needed it.
    pub targeting: Option<String>,
}

/// Records an entry (once per journey, customer and entry).
pub async fn record_entry(conn: &mut AnyConnection, e: &EntryRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_entries (journey_id, customer_id, entry, version, holdout, entered_at, seq, targeting) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (journey_id, customer_id, entry) DO NOTHING",
    )
    .bind(&e.journey_id)
    .bind(&e.customer_id)
    .bind(e.entry)
    .bind(e.version)
    .bind(i64::from(e.holdout))
    .bind(e.entered_at)
    .bind(e.seq)
    .bind(e.targeting.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether this entry is held out; None when it was not recorded (entered before holdouts).
pub async fn held_out(
    conn: &mut AnyConnection,
    journey: &str,
    customer: &str,
    entry: i64,
) -> Result<Option<bool>, StoreError> {
    Ok(sqlx::query("SELECT holdout FROM journey_entries WHERE journey_id = $1 AND customer_id = $2 AND entry = $3")
        .bind(journey)
        .bind(customer)
        .bind(entry)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.get::<i64, _>(0) != 0))
}

/// What targeting decided for this entry (its JSON), when anything was recorded.
pub async fn targeting_of(
    conn: &mut AnyConnection,
    journey: &str,
    customer: &str,
    entry: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query("SELECT targeting FROM journey_entries WHERE journey_id = $1 AND customer_id = $2 AND entry = $3")
        .bind(journey)
        .bind(customer)
        .bind(entry)
        .fetch_optional(&mut *conn)
        .await?
        .and_then(|r| r.get::<Option<String>, _>(0)))
}

/// A stored uplift model.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    /// Its name.
    pub name: String,
    /// The model (JSON of `tailor_targeting::live::LiveModel`).
    pub body: String,
    /// The journey whose entries trained it.
    pub journey_id: String,
    /// When it was trained (unix ms).
    pub trained_at: i64,
}

/// Stores (or replaces) an uplift model.
pub async fn put_model(conn: &mut AnyConnection, m: &StoredModel) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO uplift_models (name, body, journey_id, trained_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, journey_id = excluded.journey_id, \
         trained_at = excluded.trained_at",
    )
    .bind(&m.name)
    .bind(&m.body)
    .bind(&m.journey_id)
    .bind(m.trained_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn model_of(r: &tailor_store::AnyRow) -> StoredModel {
    StoredModel { name: r.get(0), body: r.get(1), journey_id: r.get(2), trained_at: r.get(3) }
}

/// An uplift model by name.
pub async fn model(conn: &mut AnyConnection, name: &str) -> Result<Option<StoredModel>, StoreError> {
    Ok(sqlx::query("SELECT name, body, journey_id, trained_at FROM uplift_models WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(model_of))
}

/// Every uplift model, by name.
pub async fn models(conn: &mut AnyConnection) -> Result<Vec<StoredModel>, StoreError> {
    Ok(sqlx::query("SELECT name, body, journey_id, trained_at FROM uplift_models ORDER BY name LIMIT 1000")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(model_of)
        .collect())
}

/// Deletes an uplift model; whether it existed.
pub async fn delete_model(conn: &mut AnyConnection, name: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM uplift_models WHERE name = $1").bind(name).execute(&mut *conn).await?.rows_affected()
        > 0)
}

/// Every entry into a journey, oldest first (at most `limit`).
pub async fn entries_of(conn: &mut AnyConnection, journey: &str, limit: i64) -> Result<Vec<EntryRow>, StoreError> {
    Ok(sqlx::query(
        "SELECT journey_id, customer_id, entry, version, holdout, entered_at, seq, targeting FROM journey_entries \
         WHERE journey_id = $1 ORDER BY entered_at, customer_id, entry LIMIT $2",
    )
    .bind(journey)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| EntryRow {
        journey_id: r.get(0),
        customer_id: r.get(1),
        entry: r.get(2),
        version: r.get(3),
        holdout: r.get::<i64, _>(4) != 0,
        entered_at: r.get(5),
        seq: r.get(6),
        targeting: r.get(7),
    })
    .collect())
}

/// One send-step outcome of a journey for the report: (customer, entry, step, channel, status,
/// when, unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The customer.
    pub customer_id: String,
    /// The entry.
    pub entry: i64,
    /// The step id.
    pub step_id: String,
    /// The channel.
    pub channel: String,
    /// `sent`, `held_out`, `skipped`, `failed` or `pending`.
    pub status: String,
    /// Last change (unix ms).
    pub at: i64,
}

/// Every send row of a journey (sent, held out, skipped, failed), oldest first.
pub async fn outcomes_of(conn: &mut AnyConnection, journey: &str, limit: i64) -> Result<Vec<StepOutcome>, StoreError> {
    Ok(sqlx::query(
        "SELECT customer_id, entry, step_id, channel, status, updated_at FROM journey_sends WHERE journey_id = $1 \
         ORDER BY updated_at, idem_key LIMIT $2",
    )
    .bind(journey)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| StepOutcome {
        customer_id: r.get(0),
        entry: r.get(1),
        step_id: r.get(2),
        channel: r.get(3),
        status: r.get(4),
        at: r.get(5),
    })
    .collect())
}

/// Removes a person's entries (erasure).
pub async fn forget(conn: &mut AnyConnection, customers: &[String]) -> Result<(), StoreError> {
    if customers.is_empty() {
        return Ok(());
    }
    let sql =
        format!("DELETE FROM journey_entries WHERE customer_id IN {}", tailor_store::placeholders(1, customers.len()));
    tailor_store::bind_all(sqlx::query(&sql), customers).execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holdout_is_stable_and_near_its_share() {
        let held = (0..20_000).filter(|i| is_held_out("j", &format!("customer-{i}"), 10.0)).count();
        assert!((1_800..=2_200).contains(&held), "{held} of 20,000 held out at 10%");
        assert_eq!(is_held_out("j", "c-1", 10.0), is_held_out("j", "c-1", 10.0));
        assert!(!(0..1000).any(|i| is_held_out("j", &format!("c{i}"), 0.0)));
    }
}
