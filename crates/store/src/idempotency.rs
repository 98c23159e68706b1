//! Idempotency records: the first answer to a request sent with an `Idempotency-Key`, kept so a
//! retry gets the same answer and a reused key with another request is refused. Each domain
//! keeps its records in its own table of the same shape (`idem_key`, `request_hash`, `response`,
//! `created_at`), written in the transaction of the change.

use sqlx::{AnyConnection, Row};

use crate::DbError;

/// What a table holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Nothing: the request is new.
    Nothing,
    /// The answer given to the same request before.
    Answer(String),
    /// The key was used for another request.
    OtherRequest,
}

/// The record of `key` in `table` for the request hashed as `request_hash`.
pub async fn recorded(
    conn: &mut AnyConnection,
    table: &'static str,
    key: &str,
    request_hash: &str,
) -> Result<Recorded, DbError> {
    let row = sqlx::query(&format!("SELECT request_hash, response FROM {table} WHERE idem_key = $1"))
        .bind(key.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        None => Recorded::Nothing,
        Some(r) if r.get::<String, _>(0) == request_hash => Recorded::Answer(r.get(1)),
        Some(_) => Recorded::OtherRequest,
    })
}

/// Records the answer to `key`'s request, in the caller's transaction.
pub async fn record(
    conn: &mut AnyConnection,
    table: &'static str,
    key: &str,
    request_hash: &str,
    answer: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(&format!("INSERT INTO {table} (idem_key, request_hash, response, created_at) VALUES ($1, $2, $3, $4)"))
        .bind(key.to_string())
        .bind(request_hash.to_string())
        .bind(answer.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
