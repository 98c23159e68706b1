//! Inventory through the engine: stock adjustments, bundles, reservations and availability,
//! with idempotency keys hashed with the request body, and a background job that releases
//! reservations whose time ran out (also those left by a process that was killed).

use std::time::Duration;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};
use tailor_core::time::now_millis;
use tailor_inventory as inventory;
use tailor_inventory::{
    Adjustment, ChannelPolicy, InventoryError, LocationAvailability, Reservation, ReservationLine, ReserveRequest,
    StockLevel, Transfer, TransferState,
};
use tailor_store::Db;
use tokio::sync::broadcast;
use tokio::sync::{mpsc, oneshot};

use crate::{Engine, EngineError};

impl From<InventoryError> for EngineError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Invalid(f) => EngineError::Invalid(f),
            InventoryError::Insufficient(m) => EngineError::InsufficientStock(m),
            InventoryError::Conflict(m) => EngineError::Conflict(m),
            InventoryError::NotFound(m) => EngineError::NotFound(m),
            InventoryError::Db(d) => EngineError::Db(d),
        }
    }
}

/// An idempotency key with the hash of the request it came with.
fn keyed<'a>(key: Option<&'a str>, body: &[u8], hash: &'a mut String) -> Option<(&'a str, &'a str)> {
    let key = key?;
    *hash = format!("{:x}", Sha256::digest(body));
    Some((key, hash.as_str()))
}

/// At or below this many available units (and above zero) a SKU is low at a location.
const LOW_STOCK: i64 = 3;

/// A change other engines and the console care about.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockEvent {
    /// out_of_stock, back_in_stock or low_stock.
    pub kind: &'static str,
    /// The SKU.
    pub sku: String,
    /// The location.
    pub location_id: String,
    /// Units available now.
    pub available: i64,
    /// When.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
}

/// What the other engines see of stock: per location the products they cannot promise there
/// (recommendations leave them out), and a feed of stock events.
pub(crate) struct StockView {
    /// Location → products not available there; "" → products unavailable everywhere.
    pub(crate) unavailable: RwLock<Arc<HashMap<String, HashSet<String>>>>,
    low: Mutex<HashSet<(String, String)>>,
    events: broadcast::Sender<StockEvent>,
}

impl StockView {
    pub(crate) fn new() -> StockView {
        StockView {
            unavailable: RwLock::new(Arc::new(HashMap::new())),
            low: Mutex::new(HashSet::new()),
            events: broadcast::channel(1024).0,
        }
    }

    /// Whether `product` is unavailable at `location` now.
    fn is_out(&self, location: &str, product: &str) -> bool {
        self.unavailable.read().unwrap_or_else(|e| e.into_inner()).get(location).is_some_and(|s| s.contains(product))
    }

    /// Marks a product (un)available at a location; copy on write, and only on a change, so
    /// requests keep reading the old map without locks.
    pub(crate) fn mark(&self, location: &str, product: &str, available: bool) {
        if self.is_out(location, product) != available {
            return;
        }
        let mut guard = self.unavailable.write().unwrap_or_else(|e| e.into_inner());
        let set = Arc::make_mut(&mut guard).entry(location.to_string()).or_default();
        if available {
            set.remove(product);
        } else {
            set.insert(product.to_string());
        }
    }

    /// Takes in fresh levels: updates what can be promised and publishes the transitions.
    pub(crate) fn note(&self, levels: &[(String, String, i64)]) {
        let now = now_millis();
        for (sku, loc, available) in levels {
            let was_out = self.is_out(loc, sku);
            let out = *available <= 0;
            let low = !out && *available <= LOW_STOCK;
            let was_low = {
                let mut set = self.low.lock().unwrap_or_else(|e| e.into_inner());
                let key = (sku.clone(), loc.clone());
                if low {
                    !set.insert(key)
                } else {
                    set.remove(&key)
                }
            };
            let kind = match (was_out, out, was_low, low) {
                (false, true, _, _) => Some("out_of_stock"),
                (true, false, _, _) => Some("back_in_stock"),
                (_, false, false, true) => Some("low_stock"),
                _ => None,
            };
            if was_out != out {
                self.mark(loc, sku, !out);
            }
            if let Some(kind) = kind {
                tracing::info!(kind, sku = %sku, location = %loc, available, "stock event");
                let _ = self.events.send(StockEvent {
                    kind,
                    sku: sku.clone(),
                    location_id: loc.clone(),
                    available: *available,
                    at: now,
                });
            }
        }
    }

    /// A feed of stock events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StockEvent> {
        self.events.subscribe()
    }
}

fn pairs<'a>(lines: impl Iterator<Item = &'a ReservationLine>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = lines.map(|l| (l.sku.clone(), l.location_id.clone())).collect();
    v.sort();
    v.dedup();
    v
}

/// Reservations committed together at most.
const MAX_BATCH: usize = 512;

