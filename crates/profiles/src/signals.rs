//! What a recommender needs to know about a customer right now: consent, purchases, the
//! current session's views and adds, the cart, and the store they use most.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::commerce::product_id;
use crate::graph::{group_of, placeholders, ProfileError};

/// A customer's live signals, over their whole merge group.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// The root profile.
    pub root: String,
    /// Every profile of the group (root first).
    pub members: Vec<String>,
    /// Whether the latest personalization decision grants it (no decision: not granted).
    pub personalization: bool,
    /// Where that decision came from, when there is one.
    pub consent_source: Option<String>,
    /// The store of most of their orders.
    pub preferred_store: Option<String>,
    /// Purchased products with the order time (ms), newest first, at most `PURCHASES`.
    pub purchases: Vec<(String, i64)>,
    /// Products viewed (`false`) or added to the cart (`true`) since the session start, with
    /// the time (ms), newest first.
    pub session: Vec<(String, bool, i64)>,
    /// Products in the cart.
    pub cart: Vec<String>,
}

/// Purchase lines read per request.
pub const PURCHASES: i64 = 3000;
/// Session events read per request.
const SESSION_EVENTS: i64 = 30;

/// The signals of the group rooted at `root`; session events count from `session_since` (ms).
pub async fn signals(conn: &mut AnyConnection, root: &str, session_since: i64) -> Result<Signals, ProfileError> {
    let members = group_of(conn, root).await?;
    let inn = placeholders(1, members.len());
    let mut s = Signals { root: root.to_string(), members: members.clone(), ..Signals::default() };

    let sql = format!(
        "SELECT granted, source FROM consents WHERE profile_id IN {inn} AND purpose = 'personalization' \
         ORDER BY at DESC LIMIT 1"
    );
    let mut q = sqlx::query(&sql);
    for m in &members {
        q = q.bind(m.clone());
    }
    if let Some(r) = q.fetch_optional(&mut *conn).await? {
        s.personalization = r.get::<i64, _>(0) != 0;
        s.consent_source = Some(r.get(1));
    }

    let sql = format!(
        "SELECT store_id, COUNT(*) AS n FROM orders WHERE profile_id IN {inn} AND store_id IS NOT NULL \
         GROUP BY store_id ORDER BY n DESC, store_id LIMIT 1"
    );
    let mut q = sqlx::query(&sql);
    for m in &members {
        q = q.bind(m.clone());
    }
    s.preferred_store = q.fetch_optional(&mut *conn).await?.map(|r| r.get(0));

    let sql = format!(
        "SELECT l.product_id, o.ts FROM orders o JOIN order_lines l ON l.order_id = o.order_id \
         WHERE o.profile_id IN {inn} ORDER BY o.ts DESC LIMIT {PURCHASES}"
    );
    let mut q = sqlx::query(&sql);
    for m in &members {
        q = q.bind(m.clone());
    }
    s.purchases = q.fetch_all(&mut *conn).await?.iter().map(|r| (r.get(0), r.get(1))).collect();

    let n = members.len();
    let sql = format!(
        "SELECT name, body, ts FROM events WHERE profile_id IN {inn} AND kind = 'track' \
         AND name IN ('Product Viewed', 'Product Added') AND ts >= ${} ORDER BY ts DESC LIMIT {SESSION_EVENTS}",
        n + 1
    );
    let mut q = sqlx::query(&sql);
    for m in &members {
        q = q.bind(m.clone());
    }
    for r in q.bind(session_since).fetch_all(&mut *conn).await? {
        let (name, body, ts): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        let Ok(body) = serde_json::from_str::<Value>(&body) else { continue };
        if let Some(pid) = body.get("properties").and_then(product_id) {
            s.session.push((pid, name == "Product Added", ts));
        }
    }

    let sql = format!("SELECT product_id FROM carts WHERE profile_id IN {inn} AND quantity > 0 ORDER BY product_id");
    let mut q = sqlx::query(&sql);
    for m in &members {
        q = q.bind(m.clone());
    }
    s.cart = q.fetch_all(&mut *conn).await?.iter().map(|r| r.get(0)).collect();
    Ok(s)
}
