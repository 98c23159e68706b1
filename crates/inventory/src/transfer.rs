//! Transfers between locations: units leave the source's shelf at once and show as incoming at
//! the destination (with the expected date, which availability uses to promise a ship date)
//! until they are received there, or the transfer is cancelled and they go back.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::{positive, InventoryError};
use crate::stock::{check_location, check_sku};

/// A transfer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// On its way: off the source's shelf, incoming at the destination.
    InTransit,
    /// Arrived: on the destination's shelf.
    Received,
    /// Called off: back on the source's shelf.
    Cancelled,
}

impl TransferState {
    fn name(self) -> &'static str {
        match self {
            TransferState::InTransit => "in_transit",
            TransferState::Received => "received",
            TransferState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> TransferState {
        match s {
            "received" => TransferState::Received,
            "cancelled" => TransferState::Cancelled,
            _ => TransferState::InTransit,
        }
    }
}

/// Units of one SKU moving between two locations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// Its id.
    pub id: String,
    /// The SKU.
    pub sku: String,
    /// Where the units leave.
    pub from_location: String,
    /// Where they arrive.
    pub to_location: String,
    /// Units.
    pub quantity: i64,
    /// in_transit, received or cancelled.
    pub state: TransferState,
    /// When they are expected.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expected_at: Option<i64>,
}

/// Sends `quantity` units of `sku` from one location to another; refused when the source does
/// not have them available.
pub async fn transfer(
    db: &Db,
    sku: &str,
    from: &str,
    to: &str,
    quantity: i64,
    expected_at: Option<i64>,
    now: i64,
) -> Result<Transfer, InventoryError> {
    positive("quantity", quantity)?;
    if from == to {
        return Err(InventoryError::Invalid(FieldError::invalid("toLocationId", "the destination is the source")));
    }
    let mut tx = db.writer().begin().await?;
    check_sku(&mut tx, "sku", sku).await?;
    check_location(&mut tx, "fromLocationId", from).await?;
    check_location(&mut tx, "toLocationId", to).await?;
    let taken = sqlx::query(&format!(
        "UPDATE inventory_stock SET on_hand = on_hand - $1, updated_at = $2 \
         WHERE sku = $3 AND location_id = $4 AND {} >= $1",
        crate::AVAILABLE
    ))
    .bind(quantity)
    .bind(now)
    .bind(sku.to_string())
    .bind(from.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if taken == 0 {
        return Err(InventoryError::Insufficient(format!(
            "'{from}' does not have {quantity} units of '{sku}' available"
        )));
    }
    sqlx::query(
        "INSERT INTO inventory_stock (sku, location_id, incoming, incoming_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sku, location_id) DO UPDATE SET incoming = inventory_stock.incoming + excluded.incoming, \
         incoming_at = COALESCE(excluded.incoming_at, inventory_stock.incoming_at), updated_at = excluded.updated_at",
    )
    .bind(sku.to_string())
    .bind(to.to_string())
    .bind(quantity)
    .bind(expected_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let t = Transfer {
        id: uuid::Uuid::now_v7().to_string(),
        sku: sku.to_string(),
        from_location: from.to_string(),
        to_location: to.to_string(),
        quantity,
        state: TransferState::InTransit,
        expected_at,
    };
    sqlx::query(
        "INSERT INTO inventory_transfers (id, sku, from_location, to_location, quantity, state, expected_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'in_transit', $6, $7, $7)",
    )
    .bind(t.id.clone())
    .bind(t.sku.clone())
    .bind(t.from_location.clone())
    .bind(t.to_location.clone())
    .bind(quantity)
    .bind(expected_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(t)
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Transfer, InventoryError> {
    let r = sqlx::query(
        "SELECT sku, from_location, to_location, quantity, state, expected_at FROM inventory_transfers WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| InventoryError::NotFound(format!("no transfer with id '{id}'")))?;
    Ok(Transfer {
        id: id.to_string(),
        sku: r.get(0),
        from_location: r.get(1),
        to_location: r.get(2),
        quantity: r.get(3),
        state: TransferState::parse(&r.get::<String, _>(4)),
        expected_at: r.get(5),
    })
}

/// Ends a transfer in transit, once: received (units onto the destination's shelf) or
/// cancelled (units back at the source).
pub async fn finish_transfer(db: &Db, id: &str, to: TransferState, now: i64) -> Result<Transfer, InventoryError> {
    let mut tx = db.writer().begin().await?;
    let t = load(&mut tx, id).await?;
    let moved = sqlx::query(
        "UPDATE inventory_transfers SET state = $1, updated_at = $2 WHERE id = $3 AND state = 'in_transit'",
    )
    .bind(to.name())
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Err(InventoryError::Conflict(format!("transfer '{id}' is {}, not in transit", t.state.name())));
    }
    sqlx::query(
        "UPDATE inventory_stock SET incoming = CASE WHEN incoming >= $1 THEN incoming - $1 ELSE 0 END, \
         on_hand = on_hand + $2, updated_at = $3 WHERE sku = $4 AND location_id = $5",
    )
    .bind(t.quantity)
    .bind(if to == TransferState::Received { t.quantity } else { 0 })
    .bind(now)
    .bind(t.sku.clone())
    .bind(t.to_location.clone())
    .execute(&mut *tx)
    .await?;
    if to == TransferState::Cancelled {
        sqlx::query(
            "UPDATE inventory_stock SET on_hand = on_hand + $1, updated_at = $2 WHERE sku = $3 AND location_id = $4",
        )
        .bind(t.quantity)
        .bind(now)
        .bind(t.sku.clone())
        .bind(t.from_location.clone())
        .execute(&mut *tx)
        .await?;
    }
    let t = load(&mut tx, id).await?;
    tx.commit().await?;
    Ok(t)
}
