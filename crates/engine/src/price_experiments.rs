//! Live price experiments: a product's candidate prices, each inside its guardrails, tried in
//! periods chosen by Thompson sampling on the units sold at each price (read from orders), with
//! a minimum exposure per price and a stopping rule; when it stops, the best price stays. Every
//! price it sets goes through the price book, so each is a recorded decision with its reason.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tailor_core::time::now_millis;
use tailor_core::FieldError;
use tailor_pricing::experiment::{Objective, PricePolicy, Thompson};
use tailor_store::Migration;

use crate::pricing::ListPriceInput;
use crate::{Engine, EngineError};

/// The experiments table.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration::portable(
    "pricing/002_experiments",
    "CREATE TABLE price_experiments (sku TEXT PRIMARY KEY, body TEXT NOT NULL, status TEXT NOT NULL, updated_at BIGINT NOT NULL)",
)];

/// What the elasticity is believed to be before any sale (The Complete Journey's category means).
const PRIOR_ELASTICITY: (f64, f64) = (-1.0, 0.6);
/// How often the server moves running experiments on.
const STEP_EVERY: Duration = Duration::from_secs(900);

/// A new experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentInput {
    /// Candidate prices in cents (2 to 10, each within the product's guardrails).
    pub prices_cents: Vec<i64>,
    /// Revenue or margin (margin needs the guardrails' unit cost).
    #[serde(default)]
    pub objective: Objective,
    /// Periods each price is tried before sampling (default 2).
    #[serde(default)]
    pub min_exposure: Option<u32>,
    /// Hours a price holds before the next choice (default 24).
    #[serde(default)]
    pub period_hours: Option<u32>,
}

/// One candidate price and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Arm {
    /// The price, in cents.
    pub cents: i64,
    /// Periods it was on the shelf.
    pub periods: f64,
    /// Units sold at it.
    pub units: f64,
    /// Expected objective per period at the posterior mode.
    pub expected_value: f64,
}

/// A price experiment and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    /// The product.
    pub sku: String,
    /// running, concluded (the stopping rule kept the best price), paused (the price could not be
    /// held, see `note`) or stopped (by hand).
    pub status: String,
    /// The objective.
    pub objective: Objective,
    /// The candidates.
    pub arms: Vec<Arm>,
    /// The price on the shelf now (an index into `arms`).
    pub current: usize,
    /// Since when.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub current_since: i64,
    /// Hours a price holds.
    pub period_hours: u32,
    /// Periods each price is tried first.
    pub min_exposure: u32,
    /// The list price when it started (the demand curve's anchor), in cents.
    pub reference_cents: i64,
    /// Unit cost for the margin objective, in cents.
    pub unit_cost_cents: Option<i64>,
    /// The elasticity the experiment believes now: mean and sd.
    pub elasticity: Option<(f64, f64)>,
    /// Set when it stopped: (period, winning arm).
    pub stopped: Option<(u32, usize)>,
    /// When it started.
    #[serde(with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    /// Why it paused, when it did.
    #[serde(default)]
    pub note: Option<String>,
}

impl Experiment {
    fn policy(&self) -> Thompson {
        let prices: Vec<f64> = self.arms.iter().map(|a| a.cents as f64 / 100.0).collect();
        let cost = self.unit_cost_cents.unwrap_or(0) as f64 / 100.0;
        let value = prices
            .iter()
            .map(|p| match self.objective {
                Objective::Revenue => *p,
                Objective::Margin => p - cost,
            })
            .collect();
        let periods: Vec<f64> = self.arms.iter().map(|a| a.periods).collect();
        let units: Vec<f64> = self.arms.iter().map(|a| a.units).collect();
        Thompson::resume(
            &prices,
            self.reference_cents as f64 / 100.0,
            value,
            PRIOR_ELASTICITY,
            self.min_exposure,
            &periods,
            &units,
            self.stopped,
        )
    }
}

