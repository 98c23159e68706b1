//! Orders earn and give back points: Order Completed earns pending points (locked for the return
//! window); Order Refunded or Cancelled reverses them in proportion to the amount refunded —
//! from pending points while locked, else from active ones, and what was already spent is owed.
//! So a buy-then-refund loop nets zero.

use sqlx::{AnyConnection, Row};
use tailor_core::commerce::Commerce;

use crate::error::LoyaltyError;
use crate::events::{emit, LoyaltyEventKind};
use crate::ledger::{lock, mature, record, Bucket, Policy};
use crate::rules::{order_points, Rule};
use crate::tiers::{evaluate, Tier};

/// Applies one order event of the account `members` (new entries go to `owner`, the profile the
/// event resolved to; tier status and events to the account's `root`).
#[allow(clippy::too_many_arguments)]
pub async fn apply_order_event(
    conn: &mut AnyConnection,
    commerce: &Commerce,
    members: &[String],
    owner: &str,
    root: &str,
    earning: (&str, &[Rule], &[Tier]),
    policy: &Policy,
    at: i64,
) -> Result<(), LoyaltyError> {
    match commerce {
        Commerce::OrderCompleted(order) => {
            let total = order.total_cents();
            let exists = sqlx::query("SELECT 1 FROM loyalty_entries WHERE order_id = $1 AND kind = 'earn'")
                .bind(order.order_id.clone())
                .fetch_optional(&mut *conn)
                .await?;
            if exists.is_some() {
                return Ok(());
            }
            let (channel, rules, tiers) = earning;
            // Lines are scaled to add up to the total (discounts), so points follow what was paid.
            let lines: Vec<(i64, Option<String>)> = if order.lines.is_empty() {
                vec![(total, None)]
            } else {
                order.line_shares().into_iter().zip(&order.lines).map(|(c, l)| (c, l.category.clone())).collect()
            };
            // Members of a tier earn its multiple (the tier held before this order).
            let multiplier =
                if tiers.is_empty() { None } else { Some(evaluate(conn, members, root, tiers, at).await?.multiplier) };
            let points = order_points(&lines, channel, at, rules, policy, multiplier)?;
            // An order earning no points is recorded too: its spend counts toward tiers and its
            // refunds find it, like every other order.
            if points >= 0 {
                let available = at.saturating_add(policy.return_window_ms);
                record(
                    conn,
                    owner,
                    Bucket::Pending,
                    points,
                    "earn",
                    Some((&order.order_id, total)),
                    None,
                    Some(available),
                    None,
                    at,
                )
                .await?;
                if points > 0 {
                    let details =
                        serde_json::json!({"points": points, "orderId": order.order_id, "availableAt": available});
                    emit(conn, root, LoyaltyEventKind::PointsEarned, details, at).await?;
                }
                if !tiers.is_empty() {
                    evaluate(conn, members, root, tiers, at).await?;
                }
            }
        }
        Commerce::OrderRefunded(order) | Commerce::OrderCancelled(order) => {
            // A cancellation, or a refund that names no amount, takes back the whole order.
            let refund = match commerce {
                Commerce::OrderCancelled(_) => None,
                _ => order.amount_cents,
            };
            reverse(conn, members, (owner, root), &order.order_id, refund, policy, at).await?;
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
