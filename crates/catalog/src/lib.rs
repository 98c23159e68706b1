//! The catalog and the retailer's locations: products, stores and warehouses, their tables, and
//! a tabular reader (CSV or Parquet) shared by every `tailor import`.

mod availability;
mod location;
mod product;
pub mod table;

pub use availability::{set_availability, unavailable, Availability};
pub use location::{get_location, location_exists, regions, upsert_locations, Location, LOCATION_COLUMNS};
pub use product::{
    all_products, catalog_stamp, get_product, product_prices, products_changed_since, upsert_products, Product,
    ProductPrice, PRODUCT_COLUMNS,
};
pub use table::{parse_bool, ColumnMap, ImportReport, Rejected, Table};

use tailor_store::Migration;

/// The tables this crate owns.
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        "catalog/001_products_locations",
        "CREATE TABLE products (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        brand TEXT,
        department TEXT,
        category TEXT,
        subcategory TEXT,
        size TEXT,
        manufacturer TEXT,
        price_cents BIGINT,
        currency TEXT NOT NULL,
        available BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX products_category ON products (category);
    CREATE TABLE locations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        region TEXT,
        latitude DOUBLE PRECISION,
        longitude DOUBLE PRECISION,
        timezone TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    ),
    Migration::portable(
        "catalog/002_availability",
        "CREATE TABLE availability (
        product_id TEXT NOT NULL,
        location_id TEXT NOT NULL,
        available BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (product_id, location_id)
    )",
    ),
];
