//! Projects one logged event onto profiles: resolves its customer, records the attribution, and
//! applies traits, consent and commerce effects.

use serde_json::Value;
use sqlx::{AnyConnection, Row};
use tailor_core::{Event, Identifier, IdentifierKind};

use crate::graph::{owner, resolve, ProfileError};
use crate::{commerce, consent};

/// The identifiers of an event, with an alias call's `previousId` resolved to the kind it is
/// known under (a previous userId, else an anonymousId).
async fn identifiers_of(conn: &mut AnyConnection, body: &Value) -> Result<Vec<Identifier>, ProfileError> {
    let mut ids = Event::identifiers(body);
    if body.get("type").and_then(Value::as_str) == Some("alias") {
        if let Some(prev) = body.get("previousId").and_then(Value::as_str) {
            let as_user = Identifier { kind: IdentifierKind::UserId, value: prev.trim().to_string() };
            let previous = if owner(conn, &as_user).await?.is_some() {
                as_user
            } else {
                Identifier { kind: IdentifierKind::AnonymousId, value: prev.trim().to_string() }
            };
            if !previous.value.is_empty() && !ids.contains(&previous) {
                ids.push(previous);
                ids.sort();
            }
        }
    }
    Ok(ids)
}

/// Applies one event from the log inside the caller's transaction; `commerce` is the event's
/// order or cart change as the projector parsed it, when the event's source may record one.
/// Returns the profile it was attributed to.
pub async fn project_event(
    conn: &mut AnyConnection,
    seq: i64,
    body: &Value,
    commerce: Option<&tailor_core::Commerce>,
    channel: &str,
    ts: i64,
) -> Result<Option<String>, ProfileError> {
    let ids = identifiers_of(conn, body).await?;
    let Some(profile) = resolve(conn, &ids, Some(seq), ts).await? else {
        return Ok(None);
    };
    sqlx::query("UPDATE events SET profile_id = $1 WHERE seq = $2")
        .bind(profile.clone())
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "identify" {
        if let Some(Value::Object(traits)) = body.get("traits") {
            merge_traits(conn, &profile, traits, ts).await?;
            if let Some(c) = traits.get("consent") {
                consent::apply_map(conn, &profile, c, ts, "identify.traits").await?;
            }
        }
    }
    if let Some(prefs) = body.pointer("/context/consent/categoryPreferences") {
        consent::apply_map(conn, &profile, prefs, ts, "context.consent").await?;
    }
    if let Some(c) = commerce {
        commerce::apply(conn, &profile, c, channel, ts, seq).await?;
    }
    Ok(Some(profile))
}

/// Sets `name` to `value` on `profile`'s traits at `ts` (a journey step), as an identify
/// call would; consent is not a trait and is refused by the caller.
pub async fn set_trait(
    conn: &mut AnyConnection,
    profile: &str,
    name: &str,
    value: &Value,
    ts: i64,
) -> Result<(), ProfileError> {
    let mut one = serde_json::Map::new();
    one.insert(name.to_string(), value.clone());
    merge_traits(conn, profile, &one, ts).await
}

async fn merge_traits(
    conn: &mut AnyConnection,
    profile: &str,
    new: &serde_json::Map<String, Value>,
    ts: i64,
) -> Result<(), ProfileError> {
    let row = sqlx::query("SELECT traits FROM profiles WHERE id = $1").bind(profile).fetch_one(&mut *conn).await?;
    let mut traits: serde_json::Map<String, Value> = serde_json::from_str(&row.get::<String, _>(0)).unwrap_or_default();
    for (k, v) in new {
        if k == "consent" {
            continue;
        }
        traits.insert(k.clone(), v.clone());
    }
    sqlx::query("UPDATE profiles SET traits = $1, updated_at = $2 WHERE id = $3")
        .bind(Value::Object(traits).to_string())
        .bind(ts)
        .bind(profile)
        .execute(conn)
        .await?;
    Ok(())
}
