//! Locations: stores, warehouses and the online shop.

use serde::Serialize;
use tailor_store::{Db, DbError};

use crate::table::ColumnMap;

/// The fields a location import reads, with the column names accepted for each.
pub const LOCATION_COLUMNS: &[(&str, &[&str])] = &[
    ("id", &["id", "location_id", "store_id"]),
    ("name", &["name", "store_name"]),
    ("kind", &["kind", "type"]),
    ("region", &["region"]),
    ("latitude", &["latitude", "lat"]),
    ("longitude", &["longitude", "lon", "lng"]),
    ("timezone", &["timezone", "tz", "time_zone"]),
];

/// A place stock lives and customers buy.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Location {
    /// The retailer's location id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `store`, `warehouse` or `online`.
    pub kind: String,
    /// Region, for regional popularity and prices.
    pub region: Option<String>,
    /// Latitude in degrees.
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    pub longitude: Option<f64>,
    /// IANA time zone, e.g. `America/Chicago`.
    pub timezone: String,
}

fn coordinate(v: Option<&str>, field: &str, limit: f64) -> Result<Option<f64>, (String, String)> {
    match v {
        None => Ok(None),
        Some(s) => match s.parse::<f64>() {
            Ok(x) if x.is_finite() && x.abs() <= limit => Ok(Some(x)),
            _ => Err((field.to_string(), format!("'{s}' is not a {field} between -{limit} and {limit}"))),
        },
    }
}

impl Location {
    /// Reads one row; the error names the column and says what is wrong.
    pub fn from_row(cols: &ColumnMap, row: &[Option<String>]) -> Result<Location, (String, String)> {
        let get = |i| cols.get(row, i).map(str::to_string);
        let id = get(0).ok_or_else(|| ("id".to_string(), "a location needs an id".to_string()))?;
        let kind = get(2).unwrap_or_else(|| "store".into()).to_ascii_lowercase();
        if !["store", "warehouse", "online"].contains(&kind.as_str()) {
            return Err(("kind".into(), format!("'{kind}' is not one of store, warehouse, online")));
        }
        Ok(Location {
            name: get(1).unwrap_or_else(|| format!("Store {id}")),
            id,
            kind,
            region: get(3),
            latitude: coordinate(cols.get(row, 4), "latitude", 90.0)?,
            longitude: coordinate(cols.get(row, 5), "longitude", 180.0)?,
            timezone: get(6).unwrap_or_else(|| "UTC".into()),
        })
    }
}

/// Inserts or updates locations in one transaction.
pub async fn upsert_locations(db: &Db, locations: &[Location], now: i64) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    for l in locations {
        sqlx::query(
            "INSERT INTO locations (id, name, kind, region, latitude, longitude, timezone, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             kind = excluded.kind, region = excluded.region, latitude = excluded.latitude, \
             longitude = excluded.longitude, timezone = excluded.timezone, updated_at = excluded.updated_at",
        )
        .bind(l.id.clone())
        .bind(l.name.clone())
        .bind(l.kind.clone())
        .bind(l.region.clone())
        .bind(tailor_store::Float(l.latitude))
        .bind(tailor_store::Float(l.longitude))
        .bind(l.timezone.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether a location with this id was imported.
pub async fn location_exists(db: &Db, id: &str) -> Result<bool, DbError> {
    use sqlx::Row;
    let row = sqlx::query("SELECT COUNT(*) FROM locations WHERE id = $1").bind(id).fetch_one(db.reader()).await?;
    Ok(row.get::<i64, _>(0) > 0)
}

/// The region of every location that names one, by location id.
pub async fn regions(db: &Db) -> Result<std::collections::HashMap<String, String>, DbError> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT id, region FROM locations WHERE region IS NOT NULL").fetch_all(db.reader()).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One location by id.
pub async fn get_location(db: &Db, id: &str) -> Result<Option<Location>, DbError> {
    use sqlx::Row;
    let row = sqlx::query("SELECT id, name, kind, region, latitude, longitude, timezone FROM locations WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    Ok(row.map(|r| Location {
        id: r.get(0),
        name: r.get(1),
        kind: r.get(2),
        region: r.get(3),
        latitude: r.get(4),
        longitude: r.get(5),
        timezone: r.get(6),
    }))
}
