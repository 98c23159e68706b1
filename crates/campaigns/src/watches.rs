//! Items customers watch without saying so: one viewed or added while sold out (it may come
//! back in stock), one viewed at a price (it may drop). A watch fires once — when its item is
//! back, or cheaper than when it was viewed — and journeys start from that; the message then
//! shows the watches that fired, re-checked at send time.

use sqlx::{AnyConnection, Row};

use crate::StoreError;

/// A watch for an item to come back in stock (and the journey trigger it fires).
pub const BACK_IN_STOCK: &str = "back_in_stock";
/// A watch for a viewed item's price to drop (and the journey trigger it fires).
pub const PRICE_DROP: &str = "price_drop";

/// One watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// [`BACK_IN_STOCK`] or [`PRICE_DROP`].
    pub kind: String,
    /// The customer (root profile).
    pub customer_id: String,
    /// The item.
    pub sku: String,
    /// The price seen (price drops), in cents.
    pub price_cents: Option<i64>,
    /// When it was (last) set (unix ms).
    pub created_at: i64,
    /// When it fired, if it did.
    pub fired_at: Option<i64>,
}

const COLUMNS: &str = "kind, customer_id, sku, price_cents, created_at, fired_at";

fn of_row(r: &sqlx::any::AnyRow) -> Watch {
    Watch {
        kind: r.get(0),
        customer_id: r.get(1),
        sku: r.get(2),
        price_cents: r.get(3),
        created_at: r.get(4),
        fired_at: r.get(5),
    }
}

/// Sets (or sets again, open) a watch of `kind` by `customer` on `sku`.
pub async fn watch(
    conn: &mut AnyConnection,
    kind: &str,
    customer: &str,
    sku: &str,
    price_cents: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journey_watches (kind, customer_id, sku, price_cents, created_at, fired_at) \
         VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (kind, customer_id, sku) DO UPDATE SET \
         price_cents = excluded.price_cents, created_at = excluded.created_at, fired_at = NULL",
    )
    .bind(kind)
    .bind(customer)
    .bind(sku)
    .bind(price_cents)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether any watch is open.
pub async fn any_open(conn: &mut AnyConnection) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM journey_watches WHERE fired_at IS NULL LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The items watched by open watches, each once per kind: (kind, sku, the highest price seen
/// by a watcher), so a round checks each item once however many watch it.
pub async fn open_items(conn: &mut AnyConnection) -> Result<Vec<(String, String, Option<i64>)>, StoreError> {
    Ok(sqlx::query(
        "SELECT kind, sku, MAX(price_cents) FROM journey_watches WHERE fired_at IS NULL GROUP BY kind, sku ORDER BY kind, sku",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect())
}

/// The open watches of `kind` on `sku`.
pub async fn open_on(conn: &mut AnyConnection, kind: &str, sku: &str) -> Result<Vec<Watch>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM journey_watches WHERE fired_at IS NULL AND kind = $1 AND sku = $2 ORDER BY created_at"
    );
    Ok(sqlx::query(&sql).bind(kind).bind(sku).fetch_all(&mut *conn).await?.iter().map(of_row).collect())
}

/// Fires `w` at `now`; false when it fired already (another engine, an earlier round).
pub async fn fire(conn: &mut AnyConnection, w: &Watch, now: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE journey_watches SET fired_at = $1 WHERE kind = $2 AND customer_id = $3 AND sku = $4 \
         AND fired_at IS NULL",
    )
    .bind(now)
    .bind(&w.kind)
    .bind(&w.customer_id)
    .bind(&w.sku)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Drops open watches set before `before` (interest fades; the table stays small).
pub async fn expire(conn: &mut AnyConnection, before: i64) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM journey_watches WHERE fired_at IS NULL AND created_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// The customer's watches of `kind` that fired since `since`, newest first.
pub async fn fired_for(
    conn: &mut AnyConnection,
    kind: &str,
    customer: &str,
    since: i64,
) -> Result<Vec<Watch>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM journey_watches WHERE kind = $1 AND customer_id = $2 AND fired_at >= $3 \
         ORDER BY fired_at DESC, sku"
    );
    Ok(sqlx::query(&sql)
        .bind(kind)
        .bind(customer)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(of_row)
        .collect())
}
