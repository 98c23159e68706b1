//! The estimator on data with known answers, and on input it must refuse or survive.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::recovery::poisson;
use super::*;

fn obs(product: &str, category: &str, price: f64, quantity: f64) -> Observation {
    Observation { product: product.into(), category: category.into(), price, quantity, display: 0.0, mailer: 0.0 }
}

#[test]
fn recovers_known_elasticities_with_calibrated_intervals() {
    let mut coverages = Vec::new();
    for seed in 1..=5 {
        let r = recovery_check(seed, 200).expect("simulation estimates");
        eprintln!(
            "seed {seed}: MAE shrunk {:.3} (own-estimated products {:.3}) vs own {:.3}; \
             coverage {:.3} (own {:.3}) nominal {}; {} of {} with own",
            r.mae, r.mae_with_own, r.own_mae, r.coverage, r.own_coverage, r.nominal, r.with_own, r.products
        );
        assert_eq!(r.products, 200);
        assert!(r.with_own >= 180, "{r:?}");
        assert!(r.mae < 0.25, "shrunk MAE too large: {r:?}");
        assert!(r.mae_with_own <= r.own_mae, "shrinkage made it worse: {r:?}");
        assert!((0.80..=0.97).contains(&r.coverage), "coverage off: {r:?}");
        coverages.push(r.coverage);
    }
    let mean = coverages.iter().sum::<f64>() / coverages.len() as f64;
    assert!((0.84..=0.95).contains(&mean), "mean coverage {mean}");
}

#[test]
fn exact_demand_gives_the_elasticity() {
    let rows: Vec<Observation> = (0..30)
        .map(|t| {
            let price = 2.0 + 0.1 * (t % 7) as f64;
            obs("a", "c", price, 500.0 * price.powf(-1.7))
        })
        .collect();
    let refs: Vec<&Observation> = rows.iter().collect();
    let fit = fit_product(&refs, &Config::default()).expect("fits");
    assert!((fit.elasticity + 1.7).abs() < 1e-6, "{fit:?}");
    assert!(fit.display.is_none() && fit.mailer.is_none());
}

#[test]
fn zero_sales_weeks_are_kept() {
    let mut rng = StdRng::seed_from_u64(9);
    let rows: Vec<Observation> = (0..104)
        .map(|t| {
            let price = if t % 3 == 0 { 1.5 } else { 2.0 };
            obs("a", "c", price, poisson(&mut rng, 1.0 * (price / 2.0).powf(-2.0)))
        })
        .collect();
    assert!(rows.iter().any(|o| o.quantity == 0.0));
    let refs: Vec<&Observation> = rows.iter().collect();
    let fit = fit_product(&refs, &Config::default()).expect("fits");
    assert!((fit.elasticity + 2.0).abs() < 3.0 * fit.se, "{fit:?}");
}

#[test]
fn fixed_price_products_take_the_category_and_noisy_ones_are_pulled_toward_it() {
    let sim = simulate(4, 40, 52);
    let mut rows = sim.observations.clone();
    rows.extend((0..52).map(|_| obs("fixed", "c00", 3.0, 10.0)));
    let report = estimate(&rows, &Config::default()).expect("estimates");
    let fixed = report.estimates.iter().find(|e| e.product == "fixed").expect("fixed product");
    let cat = report.categories.iter().find(|c| c.category == "c00").expect("category");
    assert_eq!(fixed.status, OwnStatus::NoPriceVariation);
    assert_eq!(fixed.own, None);
    assert!((fixed.elasticity - cat.mean).abs() < 1e-12);
    for e in report.estimates.iter().filter(|e| e.category == "c00") {
        if let Some(own) = e.own {
            let (lo, hi) = if own < cat.mean { (own, cat.mean) } else { (cat.mean, own) };
            assert!(e.elasticity >= lo - 1e-9 && e.elasticity <= hi + 1e-9, "{e:?}");
            assert!(e.sd <= e.own_se.expect("se") + 1e-12);
            assert!(e.sd < fixed.sd);
        }
        assert!(e.lower < e.elasticity && e.elasticity < e.upper);
    }
    let d = distribution(&report.estimates.iter().map(|e| e.elasticity).collect::<Vec<_>>()).expect("values");
    assert!(d.p10 <= d.p25 && d.p25 <= d.p50 && d.p50 <= d.p75 && d.p75 <= d.p90);
}