struct Pending {
    req: ReserveRequest,
    key: Option<(String, String)>,
    reply: oneshot::Sender<Result<Reservation, InventoryError>>,
}

/// Group commit for the embedded store: SQLite has one writer and a durable commit costs a
/// disk flush, so reservations waiting at the same moment go into one transaction, each in its
/// own way (one that is refused gives back what it took). Each caller is answered after the commit.
pub(crate) struct ReservationQueue {
    sender: mpsc::Sender<Pending>,
}

impl ReservationQueue {
    /// Starts the committing task on `db`.
    pub(crate) fn start(db: Db, stock: Arc<StockView>) -> ReservationQueue {
        let (sender, mut receiver) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let results = commit_batch(&db, &batch).await;
                let touched = pairs(results.iter().flatten().flat_map(|r| &r.lines));
                for (p, r) in batch.into_iter().zip(results) {
                    let _ = p.reply.send(r);
                }
                note_levels(&db, &stock, &touched).await;
            }
        });
        ReservationQueue { sender }
    }

    async fn reserve(&self, req: &ReserveRequest, key: Option<(&str, &str)>) -> Result<Reservation, InventoryError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending { req: req.clone(), key: key.map(|(k, h)| (k.to_string(), h.to_string())), reply };
        let closed = || InventoryError::Conflict("the engine is shutting down; retry".into());
        self.sender.send(pending).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn commit_batch(db: &Db, batch: &[Pending]) -> Vec<Result<Reservation, InventoryError>> {
    let failed = |e: &InventoryError| {
        (0..batch.len())
            .map(|_| Err(InventoryError::Conflict(format!("the reservation was not stored: {e}"))))
            .collect()
    };
    let now = now_millis();
    let mut tx = match db.writer().begin().await {
        Ok(tx) => tx,
        Err(e) => return failed(&e.into()),
    };
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        let key = p.key.as_ref().map(|(k, h)| (k.as_str(), h.as_str()));
        // A refused reservation leaves nothing behind (it gives back what it took); a storage
        // failure fails the whole batch, which is rolled back.
        match inventory::reserve_in(&mut tx, &p.req, key, now).await {
            Err(InventoryError::Db(e)) => {
                let e = InventoryError::Db(e);
                let _ = tx.rollback().await;
                return failed(&e);
            }
            other => out.push(other),
        }
    }
    match tx.commit().await {
        Ok(()) => out,
        Err(e) => failed(&e.into()),
    }
}

/// Reads the levels of `touched` pairs and passes them to the stock view.
async fn note_levels(db: &Db, stock: &StockView, touched: &[(String, String)]) {
    if touched.is_empty() {
        return;
    }
    let levels = match db.reader().acquire().await {
        Ok(mut conn) => inventory::available_of(&mut conn, touched).await,
        Err(e) => Err(e.into()),
    };
    match levels {
        Ok(levels) => stock.note(&levels),
        Err(e) => tracing::warn!(error = %e, "reading stock levels after a change failed"),
    }
}

/// How often held reservations are checked for expiry.
const EXPIRY_EVERY: Duration = Duration::from_secs(1);

impl Engine {
    /// Applies a stock adjustment. `idempotency` is the Idempotency-Key and `body` the request
    /// as sent, so a retry is answered without applying twice and a reused key is refused.
    pub async fn adjust_stock(
        &self,
        a: &Adjustment,
        idempotency: Option<&str>,
        body: &[u8],
    ) -> Result<StockLevel, EngineError> {
        let mut hash = String::new();
        let level = inventory::adjust(self.db(), a, keyed(idempotency, body, &mut hash), now_millis()).await?;
        self.inner.stock.note(&[(level.sku.clone(), level.location_id.clone(), level.available)]);
        Ok(level)
    }

    /// Holds units for a cart or an order (see [`ReserveRequest`]).
    /// On SQLite, concurrent reservations are committed together (see [`ReservationQueue`]).
    pub async fn reserve(
        &self,
        req: &ReserveRequest,
        idempotency: Option<&str>,
        body: &[u8],
    ) -> Result<Reservation, EngineError> {
        let mut hash = String::new();
        let key = keyed(idempotency, body, &mut hash);
        match &self.inner.reservations {
            Some(queue) => Ok(queue.reserve(req, key).await?),
            None => {
                let r = inventory::reserve(self.db(), req, key, now_millis()).await?;
                note_levels(self.db(), &self.inner.stock, &pairs(r.lines.iter())).await;
                Ok(r)
            }
        }
    }

    /// Turns a held reservation into a sale.
    pub async fn confirm_reservation(&self, id: &str, order_id: Option<&str>) -> Result<Reservation, EngineError> {
        let r = inventory::confirm(self.db(), id, order_id, now_millis()).await?;
        note_levels(self.db(), &self.inner.stock, &pairs(r.lines.iter())).await;
        Ok(r)
    }

