//! The database handle.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Which database engine sits behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file in WAL mode.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database driver failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The URL or path cannot be used.
    #[error("cannot open the database: {0}")]
    Open(String),
    /// A migration failed.
    #[error("migration {id} failed: {source}")]
    Migration {
        /// The migration id.
        id: String,
        /// What went wrong.
        source: sqlx::Error,
    },
}

/// A handle to the database: a reader pool and a writer pool. With SQLite the writer is one
/// connection, so write transactions queue in the pool instead of failing with SQLITE_BUSY;
/// with PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Db {
    reader: AnyPool,
    writer: AnyPool,
    backend: Backend,
    url: String,
}

impl Db {
    /// Opens (creating if needed) `tailor.db` in `dir`.
    pub async fn open_sqlite(dir: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbError::Open(format!("cannot create data directory {}: {e}", dir.display())))?;
        let file = dir.join("tailor.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        Self::open(&url).await
    }

    /// Opens a `sqlite://` or `postgres://` URL.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::Open(format!(
                "unsupported database URL '{}': use postgres://user:password@host/db or a data directory",
                url.split('@').next_back().unwrap_or("")
            )));
        };
        let options = AnyConnectOptions::from_str(url).map_err(|e| DbError::Open(e.to_string()))?;
        let (reader, writer) = match backend {
            Backend::Sqlite => {
                let pool = |max: u32| {
                    AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(120)).after_connect(
                        |conn, _| {
                            Box::pin(async move {
                                conn.execute(
                                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; \
                                     PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON; \
                                     PRAGMA cache_size=-32000; PRAGMA mmap_size=4294967296",
                                )
                                .await?;
                                Ok(())
                            })
                        },
                    )
                };
                let writer = pool(1).connect_with(options.clone()).await?;
                let reader = pool(8).connect_with(options).await?;
                (reader, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(60))
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        Ok(Db { reader, writer, backend, url: url.to_string() })
    }

    /// The pool for queries that only read.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// The pool for writes; take transactions from it.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL it was opened with (for PostgreSQL: to open more handles to the same database).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Names of every table, for privacy scans and diagnostics.
    pub async fn table_names(&self) -> Result<Vec<String>, DbError> {
        use sqlx::Row;
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// Every row of `table` as text, one string per row, for privacy scans in tests and
    /// `tailor doctor`-style checks. Not for hot paths.
    pub async fn dump_table(&self, table: &str) -> Result<Vec<String>, DbError> {
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(DbError::Open(format!("not a table name: {table}")));
        }
        let sql = match self.backend {
            Backend::Sqlite => {
                // json_object over all columns needs their names; quote() renders every type.
                let cols: Vec<String> = {
                    use sqlx::Row;
                    sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(&self.reader)
                        .await?
                        .iter()
                        .map(|r| r.get::<String, _>(0))
                        .collect()
                };
                let parts: Vec<String> = cols.iter().map(|c| format!("quote(\"{c}\")")).collect();
                format!("SELECT {} FROM \"{table}\"", parts.join(" || '|' || "))
            }
            Backend::Postgres => format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t"),
        };
        use sqlx::Row;
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(|r| r.try_get::<String, _>(0).unwrap_or_default()).collect())
    }
}
