//! What can go wrong in recommendation storage.

use tailor_store::DbError;

/// A storage failure of recommendation state. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum RecsStoreError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A value could not be written as JSON.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being written.
        what: &'static str,
        /// Why it failed.
        source: serde_json::Error,
    },
}

impl From<sqlx::Error> for RecsStoreError {
    fn from(e: sqlx::Error) -> Self {
        RecsStoreError::Db(DbError::from(e))
    }
}
