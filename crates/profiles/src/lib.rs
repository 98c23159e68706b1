//! Unified customer profiles: the identity graph that resolves every event to one customer,
//! merges with provenance (and their undoing), traits, consent, the commerce projections
//! (orders, carts) and privacy requests (export, erasure).
//!
//! Merges never rewrite history: an absorbed profile points at its survivor (`merged_into`), and
//! identifiers and events keep the profile they were first attributed to. A profile's view is
//! computed over its *group* (the root and every profile merged into it), so an unmerge is one
//! pointer cleared and both profiles are back exactly as they were.

mod commerce;
mod consent;
mod contacts;
mod graph;
mod migrations;
mod privacy;
mod project;
mod purchases;
mod sales;
mod signals;
mod view;

pub use commerce::recorded_order;
pub use consent::{has_consent, orders_and_cart, set_consent, ConsentSource};
pub use contacts::{contacts, events_of, Contact, EventFilter, MAX_CONTACTS};
pub use graph::{group_of, root_of, unmerge, ProfileError};
pub use migrations::MIGRATIONS;
pub use privacy::{erase, export, person};
pub use project::{project_event, set_trait};
pub use purchases::{
    best_sellers, order_count, purchased, purchases_by_customer, recent_orders, OrderSummary, PurchaseLine,
};
pub use sales::units_sold;
pub use signals::{signals, viewed, HistoryCache, Signals};
pub use view::{
    lookup, merges, profile_view, timeline, with_trait, CartLine, ChannelCount, ConsentView, Features, IdentifierView,
    MergeView, ProfileView, TimelineEntry,
};
