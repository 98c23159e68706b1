//! Reservations: units held for a cart or an order with a time to live, allocated to a
//! location by rule, then confirmed (a sale), released or expired — each exactly once.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::{positive, InventoryError};
use crate::stock::{bundles_of, check_location, check_sku, distance_km, store_answer, stored_answer};

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReservationState {
    /// Units are held until `expiresAt`.
    Held,
    /// The order went through: the units are sold.
    Confirmed,
    /// Given back (cart emptied, order cancelled).
    Released,
    /// Not confirmed in time: given back automatically.
    Expired,
}

impl ReservationState {
    fn name(self) -> &'static str {
        match self {
            ReservationState::Held => "held",
            ReservationState::Confirmed => "confirmed",
            ReservationState::Released => "released",
            ReservationState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> ReservationState {
        match s {
            "confirmed" => ReservationState::Confirmed,
            "released" => ReservationState::Released,
            "expired" => ReservationState::Expired,
            _ => ReservationState::Held,
        }
    }
}

/// Units of one SKU held at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationLine {
    /// The SKU (bundles are held as their components).
    pub sku: String,
    /// Where the units are held.
    pub location_id: String,
    /// Units held.
    pub quantity: i64,
}

/// A reservation and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// Its id.
    pub id: String,
    /// held, confirmed, released or expired.
    pub state: ReservationState,
    /// The channel it was made for.
    pub channel: String,
    /// The order that confirmed it.
    pub order_id: Option<String>,
    /// When it lapses unless confirmed.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
    /// What is held where.
    pub lines: Vec<ReservationLine>,
}

/// How to pick the location.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Allocation {
    /// The shopper's pickup store, and only it.
    Pickup(String),
    /// The nearest location that has everything, else a split from the nearest.
    Near(f64, f64),
    /// The location with the most of what is asked, else a split.
    #[default]
    MostStock,
}

/// A request to hold units.
#[derive(Debug, Clone, PartialEq)]
pub struct ReserveRequest {
    /// (SKU, units); bundles are held as their components.
    pub lines: Vec<(String, i64)>,
    /// How to pick the location.
    pub allocation: Allocation,
    /// May the units come from several locations when none has them all.
    pub allow_split: bool,
    /// The channel (web, app, store…).
    pub channel: String,
    /// How long the hold lasts (ms).
    pub ttl_ms: i64,
}

/// Attempts of a reservation transaction when concurrent ones deadlock (PostgreSQL).
const ATTEMPTS: usize = 8;

/// Holds units by `req.allocation`, all or nothing. With an idempotency key (key, body hash) a
/// retry gets the first reservation back.
pub async fn reserve(
    db: &Db,
    req: &ReserveRequest,
    idempotency: Option<(&str, &str)>,
    now: i64,
) -> Result<Reservation, InventoryError> {
    validate(req)?;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match try_reserve(db, req, idempotency, now).await {
            Err(e) if e.retryable() => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| InventoryError::Conflict("too much contention; retry".into())))
}

fn validate(req: &ReserveRequest) -> Result<(), InventoryError> {
    if req.lines.is_empty() {
        return Err(InventoryError::Invalid(FieldError::invalid("lines", "reserve at least one line")));
    }
    if req.lines.len() > crate::MAX_RESERVATION_LINES {
        return Err(InventoryError::Invalid(FieldError::invalid(
            "lines",
            format!("a reservation holds at most {} lines: split the request", crate::MAX_RESERVATION_LINES),
        )));
    }
    for (i, (_, q)) in req.lines.iter().enumerate() {
        positive(&format!("lines[{i}].quantity"), *q)?;
    }
    if req.ttl_ms < 1 {
        return Err(InventoryError::Invalid(FieldError::invalid("ttlSeconds", "must be positive")));
    }
    Ok(())
}

async fn try_reserve(
    db: &Db,
    req: &ReserveRequest,
    idempotency: Option<(&str, &str)>,
    now: i64,
) -> Result<Reservation, InventoryError> {
    let mut tx = db.writer().begin().await?;
    let r = reserve_in(&mut tx, req, idempotency, now).await?;
    tx.commit().await?;
    Ok(r)
}

