//! The tables the profiles crate owns.

use tailor_store::Migration;

/// Profiles, identities, merges, consent, orders and carts.
pub const MIGRATIONS: &[Migration] = &[Migration::portable(
    "profiles/001_profiles",
    "CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        merged_into TEXT,
        traits TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX profiles_merged_into ON profiles (merged_into);
    CREATE TABLE identities (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE INDEX identities_profile ON identities (profile_id);
    CREATE TABLE merges (
        id TEXT PRIMARY KEY,
        survivor TEXT NOT NULL,
        absorbed TEXT NOT NULL,
        event_seq BIGINT,
        cause_kind TEXT NOT NULL,
        cause_value TEXT NOT NULL,
        at BIGINT NOT NULL,
        undone_at BIGINT
    );
    CREATE INDEX merges_survivor ON merges (survivor);
    CREATE INDEX merges_absorbed ON merges (absorbed);
    CREATE TABLE merge_blocks (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b));
    CREATE TABLE consents (
        profile_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        granted BIGINT NOT NULL,
        at BIGINT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (profile_id, purpose)
    );
    CREATE TABLE orders (
        order_id TEXT PRIMARY KEY,
        profile_id TEXT,
        channel TEXT NOT NULL,
        store_id TEXT,
        total_cents BIGINT NOT NULL,
        refunded_cents BIGINT NOT NULL DEFAULT 0,
        currency TEXT NOT NULL,
        ts BIGINT NOT NULL,
        event_seq BIGINT NOT NULL
    );
    CREATE INDEX orders_profile ON orders (profile_id);
    CREATE TABLE order_lines (
        order_id TEXT NOT NULL,
        line_no BIGINT NOT NULL,
        product_id TEXT NOT NULL,
        category TEXT,
        quantity BIGINT NOT NULL,
        price_cents BIGINT NOT NULL,
        PRIMARY KEY (order_id, line_no)
    );
    CREATE TABLE carts (
        profile_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        price_cents BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (profile_id, product_id)
    );
    CREATE TABLE erasures (id TEXT PRIMARY KEY, at BIGINT NOT NULL, profiles BIGINT NOT NULL, events BIGINT NOT NULL)",
)];
