//! Segment e-commerce v2 projections: the current cart per customer and their orders.

use serde_json::Value;
use sqlx::AnyConnection;
use tailor_core::money::cents;

use crate::graph::{group_of, placeholders, ProfileError};

pub(crate) fn product_id(p: &Value) -> Option<String> {
    ["product_id", "productId", "sku", "id"].iter().find_map(|k| match p.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn quantity(p: &Value) -> i64 {
    p.get("quantity").and_then(Value::as_i64).filter(|q| *q > 0).unwrap_or(1)
}

fn text(p: &Value, key: &str) -> Option<String> {
    match p.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Applies a recognized e-commerce event; other events only appear on the timeline.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    profile: &str,
    event: &str,
    props: &Value,
    channel: &str,
    ts: i64,
    seq: i64,
) -> Result<(), ProfileError> {
    match event {
        "Product Added" => {
            if let Some(pid) = product_id(props) {
                sqlx::query(
                    "INSERT INTO carts (profile_id, product_id, quantity, price_cents, updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (profile_id, product_id) DO UPDATE SET quantity = carts.quantity + excluded.quantity, \
                     price_cents = excluded.price_cents, updated_at = excluded.updated_at",
                )
                .bind(profile)
                .bind(pid)
                .bind(quantity(props))
                .bind(props.get("price").and_then(cents).unwrap_or(0))
                .bind(ts)
                .execute(&mut *conn)
                .await?;
            }
        }
        "Product Removed" => {
            if let Some(pid) = product_id(props) {
                let group = group_of(conn, profile).await?;
                let sql = format!(
                    "UPDATE carts SET quantity = quantity - $1, updated_at = $2 WHERE product_id = $3 AND profile_id IN {}",
                    placeholders(4, group.len())
                );
                let mut q = sqlx::query(&sql).bind(quantity(props)).bind(ts).bind(pid);
                for g in &group {
                    q = q.bind(g.clone());
                }
                q.execute(&mut *conn).await?;
                sqlx::query("DELETE FROM carts WHERE quantity <= 0").execute(&mut *conn).await?;
            }
        }
        "Order Completed" => order_completed(conn, profile, props, channel, ts, seq).await?,
        "Order Refunded" | "Order Cancelled" => {
            let Some(order_id) = text(props, "order_id").or_else(|| text(props, "orderId")) else {
                return Ok(());
            };
            let amount = match props.get("products").and_then(Value::as_array) {
                Some(lines) if !lines.is_empty() => {
                    lines.iter().map(|l| l.get("price").and_then(cents).unwrap_or(0) * quantity(l)).sum::<i64>()
                }
                // Without lines or a total, the whole order is refunded.
                _ => props.get("total").and_then(cents).unwrap_or(i64::MAX / 4),
            };
            sqlx::query(
                "UPDATE orders SET refunded_cents = CASE WHEN refunded_cents + $1 > total_cents THEN total_cents \
                 ELSE refunded_cents + $1 END WHERE order_id = $2",
            )
            .bind(amount)
            .bind(order_id)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn order_completed(
    conn: &mut AnyConnection,
    profile: &str,
    props: &Value,
    channel: &str,
    ts: i64,
    seq: i64,
) -> Result<(), ProfileError> {
    let order_id = text(props, "order_id").or_else(|| text(props, "orderId")).unwrap_or_else(|| format!("event-{seq}"));
    let lines: Vec<&Value> =
        props.get("products").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let line_total: i64 = lines.iter().map(|l| l.get("price").and_then(cents).unwrap_or(0) * quantity(l)).sum();
    let total = ["total", "revenue"].iter().find_map(|k| props.get(*k).and_then(cents)).unwrap_or(line_total);
    let inserted = sqlx::query(
        "INSERT INTO orders (order_id, profile_id, channel, store_id, total_cents, currency, ts, event_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id.clone())
    .bind(profile)
    .bind(channel)
    .bind(text(props, "store_id").or_else(|| text(props, "storeId")))
    .bind(total)
    .bind(text(props, "currency").unwrap_or_else(|| "USD".into()))
    .bind(ts)
    .bind(seq)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    for (chunk_no, chunk) in lines.chunks(100).enumerate() {
        let mut sql = String::from(
            "INSERT INTO order_lines (order_id, line_no, product_id, category, quantity, price_cents) VALUES ",
        );
        let mut rows = Vec::new();
        for (i, l) in chunk.iter().enumerate() {
            if let Some(pid) = product_id(l) {
                rows.push((
                    chunk_no * 100 + i,
                    pid,
                    text(l, "category"),
                    quantity(l),
                    l.get("price").and_then(cents).unwrap_or(0),
                ));
            }
        }
        if rows.is_empty() {
            continue;
        }
        for i in 0..rows.len() {
            let b = i * 6;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${},${},${},${},${},${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
        }
        let mut q = sqlx::query(&sql);
        for (line_no, pid, category, qty, price) in rows {
            q = q.bind(order_id.clone()).bind(line_no as i64).bind(pid).bind(category).bind(qty).bind(price);
        }
        q.execute(&mut *conn).await?;
    }
    let group = group_of(conn, profile).await?;
    let sql = format!("DELETE FROM carts WHERE profile_id IN {}", placeholders(1, group.len()));
    let mut q = sqlx::query(&sql);
    for g in &group {
        q = q.bind(g.clone());
    }
    q.execute(&mut *conn).await?;
    Ok(())
}