/// [`reserve`] on a connection inside a transaction the caller commits (or a savepoint of one:
/// group commit of many reservations). On error the caller rolls back.
pub async fn reserve_in(
    tx: &mut AnyConnection,
    req: &ReserveRequest,
    idempotency: Option<(&str, &str)>,
    now: i64,
) -> Result<Reservation, InventoryError> {
    validate(req)?;
    if let Some(answer) = stored_answer(&mut *tx, idempotency).await? {
        return serde_json::from_str(&answer).map_err(|e| InventoryError::Conflict(e.to_string()));
    }
    let policy = crate::policy::policy_of(&mut *tx, &req.channel).await?;
    if !policy.policy.holds() {
        return Err(InventoryError::Invalid(FieldError::invalid(
            "channel",
            format!(
                "the {} channel does not hold stock (its policy is {:?}); change it with PUT /v1/inventory/policies/{}",
                req.channel, policy.policy, req.channel
            ),
        )));
    }
    let mut held: Vec<ReservationLine> = Vec::new();
    match quick_take(&mut *tx, req, now).await? {
        Some(line) => held.push(line),
        None => allocate(&mut *tx, req, now, &mut held).await?,
    }
    let r = Reservation {
        id: uuid::Uuid::now_v7().to_string(),
        state: ReservationState::Held,
        channel: req.channel.clone(),
        order_id: None,
        expires_at: now + req.ttl_ms,
        lines: held,
    };
    sqlx::query(
        "INSERT INTO inventory_reservations (id, state, channel, created_at, expires_at, updated_at) VALUES ($1, 'held', $2, $3, $4, $3)",
    )
    .bind(r.id.clone())
    .bind(r.channel.clone())
    .bind(now)
    .bind(r.expires_at)
    .execute(&mut *tx)
    .await?;
    for (n, l) in r.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO inventory_reservation_lines (reservation_id, line_no, sku, location_id, quantity) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id.clone())
        .bind(n as i64)
        .bind(l.sku.clone())
        .bind(l.location_id.clone())
        .bind(l.quantity)
        .execute(&mut *tx)
        .await?;
    }
    let answer = serde_json::to_string(&r).map_err(|e| InventoryError::Conflict(e.to_string()))?;
    store_answer(&mut *tx, idempotency, &answer, now).await?;
    Ok(r)
}

/// The general path: checks the SKUs and the pickup store, expands bundles, and holds every
/// line at one location by rule, else (when allowed) split over several. On shortage it gives
/// back what it took, so the caller's transaction stays clean without a savepoint.
async fn allocate(
    tx: &mut AnyConnection,
    req: &ReserveRequest,
    now: i64,
    held: &mut Vec<ReservationLine>,
) -> Result<(), InventoryError> {
    for (i, (sku, _)) in req.lines.iter().enumerate() {
        check_sku(&mut *tx, &format!("lines[{i}].sku"), sku).await?;
    }
    if let Allocation::Pickup(store) = &req.allocation {
        check_location(&mut *tx, "store", store).await?;
    }
    let needed = expand(&mut *tx, &req.lines).await?;
    let candidates = candidates(&mut *tx, &needed, &req.allocation).await?;
    let result = hold(&mut *tx, req, &needed, &candidates, now, held).await;
    if result.is_err() {
        for l in held.drain(..) {
            give_back(&mut *tx, &l, false, now).await?;
        }
    }
    result
}

async fn hold(
    tx: &mut AnyConnection,
    req: &ReserveRequest,
    needed: &[(String, i64)],
    candidates: &[(String, HashMap<String, i64>)],
    now: i64,
    held: &mut Vec<ReservationLine>,
) -> Result<(), InventoryError> {
    // One location with everything, in rule order.
    let whole =
        candidates.iter().find(|(_, avail)| needed.iter().all(|(s, q)| avail.get(s).copied().unwrap_or(0) >= *q));
    if let Some((loc, _)) = whole {
        for (sku, q) in needed {
            if !take(&mut *tx, sku, loc, *q, now).await? {
                return Err(InventoryError::Conflict("stock changed during the reservation; retry (deadlock)".into()));
            }
            held.push(ReservationLine { sku: sku.clone(), location_id: loc.clone(), quantity: *q });
        }
    } else if req.allow_split && !matches!(req.allocation, Allocation::Pickup(_)) {
        for (sku, q) in needed {
            let mut left = *q;
            for (loc, avail) in candidates {
                let n = avail.get(sku).copied().unwrap_or(0).min(left);
                if n > 0 && take(&mut *tx, sku, loc, n, now).await? {
                    held.push(ReservationLine { sku: sku.clone(), location_id: loc.clone(), quantity: n });
                    left -= n;
                }
                if left == 0 {
                    break;
                }
            }
            if left > 0 {
                return Err(short(sku, *q, *q - left));
            }
        }
    } else {
        let (sku, q) = needed
            .iter()
            .find(|(s, q)| candidates.iter().all(|(_, a)| a.get(s).copied().unwrap_or(0) < *q))
            .or(needed.first())
            .cloned()
            .unwrap_or_default();
        let best = candidates.iter().map(|(_, a)| a.get(&sku).copied().unwrap_or(0)).max().unwrap_or(0);
        return Err(short(&sku, q, best));
    }
    Ok(())
}