#[test]
fn bad_input_is_refused_with_the_field() {
    let good = || obs("a", "c", 2.0, 3.0);
    let cfg = Config::default();
    assert_eq!(estimate(&[], &cfg), Err(ElasticityError::Empty));
    let cases: Vec<(Observation, &str)> = vec![
        (Observation { price: f64::NAN, ..good() }, "price"),
        (Observation { price: -1.0, ..good() }, "price"),
        (Observation { price: 0.0, ..good() }, "price"),
        (Observation { quantity: -2.0, ..good() }, "quantity"),
        (Observation { quantity: f64::INFINITY, ..good() }, "quantity"),
        (Observation { display: 1.5, ..good() }, "display"),
        (Observation { mailer: f64::NAN, ..good() }, "mailer"),
    ];
    for (bad, field) in cases {
        let err = estimate(&[good(), bad], &cfg).expect_err("refused");
        match &err {
            ElasticityError::Invalid { row, field: f, .. } => {
                assert_eq!((*row, *f), (1, field));
                assert!(err.to_string().contains(field), "{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let err = estimate(&[Observation { product: " ".into(), ..good() }], &cfg).expect_err("refused");
    assert_eq!(err, ElasticityError::EmptyName { row: 0, field: "product" });
    let err = estimate(&[good(), Observation { category: "d".into(), ..good() }], &cfg).expect_err("refused");
    assert!(matches!(err, ElasticityError::CategoryMismatch { row: 1, .. }), "{err:?}");
    let err = estimate(&[good()], &Config { level: 1.0, ..cfg.clone() }).expect_err("refused");
    assert!(matches!(err, ElasticityError::Config { field: "level", .. }), "{err:?}");
    let err = estimate(&[good()], &Config { min_log_price_sd: f64::NAN, ..cfg.clone() }).expect_err("refused");
    assert!(matches!(err, ElasticityError::Config { field: "min_log_price_sd", .. }), "{err:?}");
    // Nothing with price variation: nothing to shrink toward.
    let flat: Vec<Observation> = (0..52).map(|_| good()).collect();
    let err = estimate(&flat, &cfg).expect_err("refused");
    assert!(matches!(err, ElasticityError::NoEstimates { products: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("price variation"));
}

#[test]
fn degenerate_products_do_not_panic() {
    let cfg = Config::default();
    // All sales at one price, none at the other: separation; and all-zero sales.
    let mut rows: Vec<Observation> = (0..40)
        .map(|t| obs("sep", "c", if t % 2 == 0 { 1.0 } else { 2.0 }, if t % 2 == 0 { 5.0 } else { 0.0 }))
        .collect();
    rows.extend((0..40).map(|t| obs("zero", "c", 1.0 + (t % 3) as f64, 0.0)));
    rows.extend((0..40).map(|t| obs("ok", "c", 1.0 + 0.1 * (t % 4) as f64, 10.0 - (t % 4) as f64)));
    rows.extend((0..40).map(|t| Observation { display: 1.0, ..obs("disp", "c", 2.0, 4.0 + (t % 2) as f64) }));
    let report = estimate(&rows, &cfg).expect("estimates");
    let status = |p: &str| report.estimates.iter().find(|e| e.product == p).map(|e| e.status);
    assert_eq!(status("zero"), Some(OwnStatus::NoSales));
    assert_eq!(status("ok"), Some(OwnStatus::Estimated));
    assert_eq!(status("disp"), Some(OwnStatus::NoPriceVariation));
    assert!(report.estimates.iter().all(|e| e.elasticity.is_finite() && e.sd.is_finite()));
}

#[test]
fn normal_quantile_is_accurate() {
    assert!((normal_quantile(0.95) - 1.6448536).abs() < 1e-6);
    assert!((normal_quantile(0.975) - 1.9599640).abs() < 1e-6);
    assert!((normal_quantile(0.01) + 2.3263479).abs() < 1e-6);
    assert!(normal_quantile(1.0).is_nan());
}
