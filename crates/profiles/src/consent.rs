//! Consent per purpose: granted or withdrawn, when, and from which source.

use serde_json::Value;
use sqlx::AnyConnection;
use tailor_core::Purpose;

use crate::graph::ProfileError;

/// Where a consent decision came from.
pub type ConsentSource = String;

/// Records one consent decision for a profile; the latest decision per purpose counts.
pub async fn set_consent(
    conn: &mut AnyConnection,
    profile: &str,
    purpose: Purpose,
    granted: bool,
    at: i64,
    source: &str,
) -> Result<(), ProfileError> {
    sqlx::query(
        "INSERT INTO consents (profile_id, purpose, granted, at, source) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (profile_id, purpose) DO UPDATE SET granted = excluded.granted, at = excluded.at, source = excluded.source \
         WHERE consents.at <= excluded.at",
    )
    .bind(profile)
    .bind(purpose.as_str())
    .bind(granted as i64)
    .bind(at)
    .bind(source)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies a `{purpose: bool}` map (identify `traits.consent` or Segment's
/// `context.consent.categoryPreferences`); names that are not Tailor purposes are ignored.
pub(crate) async fn apply_map(
    conn: &mut AnyConnection,
    profile: &str,
    map: &Value,
    at: i64,
    source: &str,
) -> Result<(), ProfileError> {
    let Value::Object(map) = map else {
        return Ok(());
    };
    for (name, v) in map {
        if let (Some(purpose), Some(granted)) = (Purpose::parse(name), v.as_bool()) {
            set_consent(conn, profile, purpose, granted, at, source).await?;
        }
    }
    Ok(())
}
