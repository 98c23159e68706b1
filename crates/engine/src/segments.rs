//! Segments through the engine: definitions, and membership kept up as the journeys' intake reads
//! events (each customer an event names is judged again) and as time moves events out of their
//! windows (members checked longest ago are judged again each round). A new or edited segment is
//! filled from every customer at once. Judging reads the customer's merged profile (traits,
//! orders, spend) and their counted events; the rule itself is `tailor_campaigns::segment`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tailor_campaigns::segment::{self, CustomerState, SegmentDef};
use tailor_campaigns::segment_store::{self as store, SavedSegment};
use tailor_core::FieldError;
use tailor_store::Row;

use crate::{Engine, EngineError};

/// Members judged again per segment per round because time may have moved them out.
const STALE_PER_ROUND: i64 = 500;
/// How long a member's judgement holds before time alone asks for another (ms).
const RECHECK_MS: i64 = 60_000;
/// The most members one read returns.
const MAX_PAGE: i64 = 1_000;

/// A segment with its live count.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentView {
    /// Its id.
    pub id: String,
    /// Its definition.
    pub definition: SegmentDef,
    /// Members now.
    pub members: i64,
    /// When it was last saved (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

/// A member of a segment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMember {
    /// The customer (root profile id).
    pub profile_id: String,
    /// Member since (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub since: String,
}

fn check_id(id: &str) -> Result<(), EngineError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(EngineError::Invalid(FieldError::invalid(
            "id",
            "a segment id is 1 to 128 letters, digits, '_' or '-'",
        )));
    }
    Ok(())
}

/// What the store knows of `customer` (a root profile) at `now`, with the events in `counted`
/// (name → longest window in days); None when the profile is gone.
async fn state_of(
    conn: &mut sqlx::AnyConnection,
    counted: &BTreeMap<String, u32>,
    customer: &str,
    now: i64,
) -> Result<Option<CustomerState>, EngineError> {
    let Some(view) = tailor_profiles::profile_view(conn, customer).await? else { return Ok(None) };
    let mut state = CustomerState {
        traits: view.traits.as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default(),
        orders: u32::try_from(view.features.order_count.max(0)).unwrap_or(u32::MAX),
        spend_cents: tailor_core::money::cents(&serde_json::Value::String(view.features.spend.clone())).unwrap_or(0),
        ..CustomerState::default()
    };
    if !counted.is_empty() {
        let members = tailor_profiles::group_of(conn, customer).await?;
        let longest = counted.values().copied().max().unwrap_or(0);
        let since = now.saturating_sub(i64::from(longest) * 86_400_000);
        let names: Vec<String> = counted.keys().cloned().collect();
        let sql = format!(
            "SELECT name, ts FROM events WHERE profile_id IN {} AND name IN {} AND ts > ${} AND ts <= ${}",
            tailor_store::placeholders(1, members.len()),
            tailor_store::placeholders(members.len() + 1, names.len()),
            members.len() + names.len() + 1,
            members.len() + names.len() + 2,
        );
        let q = tailor_store::bind_all(tailor_store::bind_all(sqlx::query(&sql), &members), &names);
        for r in q.bind(since).bind(now).fetch_all(&mut *conn).await? {
            state.events.entry(r.get::<String, _>(0)).or_default().push(r.get(1));
        }
    }
    Ok(Some(state))
}

/// Judges `customer` for one segment and records the outcome: `Some(true)` when they entered,
/// `Some(false)` when they left.
async fn judge(
    conn: &mut sqlx::AnyConnection,
    s: &SavedSegment,
    customer: &str,
    now: i64,
) -> Result<Option<bool>, EngineError> {
    let state = state_of(conn, &segment::events_counted(&s.def), customer, now).await?;
    record(conn, s, customer, state.as_ref(), now).await
}

/// Records whether `customer`, in `state` (None: gone), is a member of one segment now.
async fn record(
    conn: &mut sqlx::AnyConnection,
    s: &SavedSegment,
    customer: &str,
    state: Option<&CustomerState>,
    now: i64,
) -> Result<Option<bool>, EngineError> {
    let inside = state.is_some_and(|state| segment::is_member(&s.def, state, now));
    let was = store::member_since(conn, &s.id, customer).await?.is_some();
    if inside {
        store::add_member(conn, &s.id, customer, now).await?;
    } else if was {
        store::remove_member(conn, &s.id, customer).await?;
    }
    Ok((inside != was).then_some(inside))
}

/// A customer entered (`entered`) or left a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moved {
    /// The segment.
    pub segment: String,
    /// The customer (root profile).
    pub customer: String,
    /// Entered, else left.
    pub entered: bool,
}

/// Whether any segment exists (the intake skips judging otherwise).
pub(crate) async fn any(conn: &mut sqlx::AnyConnection) -> Result<bool, EngineError> {
    Ok(sqlx::query("SELECT 1 FROM segments LIMIT 1").fetch_optional(&mut *conn).await?.is_some())
}

