//! The event log: every accepted event is committed here before intake answers, deduplicated by
//! `messageId`, and read back in order by the projections (profiles, orders, carts).
//!
//! The embedded bus is this table plus an in-process [`tokio::sync::Notify`]; on PostgreSQL
//! intake transactions take an advisory lock so sequence numbers commit in order and a cursor
//! never skips an event.

use std::sync::Arc;

use serde_json::Value;
use sqlx::Row;
use tailor_core::event::Event;
use tailor_store::{Backend, Db, DbError, Migration};
use tokio::sync::Notify;

/// The tables this crate owns.
pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "stream/001_events",
    sqlite: "CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            name TEXT,
            user_id TEXT,
            anonymous_id TEXT,
            channel TEXT NOT NULL,
            ts BIGINT NOT NULL,
            received_at BIGINT NOT NULL,
            body TEXT NOT NULL,
            profile_id TEXT
        );
        CREATE INDEX events_profile ON events (profile_id, ts);
        CREATE TABLE cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    postgres: "CREATE TABLE events (
            seq BIGSERIAL PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            name TEXT,
            user_id TEXT,
            anonymous_id TEXT,
            channel TEXT NOT NULL,
            ts BIGINT NOT NULL,
            received_at BIGINT NOT NULL,
            body TEXT NOT NULL,
            profile_id TEXT
        );
        CREATE INDEX events_profile ON events (profile_id, ts);
        CREATE TABLE cursors (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
}];

/// Rows per multi-row INSERT: sqlx binds many parameters slowly, so 32 rows (288 parameters) is
/// measurably faster than one row or hundreds per statement.
pub const ROWS_PER_INSERT: usize = 32;

/// An event as stored in the log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its position in the log.
    pub seq: i64,
    /// The event, as validated at intake.
    pub body: Value,
    /// Call type name (`track`, `identify`, ...).
    pub kind: String,
    /// Event or page name.
    pub name: Option<String>,
    /// Channel name.
    pub channel: String,
    /// When it happened (ms).
    pub ts: i64,
}

/// The event log over a [`Db`].
#[derive(Clone, Debug)]
pub struct EventLog {
    db: Db,
    appended: Arc<Notify>,
}

impl EventLog {
    /// A log over `db`.
    pub fn new(db: Db) -> Self {
        Self { db, appended: Arc::new(Notify::new()) }
    }

    /// Woken after every append in this process; projections wait on it.
    pub fn appended(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Commits `events` in one transaction. Events whose `messageId` is already stored are
    /// skipped, so a retried batch stores each event once. Returns how many were new.
    pub async fn append(&self, events: &[Event]) -> Result<u64, DbError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.writer().begin().await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(727301)").execute(&mut *tx).await?;
        }
        let mut inserted = 0;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut sql = String::with_capacity(160 + chunk.len() * 48);
            sql.push_str(
                "INSERT INTO events (message_id, kind, name, user_id, anonymous_id, channel, ts, received_at, body) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 9;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9
                ));
            }
            sql.push_str(" ON CONFLICT (message_id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.message_id.clone())
                    .bind(e.kind.as_str())
                    .bind(e.name.clone())
                    .bind(e.user_id.clone())
                    .bind(e.anonymous_id.clone())
                    .bind(e.channel.as_str())
                    .bind(e.timestamp)
                    .bind(e.received_at)
                    .bind(e.body.to_string());
            }
            inserted += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        self.appended.notify_one();
        Ok(inserted)
    }

    /// Up to `limit` events after position `after`, in order.
    pub async fn read_after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, DbError> {
        let rows =
            sqlx::query("SELECT seq, body, kind, name, channel, ts FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(self.db.reader())
                .await?;
        Ok(rows
            .iter()
            .map(|r| StoredEvent {
                seq: r.get(0),
                body: serde_json::from_str(&r.get::<String, _>(1)).unwrap_or(Value::Null),
                kind: r.get(2),
                name: r.get(3),
                channel: r.get(4),
                ts: r.get(5),
            })
            .collect())
    }

    /// The highest position in the log (0 when empty).
    pub async fn head(&self) -> Result<i64, DbError> {
        let row =
            sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events").fetch_one(self.db.reader()).await?;
        Ok(row.get(0))
    }

    /// How many events are stored.
    pub async fn count(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM events").fetch_one(self.db.reader()).await?;
        Ok(row.get(0))
    }

    /// Whether an event with this `messageId` is stored.
    pub async fn contains(&self, message_id: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM events WHERE message_id = $1")
            .bind(message_id)
            .fetch_one(self.db.reader())
            .await?;
        Ok(row.get::<i64, _>(0) > 0)
    }

    /// The saved position of a named reader (0 if it never ran).
    pub async fn cursor(&self, name: &str) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT position FROM cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.map(|r| r.get(0)).unwrap_or(0))
    }
}

/// Saves a reader's position inside the caller's transaction, so the position and the effects
/// of the events read commit together.
pub async fn save_cursor(conn: &mut sqlx::AnyConnection, name: &str, position: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO cursors (name, position) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .bind(name)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}
