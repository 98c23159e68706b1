//! Pricing: one list price per product on every channel, moved with demand, stock and
//! competitors only inside guardrails; what is individual is an offer, bounded and explained.
//!
//! Pure compute, no I/O: the engine stores the price book and serves prices with these pieces.

pub mod book;
pub mod demand;
pub mod elasticity;
pub mod experiment;
pub mod guardrails;
pub mod markdown;
pub mod offers;
pub mod simulate;