/// One line, no bundle, the location with most stock or the pickup store: one conditional
/// statement picks the location and holds the units. None when it does not apply or cannot
/// hold them (the general path then decides, and names the problem).
async fn quick_take(
    tx: &mut AnyConnection,
    req: &ReserveRequest,
    now: i64,
) -> Result<Option<ReservationLine>, InventoryError> {
    let [(sku, q)] = req.lines.as_slice() else { return Ok(None) };
    use crate::AVAILABLE;
    let row = match &req.allocation {
        Allocation::MostStock => {
            sqlx::query(&format!(
                "UPDATE inventory_stock SET reserved = reserved + $1, updated_at = $2 WHERE sku = $3 AND location_id = \
                 (SELECT location_id FROM inventory_stock WHERE sku = $3 AND {AVAILABLE} >= $1 \
                  ORDER BY {AVAILABLE} DESC, location_id LIMIT 1) \
                 AND {AVAILABLE} >= $1 AND NOT EXISTS (SELECT 1 FROM inventory_bundles WHERE bundle_sku = $3) \
                 RETURNING location_id"
            ))
            .bind(*q)
            .bind(now)
            .bind(sku.clone())
            .fetch_optional(&mut *tx)
            .await?
        }
        Allocation::Pickup(store) => {
            sqlx::query(&format!(
            "UPDATE inventory_stock SET reserved = reserved + $1, updated_at = $2 WHERE sku = $3 AND location_id = $4 \
                 AND {AVAILABLE} >= $1 AND NOT EXISTS (SELECT 1 FROM inventory_bundles WHERE bundle_sku = $3) \
                 RETURNING location_id"
        ))
            .bind(*q)
            .bind(now)
            .bind(sku.clone())
            .bind(store.clone())
            .fetch_optional(&mut *tx)
            .await?
        }
        Allocation::Near(..) => None,
    };
    Ok(row.map(|r| ReservationLine { sku: sku.clone(), location_id: r.get(0), quantity: *q }))
}

fn short(sku: &str, wanted: i64, have: i64) -> InventoryError {
    InventoryError::Insufficient(format!("only {have} of {wanted} units of '{sku}' can be reserved"))
}

/// Lines with bundles replaced by their components, merged per SKU, sorted by SKU (so
/// concurrent transactions lock rows in the same order).
async fn expand(conn: &mut AnyConnection, lines: &[(String, i64)]) -> Result<Vec<(String, i64)>, InventoryError> {
    let skus: Vec<String> = lines.iter().map(|l| l.0.clone()).collect();
    let bundles = bundles_of(conn, &skus).await?;
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    let too_many = || {
        InventoryError::Invalid(FieldError::invalid(
            "lines",
            format!(
                "with bundles counted as their components, this asks for more than {} units of one SKU",
                crate::MAX_ON_HAND
            ),
        ))
    };
    for (sku, q) in lines {
        let parts = match bundles.get(sku) {
            Some(comps) => comps.clone(),
            None => vec![(sku.clone(), 1)],
        };
        for (c, n) in parts {
            let add = q.checked_mul(n).ok_or_else(too_many)?;
            let total = out.entry(c).or_default();
            *total = total.checked_add(add).filter(|t| *t <= crate::MAX_ON_HAND).ok_or_else(too_many)?;
        }
    }
    Ok(out.into_iter().collect())
}

/// Available units per SKU at a location, and its coordinates.
type Place = (HashMap<String, i64>, Option<(f64, f64)>);

