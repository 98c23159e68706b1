use rand::SeedableRng;

use super::*;
use crate::demand::{poisson_quantile, Demand};

fn policy(prior: (f64, f64)) -> Robust {
    let prices = [1.6, 1.8, 2.0, 2.2, 2.4];
    let settings = Settings { prior, alpha: DEFAULT_ALPHA, min_exposure: 2, volume_floor: None };
    Robust::new(&prices, 2.0, 2, prices.to_vec(), settings)
}

fn play(p: &mut Robust, demand: impl Fn(f64) -> f64, periods: u32, seed: u64) -> f64 {
    let prices = [1.6, 1.8, 2.0, 2.2, 2.4];
    let (mut rng, mut luck) = (StdRng::seed_from_u64(seed), StdRng::seed_from_u64(seed + 100));
    let all: Vec<usize> = (0..5).collect();
    let mut earned = 0.0;
    for _ in 0..periods {
        let k = p.choose_arm(&all, &mut rng);
        let units = poisson_quantile(demand(prices[k]), luck.gen()) as f64;
        p.observe(k, units);
        earned += units * prices[k];
    }
    earned
}

#[test]
fn the_list_price_goes_first_and_explanations_name_the_rule_and_model() {
    let mut p = policy((-1.0, 0.6));
    let mut rng = StdRng::seed_from_u64(1);
    let all: Vec<usize> = (0..5).collect();
    assert_eq!(p.choose_arm(&all, &mut rng), 2);
    assert_eq!(p.rule, Rule::Exposure);
    let text = p.explain("200 cents");
    assert!(text.starts_with("price experiment: trying 200 cents (minimum exposure)"), "{text}");
    assert!(text.contains("constant-elasticity model with the category's prior"), "{text}");
}

#[test]
fn a_kinked_demand_fails_the_check_and_the_fallback_says_so() {
    let mut p = policy((-1.0, 0.6));
    let kinked =
        |price: f64| if price <= 2.0 { 40.0 * (price / 2.0).powf(-0.2) } else { 40.0 * (price / 2.0).powf(-9.0) };
    play(&mut p, kinked, 120, 3);
    assert_eq!(p.model, Model::PerPrice, "{:?}", p.note);
    assert!(p.explain("200 cents").contains("failed its check"), "{}", p.explain("200 cents"));
    let (periods, _) = p.totals();
    let value = |k: usize| [1.6, 1.8, 2.0, 2.2, 2.4][k] * kinked([1.6, 1.8, 2.0, 2.2, 2.4][k]);
    let last = p.best(&p.mean_demand(), &[0, 1, 2, 3, 4]);
    assert!(value(last) >= value(2), "settles no worse than the list price: {last} after {periods:?}");
}

#[test]
fn a_wrong_prior_is_widened_and_the_experiment_never_falls_below_the_safety_line() {
    for seed in 1..6 {
        let mut p = policy((-0.3, 0.1));
        let truth = Demand::ConstantElasticity { base_demand: 20.0, elasticity: -3.0 };
        let earned = play(&mut p, |x| truth.expected(x, 2.0), 150, seed);
        let list = 150.0 * 2.0 * truth.expected(2.0, 2.0);
        assert!(earned >= 0.95 * list, "seed {seed}: earned {earned:.0} against the list price's {list:.0}");
        assert_ne!(p.model, Model::ConstantElasticity, "seed {seed}: the prior −0.3 ± 0.1 cannot fit −3");
    }
}

#[test]
fn a_volume_floor_keeps_the_prices_that_sell_enough() {
    let prices = [1.6, 1.8, 2.0, 2.2, 2.4];
    let cost = 1.0;
    let settings = Settings { prior: (-1.0, 0.6), alpha: DEFAULT_ALPHA, min_exposure: 2, volume_floor: Some(0.9) };
    let mut p = Robust::new(&prices, 2.0, 2, prices.iter().map(|x| x - cost).collect(), settings);
    // Elasticity −1.5: +10% sells 87% of the list price's units, below the floor.
    let truth = Demand::ConstantElasticity { base_demand: 30.0, elasticity: -1.5 };
    play(&mut p, |x| truth.expected(x, 2.0), 200, 9);
    let last = p.best(&p.mean_demand(), &[0, 1, 2, 3, 4]);
    let settled = p.stopped.map_or(last, |(_, k)| k);
    assert!(prices[settled] <= 2.0, "ends at {} which breaks the floor", prices[settled]);
}

#[test]
fn the_state_survives_storage() {
    let mut p = policy((-1.0, 0.6));
    play(&mut p, |x| 10.0 * (x / 2.0).powf(-1.5), 30, 4);
    let back: Robust = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!((back.totals(), back.stopped, back.model, back.period), (p.totals(), p.stopped, p.model, p.period));
    assert_eq!(back.history, p.history);
}

#[test]
fn under_a_volume_floor_the_list_price_is_measured_again_while_the_floor_is_unsure() {
    let prices = [1.6, 1.8, 2.0, 2.2, 2.4];
    let settings = Settings { prior: (-1.0, 0.6), alpha: DEFAULT_ALPHA, min_exposure: 2, volume_floor: Some(0.9) };
    let mut p = Robust::new(&prices, 2.0, 2, prices.iter().map(|x| x - 1.0).collect(), settings);
    // Three weeks at the list price, then months at +10% selling 96% of its units: more margin,
    // and close enough to the floor (90%) that a short stay at the list price could mislead.
    for _ in 0..20 {
        p.observe(2, 40.0);
    }
    for _ in 0..150 {
        p.observe(3, 38.4);
    }
    p.stopped = Some((170, 3));
    let (mut rng, all) = (StdRng::seed_from_u64(1), (0..5).collect::<Vec<usize>>());
    let arm = p.choose_arm(&all, &mut rng);
    let text = p.explain("200 cents");
    assert_eq!((arm, p.rule), (2, Rule::FloorCheck), "{text}");
    assert!(text.contains("volume floor"), "{text}");
    // Once the list price is measured as well as the price chosen, the chosen price comes back.
    for _ in 0..30 {
        p.observe(2, 40.0);
    }
    assert_eq!(p.choose_arm(&all, &mut rng), 3, "{}", p.explain("220 cents"));
}