fn seed(sku: &str, step: u32) -> u64 {
    tailor_store::lock_key(sku) as u64 ^ u64::from(step)
}

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
        let bad = |field: String, why: String| Err(EngineError::Invalid(FieldError::invalid(field, why)));
        let n = input.prices_cents.len();
        if !(2..=10).contains(&n) {
            return bad("pricesCents".into(), "give 2 to 10 candidate prices in cents".into());
        }
        for (i, c) in input.prices_cents.iter().enumerate() {
            if *c <= 0 || input.prices_cents[..i].contains(c) {
                return bad(format!("pricesCents[{i}]"), "distinct prices above 0 cents".into());
            }
        }
        let hours = input.period_hours.unwrap_or(24);
        if !(1..=24 * 28).contains(&hours) {
            return bad("periodHours".into(), "between 1 and 672 hours".into());
        }
        let min_exposure = input.min_exposure.unwrap_or(2);
        if min_exposure > 30 {
            return bad("minExposure".into(), "at most 30 periods".into());
        }
        let rails = self.guardrails(sku).await?;
        if rails.frozen {
            return bad("pricesCents".into(), format!("{sku} is on the freeze list: its price cannot move"));
        }
        for (i, c) in input.prices_cents.iter().enumerate() {
            let guarded = rails.apply(*c, None);
            if guarded.cents != *c {
                let rule = guarded.clamps.first().map(|c| format!("{:?}", c.rule)).unwrap_or_default();
                return bad(
                    format!("pricesCents[{i}]"),
                    format!("{c} cents is outside the guardrails ({rule} would make it {})", guarded.cents),
                );
            }
        }
        if input.objective == Objective::Margin && rails.unit_cost_cents.is_none() {
            return bad(
                "objective".into(),
                format!("margin needs a unit cost: set unitCostCents in {sku}'s guardrails"),
            );
        }
        let quote = self.quote_prices(&[sku.to_string()], "web", "", None, 1).await?;
        let reference_cents = quote.first().map(|q| q.list_cents).unwrap_or(input.prices_cents[0]).max(1);
        let existing = self.price_experiment(sku).await;
        if let Ok(e) = existing {
            if e.status == "running" {
                return Err(EngineError::Conflict(format!(
                    "{sku} already has a running experiment; stop it first (DELETE /v1/pricing/experiments/{sku})"
                )));
            }
        }
        let mut e = Experiment {
            sku: sku.to_string(),
            status: "running".into(),
            objective: input.objective,
            arms: input
                .prices_cents
                .iter()
                .map(|c| Arm { cents: *c, periods: 0.0, units: 0.0, expected_value: 0.0 })
                .collect(),
            current: 0,
            current_since: now,
            period_hours: hours,
            min_exposure,
            reference_cents,
            unit_cost_cents: rails.unit_cost_cents,
            elasticity: None,
            stopped: None,
            started_at: now,
            note: None,
        };
        self.choose_next(&mut e, reference_cents, now).await?;
        self.save_experiment(&e, now).await?;
        Ok(e)
    }

    /// A product's experiment.
    pub async fn price_experiment(&self, sku: &str) -> Result<Experiment, EngineError> {
        let row = sqlx::query("SELECT body FROM price_experiments WHERE sku = $1")
            .bind(sku.to_string())
            .fetch_optional(self.db().reader())
            .await?
            .ok_or_else(|| {
                EngineError::Invalid(FieldError::unknown("sku", format!("no price experiment on '{sku}'")))
            })?;
        serde_json::from_str(&row.get::<String, _>(0)).map_err(|e| EngineError::Io(e.to_string()))
    }

    /// Stops an experiment, leaving the price where it is.
    pub async fn stop_price_experiment(&self, sku: &str) -> Result<Experiment, EngineError> {
        let mut e = self.price_experiment(sku).await?;
        e.status = "stopped".into();
        self.save_experiment(&e, now_millis()).await?;
        Ok(e)
    }

    /// Moves an experiment on at `now` when its period is over: counts what the current price
    /// sold, updates the belief, applies the stopping rule and puts the next price on the shelf.
    pub async fn step_price_experiment_at(&self, sku: &str, now: i64) -> Result<Experiment, EngineError> {
        let mut e = self.price_experiment(sku).await?;
        let period_ms = i64::from(e.period_hours) * 3_600_000;
        if e.status != "running" || now < e.current_since + period_ms {
            return Ok(e);
        }
        // Sales count for a price only if it was the price on the shelf.
        let shelf = self.quote_prices(std::slice::from_ref(&e.sku), "web", "", None, 1).await?.remove(0).list_cents;
        if shelf != e.arms[e.current].cents {
            e.status = "paused".into();
            e.note = Some(format!(
                "the list price was changed outside the experiment ({shelf} cents, not {}); start a new one",
                e.arms[e.current].cents
            ));
            self.save_experiment(&e, now).await?;
            return Ok(e);
        }
        let units: Option<i64> = sqlx::query(
            "SELECT CAST(SUM(l.quantity) AS BIGINT) FROM order_lines l JOIN orders o ON o.order_id = l.order_id \
             WHERE l.product_id = $1 AND o.ts >= $2 AND o.ts < $3",
        )
        .bind(sku.to_string())
        .bind(e.current_since)
        .bind(now)
        .fetch_one(self.db().reader())
        .await?
        .get(0);
        let exposure = (now - e.current_since) as f64 / period_ms as f64;
        let arm = &mut e.arms[e.current];
        arm.periods += exposure;
        arm.units += units.unwrap_or(0) as f64;
        let previous = e.arms[e.current].cents;
        self.choose_next(&mut e, previous, now).await?;
        self.save_experiment(&e, now).await?;
        Ok(e)
    }

    /// Steps every running experiment whose period is over.
    pub async fn step_price_experiments(&self, now: i64) -> Result<usize, EngineError> {
        let skus: Vec<String> = sqlx::query("SELECT sku FROM price_experiments WHERE status = 'running'")
            .fetch_all(self.db().reader())
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for sku in &skus {
            if let Err(e) = self.step_price_experiment_at(sku, now).await {
                tracing::warn!(sku = %sku, error = %e, "stepping a price experiment failed; the next check retries it");
            }
        }
        Ok(skus.len())
    }

    async fn choose_next(&self, e: &mut Experiment, previous_cents: i64, now: i64) -> Result<(), EngineError> {
        let rails = self.guardrails(&e.sku).await?;
        let allowed: Vec<usize> = (0..e.arms.len())
            .filter(|&k| rails.apply(e.arms[k].cents, Some(previous_cents)).cents == e.arms[k].cents)
            .collect();
        let allowed = if allowed.is_empty() { vec![e.current] } else { allowed };
        let mut policy = e.policy();
        let step = e.arms.iter().map(|a| a.periods).sum::<f64>().round() as u32;
        let was_stopped = e.stopped.is_some();
        let k = policy.choose(&allowed, &mut StdRng::seed_from_u64(seed(&e.sku, step)));
        e.stopped = policy.stopped;
        e.elasticity = e.arms.iter().any(|a| a.periods > 0.0).then(|| policy.elasticity());
        for (arm, v) in e.arms.iter_mut().zip(policy.expected_values()) {
            arm.expected_value = v;
        }
        let reason = match e.stopped {
            Some((_, best)) if !was_stopped => {
                format!("price experiment concluded: {} cents earns most", e.arms[best].cents)
            }
            Some(_) => "price experiment concluded: keeping the best price".to_string(),
            None => {
                format!("price experiment: trying {} cents (candidate {} of {})", e.arms[k].cents, k + 1, e.arms.len())
            }
        };
        e.current = k;
        e.current_since = now;
        let currency = self.quote_prices(std::slice::from_ref(&e.sku), "web", "", None, 1).await?.remove(0).currency;
        let input = ListPriceInput {
            zone: String::new(),
            currency,
            cents: e.arms[k].cents,
            valid_from: Some(now),
            valid_to: None,
            reason: Some(reason),
        };
        let decision = self.propose_list_price(&e.sku, &input).await?;
        if decision.cents != e.arms[k].cents {
            // The guardrails moved it (they changed since the start): this price cannot be tried.
            e.status = "paused".into();
            e.note = Some(format!(
                "the guardrails hold {} cents at {}; start a new experiment",
                e.arms[k].cents, decision.cents
            ));
        } else if e.stopped.is_some() {
            e.status = "concluded".into();
        }
        Ok(())
    }

    async fn save_experiment(&self, e: &Experiment, now: i64) -> Result<(), EngineError> {
        sqlx::query(
            "INSERT INTO price_experiments (sku, body, status, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sku) DO UPDATE SET body = excluded.body, status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(e.sku.clone())
        .bind(serde_json::to_string(e).unwrap_or_default())
        .bind(e.status.clone())
        .bind(now)
        .execute(self.db().writer())
        .await?;
        Ok(())
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
