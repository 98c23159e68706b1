//! Orders as other engines read them: purchase lines by customer (for training), recent best
//! sellers and the order count. The order tables are this crate's; others read them here.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::graph::ProfileError;

/// One purchased line, attributed to the customer who stands for the buyer now.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseLine {
    /// The buyer's root profile: a merged customer's orders are one customer's.
    pub customer: String,
    /// The product.
    pub product_id: String,
    /// When the order completed (unix ms).
    pub ts: i64,
    /// Units (stock units).
    pub quantity: i64,
    /// The store it was bought at, if any.
    pub store_id: Option<String>,
}

/// Merges followed at most this deep (as [`crate::root_of`] does).
const MAX_MERGE_DEPTH: usize = 64;

/// Every purchase line of a known customer (orders without a profile are left out).
pub async fn purchases_by_customer(conn: &mut AnyConnection) -> Result<Vec<PurchaseLine>, ProfileError> {
    let mut parent: HashMap<String, Option<String>> = HashMap::new();
    for r in sqlx::query("SELECT id, merged_into FROM profiles").fetch_all(&mut *conn).await? {
        parent.insert(r.get(0), r.get(1));
    }
    let root = |id: &str| {
        let mut cur = id.to_string();
        for _ in 0..MAX_MERGE_DEPTH {
            match parent.get(&cur) {
                Some(Some(next)) => cur = next.clone(),
                _ => break,
            }
        }
        cur
    };
    let rows = sqlx::query(
        "SELECT o.profile_id, l.product_id, o.ts, l.quantity, o.store_id FROM orders o \
         JOIN order_lines l ON l.order_id = o.order_id WHERE o.profile_id IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut roots: HashMap<String, String> = HashMap::new();
    Ok(rows
        .iter()
        .map(|r| {
            let profile: String = r.get(0);
            let customer = roots.entry(profile.clone()).or_insert_with(|| root(&profile)).clone();
            PurchaseLine { customer, product_id: r.get(1), ts: r.get(2), quantity: r.get(3), store_id: r.get(4) }
        })
        .collect())
}

/// The `limit` products on most order lines since `since` (unix ms), most first (ties by id).
pub async fn best_sellers(conn: &mut AnyConnection, since: i64, limit: i64) -> Result<Vec<String>, ProfileError> {
    let rows = sqlx::query(
        "SELECT l.product_id, COUNT(*) FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
         WHERE o.ts >= $1 GROUP BY l.product_id ORDER BY COUNT(*) DESC, l.product_id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// How many orders were recorded (a change tells a model it has something new to learn).
pub async fn order_count(conn: &mut AnyConnection) -> Result<i64, ProfileError> {
    Ok(sqlx::query("SELECT COUNT(*) FROM orders").fetch_one(&mut *conn).await?.get(0))
}

/// One order of a customer, as the assistant and the console list it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderSummary {
    /// The retailer's order id.
    pub order_id: String,
    /// When it completed (unix ms).
    pub ts: i64,
    /// Total, cents.
    pub total_cents: i64,
    /// Refunded so far, cents.
    pub refunded_cents: i64,
    /// Currency.
    pub currency: String,
    /// The store it was bought at, if any.
    pub store_id: Option<String>,
}

/// The newest orders of the customer made of `members`, newest first, at most `limit`.
pub async fn recent_orders(
    conn: &mut AnyConnection,
    members: &[String],
    limit: i64,
) -> Result<Vec<OrderSummary>, ProfileError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT order_id, ts, total_cents, refunded_cents, currency, store_id FROM orders WHERE profile_id IN {} \
         ORDER BY ts DESC, order_id LIMIT {}",
        crate::graph::placeholders(1, members.len()),
        limit.clamp(1, 1000)
    );
    let rows = tailor_store::bind_all(sqlx::query(&sql), members).fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| OrderSummary {
            order_id: r.get(0),
            ts: r.get(1),
            total_cents: r.get(2),
            refunded_cents: r.get(3),
            currency: r.get(4),
            store_id: r.get(5),
        })
        .collect())
}

/// The lines the customer made of `members` bought, newest first, at most `limit`: (product,
/// order time in unix ms). Replenishment reads its habits from them.
pub async fn purchased(
    conn: &mut AnyConnection,
    members: &[String],
    limit: i64,
) -> Result<Vec<(String, i64)>, ProfileError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT l.product_id, o.ts FROM orders o JOIN order_lines l ON l.order_id = o.order_id \
         WHERE o.profile_id IN {} ORDER BY o.ts DESC, l.product_id LIMIT {}",
        crate::graph::placeholders(1, members.len()),
        limit.clamp(1, 10_000)
    );
    let rows = tailor_store::bind_all(sqlx::query(&sql), members).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
