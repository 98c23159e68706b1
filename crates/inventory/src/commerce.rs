//! Orders move stock: an Order Completed event confirms the reservation it names (or, for a
//! sale that held nothing, such as a till, takes the units off the shelf of its store); an
//! Order Cancelled event releases its reservation or puts the units back; an Order Refunded
//! event puts the returned units back at its store. Applied by the event projection, in its
//! transaction, so each event moves stock exactly once.

use serde_json::Value;
use sqlx::AnyConnection;

use crate::error::InventoryError;
use crate::reservation::{end_in, ReservationState};

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Whole units of a product line (1 when absent; fractions round down, at least 1).
fn units(line: &Value) -> i64 {
    line.get("quantity").and_then(Value::as_f64).map_or(1, |q| (q.floor() as i64).max(1))
}

/// Moves stock for one event; returns the (SKU, location) pairs it changed.
pub async fn apply_order_event(
    conn: &mut AnyConnection,
    body: &Value,
    now: i64,
) -> Result<Vec<(String, String)>, InventoryError> {
    if body.get("type").and_then(Value::as_str) != Some("track") {
        return Ok(Vec::new());
    }
    let event = body.get("event").and_then(Value::as_str).unwrap_or("");
    let (sign, ends) = match event {
        "Order Completed" => (-1, ReservationState::Confirmed),
        "Order Cancelled" => (1, ReservationState::Released),
        "Order Refunded" => (1, ReservationState::Released),
        _ => return Ok(Vec::new()),
    };
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    let order_id = text(&props, &["order_id", "orderId"]);
    if event != "Order Refunded" {
        if let Some(id) = text(&props, &["reservation_id", "reservationId"]) {
            if let Some(r) = end_in(conn, &id, ends, order_id.as_deref(), now).await? {
                return Ok(r.lines.into_iter().map(|l| (l.sku, l.location_id)).collect());
            }
            // Already ended (expired, released): the units are off the reservation, so the
            // event moves the shelf like any other.
        }
    }
    let Some(store) = text(&props, &["store_id", "storeId"]) else { return Ok(Vec::new()) };
    let lines = props.get("products").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut touched = Vec::new();
    for line in &lines {
        let Some(sku) = text(line, &["product_id", "productId", "sku", "id"]) else { continue };
        let q = units(line);
        let sql = if sign < 0 {
            "UPDATE inventory_stock SET on_hand = CASE WHEN on_hand >= $1 THEN on_hand - $1 ELSE 0 END, updated_at = $2 \
             WHERE sku = $3 AND location_id = $4"
        } else {
            "UPDATE inventory_stock SET on_hand = on_hand + $1, updated_at = $2 WHERE sku = $3 AND location_id = $4"
        };
        let changed = sqlx::query(sql)
            .bind(q)
            .bind(now)
            .bind(sku.clone())
            .bind(store.clone())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if changed > 0 {
            touched.push((sku, store.clone()));
        }
    }
    Ok(touched)
}

/// Whether any stock is tracked (when none is, orders have nothing to move).
pub async fn tracks_stock(conn: &mut AnyConnection) -> Result<bool, InventoryError> {
    Ok(sqlx::query("SELECT 1 FROM inventory_stock LIMIT 1").fetch_optional(&mut *conn).await?.is_some())
}
