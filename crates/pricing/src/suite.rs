//! The simulator suite: families of scenarios built to break a pricing policy (priors that are
//! wrong, demand that is not constant-elasticity, trend and seasonality, low demand, a
//! competitor's move, thin margins, a volume floor), each run over several seeds and scored on
//! its own objective as a share of the oracle's. The families are documented in
//! docs/pricing-scenario.md.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::demand::{normal_quantile, Demand};
use crate::experiment::Objective;
use crate::simulate::{run, Scenario, Shock, SimGuardrails, SimProduct, POLICIES};

/// Products per generated family.
pub const FAMILY_PRODUCTS: usize = 40;
/// Periods (days) per generated family.
pub const FAMILY_PERIODS: u32 = 180;
/// Products in the default scenario.
pub const DEFAULT_PRODUCTS: usize = 120;

/// The built-in families, in table order.
pub const FAMILIES: [&str; 9] = [
    "default",
    "off-prior",
    "logit-wide",
    "kinked",
    "trend-seasonal",
    "low-demand",
    "competitor-shock",
    "thin-margin",
    "volume-floor",
];

/// A suite file: the families to run, each a built-in one or a scenario of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuiteFile {
    /// The families, in table order.
    pub families: Vec<FamilySpec>,
}

/// One family of a suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamilySpec {
    /// Its name in the table.
    pub name: String,
    /// A built-in family to generate (one of [`FAMILIES`]) …
    #[serde(default)]
    pub builtin: Option<String>,
    /// … or a scenario of its own (the same one for every seed; only the luck changes).
    #[serde(default)]
    pub scenario: Option<Scenario>,
}

