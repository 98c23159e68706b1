//! Read models of a profile: the unified view over its merge group, lookups by identifier, the
//! cross-channel timeline and the merge history.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};
use tailor_core::money::format_cents;
use tailor_core::time::format_millis;
use tailor_core::{Identifier, Purpose};

use crate::graph::{group_of, owner, placeholders, root_of, ProfileError};

/// One identifier held by a profile.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentifierView {
    /// Kind, e.g. `email`.
    pub kind: String,
    /// Normalized value.
    pub value: String,
    /// When it was first seen.
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: String,
    /// The profile of the group that holds it.
    pub profile_id: String,
}

/// How many events came through one channel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelCount {
    /// Channel name.
    pub channel: String,
    /// Number of events.
    pub events: i64,
}

/// Features computed from the whole group's events and orders.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// First event time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen: Option<String>,
    /// Last event time.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<String>,
    /// Events per channel, most used first.
    pub channels: Vec<ChannelCount>,
    /// Number of events.
    pub event_count: i64,
    /// Completed orders.
    pub order_count: i64,
    /// Spend net of refunds, as a decimal string.
    pub spend: String,
    /// Currency of the spend.
    pub currency: String,
    /// Most bought categories, most first.
    pub top_categories: Vec<String>,
    /// The store with the most orders.
    pub preferred_store: Option<String>,
}

/// The current consent for one purpose.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentView {
    /// Purpose name.
    pub purpose: String,
    /// Granted (true) or withdrawn/refused (false).
    pub granted: bool,
    /// When it was decided.
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// Where the decision came from.
    pub source: String,
}

/// One item in the current cart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    /// Product id.
    pub product_id: String,
    /// Quantity.
    pub quantity: i64,
    /// Unit price as a decimal string.
    pub price: String,
}

/// The unified profile of one customer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    /// The profile id (the root of the merge group).
    pub id: String,
    /// When the oldest profile of the group was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// Traits, merged over the group (the root's own traits win).
    #[schema(value_type = Object)]
    pub traits: Value,
    /// Every identifier of the group.
    pub identifiers: Vec<IdentifierView>,
    /// Computed features.
    pub features: Features,
    /// Consent per purpose that has a decision; purposes without one are not granted.
    pub consent: Vec<ConsentView>,
    /// The current cart.
    pub cart: Vec<CartLine>,
    /// Profiles merged into this one.
    pub merged_profiles: Vec<String>,
}

/// One event on a customer's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// Position in the event log.
    pub seq: i64,
    /// When it happened.
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: String,
    /// Call type.
    pub kind: String,
    /// Event or page name.
    pub name: Option<String>,
    /// Channel.
    pub channel: String,
    /// The profile of the group it was attributed to.
    pub profile_id: String,
    /// The event's properties.
    #[schema(value_type = Object)]
    pub properties: Value,
}

/// A merge and its provenance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeView {
    /// Merge id, for unmerge.
    pub id: String,
    /// The profile that survived.
    pub survivor: String,
    /// The profile merged into it.
    pub absorbed: String,
    /// The event that caused it.
    pub event_seq: Option<i64>,
    /// The identifier kind that linked them.
    pub cause_kind: String,
    /// The identifier value that linked them.
    pub cause_value: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// When it was undone, if it was.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub undone_at: Option<String>,
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ids: &[String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for id in ids {
        q = q.bind(id.clone());
    }
    q
}

