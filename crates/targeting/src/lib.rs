//! Campaign intelligence, pure compute: **whom** a message changes ([`uplift`]), and — built on
//! the same numbers — on which channel ([`channel`]) and at which hour ([`sendtime`]) to reach
//! each customer, how many messages they tolerate ([`fatigue`]) and what a campaign caused
//! ([`lift`]); [`live`] applies uplift to customers as journeys meet them.
//! No I/O beyond reading the caller's CSV; time and seeds are passed in.

pub mod channel;
pub mod encode;
pub mod fatigue;
pub mod lift;
pub mod live;
pub mod logistic;
pub mod sendtime;
pub mod table;
pub mod uplift;

/// Why a campaign file or request cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetingError {
    /// A column the task needs is not in the file.
    #[error("the file has no column `{column}`")]
    MissingColumn {
        /// The column's name.
        column: String,
    },
    /// A column holds a value it cannot.
    #[error("column `{column}`: {reason}")]
    BadColumn {
        /// The column's name.
        column: String,
        /// What is wrong and where.
        reason: String,
    },
    /// The file is not readable CSV.
    #[error("not readable as CSV: {0}")]
    Csv(String),
}
