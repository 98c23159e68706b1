//! The identity graph: which profile an identifier belongs to, merging profiles when one event
//! links them (within the per-kind limits), and undoing merges.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};
use tailor_core::{Identifier, IdentifierKind};
use tailor_store::DbError;

/// Errors of profile operations.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No profile (or merge) with this id.
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ProfileError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sqlx(e))
    }
}

pub(crate) use tailor_store::placeholders;

/// The profile that owns `id`, if any (not followed to its root).
pub(crate) async fn owner(conn: &mut AnyConnection, id: &Identifier) -> Result<Option<String>, ProfileError> {
    let row = sqlx::query("SELECT profile_id FROM identities WHERE kind = $1 AND value = $2")
        .bind(id.kind.as_str())
        .bind(id.value.clone())
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Follows `merged_into` to the profile that stands for the customer now. `None` if the
/// profile does not exist (never did, or was erased).
pub async fn root_of(conn: &mut AnyConnection, profile: &str) -> Result<Option<String>, ProfileError> {
    let mut current = profile.to_string();
    for _ in 0..64 {
        let row = sqlx::query("SELECT merged_into FROM profiles WHERE id = $1")
            .bind(current.clone())
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            None => return Ok(None),
            Some(r) => match r.get::<Option<String>, _>(0) {
                Some(next) => current = next,
                None => return Ok(Some(current)),
            },
        }
    }
    Err(ProfileError::Conflict(format!("merge chain of {profile} is too deep")))
}

/// The root and every profile merged into it, directly or not.
pub async fn group_of(conn: &mut AnyConnection, root: &str) -> Result<Vec<String>, ProfileError> {
    let rows = sqlx::query(
        "WITH RECURSIVE g(id) AS (SELECT CAST($1 AS TEXT) UNION SELECT p.id FROM profiles p JOIN g ON p.merged_into = g.id) \
         SELECT id FROM g",
    )
    .bind(root)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn kind_counts(conn: &mut AnyConnection, group: &[String]) -> Result<HashMap<String, usize>, ProfileError> {
    let sql = format!(
        "SELECT kind, COUNT(*) FROM identities WHERE profile_id IN {} GROUP BY kind",
        placeholders(1, group.len())
    );
    let q = tailor_store::bind_all(sqlx::query(&sql), group);
    let rows = q.fetch_all(conn).await?;
    Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as usize)).collect())
}

async fn created_at(conn: &mut AnyConnection, profile: &str) -> Result<i64, ProfileError> {
    let row = sqlx::query("SELECT created_at FROM profiles WHERE id = $1").bind(profile).fetch_one(conn).await?;
    Ok(row.get(0))
}

pub(crate) async fn new_profile(conn: &mut AnyConnection, now: i64) -> Result<String, ProfileError> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO profiles (id, created_at, updated_at, traits) VALUES ($1, $2, $2, '{}')")
        .bind(id.clone())
        .bind(now)
        .execute(conn)
        .await?;
    Ok(id)
}

