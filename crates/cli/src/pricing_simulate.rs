//! `tailor pricing simulate`: policies against known demand curves (docs/pricing-scenario.md).

use std::path::Path;

use anyhow::{Context, Result};
use tailor_pricing::simulate::{run as simulate, Scenario};

/// Products in the default scenario.
const DEFAULT_PRODUCTS: usize = 120;

/// Runs the scenario (or the default one) and prints each policy's share of the oracle; with
/// `export`, writes the default scenario there instead, as a starting point for your own.
pub fn run(scenario: Option<&Path>, seed: u64, export: Option<&Path>) -> Result<()> {
    if let Some(path) = export {
        let text = serde_json::to_string_pretty(&Scenario::default_scenario(DEFAULT_PRODUCTS, seed))?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("Wrote the default scenario to {}", path.display());
        return Ok(());
    }
    let scenario = match scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let s: Scenario = serde_json::from_str(&text).with_context(|| {
                format!("{} is not a scenario (see docs/pricing-scenario.md for the format)", path.display())
            })?;
            s
        }
        None => Scenario::default_scenario(DEFAULT_PRODUCTS, seed),
    };
    if let Err(e) = scenario.check() {
        anyhow::bail!("the scenario's {} is wrong: {}", e.field, e.message);
    }
    println!(
        "{} products, {} periods, {} candidate prices, objective {:?}, seed {seed}",
        scenario.products.len(),
        scenario.periods,
        scenario.price_points.len(),
        scenario.objective
    );
    let started = std::time::Instant::now();
    let report = simulate(&scenario, seed);
    println!("{:<20} {:>14} {:>14} {:>10} {:>10}", "policy", "revenue", "margin", "rev/oracle", "mgn/oracle");
    for p in &report.policies {
        println!(
            "{:<20} {:>14.2} {:>14.2} {:>9.1}% {:>9.1}%",
            p.policy,
            p.revenue,
            p.margin,
            100.0 * p.revenue_share,
            100.0 * p.margin_share
        );
    }
    let (stopped, median) = report.stopped;
    println!(
        "Tailor's experiments stopped for {stopped} of {} products (median period {}); simulated in {:.1} s",
        scenario.products.len(),
        median.map_or("-".to_string(), |m| m.to_string()),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
