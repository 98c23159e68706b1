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

pub use commerce::{apply_order_event, cart_holds, forget_customers, tracks_stock};
pub use error::InventoryError;
pub use migrations::MIGRATIONS;
pub use policy::{policies, policy_of, set_policy, ChannelPolicy, Policy, DEFAULT_CART_TTL_MS};
pub use reservation::{
    confirm, end_in, expire_due, release, reservation, reserve, reserve_in, Allocation, Reservation, ReservationLine,
    ReservationState, ReserveRequest,
};
pub use stock::{
    adjust, availability, available_of, out_of_stock, set_bundle, set_levels, stock_level, units_on_hand, AdjustMode,
    Adjustment, LevelRow, LocationAvailability, StockLevel, STOCK_COLUMNS,
};
pub use transfer::{finish_transfer, transfer, Transfer, TransferState};

/// Units that can be promised, as SQL over `inventory_stock`: on hand, less what is reserved,
/// kept as safety stock or damaged. The one definition every query uses.
pub const AVAILABLE: &str = "(on_hand - reserved - safety_stock - damaged)";

/// The most units one SKU may count at one location (on hand, safety stock, damaged, incoming).
pub const MAX_ON_HAND: i64 = 1_000_000_000;
/// The most units one reservation line, transfer line or bundle component may carry.
pub const MAX_LINE_UNITS: i64 = tailor_core::commerce::MAX_QUANTITY;
/// The most lines one reservation may carry.
pub const MAX_RESERVATION_LINES: usize = 500;
