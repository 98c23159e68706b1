//! What a pricing operation can fail with, in terms the engine maps to its own errors (and the
//! HTTP layer to problem+json).

use tailor_core::FieldError;
use tailor_store::DbError;

/// A pricing operation's failure. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The input is wrong or names something unknown; the error names the field.
    #[error(transparent)]
    Invalid(FieldError),
    /// The request conflicts with the current state (e.g. an experiment already running).
    #[error("{0}")]
    Conflict(String),
    /// A stored value could not be read back (a row written by an incompatible version).
    #[error("{0}")]
    Stored(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for PricingError {
    fn from(e: sqlx::Error) -> Self {
        PricingError::Db(DbError::from(e))
    }
}

impl From<FieldError> for PricingError {
    fn from(e: FieldError) -> Self {
        PricingError::Invalid(e)
    }
}
