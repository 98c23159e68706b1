//! Promotions (`price_promotions`), and a cache that spares quotes a promotion query.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Row};
use tailor_store::Db;

use crate::book::Promotion;
use crate::PricingError;

/// How long promotions are served from memory.
const PROMOTIONS_FRESH: Duration = Duration::from_secs(5);

/// Every promotion, by id (rows that no longer parse are skipped).
pub async fn promotions(conn: &mut AnyConnection) -> Result<Vec<Promotion>, PricingError> {
    let rows = sqlx::query("SELECT body FROM price_promotions ORDER BY id").fetch_all(&mut *conn).await?;
    Ok(rows.iter().filter_map(|r| super::parse(&r.get::<String, _>(0))).collect())
}

/// Creates or replaces a promotion after checking it.
pub async fn put_promotion(conn: &mut AnyConnection, promotion: &Promotion) -> Result<(), PricingError> {
    promotion.check("promotion")?;
    sqlx::query(
        "INSERT INTO price_promotions (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
    )
    .bind(promotion.id.clone())
    .bind(serde_json::to_string(promotion).unwrap_or_default())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes a promotion; false when there was none.
pub async fn delete_promotion(conn: &mut AnyConnection, id: &str) -> Result<bool, PricingError> {
    let n = sqlx::query("DELETE FROM price_promotions WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// Promotions held in memory so a quote costs no promotion query; re-read after a few seconds
/// so other nodes' changes show, and never stored from a read older than the last change made
/// through this cache.
#[derive(Debug, Default)]
pub struct PromotionCache {
    promotions: RwLock<Option<(Instant, Arc<Vec<Promotion>>)>>,
    generation: AtomicU64,
}

impl PromotionCache {
    /// The promotions, from memory for a few seconds after a read.
    pub async fn list(&self, db: &Db) -> Result<Arc<Vec<Promotion>>, PricingError> {
        if let Some(p) = self.fresh() {
            return Ok(p);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let list = Arc::new(promotions(&mut *db.reader().acquire().await?).await?);
        let mut guard = self.promotions.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *guard = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }

    /// Creates or replaces a promotion, and forgets what was held.
    pub async fn put(&self, db: &Db, promotion: &Promotion) -> Result<(), PricingError> {
        put_promotion(&mut *db.writer().acquire().await?, promotion).await?;
        self.forget();
        Ok(())
    }

    /// Removes a promotion (false when there was none), and forgets what was held.
    pub async fn delete(&self, db: &Db, id: &str) -> Result<bool, PricingError> {
        let found = delete_promotion(&mut *db.writer().acquire().await?, id).await?;
        self.forget();
        Ok(found)
    }

    fn fresh(&self) -> Option<Arc<Vec<Promotion>>> {
        let guard = self.promotions.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|(at, _)| at.elapsed() < PROMOTIONS_FRESH).map(|(_, p)| p.clone())
    }

    fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.promotions.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
