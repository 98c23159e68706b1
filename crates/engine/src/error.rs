//! Engine errors: user errors the server maps to 4xx, and internal ones.

use tailor_core::FieldError;
use tailor_profiles::ProfileError;
use tailor_store::DbError;

/// What can go wrong in an engine call.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The input is wrong; the error names the field.
    #[error(transparent)]
    Invalid(FieldError),
    /// Something does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The service is not ready: it is starting or stopping, or no recommendation model exists
    /// yet. Retrying later helps; the message says what to do.
    #[error("{0}")]
    NotReady(String),
    /// Not enough available stock for a reservation or a transfer.
    #[error("{0}")]
    InsufficientStock(String),
    /// Not enough active points for a redemption or a removal.
    #[error("{0}")]
    InsufficientPoints(String),
    /// The product has no price yet; the message says how to set one.
    #[error("{0}")]
    NoPrice(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
}

impl EngineError {
    /// A not-found error that names the kind of thing and its id.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::NotFound(format!("no {what} with id '{id}'"))
    }
}

impl From<ProfileError> for EngineError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::NotFound(m) => Self::NotFound(m),
            ProfileError::Conflict(m) => Self::Conflict(m),
            ProfileError::Db(d) => Self::Db(d),
        }
    }
}

impl From<tailor_recs_store::RecsStoreError> for EngineError {
    fn from(e: tailor_recs_store::RecsStoreError) -> Self {
        match e {
            tailor_recs_store::RecsStoreError::Db(d) => Self::Db(d),
            other => Self::Io(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sqlx(e))
    }
}
