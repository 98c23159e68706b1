//! Products: what the retailer sells.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use tailor_core::money::{cents, format_cents};
use tailor_store::{Db, DbError};

use crate::table::{parse_bool, ColumnMap};

/// The fields a product import reads, with the column names accepted for each (the Complete
/// Journey's `products` file maps directly).
pub const PRODUCT_COLUMNS: &[(&str, &[&str])] = &[
    ("id", &["id", "product_id", "sku"]),
    ("title", &["title", "name", "product_name"]),
    ("brand", &["brand"]),
    ("department", &["department"]),
    ("category", &["category", "product_category"]),
    ("subcategory", &["subcategory", "product_type", "type"]),
    ("size", &["size", "package_size"]),
    ("manufacturer", &["manufacturer", "manufacturer_id"]),
    ("price", &["price", "list_price"]),
    ("currency", &["currency"]),
    ("available", &["available", "in_stock"]),
];

/// A product.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Product {
    /// The retailer's product id (SKU).
    pub id: String,
    /// Display title.
    pub title: String,
    /// Brand.
    pub brand: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Sub-category or product type.
    pub subcategory: Option<String>,
    /// Package size.
    pub size: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// List price in minor units, if known.
    #[serde(skip)]
    pub price_cents: Option<i64>,
    /// List price as a decimal string.
    pub price: Option<String>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Whether it can be bought at all (stock per location comes from inventory).
    pub available: bool,
}

fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let lower = w.to_lowercase();
            let mut c = lower.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Product {
    /// Reads one row; the error names the column and says what is wrong.
    pub fn from_row(cols: &ColumnMap, row: &[Option<String>]) -> Result<Product, (String, String)> {
        let get = |i| cols.get(row, i).map(str::to_string);
        let id = get(0).ok_or_else(|| ("id".to_string(), "a product needs an id".to_string()))?;
        if id.len() > 128 {
            return Err(("id".into(), "must be at most 128 characters".into()));
        }
        let price_cents = match get(8) {
            None => None,
            Some(p) => match cents(&Value::String(p.clone())) {
                Some(c) if c >= 0 => Some(c),
                Some(_) => return Err(("price".into(), format!("'{p}' is negative"))),
                None => return Err(("price".into(), format!("'{p}' is not a number"))),
            },
        };
        let currency = get(9).unwrap_or_else(|| "USD".into()).to_ascii_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(("currency".into(), format!("'{currency}' is not an ISO 4217 code like USD")));
        }
        let available = match get(10) {
            None => true,
            Some(v) => parse_bool(&v).ok_or_else(|| ("available".to_string(), format!("'{v}' is not true/false")))?,
        };
        let title = get(1).unwrap_or_else(|| {
            let parts: Vec<String> = [get(5), get(4), get(6)].into_iter().flatten().collect();
            if parts.is_empty() {
                format!("Product {id}")
            } else {
                title_case(&parts.join(" "))
            }
        });
        Ok(Product {
            id,
            title,
            brand: get(2),
            department: get(3),
            category: get(4),
            subcategory: get(5),
            size: get(6),
            manufacturer: get(7),
            price: price_cents.map(format_cents),
            price_cents,
            currency,
            available,
        })
    }
}

/// Inserts or updates products in one transaction; re-running an import changes nothing.
pub async fn upsert_products(db: &Db, products: &[Product], now: i64) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    for chunk in products.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO products (id, title, brand, department, category, subcategory, size, manufacturer, price_cents, currency, available, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 12;
            if i > 0 {
                sql.push(',');
            }
            let ps: Vec<String> = (1..=12).map(|k| format!("${}", b + k)).collect();
            sql.push_str(&format!("({})", ps.join(",")));
        }
        sql.push_str(
            " ON CONFLICT (id) DO UPDATE SET title = excluded.title, brand = excluded.brand, department = excluded.department, \
             category = excluded.category, subcategory = excluded.subcategory, size = excluded.size, manufacturer = excluded.manufacturer, \
             price_cents = excluded.price_cents, currency = excluded.currency, available = excluded.available, updated_at = excluded.updated_at",
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q
                .bind(p.id.clone())
                .bind(p.title.clone())
                .bind(p.brand.clone())
                .bind(p.department.clone())
                .bind(p.category.clone())
                .bind(p.subcategory.clone())
                .bind(p.size.clone())
                .bind(p.manufacturer.clone())
                .bind(p.price_cents)
                .bind(p.currency.clone())
                .bind(p.available as i64)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

const PRODUCT_SELECT: &str = "SELECT id, title, brand, department, category, subcategory, size, manufacturer, \
     price_cents, currency, available FROM products";

fn product_from_row(r: &tailor_store::AnyRow) -> Product {
    let price_cents: Option<i64> = r.get(8);
    Product {
        id: r.get(0),
        title: r.get(1),
        brand: r.get(2),
        department: r.get(3),
        category: r.get(4),
        subcategory: r.get(5),
        size: r.get(6),
        manufacturer: r.get(7),
        price: price_cents.map(format_cents),
        price_cents,
        currency: r.get(9),
        available: r.get::<i64, _>(10) != 0,
    }
}

/// One product by id.
pub async fn get_product(db: &Db, id: &str) -> Result<Option<Product>, DbError> {
    let row = sqlx::query(&format!("{PRODUCT_SELECT} WHERE id = $1")).bind(id).fetch_optional(db.reader()).await?;
    Ok(row.as_ref().map(product_from_row))
}

/// What pricing needs of a product: its category (promotions by category), its catalog price
/// (the list price until the price book has one) and the currency it is sold in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPrice {
    /// The product id (SKU).
    pub id: String,
    /// Its category.
    pub category: Option<String>,
    /// Its catalog price in minor units, if known.
    pub price_cents: Option<i64>,
    /// ISO 4217 currency.
    pub currency: String,
}

/// The category, catalog price and currency of each product among `ids` that exists, in one
/// query on the caller's connection (inside its transaction when it holds one).
pub async fn product_prices(conn: &mut sqlx::AnyConnection, ids: &[String]) -> Result<Vec<ProductPrice>, DbError> {
    let sql = format!(
        "SELECT id, category, price_cents, currency FROM products WHERE id IN {}",
        tailor_store::placeholders(1, ids.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), ids);
    let rows = q.fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| ProductPrice { id: r.get(0), category: r.get(1), price_cents: r.get(2), currency: r.get(3) })
        .collect())
}

/// Every product, in id order (for training models over the whole catalog).
pub async fn all_products(db: &Db) -> Result<Vec<Product>, DbError> {
    let rows = sqlx::query(&format!("{PRODUCT_SELECT} ORDER BY id")).fetch_all(db.reader()).await?;
    Ok(rows.iter().map(product_from_row).collect())
}

/// How many products the catalog holds and when the latest changed (ms; 0 when empty): the
/// same pair later means no product was added or changed in between.
pub async fn catalog_stamp(db: &Db) -> Result<(i64, i64), DbError> {
    let r = sqlx::query("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM products").fetch_one(db.reader()).await?;
    Ok((r.get(0), r.get(1)))
}

/// Products changed at or after `since` (ms), in id order (for indexes kept in step with the
/// catalog).
pub async fn products_changed_since(db: &Db, since: i64) -> Result<Vec<Product>, DbError> {
    let rows = sqlx::query(&format!("{PRODUCT_SELECT} WHERE updated_at >= $1 ORDER BY id"))
        .bind(since)
        .fetch_all(db.reader())
        .await?;
    Ok(rows.iter().map(product_from_row).collect())
}
