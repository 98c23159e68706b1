//! What a message needs to know about many customers at once — traits, identifiers, the latest
//! consent decision per purpose and the cart, each merged over the customer's group exactly as
//! [`crate::profile_view`] merges them — in a handful of queries for a whole batch, so the
//! journey scheduler does not read profiles one by one.

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
}

impl Contact {
    /// Whether the customer grants `purpose` now.
    pub fn grants(&self, purpose: tailor_core::Purpose) -> bool {
        self.consent.get(purpose.as_str()).copied().unwrap_or(false)
    }
}

/// The most ids one call reads (bind limits of both backends are far above).
pub const MAX_CONTACTS: usize = 2000;

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
    let mut merged: HashMap<String, (Map<String, Value>, Map<String, Value>)> = HashMap::new();
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
    let sql = format!("SELECT profile_id, purpose, granted FROM consents WHERE profile_id IN {inn} ORDER BY at");
    for r in bind_all(sqlx::query(&sql), &all).fetch_all(&mut *conn).await? {
        if let Some(c) = root_of_member.get(&r.get::<String, _>(0)).and_then(|root| contacts.get_mut(root)) {
            c.consent.insert(r.get(1), r.get::<i64, _>(2) != 0);
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
