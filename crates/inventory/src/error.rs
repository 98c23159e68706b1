//! What can go wrong, in terms the API turns into problem+json.

use tailor_core::FieldError;
use tailor_store::DbError;

/// An inventory operation's failure. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The input is wrong or names something unknown; the error names the field.
    #[error(transparent)]
    Invalid(FieldError),
    /// Not enough available stock for the request.
    #[error("{0}")]
    Insufficient(String),
    /// The request conflicts with the current state (e.g. a reservation already released).
    #[error("{0}")]
    Conflict(String),
    /// Something does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for InventoryError {
    fn from(e: sqlx::Error) -> Self {
        InventoryError::Db(DbError::from(e))
    }
}

impl InventoryError {
    /// Whether retrying the whole transaction may succeed (PostgreSQL deadlock or
    /// serialization failure between concurrent reservations).
    pub(crate) fn retryable(&self) -> bool {
        let text = self.to_string();
        text.contains("deadlock")
            || text.contains("40P01")
            || text.contains("40001")
            || text.contains("database is locked")
    }
}

/// A quantity that must be a whole number of units, from 1 to [`crate::MAX_LINE_UNITS`].
pub(crate) fn positive(field: &str, q: i64) -> Result<i64, InventoryError> {
    if !(1..=crate::MAX_LINE_UNITS).contains(&q) {
        return Err(InventoryError::Invalid(FieldError::invalid(
            field,
            format!("must be a whole number of units from 1 to {}", crate::MAX_LINE_UNITS),
        )));
    }
    Ok(q)
}
