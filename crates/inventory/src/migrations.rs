//! Inventory tables. Quantities are whole units (BIGINT); times are unix milliseconds.

use tailor_store::Migration;

/// Stock, bundles, reservations and idempotency records.
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "inventory/001_stock_reservations",
        "
    CREATE TABLE inventory_stock (
        sku TEXT NOT NULL,
        location_id TEXT NOT NULL,
        on_hand BIGINT NOT NULL DEFAULT 0,
        reserved BIGINT NOT NULL DEFAULT 0,
        safety_stock BIGINT NOT NULL DEFAULT 0,
        damaged BIGINT NOT NULL DEFAULT 0,
        incoming BIGINT NOT NULL DEFAULT 0,
        incoming_at BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (sku, location_id),
        CHECK (on_hand >= 0 AND reserved >= 0 AND safety_stock >= 0 AND damaged >= 0 AND incoming >= 0)
    );
    CREATE INDEX inventory_stock_location ON inventory_stock (location_id);
    CREATE TABLE inventory_bundles (
        bundle_sku TEXT NOT NULL,
        component_sku TEXT NOT NULL,
        quantity BIGINT NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (bundle_sku, component_sku)
    );
    CREATE TABLE inventory_reservations (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        channel TEXT NOT NULL,
        order_id TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX inventory_reservations_due ON inventory_reservations (state, expires_at);
    CREATE TABLE inventory_reservation_lines (
        reservation_id TEXT NOT NULL,
        line_no BIGINT NOT NULL,
        sku TEXT NOT NULL,
        location_id TEXT NOT NULL,
        quantity BIGINT NOT NULL CHECK (quantity >= 0),
        PRIMARY KEY (reservation_id, line_no)
    );
    CREATE TABLE inventory_idempotency (
        idem_key TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE inventory_adjustments (
        id TEXT PRIMARY KEY,
        sku TEXT NOT NULL,
        location_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        change TEXT NOT NULL,
        reason TEXT NOT NULL,
        at BIGINT NOT NULL
    )
    ",
    ),
    Migration::portable(
        "inventory/002_channel_policies",
        "
    CREATE TABLE inventory_policies (
        channel TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        cart_ttl_ms BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE inventory_cart_holds (
        profile_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        reservation_id TEXT NOT NULL,
        PRIMARY KEY (profile_id, sku)
    )
    ",
    ),
    Migration::portable(
        "inventory/003_transfers",
        "
    CREATE TABLE inventory_transfers (
        id TEXT PRIMARY KEY,
        sku TEXT NOT NULL,
        from_location TEXT NOT NULL,
        to_location TEXT NOT NULL,
        quantity BIGINT NOT NULL CHECK (quantity > 0),
        state TEXT NOT NULL,
        expected_at BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )
    ",
    ),
];
