//! Journey tables: versions, each customer's position (the scheduler's timers), sends keyed
//! for idempotency, the decision log, the suppression list, on-site messages and settings.

use tailor_store::Migration;

/// The journey tables.
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "campaigns/001_journeys",
        "
    CREATE TABLE journeys (
        id TEXT NOT NULL,
        version BIGINT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (id, version)
    );
    CREATE TABLE journey_heads (
        id TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        paused BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE journey_positions (
        journey_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        entry BIGINT NOT NULL,
        step BIGINT,
        due_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        lease_owner TEXT,
        lease_until BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (journey_id, customer_id)
    );
    CREATE INDEX journey_positions_due ON journey_positions (status, due_at);
    CREATE TABLE journey_sends (
        idem_key TEXT PRIMARY KEY,
        journey_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        customer_id TEXT NOT NULL,
        entry BIGINT NOT NULL,
        step_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        template TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        purpose TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX journey_sends_customer ON journey_sends (customer_id, status, updated_at);
    CREATE INDEX journey_sends_journey ON journey_sends (journey_id, updated_at);
    CREATE TABLE journey_log (
        id TEXT PRIMARY KEY,
        journey_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        step_id TEXT,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        purpose TEXT,
        at BIGINT NOT NULL
    );
    CREATE INDEX journey_log_customer ON journey_log (customer_id, at);
    CREATE TABLE suppressions (
        address TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE TABLE onsite_messages (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        journey_id TEXT NOT NULL,
        title TEXT,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX onsite_messages_customer ON onsite_messages (customer_id, created_at);
    CREATE TABLE campaign_settings (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL
    )
    ",
    ),
    // Who entered when, and whether they were held out: the report compares recipients with the
    // holdout from the entry on (the position row is overwritten by the next entry).
    Migration::portable(
        "campaigns/002_entries",
        "
    CREATE TABLE journey_entries (
        journey_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        entry BIGINT NOT NULL,
        version BIGINT NOT NULL,
        holdout BIGINT NOT NULL,
        entered_at BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (journey_id, customer_id, entry)
    );
    CREATE INDEX journey_entries_journey ON journey_entries (journey_id, entered_at)
    ",
    ),
    // What targeting knew and decided at each entry (the next model's training data), and the
    // uplift models journeys target with.
    Migration::portable(
        "campaigns/003_uplift",
        "
    ALTER TABLE journey_entries ADD COLUMN targeting TEXT;
    CREATE TABLE uplift_models (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        journey_id TEXT NOT NULL,
        trained_at BIGINT NOT NULL
    )
    ",
    ),
    // Segments and their members, kept up as events arrive.
    Migration::portable(
        "campaigns/004_segments",
        "
    CREATE TABLE segments (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE segment_members (
        segment_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        since BIGINT NOT NULL,
        checked_at BIGINT NOT NULL,
        PRIMARY KEY (segment_id, customer_id)
    );
    CREATE INDEX segment_members_checked ON segment_members (segment_id, checked_at)
    ",
    ),
    // Items customers watch without saying so (see `watches`).
    Migration::portable(
        "campaigns/005_watches",
        "
    CREATE TABLE journey_watches (
        kind TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        price_cents BIGINT,
        created_at BIGINT NOT NULL,
        fired_at BIGINT,
        PRIMARY KEY (kind, customer_id, sku)
    );
    CREATE INDEX journey_watches_open ON journey_watches (fired_at, created_at)
    ",
    ),
];
