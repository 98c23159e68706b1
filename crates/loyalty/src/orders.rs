//! Orders earn and give back points: Order Completed earns pending points (locked for the return
//! window); Order Refunded or Cancelled reverses them in proportion to the amount refunded —
//! from pending points while locked, else from active ones, and what was already spent is owed.
//! So a buy-then-refund loop nets zero.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::error::LoyaltyError;
use crate::events::{emit, LoyaltyEventKind};
use crate::ledger::{lock, mature, record, Bucket, Policy};
use crate::rules::{points_for, Rule};
use crate::tiers::{evaluate, Tier};

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An amount in cents, from a number or a numeric string (imports write "12.50").
fn cents(v: &Value) -> Option<i64> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    Some((x * 100.0).round() as i64).filter(|c| *c >= 0)
}

/// The amount an order event is about, in cents: its total (or revenue), else its lines.
fn amount(props: &Value) -> Option<i64> {
    if let Some(c) = ["total", "revenue"].iter().find_map(|k| props.get(*k).and_then(cents)) {
        return Some(c);
    }
    let lines = props.get("products").and_then(Value::as_array)?;
    let sum = lines
        .iter()
        .map(|l| {
            l.get("price").and_then(cents).unwrap_or(0)
                * l.get("quantity").and_then(Value::as_f64).unwrap_or(1.0).round() as i64
        })
        .sum();
    Some(sum)
}

/// Applies one event of the account `members` (new entries go to `owner`, the profile the
/// event resolved to; tier status and events to the account's `root`).
#[allow(clippy::too_many_arguments)]
pub async fn apply_order_event(
    conn: &mut AnyConnection,
    body: &Value,
    members: &[String],
    owner: &str,
    root: &str,
    earning: (&str, &[Rule], &[Tier]),
    policy: &Policy,
    at: i64,
) -> Result<(), LoyaltyError> {
    if body.get("type").and_then(Value::as_str) != Some("track") {
        return Ok(());
    }
    let event = body.get("event").and_then(Value::as_str).unwrap_or("");
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    let Some(order) = text(&props, &["order_id", "orderId"]) else { return Ok(()) };
    match event {
        "Order Completed" => {
            let Some(total) = amount(&props) else { return Ok(()) };
            let exists = sqlx::query("SELECT 1 FROM loyalty_entries WHERE order_id = $1 AND kind = 'earn'")
                .bind(order.clone())
                .fetch_optional(&mut *conn)
                .await?;
            let (channel, rules, tiers) = earning;
            let lines: Vec<(i64, Option<String>)> = match props.get("products").and_then(Value::as_array) {
                Some(lines) if !lines.is_empty() => lines
                    .iter()
                    .map(|l| {
                        let q = l.get("quantity").and_then(Value::as_f64).unwrap_or(1.0).round() as i64;
                        (l.get("price").and_then(cents).unwrap_or(0) * q, text(l, &["category"]))
                    })
                    .collect(),
                _ => vec![(total, None)],
            };
            // Lines may not add up to the total (discounts): scale them to it.
            let sum: i64 = lines.iter().map(|l| l.0).sum();
            let lines: Vec<(i64, Option<String>)> = if sum > 0 && sum != total {
                lines.into_iter().map(|(c, k)| ((c as i128 * total as i128 / sum as i128) as i64, k)).collect()
            } else {
                lines
            };
            if exists.is_some() {
                return Ok(());
            }
            let mut points = points_for(&lines, channel, at, rules, policy);
            if !tiers.is_empty() {
                // Members of a tier earn its multiple (the tier held before this order).
                let standing = evaluate(conn, members, root, tiers, at).await?;
                points = (points as f64 * standing.multiplier).floor() as i64;
            }
            if points > 0 {
                let available = at + policy.return_window_ms;
                record(
                    conn,
                    owner,
                    Bucket::Pending,
                    points,
                    "earn",
                    Some((&order, total)),
                    None,
                    Some(available),
                    None,
                    at,
                )
                .await?;
                let details = serde_json::json!({"points": points, "orderId": order, "availableAt": available});
                emit(conn, root, LoyaltyEventKind::PointsEarned, details, at).await?;
                if !tiers.is_empty() {
                    evaluate(conn, members, root, tiers, at).await?;
                }
            }
        }
        "Order Refunded" | "Order Cancelled" => {
            let full = event == "Order Cancelled";
            let refund = if full { None } else { amount(&props) };
            reverse(conn, members, (owner, root), &order, refund, policy, at).await?;
            let (_, _, tiers) = earning;
            if !tiers.is_empty() {
                evaluate(conn, members, root, tiers, at).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reverses an order's points in proportion to `refund_cents` (None: all of them).
async fn reverse(
    conn: &mut AnyConnection,
    members: &[String],
    (owner, root): (&str, &str),
    order: &str,
    refund_cents: Option<i64>,
    policy: &Policy,
    at: i64,
) -> Result<(), LoyaltyError> {
    let Some(earn) = sqlx::query(
        "SELECT id, points, order_cents, profile_id FROM loyalty_entries WHERE order_id = $1 AND kind = 'earn'",
    )
    .bind(order.to_string())
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let (earn_id, points, total): (String, i64, i64) =
        (earn.get(0), earn.get(1), earn.get::<Option<i64>, _>(2).unwrap_or(0));
    let earner: String = earn.get(3);
    lock(conn, root).await?;
    mature(conn, members, root, policy, at).await?;
    // Refunds so far (cents, kept on the reversal entries) and the points they took back.
    let done = sqlx::query(
        "SELECT CAST(COALESCE(SUM(order_cents), 0) AS BIGINT), CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM loyalty_entries \
         WHERE ref_id = $1 AND kind = 'reverse' AND bucket <> 'owed'",
    )
    .bind(earn_id.clone())
    .fetch_one(&mut *conn)
    .await?;
    let (refunded, taken): (i64, i64) = (done.get(0), -done.get::<i64, _>(1));
    let owed_so_far: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM loyalty_entries WHERE ref_id = $1 AND kind = 'reverse' AND bucket = 'owed'",
    )
    .bind(earn_id.clone())
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    let refund = refund_cents.unwrap_or(total).min((total - refunded).max(0));
    let all_refunded = refunded + refund;
    let target = if total <= 0 || all_refunded >= total {
        points
    } else {
        (points as i128 * all_refunded as i128 / total as i128) as i64
    };
    let x = (target - taken - owed_so_far).max(0);
    if x == 0 && refund == 0 {
        return Ok(());
    }
    let matured = sqlx::query("SELECT 1 FROM loyalty_entries WHERE ref_id = $1 AND kind = 'mature'")
        .bind(earn_id.clone())
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    let order_ref = Some((order, refund));
    if !matured {
        record(conn, &earner, Bucket::Pending, -x, "reverse", order_ref, Some(&earn_id), None, None, at).await?;
        return Ok(());
    }
    let active = crate::ledger::balance(conn, members).await?.active;
    let from_active = x.min(active);
    record(conn, owner, Bucket::Active, -from_active, "reverse", order_ref, Some(&earn_id), None, None, at).await?;
    if x > from_active {
        record(conn, owner, Bucket::Owed, x - from_active, "reverse", None, Some(&earn_id), None, None, at).await?;
    }
    Ok(())
}
