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
pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    // Each event remembers the source that sent it and whether that source is trusted to move
    // money, stock and points; `messageId` is unique per source, as Segment scopes it.
    Migration {
        id: "stream/002_sources",
        sqlite: "CREATE TABLE events_new (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL DEFAULT 'internal',
            trusted BIGINT NOT NULL DEFAULT 1,
            message_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT,
            user_id TEXT,
            anonymous_id TEXT,
            channel TEXT NOT NULL,
            ts BIGINT NOT NULL,
            received_at BIGINT NOT NULL,
            body TEXT NOT NULL,
            profile_id TEXT,
            UNIQUE (source, message_id)
        );
        INSERT INTO events_new (seq, message_id, kind, name, user_id, anonymous_id, channel, ts, received_at, body, profile_id)
            SELECT seq, message_id, kind, name, user_id, anonymous_id, channel, ts, received_at, body, profile_id FROM events;
        DROP TABLE events;
        ALTER TABLE events_new RENAME TO events;
        CREATE INDEX events_profile ON events (profile_id, ts)",
        postgres: "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'internal';
        ALTER TABLE events ADD COLUMN trusted BIGINT NOT NULL DEFAULT 1;
        ALTER TABLE events DROP CONSTRAINT events_message_id_key;
        ALTER TABLE events ADD CONSTRAINT events_source_message UNIQUE (source, message_id)",
    },
    // Events a projection could not apply, with the reason; the projection moves past them.
    Migration::portable(
        "stream/003_dead_letters",
        "CREATE TABLE dead_letters (
            seq BIGINT NOT NULL,
            projection TEXT NOT NULL,
            error TEXT NOT NULL,
            field TEXT,
            failed_at BIGINT NOT NULL,
            replayed_at BIGINT,
            PRIMARY KEY (seq, projection)
        )",
    ),
];

/// Who sent events: a named source (an API key's source, an import) and whether it may move
/// money, stock and points. A browser or app key is not trusted: its order events are
/// behaviour, recorded on the timeline, not sales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source's name; `messageId`s are unique per source.
    pub name: String,
    /// Whether its order events count as sales (points, stock, revenue).
    pub trusted: bool,
}

impl Source {
    /// Tailor itself: imports, the demo, tests that write through the engine.
    pub fn internal() -> Source {
        Source { name: "internal".into(), trusted: true }
    }
}

/// Rows per multi-row INSERT: sqlx binds many parameters slowly, so 32 rows (352 parameters) is
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

    /// Commits `events` from `source` in one transaction. Events whose `messageId` this source
    /// already sent are skipped, so a retried batch stores each event once. Returns how many
    /// were new.
    pub async fn append(&self, events: &[Event], source: &Source) -> Result<u64, DbError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db.writer().begin().await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(tailor_store::lock_key("event_log"))
                .execute(&mut *tx)
                .await?;
        }
        let mut inserted = 0;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut sql = String::with_capacity(160 + chunk.len() * 48);
            sql.push_str(
                "INSERT INTO events (source, trusted, message_id, kind, name, user_id, anonymous_id, channel, ts, received_at, body) VALUES ",
            );
            sql.push_str(&tailor_store::values_placeholders(chunk.len(), 11));
            sql.push_str(" ON CONFLICT (source, message_id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(source.name.clone())
                    .bind(i64::from(source.trusted))
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

    /// Whether `source` sent an event with this `messageId`.
    pub async fn contains(&self, source: &str, message_id: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM events WHERE source = $1 AND message_id = $2")
            .bind(source)
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

/// An event a projection could not apply, kept with the reason so an operator can fix the
/// cause and replay it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The event's position in the log.
    pub seq: i64,
    /// The projection that failed (its cursor name).
    pub projection: String,
    /// Why it failed.
    pub error: String,
    /// The offending field, when the failure names one.
    pub field: Option<String>,
    /// When it failed (ms).
    pub failed_at: i64,
    /// When a replay applied it (ms), if one did.
    pub replayed_at: Option<i64>,
    /// The event as stored.
    pub body: Value,
    /// The source that sent it.
    pub source: String,
}

/// Records that `projection` could not apply event `seq`, inside the caller's transaction.
pub async fn record_dead_letter(
    conn: &mut sqlx::AnyConnection,
    seq: i64,
    projection: &str,
    error: &str,
    field: Option<&str>,
    at: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO dead_letters (seq, projection, error, field, failed_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (seq, projection) DO UPDATE SET error = excluded.error, field = excluded.field, \
         failed_at = excluded.failed_at, replayed_at = NULL",
    )
    .bind(seq)
    .bind(projection)
    .bind(error)
    .bind(field)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a dead letter as applied by a replay, inside the caller's transaction.
pub async fn mark_replayed(conn: &mut sqlx::AnyConnection, seq: i64, projection: &str, at: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE seq = $2 AND projection = $3")
        .bind(at)
        .bind(seq)
        .bind(projection)
        .execute(conn)
        .await?;
    Ok(())
}

impl EventLog {
    /// Dead letters after position `after`, oldest first; replayed ones only when asked.
    pub async fn dead_letters(&self, after: i64, limit: i64, replayed: bool) -> Result<Vec<DeadLetter>, DbError> {
        let rows = sqlx::query(
            "SELECT d.seq, d.projection, d.error, d.field, d.failed_at, d.replayed_at, e.body, e.source \
             FROM dead_letters d JOIN events e ON e.seq = d.seq \
             WHERE d.seq > $1 AND ($2 = 1 OR d.replayed_at IS NULL) ORDER BY d.seq, d.projection LIMIT $3",
        )
        .bind(after)
        .bind(i64::from(replayed))
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                seq: r.get(0),
                projection: r.get(1),
                error: r.get(2),
                field: r.get(3),
                failed_at: r.get(4),
                replayed_at: r.get(5),
                body: serde_json::from_str(&r.get::<String, _>(6)).unwrap_or(Value::Null),
                source: r.get(7),
            })
            .collect())
    }

    /// How many dead letters wait for a replay.
    pub async fn dead_letter_count(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL")
            .fetch_one(self.db.reader())
            .await?;
        Ok(row.get(0))
    }
}