async fn attach(conn: &mut AnyConnection, id: &Identifier, profile: &str, now: i64) -> Result<(), ProfileError> {
    sqlx::query(
        "INSERT INTO identities (kind, value, profile_id, first_seen) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(id.kind.as_str())
    .bind(id.value.clone())
    .bind(profile)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn has_room(conn: &mut AnyConnection, root: &str, kind: IdentifierKind) -> Result<bool, ProfileError> {
    let group = group_of(conn, root).await?;
    let counts = kind_counts(conn, &group).await?;
    Ok(counts.get(kind.as_str()).copied().unwrap_or(0) < kind.max_per_profile())
}

/// Whether the group of `root` holds an identifier that names a person.
async fn names_a_person(conn: &mut AnyConnection, root: &str) -> Result<bool, ProfileError> {
    let group = group_of(conn, root).await?;
    let counts = kind_counts(conn, &group).await?;
    Ok(IdentifierKind::ALL.iter().any(|k| k.is_strong() && counts.contains_key(k.as_str())))
}

/// Whether the groups of roots `a` and `b` may merge: no undone merge blocks the pair and no
/// identifier kind would exceed its limit.
async fn mergeable(conn: &mut AnyConnection, a: &str, b: &str) -> Result<bool, ProfileError> {
    let ga = group_of(conn, a).await?;
    let gb = group_of(conn, b).await?;
    let sql = format!(
        "SELECT COUNT(*) FROM merge_blocks WHERE (a IN {pa} AND b IN {pb}) OR (a IN {pb} AND b IN {pa})",
        pa = placeholders(1, ga.len()),
        pb = placeholders(1 + ga.len(), gb.len())
    );
    let mut q = sqlx::query(&sql);
    for id in ga.iter().chain(gb.iter()) {
        q = q.bind(id.clone());
    }
    if q.fetch_one(&mut *conn).await?.get::<i64, _>(0) > 0 {
        return Ok(false);
    }
    let ca = kind_counts(conn, &ga).await?;
    let cb = kind_counts(conn, &gb).await?;
    Ok(IdentifierKind::ALL.iter().all(|k| {
        let n = ca.get(k.as_str()).copied().unwrap_or(0) + cb.get(k.as_str()).copied().unwrap_or(0);
        n <= k.max_per_profile()
    }))
}

/// Merges the groups of roots `a` and `b`; the older profile survives. Records the event and
/// identifier that caused it. Returns the survivor.
async fn merge(
    conn: &mut AnyConnection,
    a: &str,
    b: &str,
    cause: &Identifier,
    event_seq: Option<i64>,
    now: i64,
) -> Result<String, ProfileError> {
    let (ta, tb) = (created_at(conn, a).await?, created_at(conn, b).await?);
    let (survivor, absorbed) = if (ta, a) <= (tb, b) { (a, b) } else { (b, a) };
    sqlx::query("UPDATE profiles SET merged_into = $1, updated_at = $2 WHERE id = $3")
        .bind(survivor)
        .bind(now)
        .bind(absorbed)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO merges (id, survivor, absorbed, event_seq, cause_kind, cause_value, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(survivor)
    .bind(absorbed)
    .bind(event_seq)
    .bind(cause.kind.as_str())
    .bind(cause.value.clone())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    tracing::debug!(survivor, absorbed, cause = cause.kind.as_str(), "merged profiles");
    Ok(survivor.to_string())
}

/// Resolves an event's identifiers (highest priority first) to the root profile it belongs to,
/// creating a profile, attaching new identifiers and merging profiles as the identifiers link
/// them. Limits per identifier kind decide when an identifier is *not* attached or a merge not
/// made: the highest-priority identifier wins the event, so a shared tablet's anonymousId seen
/// with two userIds leaves two customers.
pub(crate) async fn resolve(
    conn: &mut AnyConnection,
    ids: &[Identifier],
    event_seq: Option<i64>,
    now: i64,
) -> Result<Option<String>, ProfileError> {
    let Some(first) = ids.first() else {
        return Ok(None);
    };
    let mut roots = Vec::with_capacity(ids.len());
    for id in ids {
        let root = match owner(conn, id).await? {
            Some(p) => root_of(conn, &p).await?,
            None => None,
        };
        roots.push(root);
    }
    let mut primary = match &roots[0] {
        Some(r) => r.clone(),
        None => {
            // The best identifier is new: it joins the profile of the best known one, unless
            // that link is only a shared browser or device whose profile already names someone.
            let candidate = ids.iter().zip(&roots).find_map(|(id, r)| r.clone().map(|r| (id.kind, r)));
            match candidate {
                Some((via, c))
                    if has_room(conn, &c, first.kind).await?
                        && (via.is_strong() || !first.kind.is_strong() || !names_a_person(conn, &c).await?) =>
                {
                    c
                }
                _ => new_profile(conn, now).await?,
            }
        }
    };
    for (id, root) in ids.iter().zip(roots) {
        // An earlier merge in this loop may have moved this identifier's root.
        let root = match root {
            Some(r) => root_of(conn, &r).await?,
            None => None,
        };
        match root {
            None => {
                if has_room(conn, &primary, id.kind).await? {
                    attach(conn, id, &primary, now).await?;
                }
            }
            Some(r) if r == primary => {}
            Some(r) => {
                let weak_link_between_people =
                    !id.kind.is_strong() && names_a_person(conn, &primary).await? && names_a_person(conn, &r).await?;
                if !weak_link_between_people && mergeable(conn, &primary, &r).await? {
                    primary = merge(conn, &primary, &r, id, event_seq, now).await?;
                }
            }
        }
    }
    Ok(Some(primary))
}

/// Undoes a merge: the absorbed profile stands alone again with its own identifiers and events,
/// and the pair is blocked from merging again automatically.
pub async fn unmerge(conn: &mut AnyConnection, merge_id: &str, now: i64) -> Result<(String, String), ProfileError> {
    let row = sqlx::query("SELECT survivor, absorbed, undone_at FROM merges WHERE id = $1")
        .bind(merge_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ProfileError::NotFound(format!("merge {merge_id}")))?;
    let (survivor, absorbed): (String, String) = (row.get(0), row.get(1));
    if row.get::<Option<i64>, _>(2).is_some() {
        return Err(ProfileError::Conflict(format!("merge {merge_id} was already undone")));
    }
    sqlx::query("UPDATE profiles SET merged_into = NULL, updated_at = $1 WHERE id = $2 AND merged_into = $3")
        .bind(now)
        .bind(absorbed.clone())
        .bind(survivor.clone())
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE merges SET undone_at = $1 WHERE id = $2").bind(now).bind(merge_id).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO merge_blocks (a, b) VALUES ($1, $2) ON CONFLICT (a, b) DO NOTHING")
        .bind(survivor.clone())
        .bind(absorbed.clone())
        .execute(&mut *conn)
        .await?;
    Ok((survivor, absorbed))
}
