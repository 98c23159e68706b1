//! A small migration runner: each domain crate owns its tables and hands its migrations to the
//! engine, which applies the missing ones in order at start.

use sqlx::Row;

use crate::{Backend, Db, DbError};

/// One schema change, with the DDL for each backend. Statements are separated by `;`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// A unique, stable id, e.g. `stream/001_events`. Applied ids are recorded.
    pub id: &'static str,
    /// The DDL for SQLite.
    pub sqlite: &'static str,
    /// The DDL for PostgreSQL.
    pub postgres: &'static str,
}

impl Migration {
    /// A migration whose DDL is the same on both backends.
    pub const fn portable(id: &'static str, sql: &'static str) -> Migration {
        Migration { id, sqlite: sql, postgres: sql }
    }
}

impl Db {
    /// Applies every migration not yet applied, each in its own transaction. On PostgreSQL an
    /// advisory lock keeps two starting nodes from migrating at once.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<(), DbError> {
        let mut conn = self.writer().acquire().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(crate::lock_key("migrations")).execute(&mut *conn).await?;
        }
        let result = async {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await?;
            let applied: Vec<String> = sqlx::query("SELECT id FROM schema_migrations")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            for m in migrations.iter().filter(|m| !applied.iter().any(|a| a == m.id)) {
                let sql = match self.backend() {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                };
                let wrap = |source| DbError::Migration { id: m.id.to_string(), source };
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(stmt).execute(&mut *tx).await.map_err(wrap)?;
                }
                sqlx::query("INSERT INTO schema_migrations (id, applied_at) VALUES ($1, $2)")
                    .bind(m.id)
                    .bind(chrono_free_now())
                    .execute(&mut *tx)
                    .await
                    .map_err(wrap)?;
                tx.commit().await?;
                tracing::info!(migration = m.id, "applied migration");
            }
            Ok::<_, DbError>(())
        }
        .await;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(crate::lock_key("migrations"))
                .execute(&mut *conn)
                .await?;
        }
        result
    }
}

fn chrono_free_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
