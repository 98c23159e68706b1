//! Inventory through the engine: stock adjustments, bundles, reservations and availability,
//! with idempotency keys hashed with the request body, and a background job that releases
//! reservations whose time ran out (also those left by a process that was killed).

use std::time::Duration;

use sha2::{Digest, Sha256};
use tailor_core::time::now_millis;
use tailor_inventory as inventory;
use tailor_inventory::{Adjustment, InventoryError, LocationAvailability, Reservation, ReserveRequest, StockLevel};

use crate::{Engine, EngineError};

impl From<InventoryError> for EngineError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Invalid(f) => EngineError::Invalid(f),
            InventoryError::Insufficient(m) | InventoryError::Conflict(m) => EngineError::Conflict(m),
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
        Ok(inventory::adjust(self.db(), a, keyed(idempotency, body, &mut hash), now_millis()).await?)
    }

    /// Holds units for a cart or an order (see [`ReserveRequest`]).
    pub async fn reserve(
        &self,
        req: &ReserveRequest,
        idempotency: Option<&str>,
        body: &[u8],
    ) -> Result<Reservation, EngineError> {
        let mut hash = String::new();
        Ok(inventory::reserve(self.db(), req, keyed(idempotency, body, &mut hash), now_millis()).await?)
    }

    /// Turns a held reservation into a sale.
    pub async fn confirm_reservation(&self, id: &str, order_id: Option<&str>) -> Result<Reservation, EngineError> {
        Ok(inventory::confirm(self.db(), id, order_id, now_millis()).await?)
    }

    /// Gives a reservation's units back, all or `(sku, quantity)`.
    pub async fn release_reservation(
        &self,
        id: &str,
        partial: Option<(&str, i64)>,
    ) -> Result<Reservation, EngineError> {
        Ok(inventory::release(self.db(), id, partial, now_millis()).await?)
    }

    /// A reservation by id.
    pub async fn reservation(&self, id: &str) -> Result<Reservation, EngineError> {
        Ok(inventory::reservation(self.db(), id).await?)
    }

    /// Releases reservations whose time ran out by `now` (unix ms); returns how many.
    pub async fn expire_reservations(&self, now: i64) -> Result<usize, EngineError> {
        Ok(inventory::expire_due(self.db(), now).await?)
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
pub(crate) fn spawn_expiry(engine: Engine) {
    tokio::spawn(async move {
        let mut shutdown = engine.shutdown_signal();
        loop {
            match engine.expire_reservations(now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "expired reservations released"),
                Err(e) => tracing::warn!(error = %e, "releasing expired reservations failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(EXPIRY_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}