/// The unified view of the customer `id` belongs to; `None` if there is no such profile.
/// Long on purpose: one read of each part of the profile (identifiers, traits, features, consent, cart) in the order the view lists them.
pub async fn profile_view(conn: &mut AnyConnection, id: &str) -> Result<Option<ProfileView>, ProfileError> {
    let Some(root) = root_of(conn, id).await? else {
        return Ok(None);
    };
    let group = group_of(conn, &root).await?;
    let inn = placeholders(1, group.len());

    let rows = bind_all(
        sqlx::query(&format!("SELECT id, created_at, traits FROM profiles WHERE id IN {inn} ORDER BY created_at, id")),
        &group,
    )
    .fetch_all(&mut *conn)
    .await?;
    let created_at = rows.first().map(|r| r.get::<i64, _>(1)).unwrap_or(0);
    let mut traits = Map::new();
    let mut root_traits = Map::new();
    for r in &rows {
        let t: Map<String, Value> = serde_json::from_str(&r.get::<String, _>(2)).unwrap_or_default();
        if r.get::<String, _>(0) == root {
            root_traits = t;
        } else {
            traits.extend(t);
        }
    }
    traits.extend(root_traits);

    let identifiers = bind_all(
        sqlx::query(&format!(
            "SELECT kind, value, first_seen, profile_id FROM identities WHERE profile_id IN {inn} ORDER BY first_seen, kind"
        )),
        &group,
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| IdentifierView {
        kind: r.get(0),
        value: r.get(1),
        first_seen: format_millis(r.get(2)),
        profile_id: r.get(3),
    })
    .collect();

    let features = features(conn, &group).await?;

    let consent = bind_all(
        sqlx::query(&format!(
            "SELECT purpose, granted, at, source FROM consents WHERE profile_id IN {inn} ORDER BY at"
        )),
        &group,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut latest: Vec<ConsentView> = Vec::new();
    for r in consent {
        let view = ConsentView {
            purpose: r.get(0),
            granted: r.get::<i64, _>(1) != 0,
            at: format_millis(r.get(2)),
            source: r.get(3),
        };
        latest.retain(|c| c.purpose != view.purpose);
        latest.push(view);
    }
    latest.sort_by_key(|c| Purpose::parse(&c.purpose).map(|p| p as u8));

    let cart = bind_all(
        sqlx::query(&format!(
            "SELECT product_id, CAST(SUM(quantity) AS BIGINT), CAST(MAX(price_cents) AS BIGINT) FROM carts \
             WHERE profile_id IN {inn} GROUP BY product_id ORDER BY product_id"
        )),
        &group,
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| CartLine { product_id: r.get(0), quantity: r.get(1), price: format_cents(r.get(2)) })
    .collect();

    Ok(Some(ProfileView {
        merged_profiles: group.iter().filter(|g| **g != root).cloned().collect(),
        id: root,
        created_at: format_millis(created_at),
        traits: Value::Object(traits),
        identifiers,
        features,
        consent: latest,
        cart,
    }))
}

async fn features(conn: &mut AnyConnection, group: &[String]) -> Result<Features, ProfileError> {
    let inn = placeholders(1, group.len());
    let seen = bind_all(
        sqlx::query(&format!(
            "SELECT CAST(MIN(ts) AS BIGINT), CAST(MAX(ts) AS BIGINT), COUNT(*) FROM events WHERE profile_id IN {inn}"
        )),
        group,
    )
    .fetch_one(&mut *conn)
    .await?;
    let channels = bind_all(
        sqlx::query(&format!(
            "SELECT channel, COUNT(*) AS n FROM events WHERE profile_id IN {inn} GROUP BY channel ORDER BY n DESC, channel"
        )),
        group,
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| ChannelCount { channel: r.get(0), events: r.get(1) })
    .collect();
    let orders = bind_all(
        sqlx::query(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(total_cents - refunded_cents), 0) AS BIGINT), MAX(currency) \
             FROM orders WHERE profile_id IN {inn}"
        )),
        group,
    )
    .fetch_one(&mut *conn)
    .await?;
    let top_categories = bind_all(
        sqlx::query(&format!(
            "SELECT l.category, COUNT(*) AS n FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
             WHERE o.profile_id IN {inn} AND l.category IS NOT NULL GROUP BY l.category ORDER BY n DESC, l.category LIMIT 5"
        )),
        group,
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let preferred_store = bind_all(
        sqlx::query(&format!(
            "SELECT store_id, COUNT(*) AS n FROM orders WHERE profile_id IN {inn} AND store_id IS NOT NULL \
             GROUP BY store_id ORDER BY n DESC, store_id LIMIT 1"
        )),
        group,
    )
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| r.get(0));
    Ok(Features {
        first_seen: seen.get::<Option<i64>, _>(0).map(format_millis),
        last_seen: seen.get::<Option<i64>, _>(1).map(format_millis),
        event_count: seen.get(2),
        channels,
        order_count: orders.get(0),
        spend: format_cents(orders.get(1)),
        currency: orders.get::<Option<String>, _>(2).unwrap_or_else(|| "USD".into()),
        top_categories,
        preferred_store,
    })
}

