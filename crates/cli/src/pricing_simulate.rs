//! `tailor pricing simulate`: policies against known demand curves (docs/pricing-scenario.md).

use std::path::Path;

use anyhow::{Context, Result};
use tailor_pricing::simulate::{run as simulate, Scenario, POLICIES};
use tailor_pricing::suite::{parse_seeds, run_suite as simulate_suite, SuiteFile, DEFAULT_PRODUCTS};

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
    println!(
        "{:<26} {:>14} {:>14} {:>10} {:>10} {:>10}",
        "policy", "revenue", "margin", "rev/oracle", "mgn/oracle", "objective"
    );
    for p in &report.policies {
        println!(
            "{:<26} {:>14.2} {:>14.2} {:>9.1}% {:>9.1}% {:>9.1}%",
            p.policy,
            p.revenue,
            p.margin,
            100.0 * p.revenue_share,
            100.0 * p.margin_share,
            100.0 * p.objective_share
        );
    }
    let (stopped, median) = report.stopped;
    println!(
        "Tailor concluded for {stopped} of {} products (median period {}), {} of them on the list price; \
         {} went to the per-price fallback; {} restarts after a shift in demand; simulated in {:.1} s",
        scenario.products.len(),
        median.map_or("-".to_string(), |m| m.to_string()),
        report.back_to_list,
        report.fallback,
        report.restarts,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs the suite (built-in, or from `file`) over `seeds` and prints one table: each family ×
/// each policy as a share of the oracle on the family's objective, and the worst case per policy.
pub fn run_suite(file: Option<&Path>, seeds: &str) -> Result<()> {
    let seeds = parse_seeds(seeds).map_err(|e| anyhow::anyhow!("--{} is wrong: {}", e.field, e.message))?;
    let suite = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str::<SuiteFile>(&text).with_context(|| {
                format!("{} is not a suite (see docs/pricing-scenario.md for the format)", path.display())
            })?
        }
        None => SuiteFile::builtin(),
    };
    if let Err(e) = suite.check() {
        anyhow::bail!("the suite's {} is wrong: {}", e.field, e.message);
    }
    let started = std::time::Instant::now();
    let results = simulate_suite(&suite, &seeds);
    let seed_list = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    println!("Share of the oracle on each family's objective, mean over seeds {seed_list} (lowest seed in brackets)");
    print!("{:<18} {:<24}", "family", "objective");
    for name in &POLICIES[1..] {
        print!(" {name:>24}");
    }
    println!("  Tailor: concluded/on list/fallback/restarts");
    let policies = POLICIES.len();
    let mut worst = vec![(f64::MAX, String::new()); policies];
    let mut mean = vec![0.0; policies];
    for r in &results {
        print!("{:<18} {:<24}", r.name, format!("{:?} ({} products)", r.objective, r.products));
        for j in 1..policies {
            print!(" {:>24}", format!("{:.1}% ({:.1}%)", 100.0 * r.shares[j], 100.0 * r.lowest[j]));
            mean[j] += r.shares[j] / results.len() as f64;
            if r.shares[j] < worst[j].0 {
                worst[j] = (r.shares[j], r.name.clone());
            }
        }
        let [c, l, f, s] = r.tailor;
        println!("  {c}/{l}/{f}/{s}");
    }
    print!("{:<18} {:<24}", "mean of families", "");
    for m in &mean[1..] {
        print!(" {:>24}", format!("{:.1}%", 100.0 * m));
    }
    println!();
    print!("{:<18} {:<24}", "worst family", "");
    for (share, name) in &worst[1..] {
        print!(" {:>24}", format!("{:.1}% {name}", 100.0 * share));
    }
    println!();
    let tailor = policies - 1;
    let beats = results.iter().all(|r| r.shares[tailor] >= r.shares[1] && r.shares[tailor] >= r.shares[2]);
    println!(
        "Tailor ≥ static list price and ≥ ε-greedy in every family: {}; mean {:.1}% (≥ 95%), worst {:.1}% (≥ 90%); \
         simulated in {:.1} s",
        if beats { "yes" } else { "no" },
        100.0 * mean[tailor],
        100.0 * worst[tailor].0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
