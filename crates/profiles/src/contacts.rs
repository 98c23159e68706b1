//! What a message needs to know about many customers at once — traits, identifiers, the latest
//! consent decision per purpose (and when consents were withdrawn), the cart, each merged over
//! the customer's group exactly as [`crate::profile_view`] merges them, and their recent events
//! (when they engage and buy) — in a handful of queries for a whole batch, so the journey
//! scheduler does not read profiles one by one.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use sqlx::{AnyConnection, Row};
use tailor_store::bind_all;

use crate::graph::{group_of, placeholders, root_of, ProfileError};

/// A customer as a message sees them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    /// The root profile of their group.
    pub id: String,
    /// The group: the root and every profile merged into it.
    pub members: Vec<String>,
    /// Traits merged over the group (the root's own win).
    pub traits: Value,
    /// Identifiers (kind, value), oldest first.
    pub identifiers: Vec<(String, String)>,
    /// The latest decision per consent purpose (absent: not granted).
    pub consent: HashMap<String, bool>,
    /// The cart: (product, quantity), by product.
    pub cart: Vec<(String, i64)>,
    /// Consents withdrawn across the group: (purpose, when, unix ms), oldest first.
    pub withdrawn: Vec<(String, i64)>,
}

impl Contact {
    /// Whether the customer grants `purpose` now.
    pub fn grants(&self, purpose: tailor_core::Purpose) -> bool {
        self.consent.get(purpose.as_str()).copied().unwrap_or(false)
    }

    /// Marketing consents (`marketing_*`) withdrawn at or after `since` (unix ms).
    pub fn marketing_withdrawals_since(&self, since: i64) -> usize {
        self.withdrawn.iter().filter(|(purpose, at)| purpose.starts_with("marketing_") && *at >= since).count()
    }
}

/// The most ids one query reads (bind limits of both backends are far above; SQLite binds a
/// statement's parameters in time quadratic in their number, so a few hundred at a time).
pub const MAX_CONTACTS: usize = 250;

/// The contacts of `ids` (profile ids, usually roots), keyed by the id asked for; an id whose
/// profile is gone (erased) is absent.
pub async fn contacts(conn: &mut AnyConnection, ids: &[String]) -> Result<HashMap<String, Contact>, ProfileError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(MAX_CONTACTS) {
        contacts_chunk(conn, chunk, &mut out).await?;
    }
    Ok(out)
}

async fn contacts_chunk(
    conn: &mut AnyConnection,
    ids: &[String],
    out: &mut HashMap<String, Contact>,
) -> Result<(), ProfileError> {
    if ids.is_empty() {
        return Ok(());
    }
    // Groups of the ids that are roots, in one recursive query.
    let sql = format!(
        "WITH RECURSIVE g(root, id) AS (SELECT id, id FROM profiles WHERE merged_into IS NULL AND id IN {} \
         UNION SELECT g.root, p.id FROM profiles p JOIN g ON p.merged_into = g.id) SELECT root, id FROM g",
        placeholders(1, ids.len())
    );
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in bind_all(sqlx::query(&sql), ids).fetch_all(&mut *conn).await? {
        groups.entry(r.get(0)).or_default().push(r.get(1));
    }
    // The few merged since they were scheduled: their root now, one by one.
    let mut asked_as: HashMap<String, Vec<String>> = HashMap::new();
    for id in ids {
        if groups.contains_key(id) {
            asked_as.entry(id.clone()).or_default().push(id.clone());
            continue;
        }
        let Some(root) = root_of(conn, id).await? else { continue };
        if !groups.contains_key(&root) {
            let group = group_of(conn, &root).await?;
            groups.insert(root.clone(), group);
        }
        asked_as.entry(root).or_default().push(id.clone());
    }
    let mut root_of_member: HashMap<String, String> = HashMap::new();
    for (root, members) in &groups {
        for m in members {
            root_of_member.insert(m.clone(), root.clone());
        }
    }
    let all: Vec<String> = root_of_member.keys().cloned().collect();
    if all.is_empty() {
        return Ok(());
    }
    let inn = placeholders(1, all.len());
    let mut contacts: HashMap<String, Contact> = groups
        .iter()
        .map(|(root, members)| {
            let c = Contact { id: root.clone(), members: members.clone(), ..Contact::default() };
            (root.clone(), c)
        })
        .collect();

    // Traits: oldest profile first, the root's own last so they win (as the profile view does).
    let sql = format!("SELECT id, traits FROM profiles WHERE id IN {inn} ORDER BY created_at, id");
    // Per root: (the other members' traits, the root's own).
    type Traits = Map<String, Value>;
    let mut merged: HashMap<String, (Traits, Traits)> = HashMap::new();
    for r in bind_all(sqlx::query(&sql), &all).fetch_all(&mut *conn).await? {
        let id: String = r.get(0);
        let Some(root) = root_of_member.get(&id) else { continue };
        let t: Map<String, Value> = serde_json::from_str(&r.get::<String, _>(1)).unwrap_or_default();
        let (others, own) = merged.entry(root.clone()).or_default();
        if &id == root {
            *own = t;
        } else {
            others.extend(t);
        }
    }
    for (root, (mut others, own)) in merged {
        others.extend(own);
        if let Some(c) = contacts.get_mut(&root) {
            c.traits = Value::Object(others);
        }
    }

    let sql =
        format!("SELECT profile_id, kind, value FROM identities WHERE profile_id IN {inn} ORDER BY first_seen, kind");
    for r in bind_all(sqlx::query(&sql), &all).fetch_all(&mut *conn).await? {
        if let Some(c) = root_of_member.get(&r.get::<String, _>(0)).and_then(|root| contacts.get_mut(root)) {
            c.identifiers.push((r.get(1), r.get(2)));
        }
    }

    // The latest decision per purpose across the group wins (as `has_consent` reads it).
    let sql = format!("SELECT profile_id, purpose, granted, at FROM consents WHERE profile_id IN {inn} ORDER BY at");
    for r in bind_all(sqlx::query(&sql), &all).fetch_all(&mut *conn).await? {
        if let Some(c) = root_of_member.get(&r.get::<String, _>(0)).and_then(|root| contacts.get_mut(root)) {
            let (purpose, granted): (String, bool) = (r.get(1), r.get::<i64, _>(2) != 0);
            if !granted {
                c.withdrawn.push((purpose.clone(), r.get(3)));
            }
            c.consent.insert(purpose, granted);
        }
    }

    let sql = format!("SELECT profile_id, product_id, quantity FROM carts WHERE profile_id IN {inn}");
    let mut carts: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
    for r in bind_all(sqlx::query(&sql), &all).fetch_all(&mut *conn).await? {
        let Some(root) = root_of_member.get(&r.get::<String, _>(0)) else { continue };
        let line = carts.entry(root.clone()).or_default().entry(r.get(1)).or_default();
        *line = line.saturating_add(r.get::<i64, _>(2));
    }
    for (root, lines) in carts {
        if let Some(c) = contacts.get_mut(&root) {
            c.cart = lines.into_iter().collect();
        }
    }

    for (root, asked) in asked_as {
        if let Some(c) = contacts.get(&root) {
            for id in asked {
                out.insert(id, c.clone());
            }
        }
    }
    Ok(())
}

