//! Stock levels per SKU and location: adjustments, bundles, and availability to promise.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::InventoryError;

/// One SKU at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockLevel {
    /// The SKU (product id).
    pub sku: String,
    /// Store, warehouse or in-transit location.
    pub location_id: String,
    /// Units physically there.
    pub on_hand: i64,
    /// Units held for carts and orders.
    pub reserved: i64,
    /// Units kept back so the shelf is never promised empty.
    pub safety_stock: i64,
    /// Units that cannot be sold.
    pub damaged: i64,
    /// Units on their way.
    pub incoming: i64,
    /// When the incoming units are expected.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub incoming_at: Option<i64>,
    /// on hand − reserved − safety stock − damaged.
    pub available: i64,
}

/// Whether an adjustment sets values or adds to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdjustMode {
    /// The given values replace the current ones (a count).
    Set,
    /// The given values are added (negative to remove); the result may not go below zero.
    Delta,
}

/// A change to one SKU at one location, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Adjustment {
    /// The SKU.
    pub sku: String,
    /// The location.
    pub location_id: String,
    /// set or delta.
    pub mode: AdjustMode,
    /// Units on hand.
    pub on_hand: Option<i64>,
    /// Safety stock.
    pub safety_stock: Option<i64>,
    /// Damaged units.
    pub damaged: Option<i64>,
    /// Incoming units.
    pub incoming: Option<i64>,
    /// When the incoming units are expected.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub incoming_at: Option<i64>,
    /// Why (a count, a delivery, breakage…); kept with the change.
    pub reason: String,
}

const COLUMNS: [&str; 4] = ["on_hand", "safety_stock", "damaged", "incoming"];

