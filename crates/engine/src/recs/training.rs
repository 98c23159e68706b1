//! Training: a model learned from every order, the catalog and the stores, stored as the next
//! version and swapped in; and the job that retrains when orders came in.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tailor_core::time::now_millis;
use tailor_recs::content::ItemAttributes;
use tailor_recs::learn::train_with_learned_weights;
use tailor_recs::{Dataset, ModelConfig, TrainingSet};

use super::{blocking, TrainSummary};
use crate::{Engine, EngineError};

/// What a model is learned from: purchases, item attributes (by item of the data) and the
/// region of each store.
struct TrainingData {
    data: Dataset,
    attributes: Vec<Option<ItemAttributes>>,
    store_region: std::collections::HashMap<String, String>,
}

impl Engine {
    /// Trains a new model from every order, the catalog and the stores, stores it as the next
    /// version and serves it (requests in flight finish on the old one).
    pub async fn train_model(&self, progress: Arc<dyn Fn(&str) + Send + Sync>) -> Result<TrainSummary, EngineError> {
        let _one_at_a_time = self.recs().training.lock().await;
        let started = std::time::Instant::now();
        self.sync().await?;
        progress("reading orders and catalog");
        let TrainingData { data, attributes, store_region } = self.training_data().await?;
        let (interactions, customers, products) = (data.rows.len(), data.users.len(), data.items.len());
        if interactions == 0 {
            return Err(EngineError::NotReady(
                "there are no orders to learn from yet: send Order Completed events or `tailor import orders`".into(),
            ));
        }
        let p = progress.clone();
        let model = blocking(
            move || {
                let set = TrainingSet { data: &data, attributes, store_region };
                train_with_learned_weights(&set, &ModelConfig::default(), &|m| p(m))
            },
            |e| EngineError::Io(format!("training failed: {e}")),
        )
        .await?;
        progress("saving the model");
        let validation_ndcg = model.validation.map(|(r, n)| (r.ndcg10, n.ndcg10));
        let m = model.clone();
        let bytes = blocking(move || m.to_bytes(), EngineError::Io).await?.map_err(EngineError::Io)?;
        let summary = TrainSummary {
            version: 0,
            interactions,
            customers,
            products,
            seconds: started.elapsed().as_secs_f64(),
            validation_ndcg,
            trained_at: now_millis(),
        };
        let summary = tailor_recs_store::save_model(self.db(), summary, bytes).await?;
        self.swap_model(model, summary.version);
        Ok(summary)
    }

    /// The stored model versions, newest first.
    pub async fn models(&self) -> Result<Vec<TrainSummary>, EngineError> {
        Ok(tailor_recs_store::summaries(self.db()).await?)
    }

    /// Every catalog product (with its attributes) and every customer's purchase lines.
    async fn training_data(&self) -> Result<TrainingData, EngineError> {
        let db = self.db();
        let mut data = Dataset::default();
        let products = tailor_catalog::all_products(db).await?;
        let mut attributes: Vec<Option<ItemAttributes>> = Vec::with_capacity(products.len());
        for p in products {
            data.item(&p.id);
            attributes.push(Some(ItemAttributes {
                title: p.title,
                department: p.department,
                category: p.category,
                subcategory: p.subcategory,
                brand: p.brand,
            }));
        }
        let mut conn = db.reader().acquire().await?;
        for l in tailor_profiles::purchases_by_customer(&mut conn).await? {
            data.push(&l.customer, &l.product_id, l.ts / 1000, l.quantity as f32, l.store_id.as_deref());
        }
        attributes.resize(data.items.len(), None);
        Ok(TrainingData { data, attributes, store_region: tailor_catalog::regions(db).await? })
    }
}

/// Retrains every `every` when orders arrived since the serving model was trained.
pub(crate) fn retraining_job(every: std::time::Duration) -> crate::supervisor::Job {
    // The order count the last model saw: no new orders, no new model.
    let trained_orders = Arc::new(AtomicI64::new(-1));
    crate::supervisor::Job {
        name: "retraining",
        first_after: every,
        every,
        wake: None,
        round: Arc::new(move |engine: Engine| {
            let trained_orders = trained_orders.clone();
            Box::pin(async move {
                let orders = {
                    let mut conn = engine.db().reader().acquire().await?;
                    tailor_profiles::order_count(&mut conn).await?
                };
                if orders == 0 || orders == trained_orders.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let s = engine.train_model(Arc::new(|_| {})).await?;
                trained_orders.store(orders, Ordering::SeqCst);
                tracing::info!(version = s.version, seconds = s.seconds, "scheduled training done");
                Ok(())
            })
        }),
    }
}
