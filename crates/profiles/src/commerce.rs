//! Segment e-commerce v2 projections: the current cart per customer and their orders.

use sqlx::AnyConnection;
use tailor_core::commerce::{CartChange, Commerce, Order, MAX_QUANTITY};

use crate::graph::{group_of, placeholders, ProfileError};

/// Applies a commerce event (parsed once, by the projector); other events only appear on the
/// timeline.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    profile: &str,
    commerce: &Commerce,
    channel: &str,
    ts: i64,
    seq: i64,
) -> Result<(), ProfileError> {
    match commerce {
        Commerce::ProductAdded(CartChange { line, .. }) => {
            sqlx::query(
                "INSERT INTO carts (profile_id, product_id, quantity, price_cents, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (profile_id, product_id) DO UPDATE SET quantity = CASE WHEN carts.quantity + excluded.quantity > $6 \
                 THEN $6 ELSE carts.quantity + excluded.quantity END, price_cents = excluded.price_cents, updated_at = excluded.updated_at",
            )
            .bind(profile)
            .bind(line.product_id.clone())
            .bind(line.quantity.stock_units())
            .bind(line.unit_price_cents)
            .bind(ts)
            .bind(MAX_QUANTITY)
            .execute(&mut *conn)
            .await?;
        }
        Commerce::ProductRemoved(CartChange { line, .. }) => {
            let group = group_of(conn, profile).await?;
            let sql = format!(
                "UPDATE carts SET quantity = quantity - $1, updated_at = $2 WHERE product_id = $3 AND profile_id IN {}",
                placeholders(4, group.len())
            );
            let q = tailor_store::bind_all(
                sqlx::query(&sql).bind(line.quantity.stock_units()).bind(ts).bind(line.product_id.clone()),
                &group,
            );
            q.execute(&mut *conn).await?;
            sqlx::query("DELETE FROM carts WHERE quantity <= 0").execute(&mut *conn).await?;
        }
        Commerce::OrderCompleted(order) => order_completed(conn, profile, order, channel, ts, seq).await?,
        Commerce::OrderRefunded(order) | Commerce::OrderCancelled(order) => {
            // A cancellation, or a refund that names no amount, takes back the whole order.
            let whole = matches!(commerce, Commerce::OrderCancelled(_)) || order.amount_cents.is_none();
            sqlx::query(
                "UPDATE orders SET refunded_cents = CASE WHEN $1 = 1 OR refunded_cents + $2 > total_cents \
                 THEN total_cents ELSE refunded_cents + $2 END WHERE order_id = $3",
            )
            .bind(i64::from(whole))
            .bind(order.amount_cents.unwrap_or(0))
            .bind(order.order_id.clone())
            .execute(&mut *conn)
            .await?;
        }
        Commerce::OrderUpdated(_) | Commerce::CheckoutStarted(_) => {}
    }
    Ok(())
}

async fn order_completed(
    conn: &mut AnyConnection,
    profile: &str,
    order: &Order,
    channel: &str,
    ts: i64,
    seq: i64,
) -> Result<(), ProfileError> {
    let inserted = sqlx::query(
        "INSERT INTO orders (order_id, profile_id, channel, store_id, total_cents, currency, ts, event_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order.order_id.clone())
    .bind(profile)
    .bind(channel)
    .bind(order.store_id.clone())
    .bind(order.total_cents())
    .bind(order.currency.clone())
    .bind(ts)
    .bind(seq)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    for (chunk_no, chunk) in order.lines.chunks(100).enumerate() {
        let sql = format!(
            "INSERT INTO order_lines (order_id, line_no, product_id, category, quantity, price_cents) VALUES {}",
            tailor_store::values_placeholders(chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for (i, l) in chunk.iter().enumerate() {
            q = q
                .bind(order.order_id.clone())
                .bind((chunk_no * 100 + i) as i64)
                .bind(l.product_id.clone())
                .bind(l.category.clone())
                .bind(l.quantity.stock_units())
                .bind(l.unit_price_cents);
        }
        q.execute(&mut *conn).await?;
    }
    let group = group_of(conn, profile).await?;
    let sql = format!("DELETE FROM carts WHERE profile_id IN {}", placeholders(1, group.len()));
    let q = tailor_store::bind_all(sqlx::query(&sql), &group);
    q.execute(&mut *conn).await?;
    Ok(())
}

/// The order as recorded when it completed: its store and its lines (quantities in stock
/// units, unit prices), for projections that need what an event about it does not repeat
/// (a cancellation that names only the order). `None` for an unknown order.
pub async fn recorded_order(conn: &mut AnyConnection, order_id: &str) -> Result<Option<Order>, ProfileError> {
    use sqlx::Row;
    let Some(head) = sqlx::query("SELECT store_id, total_cents, currency FROM orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "SELECT product_id, category, quantity, price_cents FROM order_lines WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let (quantity, price): (i64, i64) = (r.get(2), r.get(3));
        tailor_core::commerce::Line {
            product_id: r.get(0),
            category: r.get(1),
            quantity: tailor_core::commerce::Quantity::each(quantity),
            unit_price_cents: price,
            amount_cents: price.saturating_mul(quantity),
        }
    })
    .collect();
    Ok(Some(Order {
        order_id: order_id.to_string(),
        store_id: head.get(0),
        reservation_id: None,
        currency: head.get(2),
        amount_cents: Some(head.get(1)),
        lines,
    }))
}
