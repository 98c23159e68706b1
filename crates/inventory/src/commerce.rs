//! Orders move stock: an Order Completed event confirms the reservation it names (or, for a
//! sale that held nothing, such as a till, takes the units off the shelf of its store); an
//! Order Cancelled event releases its reservation or puts the units back; an Order Refunded
//! event puts the returned units back at its store. Applied by the event projection, in its
//! transaction, so each event moves stock exactly once.

use sqlx::AnyConnection;
use tailor_core::commerce::{CartChange, Commerce};

use crate::error::InventoryError;
use crate::policy::{policy_of, ChannelPolicy, Policy};
use crate::reservation::{reserve_in, Allocation, ReservationState, ReserveRequest};
use crate::settle::end_in;

/// Moves stock for one commerce event of `profile` on `channel`, by the channel's policy;
/// returns the (SKU, location) pairs it changed.
pub async fn apply_order_event(
    conn: &mut AnyConnection,
    commerce: &Commerce,
    channel: &str,
    profile: Option<&str>,
    now: i64,
) -> Result<Vec<(String, String)>, InventoryError> {
    let policy = policy_of(conn, channel).await?;
    if policy.policy == Policy::None {
        return Ok(Vec::new());
    }
    if let (Policy::ReserveOnCart, Some(profile)) = (policy.policy, profile) {
        if let Some(moved) = cart_event(conn, commerce, profile, &policy, now).await? {
            return Ok(moved);
        }
    }
    let (order, sign, ends) = match commerce {
        Commerce::OrderCompleted(o) => (o, -1, ReservationState::Confirmed),
        Commerce::OrderCancelled(o) => (o, 1, ReservationState::Released),
        Commerce::OrderRefunded(o) => (o, 1, ReservationState::Released),
        _ => return Ok(Vec::new()),
    };
    if !matches!(commerce, Commerce::OrderRefunded(_)) {
        if let Some(id) = &order.reservation_id {
            if let Some(r) = end_in(conn, id, ends, Some(&order.order_id), now).await? {
                return Ok(r.lines.into_iter().map(|l| (l.sku, l.location_id)).collect());
            }
            // Already ended (expired, released): the units are off the reservation, so the
            // event moves the shelf like any other.
        }
    }
    let Some(store) = &order.store_id else { return Ok(Vec::new()) };
    let mut touched = Vec::new();
    for line in &order.lines {
        let sql = if sign < 0 {
            "UPDATE inventory_stock SET on_hand = CASE WHEN on_hand >= $1 THEN on_hand - $1 ELSE 0 END, updated_at = $2 \
             WHERE sku = $3 AND location_id = $4"
        } else {
            "UPDATE inventory_stock SET on_hand = CASE WHEN on_hand > $5 - $1 THEN $5 ELSE on_hand + $1 END, updated_at = $2 \
             WHERE sku = $3 AND location_id = $4"
        };
        let mut q = sqlx::query(sql)
            .bind(line.quantity.stock_units())
            .bind(now)
            .bind(line.product_id.clone())
            .bind(store.clone());
        if sign > 0 {
            q = q.bind(crate::MAX_ON_HAND);
        }
        let changed = q.execute(&mut *conn).await?.rows_affected();
        if changed > 0 {
            touched.push((line.product_id.clone(), store.clone()));
        }
    }
    Ok(touched)
}

/// Whether any stock is tracked (when none is, orders have nothing to move).
pub async fn tracks_stock(conn: &mut AnyConnection) -> Result<bool, InventoryError> {
    Ok(sqlx::query("SELECT 1 FROM inventory_stock LIMIT 1").fetch_optional(&mut *conn).await?.is_some())
}