/// Which of a batch's events [`events_of`] reads.
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    /// From this time on (unix ms).
    pub since: i64,
    /// Up to this time (unix ms), if bounded.
    pub until: Option<i64>,
    /// Only events with these names (all when empty).
    pub names: &'a [&'a str],
    /// Only `track` events.
    pub track_only: bool,
    /// Only the latest this many per profile of the group (then per customer), if bounded.
    pub latest: Option<i64>,
}

/// The events of each contact's group that `filter` selects: (name, time in unix ms), oldest
/// first, keyed by contact id — one query per [`MAX_CONTACTS`] profiles.
pub async fn events_of(
    conn: &mut AnyConnection,
    contacts: &[&Contact],
    filter: &EventFilter<'_>,
) -> Result<HashMap<String, Vec<(Option<String>, i64)>>, ProfileError> {
    let mut root_of_member: HashMap<&str, &str> = HashMap::new();
    for c in contacts {
        for m in &c.members {
            root_of_member.insert(m.as_str(), c.id.as_str());
        }
    }
    let members: Vec<&str> = root_of_member.keys().copied().collect();
    // (root, ts, seq, name)
    let mut rows: HashMap<String, Vec<(i64, i64, Option<String>)>> = HashMap::new();
    for chunk in members.chunks(MAX_CONTACTS) {
        let mut conditions = vec![format!("profile_id IN {}", placeholders(1, chunk.len()))];
        let mut next = chunk.len() + 1;
        conditions.push(format!("ts >= ${next}"));
        next += 1;
        if filter.until.is_some() {
            conditions.push(format!("ts <= ${next}"));
            next += 1;
        }
        if !filter.names.is_empty() {
            conditions.push(format!("name IN {}", placeholders(next, filter.names.len())));
        }
        if filter.track_only {
            conditions.push("kind = 'track'".into());
        }
        let inner = format!("SELECT profile_id, name, ts, seq FROM events WHERE {}", conditions.join(" AND "));
        let sql = match filter.latest {
            Some(n) => format!(
                "SELECT profile_id, name, ts, seq FROM (SELECT profile_id, name, ts, seq, ROW_NUMBER() OVER \
                 (PARTITION BY profile_id ORDER BY ts DESC, seq DESC) AS rn FROM ({inner}) AS e) AS r WHERE rn <= {}",
                n.max(0)
            ),
            None => inner,
        };
        let mut q = bind_all(sqlx::query(&sql), chunk).bind(filter.since);
        if let Some(until) = filter.until {
            q = q.bind(until);
        }
        for r in bind_all(q, filter.names).fetch_all(&mut *conn).await? {
            let member: String = r.get(0);
            let Some(root) = root_of_member.get(member.as_str()) else { continue };
            rows.entry((*root).to_string()).or_default().push((r.get(2), r.get(3), r.get(1)));
        }
    }
    let mut out = HashMap::with_capacity(rows.len());
    for (root, mut events) in rows {
        events.sort_by_key(|(ts, seq, _)| (*ts, *seq));
        if let Some(n) = filter.latest.and_then(|n| usize::try_from(n).ok()) {
            let extra = events.len().saturating_sub(n);
            events.drain(..extra);
        }
        out.insert(root, events.into_iter().map(|(ts, _, name)| (name, ts)).collect());
    }
    Ok(out)
}
