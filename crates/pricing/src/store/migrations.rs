//! The pricing tables. Money is BIGINT cents; times are unix milliseconds; promotions,
//! guardrails and experiments are stored as JSON bodies.
//!
//! The ids and DDL are those the engine applied before this crate owned them, so databases
//! created then are not migrated again; they apply in the order they always did.

use tailor_store::Migration;

/// The price book, decisions, guardrails, promotions, market inputs, offers and experiments.
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "pricing/001_price_book",
        "
    CREATE TABLE price_list (
        sku TEXT NOT NULL,
        zone TEXT NOT NULL,
        currency TEXT NOT NULL,
        cents BIGINT NOT NULL,
        valid_from BIGINT NOT NULL,
        valid_to BIGINT,
        PRIMARY KEY (sku, zone, valid_from)
    );
    CREATE TABLE price_promotions (id TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE price_guardrails (sku TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE price_changes (
        id TEXT PRIMARY KEY,
        sku TEXT NOT NULL,
        zone TEXT NOT NULL,
        from_cents BIGINT,
        proposed_cents BIGINT NOT NULL,
        to_cents BIGINT NOT NULL,
        clamps TEXT NOT NULL,
        reason TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX price_changes_sku ON price_changes (sku, at);
    CREATE TABLE price_market (
        sku TEXT NOT NULL,
        source TEXT NOT NULL,
        cents BIGINT,
        demand_index DOUBLE PRECISION,
        at BIGINT NOT NULL,
        PRIMARY KEY (sku, source)
    );
    CREATE TABLE price_offers (
        id TEXT PRIMARY KEY,
        profile_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        max_discount_cents BIGINT NOT NULL,
        percent_off DOUBLE PRECISION NOT NULL,
        reason TEXT NOT NULL,
        valid_until BIGINT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE INDEX price_offers_profile ON price_offers (profile_id, at)
    ",
    ),
    Migration::portable(
        "pricing/003_offer_consent",
        "ALTER TABLE price_offers ADD COLUMN purpose TEXT NOT NULL DEFAULT 'personalization'",
    ),
    Migration::portable(
        "pricing/002_experiments",
        "CREATE TABLE price_experiments (sku TEXT PRIMARY KEY, body TEXT NOT NULL, status TEXT NOT NULL, updated_at BIGINT NOT NULL)",
    ),
    Migration::portable(
        "pricing/004_elasticity",
        "CREATE TABLE price_elasticity (category TEXT PRIMARY KEY, mean DOUBLE PRECISION NOT NULL, \
         mean_sd DOUBLE PRECISION NOT NULL, tau DOUBLE PRECISION NOT NULL, products BIGINT NOT NULL, \
         updated_at BIGINT NOT NULL)",
    ),
];

#[cfg(test)]
mod tests {
    /// Databases record these ids as applied; renaming one would apply its DDL twice.
    #[test]
    fn migration_ids_are_those_already_applied() {
        let ids: Vec<&str> = super::MIGRATIONS.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            [
                "pricing/001_price_book",
                "pricing/003_offer_consent",
                "pricing/002_experiments",
                "pricing/004_elasticity"
            ]
        );
    }
}
