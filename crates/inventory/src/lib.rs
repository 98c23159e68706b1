//! Inventory visibility: stock per SKU and location (on hand, reserved, safety stock, damaged,
//! incoming), adjustments with reasons and idempotency keys, bundles that share components,
//! reservations with a time to live, allocation to a location by rule, and availability to
//! promise. Every change is one conditional statement inside one transaction, so concurrent
//! writers (threads, or servers sharing PostgreSQL) can never push available stock below zero.

mod commerce;
mod error;
mod migrations;
mod policy;
mod reservation;
mod stock;
mod transfer;

pub use commerce::{apply_order_event, tracks_stock};
pub use error::InventoryError;
pub use migrations::MIGRATIONS;
pub use policy::{policies, policy_of, set_policy, ChannelPolicy, Policy, DEFAULT_CART_TTL_MS};
pub use reservation::{
    confirm, end_in, expire_due, release, reservation, reserve, reserve_in, Allocation, Reservation, ReservationLine,
    ReservationState, ReserveRequest,
};
pub use stock::{
    adjust, availability, available_of, out_of_stock, set_bundle, set_levels, stock_level, AdjustMode, Adjustment,
    LevelRow, LocationAvailability, StockLevel, STOCK_COLUMNS,
};
pub use transfer::{finish_transfer, transfer, Transfer, TransferState};
