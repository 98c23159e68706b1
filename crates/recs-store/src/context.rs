//! What shapes lists beyond the model: the merchandisers' rules and the weather at each store.

use tailor_recs::situation::Weather;
use tailor_recs::Merchandising;
use tailor_store::{Db, Row};

use crate::RecsStoreError;

/// A weather report older than this (ms) no longer describes the store.
pub const WEATHER_MILLIS: i64 = 6 * 3600 * 1000;

/// The stored merchandising rules, if any were set (rules that no longer read: the defaults).
pub async fn merchandising(db: &Db) -> Result<Option<Merchandising>, RecsStoreError> {
    let row = sqlx::query("SELECT body FROM merchandising WHERE id = 'default'").fetch_optional(db.reader()).await?;
    Ok(row.map(|r| serde_json::from_str(&r.get::<String, _>(0)).unwrap_or_default()))
}

/// Replaces the merchandising rules (checked by [`Merchandising::validate`] before).
pub async fn set_merchandising(db: &Db, m: &Merchandising, now: i64) -> Result<(), RecsStoreError> {
    let body = serde_json::to_string(m).map_err(|source| RecsStoreError::Encode { what: "the rules", source })?;
    sqlx::query(
        "INSERT INTO merchandising (id, body, updated_at) VALUES ('default', $1, $2) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(body)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Records the weather a store reports.
pub async fn set_weather(
    db: &Db,
    store: &str,
    weather: Weather,
    temperature_c: Option<f64>,
    now: i64,
) -> Result<(), RecsStoreError> {
    sqlx::query(
        "INSERT INTO store_weather (location_id, condition, temperature_c, observed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (location_id) DO UPDATE SET condition = excluded.condition, \
         temperature_c = excluded.temperature_c, observed_at = excluded.observed_at",
    )
    .bind(store)
    .bind(weather.name())
    .bind(tailor_store::Float(temperature_c))
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The weather at `store` now, unless its last report is older than [`WEATHER_MILLIS`].
pub async fn weather_at(db: &Db, store: &str, now: i64) -> Result<Option<Weather>, RecsStoreError> {
    Ok(weather_report(db, store).await?.filter(|(_, at)| *at >= now - WEATHER_MILLIS).map(|(w, _)| w))
}

/// The last weather `store` reported and when (ms), however old.
pub async fn weather_report(db: &Db, store: &str) -> Result<Option<(Weather, i64)>, RecsStoreError> {
    let row = sqlx::query("SELECT condition, observed_at FROM store_weather WHERE location_id = $1")
        .bind(store)
        .fetch_optional(db.reader())
        .await?;
    Ok(row.and_then(|r| Some((Weather::parse(&r.get::<String, _>(0))?, r.get::<i64, _>(1)))))
}
