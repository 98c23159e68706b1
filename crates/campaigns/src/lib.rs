//! Campaigns: journeys as versioned data with their checks, a customer's way through a journey
//! as a pure state machine driven by a clock value, send-time guardrails as pure functions, and
//! the scheduler's rows (positions leased per engine, sends keyed for idempotency, the decision
//! log). The engine composes them with profiles, pricing, stock and the channels.

pub mod batch;
pub mod channels;
pub mod entries;
pub mod guard;
pub mod journey;
pub mod machine;
mod migrations;
pub mod outbox;
pub mod segment;
pub mod segment_store;
pub mod store;
pub mod watches;

pub use journey::{Guardrails, JourneyDef, SendChannel, Step, StepKind};
pub use migrations::MIGRATIONS;

/// A failure of the journey tables.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored row cannot be read back.
    #[error("{0}")]
    Stored(String),
}

#[cfg(test)]
mod tests;
