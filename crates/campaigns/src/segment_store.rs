//! Segment definitions and their members as rows: membership is kept up as events arrive (and
//! as time moves events out of their windows), so a count or a preview is one read.

use sqlx::AnyConnection;
use tailor_store::Row;

use crate::segment::SegmentDef;
use crate::StoreError;

/// A stored segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSegment {
    /// Its id.
    pub id: String,
    /// Its definition.
    pub def: SegmentDef,
    /// When it was last saved (unix ms).
    pub updated_at: i64,
}

fn parse(id: String, body: &str, updated_at: i64) -> Result<SavedSegment, StoreError> {
    let def = serde_json::from_str(body).map_err(|e| StoreError::Stored(format!("segment '{id}': {e}")))?;
    Ok(SavedSegment { id, def, updated_at })
}

/// Saves (or replaces) a segment and forgets its members: they are judged again.
pub async fn put_segment(conn: &mut AnyConnection, id: &str, def: &SegmentDef, now: i64) -> Result<(), StoreError> {
    let body = serde_json::to_string(def).map_err(|e| StoreError::Stored(e.to_string()))?;
    sqlx::query(
        "INSERT INTO segments (id, body, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(&body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM segment_members WHERE segment_id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// A segment by id.
pub async fn segment(conn: &mut AnyConnection, id: &str) -> Result<Option<SavedSegment>, StoreError> {
    let row = sqlx::query("SELECT id, body, updated_at FROM segments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| parse(r.get(0), &r.get::<String, _>(1), r.get(2))).transpose()
}

/// Every segment, by id.
pub async fn segments(conn: &mut AnyConnection) -> Result<Vec<SavedSegment>, StoreError> {
    sqlx::query("SELECT id, body, updated_at FROM segments ORDER BY id LIMIT 1000")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| parse(r.get(0), &r.get::<String, _>(1), r.get(2)))
        .collect()
}

/// Deletes a segment and its members; whether it existed.
pub async fn delete_segment(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    sqlx::query("DELETE FROM segment_members WHERE segment_id = $1").bind(id).execute(&mut *conn).await?;
    Ok(sqlx::query("DELETE FROM segments WHERE id = $1").bind(id).execute(&mut *conn).await?.rows_affected() > 0)
}

/// Since when a customer is a member (unix ms), if they are.
pub async fn member_since(conn: &mut AnyConnection, segment: &str, customer: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query("SELECT since FROM segment_members WHERE segment_id = $1 AND customer_id = $2")
        .bind(segment)
        .bind(customer)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.get(0)))
}

/// Records a customer as a member since `now` (already one: only marks them checked).
pub async fn add_member(conn: &mut AnyConnection, segment: &str, customer: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO segment_members (segment_id, customer_id, since, checked_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (segment_id, customer_id) DO UPDATE SET checked_at = excluded.checked_at",
    )
    .bind(segment)
    .bind(customer)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes a member; whether they were one.
pub async fn remove_member(conn: &mut AnyConnection, segment: &str, customer: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM segment_members WHERE segment_id = $1 AND customer_id = $2")
        .bind(segment)
        .bind(customer)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// How many members a segment has.
pub async fn count(conn: &mut AnyConnection, segment: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) FROM segment_members WHERE segment_id = $1")
        .bind(segment)
        .fetch_one(&mut *conn)
        .await?
        .get(0))
}

/// Members after `after` (a customer id; "" for the first), by id, at most `limit`: (customer,
/// since).
pub async fn members(
    conn: &mut AnyConnection,
    segment: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query(
        "SELECT customer_id, since FROM segment_members WHERE segment_id = $1 AND customer_id > $2 \
         ORDER BY customer_id LIMIT $3",
    )
    .bind(segment)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Members checked longest ago, before `before`, at most `limit`: those time may have moved out.
pub async fn stale_members(
    conn: &mut AnyConnection,
    segment: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query(
        "SELECT customer_id FROM segment_members WHERE segment_id = $1 AND checked_at < $2 \
         ORDER BY checked_at LIMIT $3",
    )
    .bind(segment)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Removes erased customers from every segment.
pub async fn forget(conn: &mut AnyConnection, customers: &[String]) -> Result<(), StoreError> {
    if customers.is_empty() {
        return Ok(());
    }
    let sql =
        format!("DELETE FROM segment_members WHERE customer_id IN {}", tailor_store::placeholders(1, customers.len()));
    tailor_store::bind_all(sqlx::query(&sql), customers).execute(&mut *conn).await?;
    Ok(())
}
