//! Pricing: one list price per product on every channel, moved with demand, stock and
//! competitors only inside guardrails; what is individual is an offer, bounded and explained.
//!
//! The rules and models are pure compute, with time and seeds passed in: the price book's
//! arithmetic ([`book`]), guardrails, setting a list price ([`decision`]), repricing from market
//! conditions ([`reprice`]), quotes ([`quote`]), personal offers, live experiments ([`live`]),
//! elasticity, markdowns and the simulator. This crate also owns the pricing tables: [`store`]
//! reads and writes them (and is the only module that does I/O); the engine composes the two with
//! what other crates know (stock, orders, consent).

pub mod book;
pub mod decision;
pub mod demand;
pub mod elasticity;
mod error;
pub mod experiment;
pub mod guardrails;
pub mod live;
pub mod markdown;
pub mod offers;
pub mod quote;
pub mod reprice;
pub mod robust;
pub mod simulate;
pub mod store;
pub mod suite;

pub use error::PricingError;
pub use store::MIGRATIONS;

/// A day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;