/// Locations holding any of `needed`, in allocation order, with what is available there.
async fn candidates(
    conn: &mut AnyConnection,
    needed: &[(String, i64)],
    rule: &Allocation,
) -> Result<Vec<(String, HashMap<String, i64>)>, InventoryError> {
    let sql = format!(
        "SELECT s.location_id, s.sku, s.on_hand - s.reserved - s.safety_stock - s.damaged, l.latitude, l.longitude \
         FROM inventory_stock s JOIN locations l ON l.id = s.location_id WHERE s.sku IN ({})",
        (1..=needed.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    );
    let mut q = sqlx::query(&sql);
    for (s, _) in needed {
        q = q.bind(s.clone());
    }
    let mut by_location: BTreeMap<String, Place> = BTreeMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        let e = by_location.entry(r.get(0)).or_default();
        e.0.insert(r.get(1), r.get::<i64, _>(2).max(0));
        if let (Some(lat), Some(lon)) = (r.get::<Option<f64>, _>(3), r.get::<Option<f64>, _>(4)) {
            e.1 = Some((lat, lon));
        }
    }
    let mut list: Vec<(String, HashMap<String, i64>, f64)> = by_location
        .into_iter()
        .filter(|(loc, _)| !matches!(rule, Allocation::Pickup(p) if p != loc))
        .map(|(loc, (avail, coords))| {
            let key = match rule {
                Allocation::Near(lat, lon) => coords.map_or(f64::MAX, |c| distance_km((*lat, *lon), c)),
                _ => -(needed.iter().map(|(s, q)| avail.get(s).copied().unwrap_or(0).min(*q)).sum::<i64>() as f64),
            };
            (loc, avail, key)
        })
        .collect();
    list.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    Ok(list.into_iter().map(|(l, a, _)| (l, a)).collect())
}