/// The root profile holding an identifier, if any.
pub async fn lookup(conn: &mut AnyConnection, id: &Identifier) -> Result<Option<String>, ProfileError> {
    match owner(conn, id).await? {
        Some(p) => root_of(conn, &p).await,
        None => Ok(None),
    }
}

/// The group's events, newest first (by time, then log position), after `before` in that order:
/// the `(time in ms, seq)` of the last entry of the previous page, exclusive.
pub async fn timeline(
    conn: &mut AnyConnection,
    id: &str,
    before: Option<(i64, i64)>,
    limit: i64,
) -> Result<Option<Vec<TimelineEntry>>, ProfileError> {
    let Some(root) = root_of(conn, id).await? else {
        return Ok(None);
    };
    let group = group_of(conn, &root).await?;
    let sql = format!(
        "SELECT seq, ts, kind, name, channel, profile_id, body FROM events WHERE profile_id IN {} \
         AND (ts < $1 OR (ts = $1 AND seq < $2)) ORDER BY ts DESC, seq DESC LIMIT $3",
        placeholders(4, group.len())
    );
    let (ts, seq) = before.unwrap_or((i64::MAX, i64::MAX));
    let q = sqlx::query(&sql).bind(ts).bind(seq).bind(limit);
    let rows = bind_all(q, &group).fetch_all(conn).await?;
    Ok(Some(
        rows.iter()
            .map(|r| {
                let body: Value = serde_json::from_str(&r.get::<String, _>(6)).unwrap_or(Value::Null);
                TimelineEntry {
                    seq: r.get(0),
                    timestamp: format_millis(r.get(1)),
                    kind: r.get(2),
                    name: r.get(3),
                    channel: r.get(4),
                    profile_id: r.get(5),
                    properties: body.get("properties").or_else(|| body.get("traits")).cloned().unwrap_or(Value::Null),
                }
            })
            .collect(),
    ))
}

/// Every merge that involves the group of `id` (undone ones included), newest first.
pub async fn merges(conn: &mut AnyConnection, id: &str) -> Result<Option<Vec<MergeView>>, ProfileError> {
    let Some(root) = root_of(conn, id).await? else {
        return Ok(None);
    };
    let mut group = group_of(conn, &root).await?;
    if !group.iter().any(|g| g == id) {
        group.push(id.to_string());
    }
    let n = group.len();
    let sql = format!(
        "SELECT id, survivor, absorbed, event_seq, cause_kind, cause_value, at, undone_at FROM merges \
         WHERE survivor IN {} OR absorbed IN {} ORDER BY at DESC, id DESC",
        placeholders(1, n),
        placeholders(1 + n, n)
    );
    let q = bind_all(bind_all(sqlx::query(&sql), &group), &group);
    let rows = q.fetch_all(conn).await?;
    Ok(Some(
        rows.iter()
            .map(|r| MergeView {
                id: r.get(0),
                survivor: r.get(1),
                absorbed: r.get(2),
                event_seq: r.get(3),
                cause_kind: r.get(4),
                cause_value: r.get(5),
                at: format_millis(r.get(6)),
                undone_at: r.get::<Option<i64>, _>(7).map(format_millis),
            })
            .collect(),
    ))
}

/// Profiles (any, merged or not) whose trait `name` is a string, with its value: e.g. every
/// `birthday` for the loyalty program's birthday rewards.
pub async fn with_trait(conn: &mut AnyConnection, name: &str) -> Result<Vec<(String, String)>, ProfileError> {
    let needle = format!("%\"{name}\"%");
    let rows =
        sqlx::query("SELECT id, traits FROM profiles WHERE traits LIKE $1").bind(needle).fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let traits: serde_json::Value = serde_json::from_str(&r.get::<String, _>(1)).ok()?;
            Some((r.get(0), traits.get(name)?.as_str()?.to_string()))
        })
        .collect())
}
