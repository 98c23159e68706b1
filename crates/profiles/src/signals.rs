//! What a recommender needs to know about a customer right now: consent, purchases, the
//! current session's views and adds, the cart, and the store they use most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::graph::{group_of, placeholders, ProfileError};
use tailor_core::commerce::product_id;

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
    pub purchases: Arc<Vec<(String, i64)>>,
    /// Products viewed (`false`) or added to the cart (`true`) since the session start, with
    /// the time (ms), newest first.
    pub session: Vec<(String, bool, i64)>,
    /// Products in the cart.
    pub cart: Vec<String>,
}

/// Purchase lines read per request.
pub const PURCHASES: i64 = 3000;
/// Separators of the aggregated purchase lines (ASCII unit and record separators, which no
/// product id holds).
const FIELD: &str = "\u{1f}";
const RECORD: &str = "\u{1e}";
/// Session events read per request.
const SESSION_EVENTS: i64 = 30;

/// The signals of the group rooted at `root`; session events count from `session_since` (ms).
/// Order history is read through `history`, which keeps it while the group's orders stay the same.
pub async fn signals(
    conn: &mut AnyConnection,
    root: &str,
    session_since: i64,
    history: &HistoryCache,
) -> Result<Signals, ProfileError> {
    let members = group_of(conn, root).await?;
    let inn = placeholders(1, members.len());
    let mut s = Signals { root: root.to_string(), members: members.clone(), ..Signals::default() };

    let sql = format!(
        "SELECT granted, source FROM consents WHERE profile_id IN {inn} AND purpose = 'personalization' \
         ORDER BY at DESC LIMIT 1"
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), &members);
    if let Some(r) = q.fetch_optional(&mut *conn).await? {
        s.personalization = r.get::<i64, _>(0) != 0;
        s.consent_source = Some(r.get(1));
    }

    let history = history.get(conn, &members).await?;
    s.preferred_store = history.preferred_store.clone();
    s.purchases = history.purchases.clone();

    let sql = format!(
        "SELECT name, body, ts FROM events WHERE profile_id IN {inn} AND kind = 'track' \
         AND name IN ('Product Viewed', 'Product Added') AND ts >= ${} ORDER BY ts DESC LIMIT {SESSION_EVENTS}",
        members.len() + 1
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), &members);
    for r in q.bind(session_since).fetch_all(&mut *conn).await? {
        let (name, body, ts): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        let Ok(body) = serde_json::from_str::<Value>(&body) else { continue };
        if let Some(pid) = body.get("properties").and_then(product_id) {
            s.session.push((pid, name == "Product Added", ts));
        }
    }

    let sql = format!("SELECT product_id FROM carts WHERE profile_id IN {inn} AND quantity > 0 ORDER BY product_id");
    let q = tailor_store::bind_all(sqlx::query(&sql), &members);
    s.cart = q.fetch_all(&mut *conn).await?.iter().map(|r| r.get(0)).collect();
    Ok(s)
}

/// The products the customer made of `members` viewed most recently, newest first, each once,
/// at most `limit` (a browse-abandonment message shows them).
pub async fn viewed(conn: &mut AnyConnection, members: &[String], limit: usize) -> Result<Vec<String>, ProfileError> {
    if members.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT body FROM events WHERE profile_id IN {} AND kind = 'track' AND name = 'Product Viewed' \
         ORDER BY seq DESC LIMIT {SESSION_EVENTS}",
        placeholders(1, members.len())
    );
    let mut out: Vec<String> = Vec::new();
    for r in tailor_store::bind_all(sqlx::query(&sql), members).fetch_all(&mut *conn).await? {
        let Ok(body) = serde_json::from_str::<Value>(&r.get::<String, _>(0)) else { continue };
        if let Some(pid) = body.get("properties").and_then(product_id) {
            if !out.contains(&pid) {
                out.push(pid);
            }
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// A group's order history as recommendations use it.
#[derive(Debug, Default)]
struct History {
    purchases: Arc<Vec<(String, i64)>>,
    preferred_store: Option<String>,
}

/// Members of a group → its order count and history.
type Groups = HashMap<Vec<String>, (i64, Arc<History>)>;

/// Groups cached at most; past it the cache starts over (a bound, not an eviction policy).
const CACHED_GROUPS: usize = 200_000;

/// Order histories by merge group, each kept with the group's order count when it was read:
/// orders are only ever added to a profile or taken away (erasure), and a merge or unmerge
/// changes the group, so an unchanged count means an unchanged history. Reading the count is
/// one index lookup; reading the history joins and sorts hundreds of lines.
#[derive(Debug, Default)]
pub struct HistoryCache {
    groups: Mutex<Groups>,
}

impl HistoryCache {
    async fn get(&self, conn: &mut AnyConnection, members: &[String]) -> Result<Arc<History>, ProfileError> {
        let inn = placeholders(1, members.len());
        // The count is read first: an order landing in between makes the next read reload.
        let sql = format!("SELECT COUNT(*) FROM orders WHERE profile_id IN {inn}");
        let q = tailor_store::bind_all(sqlx::query(&sql), members);
        let count: i64 = q.fetch_one(&mut *conn).await?.get(0);
        let cached = self.lock().get(members).filter(|(c, _)| *c == count).map(|(_, h)| h.clone());
        if let Some(h) = cached {
            return Ok(h);
        }
        let history = Arc::new(read_history(conn, members).await?);
        let mut groups = self.lock();
        if groups.len() >= CACHED_GROUPS {
            groups.clear();
        }
        groups.insert(members.to_vec(), (count, history.clone()));
        Ok(history)
    }

    /// Drops what is cached of erased customers.
    pub fn forget(&self, ids: &[String]) {
        self.lock().retain(|members, _| !members.iter().any(|m| ids.contains(m)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Groups> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn read_history(conn: &mut AnyConnection, members: &[String]) -> Result<History, ProfileError> {
    let inn = placeholders(1, members.len());
    let sql = format!(
        "SELECT store_id, COUNT(*) AS n FROM orders WHERE profile_id IN {inn} AND store_id IS NOT NULL \
         GROUP BY store_id ORDER BY n DESC, store_id LIMIT 1"
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), members);
    let preferred_store = q.fetch_optional(&mut *conn).await?.map(|r| r.get(0));

    // One row holding every line: a household has hundreds, and rows cost far more than bytes.
    let n = members.len();
    let sql = format!(
        "SELECT {concat} FROM (SELECT l.product_id, o.ts FROM orders o JOIN order_lines l ON l.order_id = o.order_id \
         WHERE o.profile_id IN {inn} ORDER BY o.ts DESC LIMIT {PURCHASES}) t",
        concat = if conn.backend_name() == "PostgreSQL" {
            format!("string_agg(CAST(t.ts AS TEXT) || ${} || t.product_id, ${})", n + 1, n + 2)
        } else {
            format!("group_concat(CAST(t.ts AS TEXT) || ${} || t.product_id, ${})", n + 1, n + 2)
        }
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), members);
    let lines: Option<String> = q.bind(FIELD).bind(RECORD).fetch_one(&mut *conn).await?.get(0);
    let mut purchases: Vec<(String, i64)> = lines
        .iter()
        .flat_map(|l| l.split(RECORD))
        .filter_map(|line| {
            let (ts, product) = line.split_once(FIELD)?;
            Some((product.to_string(), ts.parse().ok()?))
        })
        .collect();
    purchases.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    Ok(History { purchases: Arc::new(purchases), preferred_store })
}