/// Holds `q` units if they are available right now; false when they are not (anymore).
async fn take(conn: &mut AnyConnection, sku: &str, loc: &str, q: i64, now: i64) -> Result<bool, InventoryError> {
    let done = sqlx::query(&format!(
        "UPDATE inventory_stock SET reserved = reserved + $1, updated_at = $2 \
         WHERE sku = $3 AND location_id = $4 AND {} >= $1",
        crate::AVAILABLE
    ))
    .bind(q)
    .bind(now)
    .bind(sku.to_string())
    .bind(loc.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Reservation, InventoryError> {
    let row = sqlx::query("SELECT state, channel, order_id, expires_at FROM inventory_reservations WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| InventoryError::NotFound(format!("no reservation with id '{id}'")))?;
    let lines = sqlx::query(
        "SELECT sku, location_id, quantity FROM inventory_reservation_lines WHERE reservation_id = $1 ORDER BY line_no",
    )
    .bind(id.to_string())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| ReservationLine { sku: r.get(0), location_id: r.get(1), quantity: r.get(2) })
    .collect();
    Ok(Reservation {
        id: id.to_string(),
        state: ReservationState::parse(&row.get::<String, _>(0)),
        channel: row.get(1),
        order_id: row.get(2),
        expires_at: row.get(3),
        lines,
    })
}

/// A reservation by id.
pub async fn reservation(db: &Db, id: &str) -> Result<Reservation, InventoryError> {
    let mut conn = db.reader().acquire().await?;
    load(&mut conn, id).await
}

/// Moves a held reservation to `to`, once: false when it was not held anymore.
async fn leave_held(
    conn: &mut AnyConnection,
    id: &str,
    to: ReservationState,
    order_id: Option<&str>,
    now: i64,
) -> Result<bool, InventoryError> {
    let done = sqlx::query(
        "UPDATE inventory_reservations SET state = $1, order_id = COALESCE($2, order_id), updated_at = $3 \
         WHERE id = $4 AND state = 'held'",
    )
    .bind(to.name())
    .bind(order_id.map(str::to_string))
    .bind(now)
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

async fn give_back(conn: &mut AnyConnection, l: &ReservationLine, sold: bool, now: i64) -> Result<(), InventoryError> {
    // A count taken after the hold may have found fewer units than it holds: the sale still went
    // through, and on hand stops at none (it cannot go below, by the table's CHECK).
    let sql = if sold {
        "UPDATE inventory_stock SET reserved = reserved - $1, \
         on_hand = CASE WHEN on_hand >= $1 THEN on_hand - $1 ELSE 0 END, updated_at = $2 \
         WHERE sku = $3 AND location_id = $4"
    } else {
        "UPDATE inventory_stock SET reserved = reserved - $1, updated_at = $2 WHERE sku = $3 AND location_id = $4"
    };
    sqlx::query(sql)
        .bind(l.quantity)
        .bind(now)
        .bind(l.sku.clone())
        .bind(l.location_id.clone())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn not_held(r: &Reservation) -> InventoryError {
    InventoryError::Conflict(format!("reservation '{}' is {}, not held", r.id, r.state.name()))
}

/// The order went through: held units become sold (on hand and reserved both go down).
pub async fn confirm(db: &Db, id: &str, order_id: Option<&str>, now: i64) -> Result<Reservation, InventoryError> {
    let mut tx = db.writer().begin().await?;
    let r = load(&mut tx, id).await?;
    let to = ReservationState::Confirmed;
    let done = end_in(&mut tx, id, to, order_id, now).await?.ok_or_else(|| not_held(&r))?;
    tx.commit().await?;
    Ok(done)
}

/// Ends a held reservation inside the caller's transaction: confirmed (a sale) or released
/// (units back). None when it does not exist or is not held anymore.
pub async fn end_in(
    tx: &mut AnyConnection,
    id: &str,
    to: ReservationState,
    order_id: Option<&str>,
    now: i64,
) -> Result<Option<Reservation>, InventoryError> {
    let r = match load(&mut *tx, id).await {
        Ok(r) => r,
        Err(InventoryError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !leave_held(&mut *tx, id, to, order_id, now).await? {
        return Ok(None);
    }
    for l in &r.lines {
        give_back(&mut *tx, l, to == ReservationState::Confirmed, now).await?;
    }
    Ok(Some(load(&mut *tx, id).await?))
}

/// Gives held units back: all of them, or `quantity` units of `sku` (a partial release).
pub async fn release(db: &Db, id: &str, partial: Option<(&str, i64)>, now: i64) -> Result<Reservation, InventoryError> {
    let mut tx = db.writer().begin().await?;
    let r = load(&mut tx, id).await?;
    if r.state != ReservationState::Held {
        return Err(not_held(&r));
    }
    match partial {
        None => {
            if !leave_held(&mut tx, id, ReservationState::Released, None, now).await? {
                return Err(not_held(&r));
            }
            for l in &r.lines {
                give_back(&mut tx, l, false, now).await?;
            }
        }
        Some((sku, q)) => {
            positive("quantity", q)?;
            let held: i64 = r.lines.iter().filter(|l| l.sku == sku).map(|l| l.quantity).sum();
            if held == 0 {
                return Err(InventoryError::Invalid(FieldError::invalid(
                    "sku",
                    format!("the reservation holds no '{sku}'"),
                )));
            }
            if q > held {
                return Err(InventoryError::Invalid(FieldError::invalid(
                    "quantity",
                    format!("cannot release {q} units of '{sku}': the reservation holds {held}"),
                )));
            }
            let mut left = q;
            let rows = sqlx::query(
                "SELECT line_no, location_id, quantity FROM inventory_reservation_lines \
                 WHERE reservation_id = $1 AND sku = $2 AND quantity > 0 ORDER BY line_no DESC",
            )
            .bind(id.to_string())
            .bind(sku.to_string())
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                let (line_no, loc, have): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
                let n = have.min(left);
                sqlx::query(
                    "UPDATE inventory_reservation_lines SET quantity = quantity - $1 WHERE reservation_id = $2 AND line_no = $3",
                )
                .bind(n)
                .bind(id.to_string())
                .bind(line_no)
                .execute(&mut *tx)
                .await?;
                give_back(
                    &mut tx,
                    &ReservationLine { sku: sku.to_string(), location_id: loc, quantity: n },
                    false,
                    now,
                )
                .await?;
                left -= n;
                if left == 0 {
                    break;
                }
            }
        }
    }
    let r = load(&mut tx, id).await?;
    tx.commit().await?;
    Ok(r)
}

/// Releases every held reservation whose time ran out by `now`; returns them. Safe to run from
/// several processes at once: each reservation leaves `held` once.
pub async fn expire_due(db: &Db, now: i64) -> Result<Vec<Reservation>, InventoryError> {
    let due: Vec<String> = sqlx::query(
        "SELECT id FROM inventory_reservations WHERE state = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT 1000",
    )
    .bind(now)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut released = Vec::new();
    for id in due {
        let mut tx = db.writer().begin().await?;
        let r = load(&mut tx, &id).await?;
        if leave_held(&mut tx, &id, ReservationState::Expired, None, now).await? {
            for l in &r.lines {
                give_back(&mut tx, l, false, now).await?;
            }
            released.push(r);
        }
        tx.commit().await?;
    }
    Ok(released)
}