impl SuiteFile {
    /// Checks the file; the error names the field (`families[1].scenario.periods`).
    pub fn check(&self) -> Result<(), FieldError> {
        if self.families.is_empty() || self.families.len() > 50 {
            return Err(FieldError::invalid("families", "give 1 to 50 families"));
        }
        for (i, f) in self.families.iter().enumerate() {
            if f.name.trim().is_empty() || f.name.chars().count() > 40 {
                return Err(FieldError::invalid(format!("families[{i}].name"), "a name of 1 to 40 characters"));
            }
            match (&f.builtin, &f.scenario) {
                (Some(b), None) if FAMILIES.contains(&b.as_str()) => {}
                (Some(_), None) => {
                    return Err(FieldError::invalid(
                        format!("families[{i}].builtin"),
                        format!("one of {}", FAMILIES.join(", ")),
                    ))
                }
                (None, Some(s)) => s
                    .check()
                    .map_err(|e| FieldError::invalid(format!("families[{i}].scenario.{}", e.field), e.message))?,
                _ => {
                    return Err(FieldError::invalid(
                        format!("families[{i}]"),
                        "give either builtin (a family's name) or scenario, not both",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The built-in suite.
    pub fn builtin() -> SuiteFile {
        SuiteFile {
            families: FAMILIES
                .iter()
                .map(|f| FamilySpec { name: (*f).to_string(), builtin: Some((*f).to_string()), scenario: None })
                .collect(),
        }
    }
}

/// One family's results over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyResult {
    /// The family.
    pub name: String,
    /// Its objective.
    pub objective: Objective,
    /// Each policy's share of the oracle's objective, averaged over the seeds (in [`POLICIES`] order).
    pub shares: Vec<f64>,
    /// Each policy's lowest share over the seeds.
    pub lowest: Vec<f64>,
    /// Tailor: products concluded, concluded on the list price, on the fallback model, restarts
    /// (summed over seeds).
    pub tailor: [u32; 4],
    /// Products per seed.
    pub products: usize,
}

/// Runs the suite over `seeds` (each family generated and played with each seed).
pub fn run_suite(suite: &SuiteFile, seeds: &[u64]) -> Vec<FamilyResult> {
    suite
        .families
        .iter()
        .map(|f| {
            let mut sums = vec![0.0; POLICIES.len()];
            let mut lowest = vec![f64::MAX; POLICIES.len()];
            let mut tailor = [0u32; 4];
            let mut objective = Objective::Revenue;
            let mut products = 0;
            for &seed in seeds {
                let scenario = match (&f.builtin, &f.scenario) {
                    (Some(b), _) => family(b, seed),
                    (None, Some(s)) => s.clone(),
                    (None, None) => family("default", seed),
                };
                objective = scenario.objective;
                products = scenario.products.len();
                let report = run(&scenario, seed);
                for (j, p) in report.policies.iter().enumerate() {
                    sums[j] += p.objective_share;
                    lowest[j] = lowest[j].min(p.objective_share);
                }
                tailor[0] += report.stopped.0 as u32;
                tailor[1] += report.back_to_list as u32;
                tailor[2] += report.fallback as u32;
                tailor[3] += report.restarts;
            }
            let n = seeds.len().max(1) as f64;
            FamilyResult {
                name: f.name.clone(),
                objective,
                shares: sums.iter().map(|s| s / n).collect(),
                lowest,
                tailor,
                products,
            }
        })
        .collect()
}

/// The scenario of built-in family `name` for `seed` (the default scenario for an unknown name).
pub fn family(name: &str, seed: u64) -> Scenario {
    if name == "default" {
        return Scenario::default_scenario(DEFAULT_PRODUCTS, seed);
    }
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ name.len() as u64);
    let mut scenario = Scenario {
        periods: FAMILY_PERIODS,
        price_points: vec![0.8, 0.9, 1.0, 1.1, 1.2],
        objective: Objective::Revenue,
        guardrails: Some(SimGuardrails { min_margin: Some(0.05), max_daily_change: Some(0.25) }),
        prior_elasticity: (-1.0, 0.6),
        min_exposure: 2,
        epsilon: 0.1,
        alpha: crate::robust::DEFAULT_ALPHA,
        volume_floor: crate::experiment::DEFAULT_VOLUME_FLOOR,
        products: Vec::new(),
    };
    let mut products = Vec::with_capacity(FAMILY_PRODUCTS);
    for i in 0..FAMILY_PRODUCTS {
        let reference_price = (3.0 * (0.6 * normal_quantile(rng.gen())).exp() * 100.0).round() / 100.0;
        let base_demand = 12.0 * (0.8 * normal_quantile(rng.gen())).exp();
        let typical = typical_elasticity(&mut rng);
        let mut p = SimProduct {
            id: format!("{name}-{:03}", i + 1),
            reference_price,
            unit_cost: reference_price * rng.gen_range(0.5..0.75),
            demand: Demand::ConstantElasticity { base_demand, elasticity: typical },
            prior_elasticity: None,
            trend: 0.0,
            weekly: 0.0,
            shock: None,
        };
        let half_logit = |rng: &mut StdRng, base_demand: f64, elasticity: f64| {
            if rng.gen_bool(0.5) {
                Demand::Logit { base_demand, elasticity, share: rng.gen_range(0.1..0.4) }
            } else {
                Demand::ConstantElasticity { base_demand, elasticity }
            }
        };
        match name {
            // The issue's case: elasticities far from the category prior, half logit, margin.
            "off-prior" => {
                let e = rng.gen_range(-4.0..-2.0);
                p.demand = half_logit(&mut rng, base_demand, e);
            }
            // Logit with a large share of its market: strongly curved over a wide price range.
            "logit-wide" => {
                p.demand = Demand::Logit {
                    base_demand,
                    elasticity: rng.gen_range(-3.0..-0.5),
                    share: rng.gen_range(0.4..0.8),
                };
            }
            // A competitor's price as a kink: little reaction below it, a cliff above it.
            "kinked" => {
                p.demand = Demand::Kinked {
                    base_demand,
                    below: rng.gen_range(-0.6..-0.2),
                    above: rng.gen_range(-6.0..-3.0),
                    kink: rng.gen_range(0.85..1.15),
                };
            }
            // Demand drifting over the horizon and a weekly cycle on top.
            "trend-seasonal" => {
                p.demand = if rng.gen_bool(0.3) {
                    Demand::Logit { base_demand, elasticity: typical, share: rng.gen_range(0.1..0.4) }
                } else {
                    Demand::ConstantElasticity { base_demand, elasticity: typical }
                };
                p.trend = rng.gen_range(-0.4..0.6);
                p.weekly = rng.gen_range(0.2..0.5);
            }
            // At most 2 units a day; a third of products off the prior.
            "low-demand" => {
                let base = rng.gen_range(0.2..2.0);
                let e = if rng.gen_bool(0.3) { rng.gen_range(-4.0..-2.0) } else { typical };
                p.demand = half_logit(&mut rng, base, e);
            }
            // Inelastic until a competitor undercuts mid-way: demand falls and turns elastic.
            "competitor-shock" => {
                p.demand = Demand::ConstantElasticity { base_demand, elasticity: rng.gen_range(-1.0..-0.3) };
                p.shock = Some(Shock {
                    at: rng.gen_range(60..120),
                    demand: Demand::ConstantElasticity {
                        base_demand: base_demand * rng.gen_range(0.6..0.8),
                        elasticity: rng.gen_range(-3.5..-2.0),
                    },
                });
            }
            // Margin on costs of 80–90% of the price: a price cut can wipe the margin out.
            "thin-margin" => {
                p.unit_cost = reference_price * rng.gen_range(0.8..0.9);
                let e = rng.gen_range(-4.0..-1.0);
                p.demand = half_logit(&mut rng, base_demand, e);
            }
            // Margin, but units may not fall below 90% of the list price's.
            "volume-floor" => {
                p.demand = half_logit(&mut rng, base_demand, typical);
            }
            _ => return Scenario::default_scenario(DEFAULT_PRODUCTS, seed),
        }
        products.push(p);
    }
    scenario.objective = match name {
        "off-prior" | "thin-margin" => Objective::Margin,
        "volume-floor" => Objective::MarginWithVolumeFloor,
        _ => Objective::Revenue,
    };
    scenario.products = products;
    scenario
}

/// An elasticity drawn like the default scenario's (The Complete Journey's spread).
fn typical_elasticity(rng: &mut StdRng) -> f64 {
    let q = crate::simulate::DEFAULT_ELASTICITY_QUANTILES;
    let u: f64 = rng.gen();
    let j = q.windows(2).position(|w| u <= w[1].0).unwrap_or(q.len() - 2);
    let (a, b) = (q[j], q[j + 1]);
    a.1 + (b.1 - a.1) * (u - a.0) / (b.0 - a.0)
}

/// Parses a seed list such as `1-5`, `3` or `1,4,9` (at most 100 seeds).
pub fn parse_seeds(text: &str) -> Result<Vec<u64>, FieldError> {
    let bad = || FieldError::invalid("seeds", "a range such as 1-5, or seeds separated by commas, at most 100");
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            if b < a || b - a >= 100 {
                return Err(bad());
            }
            seeds.extend(a..=b);
        } else {
            seeds.push(part.parse().map_err(|_| bad())?);
        }
        if seeds.len() > 100 {
            return Err(bad());
        }
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_family_is_a_valid_scenario() {
        for f in FAMILIES {
            family(f, 1).check().unwrap_or_else(|e| panic!("{f}: {} {}", e.field, e.message));
        }
        assert!(SuiteFile::builtin().check().is_ok());
    }

    #[test]
    fn a_wrong_suite_names_the_field() {
        let field = |json: &str| {
            let s: SuiteFile = serde_json::from_str(json).expect("parses");
            s.check().unwrap_err().field
        };
        assert_eq!(field(r#"{"families": []}"#), "families");
        assert_eq!(field(r#"{"families": [{"name": "a", "builtin": "nope"}]}"#), "families[0].builtin");
        assert_eq!(field(r#"{"families": [{"name": "a"}]}"#), "families[0]");
        let mut s = family("kinked", 1);
        s.periods = 0;
        let suite = SuiteFile {
            families: vec![
                FamilySpec { name: "ok".into(), builtin: Some("kinked".into()), scenario: None },
                FamilySpec { name: "mine".into(), builtin: None, scenario: Some(s) },
            ],
        };
        assert_eq!(suite.check().unwrap_err().field, "families[1].scenario.periods");
        let unknown = serde_json::from_str::<SuiteFile>(r#"{"families": [{"name": "a", "bultin": "kinked"}]}"#);
        assert!(unknown.unwrap_err().to_string().contains("bultin"));
    }

    /// Prints the suite's table (a development aid: `cargo test -p tailor-pricing --release
    /// suite_table -- --ignored --nocapture`; `tailor pricing simulate --suite` is the tool).
    #[test]
    #[ignore]
    fn suite_table() {
        let seeds: Vec<u64> = std::env::var("SEEDS").map_or(vec![1, 2, 3, 4, 5], |s| parse_seeds(&s).unwrap());
        let only = std::env::var("FAMILY").ok();
        let mut suite = SuiteFile::builtin();
        suite.families.retain(|f| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == f.name)));
        for r in run_suite(&suite, &seeds) {
            let cells: Vec<String> =
                r.shares.iter().zip(&r.lowest).map(|(m, l)| format!("{:5.1} ({:5.1})", 100.0 * m, 100.0 * l)).collect();
            println!("{:<17} {}  {:?}", r.name, cells[1..].join("  "), r.tailor);
        }
    }

    /// Per-product outcomes of one family (a development aid: `FAMILY=kinked SEEDS=1 cargo test
    /// -p tailor-pricing --release suite_products -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn suite_products() {
        let seeds: Vec<u64> = std::env::var("SEEDS").map_or(vec![1], |s| parse_seeds(&s).unwrap());
        let name = std::env::var("FAMILY").unwrap_or_else(|_| "kinked".into());
        let (mut gap_t, mut gap_e, mut total) = (0.0, 0.0, 0.0);
        for seed in seeds {
            let scenario = family(&name, seed);
            for i in 0..scenario.products.len() {
                let (s, t) = crate::simulate::run_product(&scenario, seed, i);
                let o = s[0][2];
                let (periods, units) = t.totals();
                let rates: Vec<String> =
                    periods.iter().zip(units).map(|(n, u)| format!("{:>3.0}:{:>5.1}", n, u / n.max(1e-9))).collect();
                let p = &scenario.products[i];
                let curve: Vec<String> = scenario
                    .price_points
                    .iter()
                    .map(|m| {
                        let x = m * p.reference_price;
                        let l = p.expected(x, scenario.periods / 2, scenario.periods);
                        format!("{:5.1}", l * scenario.objective.unit_value(x, p.unit_cost))
                    })
                    .collect();
                let ratio: Vec<String> = scenario
                    .price_points
                    .iter()
                    .map(|m| {
                        let l = |x: f64| p.expected(x * p.reference_price, scenario.periods / 2, scenario.periods);
                        format!("{:.3}", l(*m) / l(1.0))
                    })
                    .collect();
                println!("    units/list {}", ratio.join(" "));
                println!(
                    "s{seed} {:>3} static {:5.1} eps {:5.1} tailor {:5.1} | {:?} {:?} stop {:?} | {} | true {}",
                    i,
                    100.0 * s[1][2] / o,
                    100.0 * s[2][2] / o,
                    100.0 * s[4][2] / o,
                    t.model,
                    t.rule,
                    t.stopped,
                    rates.join(" "),
                    curve.join(" ")
                );
                gap_t += o - s[4][2];
                gap_e += o - s[2][2];
                total += o;
            }
        }
        println!("tailor {:.2}% eps {:.2}%", 100.0 * (1.0 - gap_t / total), 100.0 * (1.0 - gap_e / total));
    }

    #[test]
    fn seeds_parse_as_ranges_and_lists() {
        assert_eq!(parse_seeds("1-5").unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(parse_seeds("3, 9").unwrap(), vec![3, 9]);
        assert_eq!(parse_seeds("5-1").unwrap_err().field, "seeds");
        assert_eq!(parse_seeds("x").unwrap_err().field, "seeds");
    }
}