/// Cart events on a reserve_on_cart channel: Product Added holds the units (or adds to the
/// hold: the old hold is released and a larger one made), Product Removed gives them back, and
/// Order Completed sells every cart hold of the shopper. None when the event is not one of
/// these (an order without cart holds moves stock as usual).
/// Long on purpose: the three cart moves (add, remove, check out) share the hold bookkeeping and read best side by side.
async fn cart_event(
    conn: &mut AnyConnection,
    commerce: &Commerce,
    profile: &str,
    policy: &ChannelPolicy,
    now: i64,
) -> Result<Option<Vec<(String, String)>>, InventoryError> {
    match commerce {
        Commerce::ProductAdded(CartChange { line, store_id })
        | Commerce::ProductRemoved(CartChange { line, store_id }) => {
            let sku = &line.product_id;
            let q = line.quantity.stock_units();
            let previous = cart_hold(conn, profile, sku).await?;
            let mut moved = Vec::new();
            let mut held: i64 = 0;
            if let Some(id) = &previous {
                if let Some(r) = end_in(conn, id, ReservationState::Released, None, now).await? {
                    held = r.lines.iter().map(|l| l.quantity).sum();
                    moved.extend(r.lines.into_iter().map(|l| (l.sku, l.location_id)));
                }
                sqlx::query("DELETE FROM inventory_cart_holds WHERE profile_id = $1 AND sku = $2")
                    .bind(profile.to_string())
                    .bind(sku.clone())
                    .execute(&mut *conn)
                    .await?;
            }
            let want = if matches!(commerce, Commerce::ProductAdded(_)) {
                held.saturating_add(q).min(tailor_core::commerce::MAX_QUANTITY)
            } else {
                (held - q).max(0)
            };
            if want > 0 {
                let allocation = match store_id {
                    Some(store) => Allocation::Pickup(store.clone()),
                    None => Allocation::MostStock,
                };
                let req = ReserveRequest {
                    lines: vec![(sku.clone(), want)],
                    allocation,
                    allow_split: true,
                    channel: policy.channel.clone(),
                    ttl_ms: policy.cart_ttl_ms,
                };
                // Not enough stock: the cart keeps the item without a hold (checkout will say).
                match reserve_in(conn, &req, None, now).await {
                    Ok(r) => {
                        sqlx::query(
                            "INSERT INTO inventory_cart_holds (profile_id, sku, reservation_id) VALUES ($1, $2, $3)",
                        )
                        .bind(profile.to_string())
                        .bind(sku.clone())
                        .bind(r.id.clone())
                        .execute(&mut *conn)
                        .await?;
                        moved.extend(r.lines.into_iter().map(|l| (l.sku, l.location_id)));
                    }
                    Err(InventoryError::Db(e)) => return Err(InventoryError::Db(e)),
                    Err(_) => {}
                }
            }
            Ok(Some(moved))
        }
        Commerce::OrderCompleted(order) => {
            let holds: Vec<String> =
                sqlx::query("SELECT reservation_id FROM inventory_cart_holds WHERE profile_id = $1")
                    .bind(profile.to_string())
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| sqlx::Row::get(r, 0))
                    .collect();
            if holds.is_empty() {
                return Ok(None);
            }
            let mut moved = Vec::new();
            for id in holds {
                if let Some(r) = end_in(conn, &id, ReservationState::Confirmed, Some(&order.order_id), now).await? {
                    moved.extend(r.lines.into_iter().map(|l| (l.sku, l.location_id)));
                }
            }
            sqlx::query("DELETE FROM inventory_cart_holds WHERE profile_id = $1")
                .bind(profile.to_string())
                .execute(&mut *conn)
                .await?;
            Ok(Some(moved))
        }
        _ => Ok(None),
    }
}

async fn cart_hold(conn: &mut AnyConnection, profile: &str, sku: &str) -> Result<Option<String>, InventoryError> {
    Ok(sqlx::query("SELECT reservation_id FROM inventory_cart_holds WHERE profile_id = $1 AND sku = $2")
        .bind(profile.to_string())
        .bind(sku.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| sqlx::Row::get(&r, 0)))
}

/// The erased customers' cart holds: released (the units go back on sale) and forgotten. Run in
/// the erasure's transaction; returns the (SKU, location) pairs whose stock changed.
pub async fn forget_customers(
    conn: &mut AnyConnection,
    profiles: &[String],
    now: i64,
) -> Result<Vec<(String, String)>, InventoryError> {
    let mut moved = Vec::new();
    for profile in profiles {
        let holds: Vec<String> = sqlx::query("SELECT reservation_id FROM inventory_cart_holds WHERE profile_id = $1")
            .bind(profile.clone())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| sqlx::Row::get(r, 0))
            .collect();
        for id in holds {
            if let Some(r) = end_in(conn, &id, ReservationState::Released, None, now).await? {
                moved.extend(r.lines.into_iter().map(|l| (l.sku, l.location_id)));
            }
        }
        sqlx::query("DELETE FROM inventory_cart_holds WHERE profile_id = $1")
            .bind(profile.clone())
            .execute(&mut *conn)
            .await?;
    }
    Ok(moved)
}

/// The erased customer's cart holds, for an export: (SKU, reservation id).
pub async fn cart_holds(
    conn: &mut AnyConnection,
    profiles: &[String],
) -> Result<Vec<(String, String)>, InventoryError> {
    let mut out = Vec::new();
    for profile in profiles {
        let rows = sqlx::query("SELECT sku, reservation_id FROM inventory_cart_holds WHERE profile_id = $1")
            .bind(profile.clone())
            .fetch_all(&mut *conn)
            .await?;
        out.extend(rows.iter().map(|r| (sqlx::Row::get(r, 0), sqlx::Row::get(r, 1))));
    }
    Ok(out)
}
