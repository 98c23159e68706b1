//! The program's settings tables (earning rules, rewards, tiers): each row a name and its JSON
//! body, read back in order and replaced as a whole.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use tailor_store::Db;

use crate::error::LoyaltyError;

/// Every body of `table`, ordered by `order_by` (a column of the table).
pub(crate) async fn read_all<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    table: &'static str,
    order_by: &'static str,
) -> Result<Vec<T>, LoyaltyError> {
    let rows = sqlx::query(&format!("SELECT body FROM {table} ORDER BY {order_by}")).fetch_all(&mut *conn).await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()).collect())
}

/// Replaces every row of `table` with `items` (named by `name`) in one transaction; with
/// `positioned`, each row also keeps its place in the list.
pub(crate) async fn replace_all<T: Serialize>(
    db: &Db,
    table: &'static str,
    items: &[T],
    name: impl Fn(&T) -> &str,
    positioned: bool,
) -> Result<(), LoyaltyError> {
    let insert = if positioned {
        format!("INSERT INTO {table} (name, body, position) VALUES ($1, $2, $3)")
    } else {
        format!("INSERT INTO {table} (name, body) VALUES ($1, $2)")
    };
    let mut tx = db.writer().begin().await?;
    sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
    for (i, item) in items.iter().enumerate() {
        let q = sqlx::query(&insert).bind(name(item).to_string()).bind(serde_json::to_string(item).unwrap_or_default());
        let q = if positioned { q.bind(i as i64) } else { q };
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
