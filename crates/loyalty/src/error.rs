//! What can go wrong, in terms the API turns into problem+json.

use tailor_core::FieldError;
use tailor_store::DbError;

/// A loyalty operation's failure. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    /// The input is wrong; the error names the field.
    #[error(transparent)]
    Invalid(FieldError),
    /// Not enough points.
    #[error("{0}")]
    Insufficient(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for LoyaltyError {
    fn from(e: sqlx::Error) -> Self {
        LoyaltyError::Db(DbError::from(e))
    }
}
