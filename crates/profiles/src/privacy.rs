//! Privacy requests: export everything held about a person, and erase them.

use serde_json::{json, Value};
use sqlx::{AnyConnection, Row};
use tailor_core::time::format_millis;

use crate::graph::{group_of, placeholders, root_of, ProfileError};
use crate::view::{merges, profile_view};

/// Every profile of the person `id` belongs to: its merge group, and the groups of profiles
/// holding one of the same identifier values under another kind (an e-mail address that also
/// arrived as a `userId`, an id that came through `alias`). Their identifier values, lower
/// case. `None` if there is no such profile.
pub async fn person(conn: &mut AnyConnection, id: &str) -> Result<Option<(Vec<String>, Vec<String>)>, ProfileError> {
    let Some(root) = root_of(conn, id).await? else {
        return Ok(None);
    };
    let mut people = group_of(conn, &root).await?;
    let mut values: Vec<String> = Vec::new();
    for _ in 0..8 {
        let sql = format!(
            "SELECT DISTINCT LOWER(value) FROM identities WHERE profile_id IN {}",
            placeholders(1, people.len())
        );
        values = tailor_store::bind_all(sqlx::query(&sql), &people)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if values.is_empty() {
            break;
        }
        let sql = format!(
            "SELECT DISTINCT profile_id FROM identities WHERE LOWER(value) IN {}",
            placeholders(1, values.len())
        );
        let holders: Vec<String> = tailor_store::bind_all(sqlx::query(&sql), &values)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let holders: Vec<String> = holders.into_iter().filter(|h| !people.contains(h)).collect();
        let mut grew = false;
        for h in holders {
            if let Some(r) = root_of(conn, &h).await? {
                for p in group_of(conn, &r).await? {
                    if !people.contains(&p) {
                        people.push(p);
                        grew = true;
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
    Ok(Some((people, values)))
}

/// Everything held about the person `id` belongs to: the unified profile (derived features
/// included), every profile of the merge group with its own traits, all events, orders with
/// their lines, and the merge history, in the API's convention (camelCase, RFC 3339 times; the
/// events as they were sent). `None` if there is no such profile.
pub async fn export(conn: &mut AnyConnection, id: &str) -> Result<Option<Value>, ProfileError> {
    let Some(profile) = profile_view(conn, id).await? else {
        return Ok(None);
    };
    let Some((group, _)) = person(conn, &profile.id).await? else {
        return Ok(None);
    };
    let inn = placeholders(1, group.len());

    let profiles_sql = format!("SELECT id, created_at, traits, merged_into FROM profiles WHERE id IN {inn}");
    let profiles: Vec<Value> = tailor_store::bind_all(sqlx::query(&profiles_sql), &group)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<String, _>(0),
                "createdAt": format_millis(r.get(1)),
                "traits": serde_json::from_str::<Value>(&r.get::<String, _>(2)).unwrap_or(Value::Null),
                "mergedInto": r.get::<Option<String>, _>(3),
            })
        })
        .collect();

    let events_sql = format!("SELECT seq, body FROM events WHERE profile_id IN {inn} ORDER BY ts, seq");
    let events: Vec<Value> = tailor_store::bind_all(sqlx::query(&events_sql), &group)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.get::<String, _>(1)).unwrap_or(Value::Null))
        .collect();

    let orders_sql = format!(
        "SELECT order_id, channel, store_id, total_cents, refunded_cents, currency, ts FROM orders WHERE profile_id IN {inn} ORDER BY ts"
    );
    let order_rows = tailor_store::bind_all(sqlx::query(&orders_sql), &group).fetch_all(&mut *conn).await?;
    let mut orders = Vec::with_capacity(order_rows.len());
    for r in order_rows {
        let order_id: String = r.get(0);
        let lines: Vec<Value> = sqlx::query(
            "SELECT product_id, category, quantity, price_cents FROM order_lines WHERE order_id = $1 ORDER BY line_no",
        )
        .bind(order_id.clone())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|l| {
            json!({
                "productId": l.get::<String, _>(0),
                "category": l.get::<Option<String>, _>(1),
                "quantity": l.get::<i64, _>(2),
                "price": tailor_core::money::format_cents(l.get(3)),
            })
        })
        .collect();
        orders.push(json!({
            "orderId": order_id,
            "channel": r.get::<String, _>(1),
            "storeId": r.get::<Option<String>, _>(2),
            "total": tailor_core::money::format_cents(r.get(3)),
            "refunded": tailor_core::money::format_cents(r.get(4)),
            "currency": r.get::<String, _>(5),
            "at": format_millis(r.get(6)),
            "lines": lines,
        }));
    }
    let merges = merges(conn, &profile.id).await?.unwrap_or_default();
    Ok(Some(json!({
        "exportedAt": format_millis(tailor_core::time::now_millis()),
        "profile": profile,
        "profiles": profiles,
        "events": events,
        "orders": orders,
        "merges": merges,
    })))
}

/// Erases the person `id` belongs to (every profile of [`person`]): profiles, identifiers,
/// traits, consent records, carts and merge records are deleted; events (those attributed to
/// them and those still naming one of their identifiers, such as events no projection could
/// apply) keep only their type, name, channel and time, and orders keep their amounts and lines
/// without a customer, so anonymous aggregates stay. Returns the erased profile ids, for the
/// other engines to forget them too; `None` if there is no such profile.
pub async fn erase(conn: &mut AnyConnection, id: &str, now: i64) -> Result<Option<Vec<String>>, ProfileError> {
    let Some((group, values)) = person(conn, id).await? else {
        return Ok(None);
    };
    let inn = placeholders(1, group.len());
    let n = group.len();
    let scrub = "SET body = '{\"erased\":true}', user_id = NULL, anonymous_id = NULL, profile_id = NULL";
    let mut events =
        tailor_store::bind_all(sqlx::query(&format!("UPDATE events {scrub} WHERE profile_id IN {inn}")), &group)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if !values.is_empty() {
        let vin = placeholders(1, values.len());
        let sql = format!("UPDATE events {scrub} WHERE LOWER(user_id) IN {vin} OR LOWER(anonymous_id) IN {vin}");
        events += tailor_store::bind_all(sqlx::query(&sql), &values).execute(&mut *conn).await?.rows_affected();
    }
    for sql in [
        format!("UPDATE orders SET profile_id = NULL WHERE profile_id IN {inn}"),
        format!("DELETE FROM identities WHERE profile_id IN {inn}"),
        format!("DELETE FROM consents WHERE profile_id IN {inn}"),
        format!("DELETE FROM carts WHERE profile_id IN {inn}"),
        format!("DELETE FROM merge_blocks WHERE a IN {inn} OR b IN {inn}"),
        format!("DELETE FROM merges WHERE survivor IN {inn} OR absorbed IN {inn}"),
        format!("DELETE FROM profiles WHERE id IN {inn}"),
    ] {
        tailor_store::bind_all(sqlx::query(&sql), &group).execute(&mut *conn).await?;
    }
    // Profiles outside the group that were once merged into it and unmerged keep their own data;
    // merge records naming the erased ids are gone with the statements above.
    sqlx::query("INSERT INTO erasures (id, at, profiles, events) VALUES ($1, $2, $3, $4)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(now)
        .bind(n as i64)
        .bind(events as i64)
        .execute(&mut *conn)
        .await?;
    Ok(Some(group))
}
