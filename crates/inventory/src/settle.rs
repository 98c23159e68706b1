//! The end of a reservation: confirmed (a sale), released (all or part) or expired — each
//! exactly once, the units going back on sale or off the shelf.

use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::{positive, InventoryError};
use crate::reservation::{load, Reservation, ReservationLine, ReservationState};

/// Moves a held reservation to `to`, once: false when it was not held anymore.
async fn leave_held(
    conn: &mut AnyConnection,
    id: &str,
    to: ReservationState,
    order_id: Option<&str>,
    now: i64,
) -> Result<bool, InventoryError> {
    let done = sqlx::query(
        "UPDATE inventory_reservations SET state = $1, order_id = COALESCE($2, order_id), updated_at = $3 \
         WHERE id = $4 AND state = 'held'",
    )
    .bind(to.name())
    .bind(order_id.map(str::to_string))
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

pub(crate) async fn give_back(
    conn: &mut AnyConnection,
    l: &ReservationLine,
    sold: bool,
    now: i64,
) -> Result<(), InventoryError> {
    // A count taken after the hold may have found fewer units than it holds: the sale still went
    // through, and on hand stops at none (it cannot go below, by the table's CHECK).
    let sql = if sold {
        "UPDATE inventory_stock SET reserved = reserved - $1, \
         on_hand = CASE WHEN on_hand >= $1 THEN on_hand - $1 ELSE 0 END, updated_at = $2 \
         WHERE sku = $3 AND location_id = $4"
    } else {
        "UPDATE inventory_stock SET reserved = reserved - $1, updated_at = $2 WHERE sku = $3 AND location_id = $4"
    };
    sqlx::query(sql)
        .bind(l.quantity)
        .bind(now)
        .bind(l.sku.clone())
        .bind(l.location_id.clone())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn not_held(r: &Reservation) -> InventoryError {
    InventoryError::Conflict(format!("reservation '{}' is {}, not held", r.id, r.state.name()))
}

/// The order went through: held units become sold (on hand and reserved both go down).
pub async fn confirm(db: &Db, id: &str, order_id: Option<&str>, now: i64) -> Result<Reservation, InventoryError> {
    let mut tx = db.writer().begin().await?;
    let r = load(&mut tx, id).await?;
    let to = ReservationState::Confirmed;
    let done = end_in(&mut tx, id, to, order_id, now).await?.ok_or_else(|| not_held(&r))?;
    tx.commit().await?;
    Ok(done)
}

/// Ends a held reservation inside the caller's transaction: confirmed (a sale) or released
/// (units back). None when it does not exist or is not held anymore.
pub async fn end_in(
    tx: &mut AnyConnection,
    id: &str,
    to: ReservationState,
    order_id: Option<&str>,
    now: i64,
) -> Result<Option<Reservation>, InventoryError> {
    let r = match load(&mut *tx, id).await {
        Ok(r) => r,
        Err(InventoryError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !leave_held(&mut *tx, id, to, order_id, now).await? {
        return Ok(None);
    }
    for l in &r.lines {
        give_back(&mut *tx, l, to == ReservationState::Confirmed, now).await?;
    }
    Ok(Some(load(&mut *tx, id).await?))
}

/// Gives held units back: all of them, or `quantity` units of `sku` (a partial release).
pub async fn release(db: &Db, id: &str, partial: Option<(&str, i64)>, now: i64) -> Result<Reservation, InventoryError> {
    let mut tx = db.writer().begin().await?;
    let r = load(&mut tx, id).await?;
    if r.state != ReservationState::Held {
        return Err(not_held(&r));
    }
    match partial {
        None => {
            if !leave_held(&mut tx, id, ReservationState::Released, None, now).await? {
                return Err(not_held(&r));
            }
            for l in &r.lines {
                give_back(&mut tx, l, false, now).await?;
            }
        }
        Some((sku, q)) => {
            positive("quantity", q)?;
            let held: i64 = r.lines.iter().filter(|l| l.sku == sku).map(|l| l.quantity).sum();
            if held == 0 {
                return Err(InventoryError::Invalid(FieldError::invalid(
                    "sku",
                    format!("the reservation holds no '{sku}'"),
                )));
            }
            if q > held {
                return Err(InventoryError::Invalid(FieldError::invalid(
                    "quantity",
                    format!("cannot release {q} units of '{sku}': the reservation holds {held}"),
                )));
            }
            let mut left = q;
            let rows = sqlx::query(
                "SELECT line_no, location_id, quantity FROM inventory_reservation_lines \
                 WHERE reservation_id = $1 AND sku = $2 AND quantity > 0 ORDER BY line_no DESC",
            )
            .bind(id.to_string())
            .bind(sku.to_string())
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                let (line_no, loc, have): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
                let n = have.min(left);
                sqlx::query(
                    "UPDATE inventory_reservation_lines SET quantity = quantity - $1 WHERE reservation_id = $2 AND line_no = $3",
                )
                .bind(n)
                .bind(id.to_string())
                .bind(line_no)
                .execute(&mut *tx)
                .await?;
                give_back(
                    &mut tx,
                    &ReservationLine { sku: sku.to_string(), location_id: loc, quantity: n },
                    false,
                    now,
                )
                .await?;
                left -= n;
                if left == 0 {
                    break;
                }
            }
        }
    }
    let r = load(&mut tx, id).await?;
    tx.commit().await?;
    Ok(r)
}

/// Releases every held reservation whose time ran out by `now`; returns them. Safe to run from
/// several processes at once: each reservation leaves `held` once.
pub async fn expire_due(db: &Db, now: i64) -> Result<Vec<Reservation>, InventoryError> {
    let due: Vec<String> = sqlx::query(
        "SELECT id FROM inventory_reservations WHERE state = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT 1000",
    )
    .bind(now)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut released = Vec::new();
    for id in due {
        let mut tx = db.writer().begin().await?;
        let r = load(&mut tx, &id).await?;
        if leave_held(&mut tx, &id, ReservationState::Expired, None, now).await? {
            for l in &r.lines {
                give_back(&mut tx, l, false, now).await?;
            }
            released.push(r);
        }
        tx.commit().await?;
    }
    Ok(released)
}