pub(crate) async fn sku_exists(conn: &mut AnyConnection, sku: &str) -> Result<bool, InventoryError> {
    let row = sqlx::query(
        "SELECT 1 FROM products WHERE id = $1 UNION ALL SELECT 1 FROM inventory_bundles WHERE bundle_sku = $1 LIMIT 1",
    )
    .bind(sku.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

pub(crate) async fn location_exists(conn: &mut AnyConnection, id: &str) -> Result<bool, InventoryError> {
    Ok(sqlx::query("SELECT 1 FROM locations WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

pub(crate) async fn check_sku(conn: &mut AnyConnection, field: &str, sku: &str) -> Result<(), InventoryError> {
    if !sku_exists(conn, sku).await? {
        return Err(InventoryError::Invalid(FieldError::unknown(field, format!("no product with id '{sku}'"))));
    }
    Ok(())
}

pub(crate) async fn check_location(conn: &mut AnyConnection, field: &str, id: &str) -> Result<(), InventoryError> {
    if !location_exists(conn, id).await? {
        return Err(InventoryError::Invalid(FieldError::unknown(field, format!("no location with id '{id}'"))));
    }
    Ok(())
}

/// The first answer to this idempotency key, if the request was answered before; a reused key
/// with another body is refused. `key` is (key, hash of the body).
pub(crate) async fn stored_answer(
    conn: &mut AnyConnection,
    key: Option<(&str, &str)>,
) -> Result<Option<String>, InventoryError> {
    use tailor_store::idempotency::{recorded, Recorded};
    let Some((key, hash)) = key else { return Ok(None) };
    match recorded(conn, "inventory_idempotency", key, hash).await? {
        Recorded::Nothing => Ok(None),
        Recorded::Answer(a) => Ok(Some(a)),
        Recorded::OtherRequest => Err(InventoryError::Invalid(FieldError::invalid(
            "Idempotency-Key",
            "this key was used with a different body; use a new key for a new request",
        ))),
    }
}

/// Records the answer to this idempotency key, in the change's transaction.
pub(crate) async fn store_answer(
    conn: &mut AnyConnection,
    key: Option<(&str, &str)>,
    answer: &str,
    now: i64,
) -> Result<(), InventoryError> {
    if let Some((key, hash)) = key {
        tailor_store::idempotency::record(conn, "inventory_idempotency", key, hash, answer, now).await?;
    }
    Ok(())
}

/// Applies an adjustment and returns the new level. With an idempotency key (key, body hash), a
/// retry returns the first result without applying it twice.
pub async fn adjust(
    db: &Db,
    a: &Adjustment,
    idempotency: Option<(&str, &str)>,
    now: i64,
) -> Result<StockLevel, InventoryError> {
    if a.reason.trim().is_empty() {
        return Err(InventoryError::Invalid(FieldError::invalid("reason", "say why the stock changes")));
    }
    let values = [a.on_hand, a.safety_stock, a.damaged, a.incoming];
    if values.iter().all(Option::is_none) {
        return Err(InventoryError::Invalid(FieldError::invalid(
            "onHand",
            "give at least one of onHand, safetyStock, damaged, incoming",
        )));
    }
    for (v, name) in values.iter().zip(["onHand", "safetyStock", "damaged", "incoming"]) {
        let Some(v) = v else { continue };
        if a.mode == AdjustMode::Set && *v < 0 {
            return Err(InventoryError::Invalid(FieldError::invalid(name, "cannot be negative")));
        }
        if v.unsigned_abs() > crate::MAX_ON_HAND as u64 {
            return Err(InventoryError::Invalid(FieldError::invalid(
                name,
                format!("must be within ±{}", crate::MAX_ON_HAND),
            )));
        }
    }
    let mut tx = db.writer().begin().await?;
    if let Some(answer) = stored_answer(&mut tx, idempotency).await? {
        tx.rollback().await?;
        return serde_json::from_str(&answer).map_err(|e| InventoryError::Conflict(e.to_string()));
    }
    check_sku(&mut tx, "sku", &a.sku).await?;
    check_location(&mut tx, "locationId", &a.location_id).await?;
    sqlx::query(
        "INSERT INTO inventory_stock (sku, location_id, updated_at) VALUES ($1, $2, $3) ON CONFLICT (sku, location_id) DO NOTHING",
    )
    .bind(a.sku.clone())
    .bind(a.location_id.clone())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for ((value, column), name) in values.iter().zip(COLUMNS).zip(["onHand", "safetyStock", "damaged", "incoming"]) {
        let Some(v) = value else { continue };
        let sql = match a.mode {
            AdjustMode::Set => {
                format!("UPDATE inventory_stock SET {column} = $1, updated_at = $2 WHERE sku = $3 AND location_id = $4")
            }
            AdjustMode::Delta => format!(
                "UPDATE inventory_stock SET {column} = {column} + $1, updated_at = $2 \
                 WHERE sku = $3 AND location_id = $4 AND {column} + $1 >= 0 AND {column} + $1 <= {}",
                crate::MAX_ON_HAND
            ),
        };
        let done = sqlx::query(&sql)
            .bind(*v)
            .bind(now)
            .bind(a.sku.clone())
            .bind(a.location_id.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done == 0 {
            return Err(InventoryError::Invalid(FieldError::invalid(
                name,
                format!("this change would take it below zero or above {}", crate::MAX_ON_HAND),
            )));
        }
    }
    if let Some(at) = a.incoming_at {
        sqlx::query("UPDATE inventory_stock SET incoming_at = $1 WHERE sku = $2 AND location_id = $3")
            .bind(at)
            .bind(a.sku.clone())
            .bind(a.location_id.clone())
            .execute(&mut *tx)
            .await?;
    }
    let change = serde_json::to_string(a).map_err(|e| InventoryError::Conflict(e.to_string()))?;
    sqlx::query(
        "INSERT INTO inventory_adjustments (id, sku, location_id, mode, change, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(a.sku.clone())
    .bind(a.location_id.clone())
    .bind(if a.mode == AdjustMode::Set { "set" } else { "delta" })
    .bind(change)
    .bind(a.reason.clone())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let level = stock_level_in(&mut tx, &a.sku, &a.location_id)
        .await?
        .ok_or_else(|| InventoryError::NotFound(format!("no stock of '{}' at '{}'", a.sku, a.location_id)))?;
    let answer = serde_json::to_string(&level).map_err(|e| InventoryError::Conflict(e.to_string()))?;
    store_answer(&mut tx, idempotency, &answer, now).await?;
    tx.commit().await?;
    Ok(level)
}

fn level_from(r: &sqlx::any::AnyRow) -> StockLevel {
    let (on_hand, reserved, safety_stock, damaged): (i64, i64, i64, i64) = (r.get(2), r.get(3), r.get(4), r.get(5));
    StockLevel {
        sku: r.get(0),
        location_id: r.get(1),
        on_hand,
        reserved,
        safety_stock,
        damaged,
        incoming: r.get(6),
        incoming_at: r.get(7),
        available: on_hand - reserved - safety_stock - damaged,
    }
}

const LEVEL: &str =
    "SELECT sku, location_id, on_hand, reserved, safety_stock, damaged, incoming, incoming_at FROM inventory_stock";

async fn stock_level_in(
    conn: &mut AnyConnection,
    sku: &str,
    location: &str,
) -> Result<Option<StockLevel>, InventoryError> {
    let row = sqlx::query(&format!("{LEVEL} WHERE sku = $1 AND location_id = $2"))
        .bind(sku.to_string())
        .bind(location.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(level_from))
}

/// The level of one SKU at one location, if it is stocked there.
pub async fn stock_level(db: &Db, sku: &str, location: &str) -> Result<Option<StockLevel>, InventoryError> {
    let mut conn = db.reader().acquire().await?;
    stock_level_in(&mut conn, sku, location).await
}

/// Defines a bundle (kit) as components with quantities; replaces an earlier definition.
pub async fn set_bundle(db: &Db, bundle: &str, components: &[(String, i64)]) -> Result<(), InventoryError> {
    if components.is_empty() {
        return Err(InventoryError::Invalid(FieldError::invalid(
            "components",
            "a bundle needs at least one component",
        )));
    }
    for (i, (sku, _)) in components.iter().enumerate() {
        if components[..i].iter().any(|(other, _)| other == sku) {
            return Err(InventoryError::Invalid(FieldError::invalid(
                format!("components[{i}].sku"),
                format!("'{sku}' is listed twice: give each component once with its quantity"),
            )));
        }
    }
    let mut tx = db.writer().begin().await?;
    for (i, (sku, q)) in components.iter().enumerate() {
        crate::error::positive(&format!("components[{i}].quantity"), *q)?;
        check_sku(&mut tx, &format!("components[{i}].sku"), sku).await?;
    }
    sqlx::query("DELETE FROM inventory_bundles WHERE bundle_sku = $1")
        .bind(bundle.to_string())
        .execute(&mut *tx)
        .await?;
    for (sku, q) in components {
        sqlx::query("INSERT INTO inventory_bundles (bundle_sku, component_sku, quantity) VALUES ($1, $2, $3)")
            .bind(bundle.to_string())
            .bind(sku.clone())
            .bind(*q)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Components of each bundle among `skus` (SKUs that are not bundles are absent).
pub(crate) async fn bundles_of(
    conn: &mut AnyConnection,
    skus: &[String],
) -> Result<HashMap<String, Vec<(String, i64)>>, InventoryError> {
    let mut out: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    if skus.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT bundle_sku, component_sku, quantity FROM inventory_bundles WHERE bundle_sku IN ({}) ORDER BY component_sku",
        (1..=skus.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), skus);
    for r in q.fetch_all(&mut *conn).await? {
        out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
    }
    Ok(out)
}

/// Availability of one SKU at one location, as promised to a shopper.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationAvailability {
    /// The SKU.
    pub sku: String,
    /// The location.
    pub location_id: String,
    /// Units that can be promised now.
    pub available: i64,
    /// Whether a shopper can pick it up there today.
    pub pickup_today: bool,
    /// When it can ship from there: now when in stock, else when incoming stock lands.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ships_by: Option<i64>,
    /// Distance from `near` in km, when asked with coordinates.
    pub distance_km: Option<f64>,
}

/// Great-circle distance in km.
pub(crate) fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// Per SKU and location: what can be promised. `locations` narrows to some locations; `near`
/// sorts by distance. Bundles are as available as their scarcest component allows.
pub async fn availability(
    db: &Db,
    skus: &[String],
    locations: Option<&[String]>,
    near: Option<(f64, f64)>,
    now: i64,
) -> Result<Vec<LocationAvailability>, InventoryError> {
    let mut conn = db.reader().acquire().await?;
    let bundles = bundles_of(&mut conn, skus).await?;
    let mut wanted: Vec<String> = skus.to_vec();
    for comps in bundles.values() {
        wanted.extend(comps.iter().map(|c| c.0.clone()));
    }
    wanted.sort();
    wanted.dedup();
    let sql = format!(
        "SELECT s.sku, s.location_id, s.on_hand, s.reserved, s.safety_stock, s.damaged, s.incoming, s.incoming_at, \
         l.kind, l.latitude, l.longitude FROM inventory_stock s JOIN locations l ON l.id = s.location_id \
         WHERE s.sku IN ({})",
        (1..=wanted.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), &wanted);
    let rows = q.fetch_all(&mut *conn).await?;
    let mut levels: HashMap<(String, String), StockLevel> = HashMap::new();
    let mut places: HashMap<String, (String, Option<f64>)> = HashMap::new();
    for r in &rows {
        let level = level_from(r);
        let coords = match (r.get::<Option<f64>, _>(9), r.get::<Option<f64>, _>(10)) {
            (Some(lat), Some(lon)) => near.map(|n| distance_km(n, (lat, lon))),
            _ => None,
        };
        places.insert(level.location_id.clone(), (r.get(8), coords));
        levels.insert((level.sku.clone(), level.location_id.clone()), level);
    }
    let mut out = Vec::new();
    let mut location_ids: Vec<&String> = places.keys().collect();
    location_ids.sort();
    for sku in skus {
        for loc in &location_ids {
            if locations.is_some_and(|l| !l.contains(loc)) {
                continue;
            }
            let (available, incoming_at) = match bundles.get(sku) {
                Some(comps) => {
                    let avail = comps
                        .iter()
                        .map(|(c, q)| levels.get(&(c.clone(), (*loc).clone())).map_or(0, |l| l.available.max(0) / q))
                        .min()
                        .unwrap_or(0);
                    if comps.iter().all(|(c, _)| !levels.contains_key(&(c.clone(), (*loc).clone()))) {
                        continue;
                    }
                    (avail, None)
                }
                None => match levels.get(&(sku.clone(), (*loc).clone())) {
                    Some(l) => (l.available.max(0), l.incoming_at.filter(|_| l.incoming > 0)),
                    None => continue,
                },
            };
            let (kind, distance) = &places[*loc];
            out.push(LocationAvailability {
                sku: sku.clone(),
                location_id: (*loc).clone(),
                available,
                pickup_today: available > 0 && kind == "store",
                ships_by: if available > 0 { Some(now) } else { incoming_at },
                distance_km: *distance,
            });
        }
    }
    if near.is_some() {
        out.sort_by(|a, b| {
            a.sku.cmp(&b.sku).then(a.distance_km.unwrap_or(f64::MAX).total_cmp(&b.distance_km.unwrap_or(f64::MAX)))
        });
    }
    Ok(out)
}

/// Available units of each (SKU, location) pair that is stocked, to tell other engines when
/// something runs out or comes back.
pub async fn available_of(
    conn: &mut AnyConnection,
    pairs: &[(String, String)],
) -> Result<Vec<(String, String, i64)>, InventoryError> {
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(200) {
        let sql = format!(
            "SELECT sku, location_id, {} FROM inventory_stock WHERE {}",
            crate::AVAILABLE,
            (0..chunk.len())
                .map(|i| format!("(sku = ${} AND location_id = ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        let mut q = sqlx::query(&sql);
        for (sku, loc) in chunk {
            q = q.bind(sku.clone()).bind(loc.clone());
        }
        out.extend(q.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
    }
    Ok(out)
}

/// Units of `sku` on hand across every location less those reserved or damaged (safety stock
/// counts: it can still be sold), e.g. for pricing's stock cover; `None` when no location
/// tracks its stock.
pub async fn units_on_hand(conn: &mut AnyConnection, sku: &str) -> Result<Option<i64>, InventoryError> {
    Ok(sqlx::query("SELECT CAST(SUM(on_hand - reserved - damaged) AS BIGINT) FROM inventory_stock WHERE sku = $1")
        .bind(sku.to_string())
        .fetch_one(&mut *conn)
        .await?
        .get(0))
}

/// Every stocked (location, SKU) pair with nothing available.
pub async fn out_of_stock(db: &Db) -> Result<Vec<(String, String)>, InventoryError> {
    Ok(sqlx::query(&format!("SELECT location_id, sku FROM inventory_stock WHERE {} <= 0", crate::AVAILABLE))
        .fetch_all(db.reader())
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Columns of a stock file: the SKU, the location, then the levels it may set.
pub const STOCK_COLUMNS: &[(&str, &[&str])] = &[
    ("sku", &["sku", "product_id", "productid", "id"]),
    ("location_id", &["location_id", "locationid", "store_id", "storeid", "location", "store"]),
    ("on_hand", &["on_hand", "onhand", "quantity", "qty"]),
    ("safety_stock", &["safety_stock", "safetystock"]),
    ("damaged", &["damaged"]),
    ("incoming", &["incoming"]),
    ("incoming_at", &["incoming_at", "incomingat", "expected_at"]),
];

/// One row of a stock file: the levels it sets (in [`STOCK_COLUMNS`] order after the keys).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelRow {
    /// The SKU.
    pub sku: String,
    /// The location.
    pub location_id: String,
    /// on hand, safety stock, damaged, incoming, incoming at (None: leave as is).
    pub values: [Option<i64>; 5],
}

/// Sets levels from a file's rows (a count: values replace the current ones; columns the
/// file does not have are left alone). `present` says which of the five columns the file has.
pub async fn set_levels(db: &Db, rows: &[LevelRow], present: [bool; 5], now: i64) -> Result<(), InventoryError> {
    const NAMES: [&str; 5] = ["on_hand", "safety_stock", "damaged", "incoming", "incoming_at"];
    let cols: Vec<usize> = (0..5).filter(|&i| present[i]).collect();
    let mut tx = db.writer().begin().await?;
    for chunk in rows.chunks(500) {
        let width = 3 + cols.len();
        let values: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", (1..=width).map(|c| format!("${}", r * width + c)).collect::<Vec<_>>().join(", ")))
            .collect();
        let names: Vec<&str> = cols.iter().map(|&i| NAMES[i]).collect();
        let updates: Vec<String> = names
            .iter()
            .map(|n| format!("{n} = excluded.{n}"))
            .chain(["updated_at = excluded.updated_at".into()])
            .collect();
        let sql = format!(
            "INSERT INTO inventory_stock (sku, location_id, updated_at{}{}) VALUES {} \
             ON CONFLICT (sku, location_id) DO UPDATE SET {}",
            if names.is_empty() { "" } else { ", " },
            names.join(", "),
            values.join(", "),
            updates.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            q = q.bind(row.sku.clone()).bind(row.location_id.clone()).bind(now);
            for &i in &cols {
                // A column the file has but this row leaves empty counts as 0 (incoming_at: none).
                q = q.bind(if i == 4 { row.values[i] } else { Some(row.values[i].unwrap_or(0)) });
            }
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
