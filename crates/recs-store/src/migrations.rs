//! The recommendation tables. They were created by the engine before this crate owned them, so
//! the migration keeps its id (`engine/002_…`): databases that have it are not migrated again.

use tailor_store::Migration;

/// The DDL of both backends, which differ only in the artifact's binary type.
macro_rules! recommendation_tables {
    ($binary:literal) => {
        concat!(
            "CREATE TABLE models (
            version BIGINT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            summary TEXT NOT NULL,
            artifact ",
            $binary,
            " NOT NULL
        );
        CREATE TABLE store_weather (
            location_id TEXT PRIMARY KEY,
            condition TEXT NOT NULL,
            temperature_c DOUBLE PRECISION,
            observed_at BIGINT NOT NULL
        );
        CREATE TABLE merchandising (id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at BIGINT NOT NULL)"
        )
    };
}

/// Model versions, store weather and merchandising rules.
pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "engine/002_recommendations",
    sqlite: recommendation_tables!("BLOB"),
    postgres: recommendation_tables!("BYTEA"),
}];
