//! Live price experiments: a product's candidate prices, each inside its guardrails, tried in
//! periods chosen by Thompson sampling on the units sold at each price (read from orders), with
//! a minimum exposure per price and a stopping rule; when it stops, the best price stays. Every
//! price it sets goes through the price book, so each is a recorded decision with its reason.
//!
//! The experiment's state, checks and choices are `tailor_pricing::live`'s and its table is
//! `tailor_pricing::store`'s; this layer reads the shelf price and the units sold (profiles)
//! and puts each chosen price through [`Engine::propose_list_price`].

use std::time::Duration;

use tailor_core::time::now_millis;
use tailor_core::FieldError;
use tailor_pricing::decision::ListPriceInput;
use tailor_pricing::live::{check_replaceable, CategoryElasticity, Experiment, ExperimentInput, Prior};
use tailor_pricing::quote::PriceQuote;
use tailor_pricing::store;

use crate::{Engine, EngineError};

/// How often the server moves running experiments on.
const STEP_EVERY: Duration = Duration::from_secs(900);

impl Engine {
    /// Starts a price experiment on `sku` (replacing a stopped one); the first price goes on
    /// the shelf at once.
    pub async fn start_price_experiment(&self, sku: &str, input: &ExperimentInput) -> Result<Experiment, EngineError> {
        self.start_price_experiment_at(sku, input, now_millis()).await
    }

    /// Starts an experiment as of `now` (replays and tests move time).
    pub async fn start_price_experiment_at(
        &self,
        sku: &str,
        input: &ExperimentInput,
        now: i64,
    ) -> Result<Experiment, EngineError> {
        let rails = self.guardrails(sku).await?;
        input.check(sku, &rails).map_err(EngineError::Invalid)?;
        let reference_cents = self.shelf_quote(sku).await?.list_cents;
        check_replaceable(self.price_experiment(sku).await.ok().as_ref())?;
        let prior = self.elasticity_prior(sku).await?;
        let mut e = Experiment::new(sku, input, reference_cents, rails.unit_cost_cents, prior, now);
        self.choose_next(&mut e, reference_cents, now).await?;
        self.save_experiment(&e, now).await?;
        Ok(e)
    }

    /// Stores `category`'s elasticity estimate (e.g. from `tailor pricing elasticity`): new
    /// experiments on its products start from it.
    pub async fn set_category_elasticity(
        &self,
        category: &str,
        estimate: &CategoryElasticity,
    ) -> Result<CategoryElasticity, EngineError> {
        if category.trim().is_empty() || category.chars().count() > 200 {
            return Err(EngineError::Invalid(FieldError::invalid(
                "category",
                "a category name of 1 to 200 characters",
            )));
        }
        estimate.check().map_err(EngineError::Invalid)?;
        let mut conn = self.db().writer().acquire().await?;
        store::set_category_elasticity(&mut conn, category, estimate, now_millis()).await?;
        Ok(estimate.clone())
    }

    /// `category`'s stored elasticity estimate.
    pub async fn category_elasticity(&self, category: &str) -> Result<CategoryElasticity, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        store::category_elasticity(&mut conn, category)
            .await?
            .ok_or_else(|| EngineError::not_found("elasticity estimate for category", category))
    }

    /// The prior a new experiment on `sku` starts from: its category's stored estimate, or a
    /// weak prior.
    async fn elasticity_prior(&self, sku: &str) -> Result<Prior, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let product = crate::pricing::product_of(&mut conn, sku).await?;
        let Some(category) = product.category.filter(|c| !c.is_empty()) else { return Ok(Prior::weak()) };
        Ok(match store::category_elasticity(&mut conn, &category).await? {
            Some(estimate) => estimate.prior(&category),
            None => Prior::weak(),
        })
    }

    /// A product's experiment.
    pub async fn price_experiment(&self, sku: &str) -> Result<Experiment, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::experiment_of(&mut conn, sku).await?)
    }

    /// Stops an experiment, leaving the price where it is.
    pub async fn stop_price_experiment(&self, sku: &str) -> Result<Experiment, EngineError> {
        let mut e = self.price_experiment(sku).await?;
        e.stop();
        self.save_experiment(&e, now_millis()).await?;
        Ok(e)
    }

    /// Moves an experiment on at `now` when its period is over: counts what the current price
    /// sold, updates the belief, applies the stopping rule and puts the next price on the shelf.
    pub async fn step_price_experiment_at(&self, sku: &str, now: i64) -> Result<Experiment, EngineError> {
        let mut e = self.price_experiment(sku).await?;
        if !e.is_due(now) {
            return Ok(e);
        }
        // Sales count for a price only if it was the price on the shelf.
        let shelf = self.shelf_quote(&e.sku).await?.list_cents;
        if shelf != e.current_cents() {
            e.pause_off_shelf(shelf);
            self.save_experiment(&e, now).await?;
            return Ok(e);
        }
        let mut conn = self.db().reader().acquire().await?;
        let units = tailor_profiles::units_sold(&mut conn, sku, e.current_since, now).await?;
        drop(conn);
        e.record_period(units, now);
        let previous = e.current_cents();
        self.choose_next(&mut e, previous, now).await?;
        self.save_experiment(&e, now).await?;
        Ok(e)
    }

    /// Steps every running or concluded experiment whose period is over (a concluded one keeps
    /// watching its sales and starts over when demand shifts).
    pub async fn step_price_experiments(&self, now: i64) -> Result<usize, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let skus = store::watched_experiments(&mut conn).await?;
        drop(conn);
        for sku in &skus {
            if let Err(e) = self.step_price_experiment_at(sku, now).await {
                tracing::warn!(sku = %sku, error = %e, "stepping a price experiment failed; the next check retries it");
            }
        }
        Ok(skus.len())
    }

    /// Chooses the next price under the product's guardrails and puts it on the shelf through
    /// the price book; the experiment pauses when the guardrails move it.
    async fn choose_next(&self, e: &mut Experiment, previous_cents: i64, now: i64) -> Result<(), EngineError> {
        let rails = self.guardrails(&e.sku).await?;
        let choice = e.choose(&rails, previous_cents, now);
        let input = ListPriceInput {
            zone: String::new(),
            currency: self.shelf_quote(&e.sku).await?.currency,
            cents: choice.cents,
            valid_from: Some(now),
            valid_to: None,
            reason: Some(choice.reason),
        };
        let decision = self.propose_list_price(&e.sku, &input).await?;
        e.settle(decision.cents);
        Ok(())
    }

    /// The product's price on the web shelf for one unit, nobody in particular.
    async fn shelf_quote(&self, sku: &str) -> Result<PriceQuote, EngineError> {
        let mut quotes = self.quote_prices(&[sku.to_string()], "web", "", None, 1).await?;
        quotes.pop().ok_or_else(|| EngineError::not_found("product", sku))
    }

    async fn save_experiment(&self, e: &Experiment, now: i64) -> Result<(), EngineError> {
        let mut conn = self.db().writer().acquire().await?;
        Ok(store::save_experiment(&mut conn, e, now).await?)
    }
}

/// Moves running experiments on every 15 minutes until the engine closes (periods last hours,
/// so the first check can wait a quarter of an hour after start).
pub(crate) fn steps_job() -> crate::supervisor::Job {
    crate::supervisor::Job {
        name: "price_experiments",
        first_after: STEP_EVERY,
        every: STEP_EVERY,
        wake: None,
        round: std::sync::Arc::new(|engine: Engine| {
            Box::pin(async move { engine.step_price_experiments(now_millis()).await.map(|_| ()) })
        }),
    }
}
