//! Persistence for Tailor: one database handle over SQLite (the embedded default) or PostgreSQL
//! (scale-out), and the migration runner each domain crate feeds with its own tables.
//!
//! SQL is written once for both backends: `$1` placeholders (SQLite accepts them too), BIGINT
//! milliseconds for time, TEXT for JSON, BIGINT 0/1 for flags. Where the dialects differ a
//! migration carries one text per backend.

mod db;
mod migrate;
mod sql;

pub mod idempotency;

pub use db::{Backend, Db, DbError};
pub use migrate::Migration;
pub use sql::{bind_all, lock_key, placeholders, values_placeholders, AnyQuery, Float};
pub use sqlx::{any::AnyRow, Row};