    /// Gives a reservation's units back, all or `(sku, quantity)`.
    pub async fn release_reservation(
        &self,
        id: &str,
        partial: Option<(&str, i64)>,
    ) -> Result<Reservation, EngineError> {
        let r = inventory::release(self.db(), id, partial, now_millis()).await?;
        note_levels(self.db(), &self.inner.stock, &pairs(r.lines.iter())).await;
        Ok(r)
    }

    /// A reservation by id.
    pub async fn reservation(&self, id: &str) -> Result<Reservation, EngineError> {
        Ok(inventory::reservation(self.db(), id).await?)
    }

    /// Releases reservations whose time ran out by `now` (unix ms); returns how many.
    pub async fn expire_reservations(&self, now: i64) -> Result<usize, EngineError> {
        let released = inventory::expire_due(self.db(), now).await?;
        note_levels(self.db(), &self.inner.stock, &pairs(released.iter().flat_map(|r| &r.lines))).await;
        Ok(released.len())
    }

    /// Tells the stock view about pairs the projection moved.
    pub(crate) async fn stock_moved(&self, mut moved: Vec<(String, String)>) {
        moved.sort();
        moved.dedup();
        note_levels(self.db(), &self.inner.stock, &moved).await;
    }

    /// Sends units from one location to another (see [`inventory::transfer`]).
    pub async fn transfer_stock(
        &self,
        sku: &str,
        from: &str,
        to: &str,
        quantity: i64,
        expected_at: Option<i64>,
    ) -> Result<Transfer, EngineError> {
        let t = inventory::transfer(self.db(), sku, from, to, quantity, expected_at, now_millis()).await?;
        let touched = [(t.sku.clone(), t.from_location.clone()), (t.sku.clone(), t.to_location.clone())];
        note_levels(self.db(), &self.inner.stock, &touched).await;
        Ok(t)
    }

    /// Receives (or cancels) a transfer in transit.
    pub async fn finish_transfer(&self, id: &str, to: TransferState) -> Result<Transfer, EngineError> {
        let t = inventory::finish_transfer(self.db(), id, to, now_millis()).await?;
        let touched = [(t.sku.clone(), t.from_location.clone()), (t.sku.clone(), t.to_location.clone())];
        note_levels(self.db(), &self.inner.stock, &touched).await;
        Ok(t)
    }

    /// Sets how a channel uses stock.
    pub async fn set_channel_policy(&self, p: &ChannelPolicy) -> Result<ChannelPolicy, EngineError> {
        let Some(channel) = tailor_core::Channel::parse(&p.channel) else {
            return Err(EngineError::Invalid(tailor_core::FieldError::invalid(
                "channel",
                "one of web, app, store, support, chat, email, server",
            )));
        };
        let p = ChannelPolicy { channel: channel.as_str().to_string(), ..p.clone() };
        inventory::set_policy(self.db(), &p, now_millis()).await?;
        Ok(p)
    }

    /// Every channel's stock policy (channels not listed hold stock at checkout).
    pub async fn channel_policies(&self) -> Result<Vec<ChannelPolicy>, EngineError> {
        Ok(inventory::policies(self.db()).await?)
    }

    /// Stock events (out of stock, back in stock, low stock) from now on.
    pub fn stock_events(&self) -> broadcast::Receiver<StockEvent> {
        self.inner.stock.subscribe()
    }

    /// Defines a bundle as its components.
    pub async fn set_bundle(&self, bundle: &str, components: &[(String, i64)]) -> Result<(), EngineError> {
        Ok(inventory::set_bundle(self.db(), bundle, components).await?)
    }

    /// The level of one SKU at one location.
    pub async fn stock_level(&self, sku: &str, location: &str) -> Result<Option<StockLevel>, EngineError> {
        Ok(inventory::stock_level(self.db(), sku, location).await?)
    }

    /// What can be promised per SKU and location.
    pub async fn stock_availability(
        &self,
        skus: &[String],
        locations: Option<&[String]>,
        near: Option<(f64, f64)>,
    ) -> Result<Vec<LocationAvailability>, EngineError> {
        Ok(inventory::availability(self.db(), skus, locations, near, now_millis()).await?)
    }
}

/// Releases expired reservations now and then every [`EXPIRY_EVERY`] until shutdown.
pub(crate) fn expiry_job() -> crate::supervisor::Job {
    crate::supervisor::Job {
        name: "reservation_expiry",
        first_after: std::time::Duration::ZERO,
        every: EXPIRY_EVERY,
        wake: None,
        round: std::sync::Arc::new(|engine: Engine| {
            Box::pin(async move {
                let n = engine.expire_reservations(now_millis()).await?;
                if n > 0 {
                    tracing::info!(released = n, "expired reservations released");
                }
                Ok(())
            })
        }),
    }
}
