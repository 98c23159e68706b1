//! Loyalty tables. Points are whole numbers; times are unix milliseconds.

use tailor_store::Migration;

/// The ledger and idempotency records.
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "loyalty/001_ledger",
        "
    CREATE TABLE loyalty_entries (
        id TEXT PRIMARY KEY,
        profile_id TEXT NOT NULL,
        bucket TEXT NOT NULL,
        points BIGINT NOT NULL,
        kind TEXT NOT NULL,
        order_id TEXT,
        ref_id TEXT,
        order_cents BIGINT,
        available_at BIGINT,
        reason TEXT,
        at BIGINT NOT NULL
    );
    CREATE INDEX loyalty_entries_profile ON loyalty_entries (profile_id, bucket);
    CREATE INDEX loyalty_entries_order ON loyalty_entries (order_id);
    CREATE INDEX loyalty_entries_ref ON loyalty_entries (ref_id);
    CREATE TABLE loyalty_idempotency (
        idem_key TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )
    ",
    ),
    Migration::portable(
        "loyalty/002_rules",
        "
    CREATE TABLE loyalty_rules (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL
    );
    CREATE TABLE loyalty_tiers (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL
    )
    ",
    ),
    Migration {
        id: "loyalty/003_events_status_rewards",
        sqlite: "
    CREATE TABLE loyalty_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        details TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX loyalty_events_profile ON loyalty_events (profile_id, kind);
    CREATE TABLE loyalty_status (
        profile_id TEXT PRIMARY KEY,
        tier TEXT,
        since BIGINT NOT NULL,
        grace_until BIGINT
    );
    CREATE TABLE loyalty_rewards (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL
    );
    ALTER TABLE loyalty_tiers ADD COLUMN position BIGINT NOT NULL DEFAULT 0
    ",
        postgres: "
    CREATE TABLE loyalty_events (
        seq BIGSERIAL PRIMARY KEY,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        details TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX loyalty_events_profile ON loyalty_events (profile_id, kind);
    CREATE TABLE loyalty_status (
        profile_id TEXT PRIMARY KEY,
        tier TEXT,
        since BIGINT NOT NULL,
        grace_until BIGINT
    );
    CREATE TABLE loyalty_rewards (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL
    );
    ALTER TABLE loyalty_tiers ADD COLUMN position BIGINT NOT NULL DEFAULT 0
    ",
    },
];