/// Judges again every customer in `customers` (root profiles) for every segment, inside the
/// caller's transaction (the journeys' intake, as it reads their events); returns who moved.
pub(crate) async fn on_customers(
    conn: &mut sqlx::AnyConnection,
    customers: &BTreeSet<String>,
    now: i64,
) -> Result<Vec<Moved>, EngineError> {
    let mut moved = Vec::new();
    if customers.is_empty() {
        return Ok(moved);
    }
    let segments = store::segments(conn).await?;
    // Each customer's profile and counted events are read once, for every segment.
    let mut counted: BTreeMap<String, u32> = BTreeMap::new();
    for s in &segments {
        for (event, days) in segment::events_counted(&s.def) {
            let w = counted.entry(event).or_default();
            *w = (*w).max(days);
        }
    }
    for c in customers {
        let state = state_of(conn, &counted, c, now).await?;
        for s in &segments {
            if let Some(entered) = record(conn, s, c, state.as_ref(), now).await? {
                moved.push(Moved { segment: s.id.clone(), customer: c.clone(), entered });
            }
        }
    }
    Ok(moved)
}

impl Engine {
    /// Saves segment `id` (checked, naming the field; nothing saved when it does not check) and
    /// fills it from every customer.
    pub async fn put_segment(&self, id: &str, def: &SegmentDef) -> Result<SegmentView, EngineError> {
        check_id(id)?;
        def.check().map_err(EngineError::Invalid)?;
        let now = self.journey_clock().now();
        let mut tx = self.db().writer().begin().await?;
        store::put_segment(&mut tx, id, def, now).await?;
        let saved = SavedSegment { id: id.to_string(), def: def.clone(), updated_at: now };
        let roots: Vec<String> = sqlx::query("SELECT id FROM profiles WHERE merged_into IS NULL ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for customer in &roots {
            judge(&mut tx, &saved, customer, now).await?;
        }
        tx.commit().await?;
        self.segment(id).await
    }

    /// A segment with its live count.
    pub async fn segment(&self, id: &str) -> Result<SegmentView, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let s = store::segment(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("segment", id))?;
        let members = store::count(&mut conn, id).await?;
        Ok(SegmentView {
            id: s.id,
            definition: s.def,
            members,
            updated_at: tailor_core::time::format_millis(s.updated_at),
        })
    }

    /// Every segment with its live count.
    pub async fn segments(&self) -> Result<Vec<SegmentView>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let ids: Vec<String> = store::segments(&mut conn).await?.into_iter().map(|s| s.id).collect();
        drop(conn);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.segment(&id).await?);
        }
        Ok(out)
    }

    /// Deletes a segment.
    pub async fn delete_segment(&self, id: &str) -> Result<(), EngineError> {
        let mut conn = self.db().writer().acquire().await?;
        if !store::delete_segment(&mut conn, id).await? {
            return Err(EngineError::not_found("segment", id));
        }
        Ok(())
    }

    /// Members of a segment after `after` (a profile id), by id, at most `limit` (1–1,000).
    pub async fn segment_members(&self, id: &str, after: &str, limit: i64) -> Result<Vec<SegmentMember>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        store::segment(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("segment", id))?;
        Ok(store::members(&mut conn, id, after, limit.clamp(1, MAX_PAGE))
            .await?
            .into_iter()
            .map(|(profile_id, since)| SegmentMember { profile_id, since: tailor_core::time::format_millis(since) })
            .collect())
    }

    /// Judges again the members checked longest ago of segments that count events in a
    /// window, since time alone moves people out of those; journeys triggered by leaving start.
    /// Returns how many left.
    pub(crate) async fn recheck_segments(&self) -> Result<u64, EngineError> {
        let now = self.journey_clock().now();
        let mut tx = self.db().writer().begin().await?;
        let mut left = 0;
        for s in store::segments(&mut tx).await? {
            if segment::events_counted(&s.def).is_empty() {
                continue;
            }
            for customer in
                store::stale_members(&mut tx, &s.id, now.saturating_sub(RECHECK_MS), STALE_PER_ROUND).await?
            {
                if judge(&mut tx, &s, &customer, now).await? == Some(false) {
                    left += 1;
                    let moved = Moved { segment: s.id.clone(), customer, entered: false };
                    crate::journeys::segment_moved(&mut tx, &moved, now).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(left)
    }
}

/// Checks that a journey's trigger segment exists, naming the field.
pub(crate) async fn check_trigger(engine: &Engine, def: &tailor_campaigns::JourneyDef) -> Result<(), EngineError> {
    let Some(id) = &def.trigger.segment else { return Ok(()) };
    let mut conn = engine.db().reader().acquire().await?;
    if store::segment(&mut conn, id).await?.is_none() {
        return Err(EngineError::Invalid(FieldError::invalid(
            "trigger.segment",
            format!("no segment '{id}': create it with PUT /v1/segments/{id}"),
        )));
    }
    Ok(())
}
