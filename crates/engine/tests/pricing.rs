//! Pricing on both backends (PostgreSQL when TAILOR_TEST_POSTGRES_URL is set): a live price
//! experiment learns from the orders placed at each price and settles on the best one, every
//! price it sets recorded with its reason; and repricing holds a scarce product's price and
//! steps an overstocked one down.

use serde_json::json;
use tailor_core::event::{Event, EventKind};
use tailor_core::time::now_millis;
use tailor_engine::import::{ImportKind, Silent};
use tailor_engine::{Engine, ExperimentInput, Objective};
use tailor_testkit::TestEngine;

const HOUR: i64 = 3_600_000;

async fn product(engine: &Engine, sku: &str, price: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, format!("id,title,price,category\n{sku},Test {sku},{price},SNACKS\n")).expect("write");
    engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
}

async fn sell(engine: &Engine, sku: &str, order: &str, units: i64, cents: i64, at: i64) {
    let raw = json!({"type": "track", "event": "Order Completed", "userId": "shopper", "messageId": order,
        "timestamp": chrono::DateTime::from_timestamp_millis(at).expect("time").to_rfc3339(),
        "properties": {"order_id": order, "total": (units * cents) as f64 / 100.0,
            "products": [{"product_id": sku, "quantity": units, "price": cents as f64 / 100.0}]}});
    let event = Event::parse_trusted(raw, Some(EventKind::Track), now_millis()).expect("event");
    engine.ingest(&[event]).await.expect("ingest");
}

async fn an_experiment_settles_on_the_best_price_from_real_orders(t: &TestEngine) {
    let e = &t.engine;
    product(e, "CHIPS", "2.00").await;
    let input = ExperimentInput {
        prices_cents: vec![160, 200, 240],
        objective: Objective::Revenue,
        min_exposure: Some(2),
        period_hours: Some(24),
        alpha: None,
        volume_floor: None,
    };
    let started = e.start_price_experiment_at("CHIPS", &input, now_millis() - 70 * 24 * HOUR).await.expect("start");
    assert_eq!(started.status, "running");
    // Demand is elastic (−2.5): the lowest price earns most. One order a day at the shelf price.
    let mut now = started.current_since;
    for day in 0..60 {
        let exp = e.price_experiment("CHIPS").await.expect("experiment");
        if exp.stopped.is_some() {
            break;
        }
        let cents = exp.arms[exp.current].cents;
        let units = (20.0 * (cents as f64 / 200.0).powf(-2.5)).round() as i64;
        sell(e, "CHIPS", &format!("chips-{day}"), units, cents, now + HOUR).await;
        e.sync().await.expect("project");
        now += 24 * HOUR;
        e.step_price_experiment_at("CHIPS", now).await.expect("step");
    }
    let exp = e.price_experiment("CHIPS").await.expect("experiment");
    let Some((_, best)) = exp.stopped else { panic!("the stopping rule ends it: {exp:?}") };
    assert_eq!(exp.arms[best].cents, 160, "{exp:?}");
    assert!(exp.arms.iter().all(|a| a.periods >= 2.0), "every price tried at least twice: {exp:?}");
    let (slope, _) = exp.elasticity.expect("belief");
    // Few periods: the belief sits between the prior (−1.0 ± 0.6) and the truth (−2.5).
    assert!(slope < -1.5, "learned that demand is elastic: {slope}");
    let history = e.price_history("CHIPS", 100).await.expect("history");
    assert!(history.iter().all(|d| d.reason.starts_with("price experiment")), "{history:?}");
    assert!(history[0].reason.contains("concluded"), "{:?}", history[0]);
}

/// Runs `sku`'s experiment for up to `days` daily periods, one order a day of the units
/// `demand(cents)` says the shelf price sells; returns the experiment at the end.
async fn run_days(e: &Engine, sku: &str, days: i64, demand: impl Fn(i64) -> i64) -> tailor_engine::Experiment {
    let mut exp = e.price_experiment(sku).await.expect("experiment");
    let mut now = exp.current_since;
    for day in 0..days {
        let cents = exp.arms[exp.current].cents;
        let units = demand(cents);
        if units > 0 {
            sell(e, sku, &format!("{sku}-{day}"), units, cents, now + HOUR).await;
            e.sync().await.expect("project");
        }
        now += 24 * HOUR;
        exp = e.step_price_experiment_at(sku, now).await.expect("step");
        if exp.status == "concluded" {
            break;
        }
    }
    exp
}

/// Units a day at `cents` under logit demand: a large share of its market (60%) at the list price
/// 2.00 with an elasticity of −1.5 there, so demand bends away from any constant elasticity.
fn logit_units(cents: i64) -> i64 {
    let d = tailor_pricing::demand::Demand::Logit { base_demand: 30.0, elasticity: -1.5, share: 0.6 };
    d.expected(cents as f64 / 100.0, 2.0).round() as i64
}

async fn an_experiment_on_logit_demand_ends_no_worse_than_the_list_price(t: &TestEngine) {
    let e = &t.engine;
    product(e, "DIP", "2.00").await;
    // The category's estimate says inelastic (−0.4 ± 0.1): wrong for this product.
    let estimate = tailor_engine::CategoryElasticity { mean: -0.4, mean_sd: 0.05, tau: 0.1, products: 40 };
    e.set_category_elasticity("SNACKS", &estimate).await.expect("estimate");
    let input = ExperimentInput {
        prices_cents: vec![160, 180, 220, 240],
        objective: Objective::Revenue,
        min_exposure: Some(2),
        period_hours: Some(24),
        alpha: None,
        volume_floor: None,
    };
    let started = e.start_price_experiment_at("DIP", &input, now_millis() - 200 * 24 * HOUR).await.expect("start");
    let prior = started.prior.clone().expect("prior");
    assert!(prior.source.contains("SNACKS") && (prior.mean + 0.4).abs() < 1e-9, "{prior:?}");
    assert!(started.arms.iter().any(|a| a.cents == 200), "the list price is always a candidate: {started:?}");
    assert_eq!(started.current_cents(), 200, "the list price goes first: {started:?}");
    let exp = run_days(e, "DIP", 150, logit_units).await;
    let revenue = |cents: i64| cents * logit_units(cents);
    let at = exp.current_cents();
    assert!(revenue(at) >= revenue(200), "ends at {at} cents, earning less than the list price: {exp:?}");
    // Over the experiment it earned at least (1 − α) of what the list price would have.
    let earned: f64 = exp.arms.iter().map(|a| a.units * a.cents as f64).sum();
    let periods: f64 = exp.arms.iter().map(|a| a.periods).sum();
    assert!(earned >= 0.95 * periods * revenue(200) as f64, "earned {earned} over {periods} periods: {exp:?}");
    let history = e.price_history("DIP", 200).await.expect("history");
    assert!(history.iter().all(|d| d.reason.starts_with("price experiment") && d.reason.contains("model:")));
}

async fn a_model_that_fails_its_check_switches_to_the_fallback_and_says_so(t: &TestEngine) {
    let e = &t.engine;
    product(e, "SALSA", "2.00").await;
    let input = ExperimentInput {
        prices_cents: vec![160, 180, 200, 220, 240],
        objective: Objective::Revenue,
        min_exposure: Some(3),
        period_hours: Some(24),
        alpha: None,
        volume_floor: None,
    };
    e.start_price_experiment_at("SALSA", &input, now_millis() - 200 * 24 * HOUR).await.expect("start");
    // A competitor at 2.05: below it shoppers barely react, above it they leave.
    let kinked = |cents: i64| match cents {
        ..=200 => (40.0 * (cents as f64 / 200.0).powf(-0.2)).round() as i64,
        _ => (40.0 * (cents as f64 / 200.0).powf(-9.0)).round() as i64,
    };
    let exp = run_days(e, "SALSA", 150, kinked).await;
    assert_eq!(exp.model, tailor_engine::PricingModel::PerPrice, "{exp:?}");
    let history = e.price_history("SALSA", 200).await.expect("history");
    let switched = history.iter().find(|d| d.reason.contains("per-price fallback")).expect("a price says so");
    assert!(switched.reason.contains("failed its check"), "{switched:?}");
    let revenue = |cents: i64| cents * kinked(cents);
    assert!(revenue(exp.current_cents()) >= revenue(200), "{exp:?}");
}

async fn repricing_holds_scarce_stock_and_clears_overstock(t: &TestEngine) {
    let e = &t.engine;
    product(e, "SCARCE", "3.00").await;
    product(e, "GLUT", "3.00").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone,latitude,longitude\nS1,North,store,N,UTC,52.52,13.40\n")
        .expect("write");
    e.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    let file = dir.path().join("stock.csv");
    std::fs::write(&file, "sku,location_id,on_hand\nSCARCE,S1,10\nGLUT,S1,5000\n").expect("write");
    e.import(ImportKind::Stock, &file, &Silent).await.expect("stock");
    let now = now_millis();
    for day in 0..14 {
        sell(e, "SCARCE", &format!("s-{day}"), 4, 300, now - day * 24 * HOUR).await;
        sell(e, "GLUT", &format!("g-{day}"), 1, 300, now - day * 24 * HOUR).await;
    }
    e.sync().await.expect("project");
    for sku in ["SCARCE", "GLUT"] {
        e.record_market(&tailor_engine::MarketInput {
            sku: sku.into(),
            source: "MegaMart".into(),
            cents: Some(250),
            demand_index: None,
        })
        .await
        .expect("market");
    }
    let scarce = e.reprice("SCARCE").await.expect("reprice");
    assert_eq!(scarce.cents, 300, "scarce stock is not marked down to the competitor: {scarce:?}");
    assert!(scarce.reason.contains("scarce"), "{scarce:?}");
    let glut = e.reprice("GLUT").await.expect("reprice");
    assert!(glut.cents < 300 && glut.reason.contains("overstocked") && glut.reason.contains("MegaMart"), "{glut:?}");
}

async fn quotes_promotions_guardrails_and_offers_on_this_backend(t: &TestEngine) {
    use tailor_engine::{Discount, Guardrails, ListPriceInput, Promotion};
    let e = &t.engine;
    product(e, "TEA", "4.00").await;
    e.set_guardrails("TEA", &Guardrails { unit_cost_cents: Some(300), min_margin: Some(0.1), ..Default::default() })
        .await
        .expect("rails");
    let input = ListPriceInput {
        zone: String::new(),
        currency: "USD".into(),
        cents: 450,
        valid_from: None,
        valid_to: None,
        reason: None,
    };
    assert_eq!(e.propose_list_price("TEA", &input).await.expect("price").cents, 450);
    let promo = |id: &str, percent: f64, channels: Vec<String>| Promotion {
        id: id.into(),
        name: id.into(),
        discount: Discount::Percentage { percent },
        skus: vec!["TEA".into()],
        categories: vec![],
        channels,
        priority: 0,
        stackable: false,
        starts_at: None,
        ends_at: None,
    };
    e.put_promotion(&promo("app-deal", 10.0, vec!["app".into()])).await.expect("promotion");
    let q = |channel: &'static str| async move {
        e.quote_prices(&["TEA".to_string()], channel, "", None, 1).await.expect("quote").remove(0)
    };
    let (web, app) = (q("web").await, q("app").await);
    assert_eq!((web.list_cents, web.price_cents, app.list_cents, app.price_cents), (450, 450, 450, 405));
    // A deeper promotion is held at the floor, 3.00 + 10%.
    e.put_promotion(&promo("app-deal", 50.0, vec!["app".into()])).await.expect("promotion");
    assert_eq!(q("app").await.price_cents, 330);
    // A lapsing, consenting customer gets one offer, however many quotes run at once.
    let day = 24 * HOUR;
    for i in 0..6 {
        sell(e, "TEA", &format!("tea-{i}"), 1, 450, now_millis() - (40 + 7 * i) * day).await;
    }
    e.sync().await.expect("project");
    let who = tailor_core::Identifier::parse(tailor_core::IdentifierKind::UserId, "shopper", "userId").expect("id");
    let root = e.lookup(&who).await.expect("lookup").expect("profile");
    e.set_consent(&root, tailor_core::Purpose::Personalization, true, "test").await.expect("consent");
    let tea = ["TEA".to_string()];
    let quotes =
        futures_util::future::join_all((0..4).map(|_| e.quote_prices(&tea, "web", "", Some(root.as_str()), 1))).await;
    assert!(quotes.iter().all(Result::is_ok), "{quotes:?}");
    let last = e.quote_prices(&["TEA".to_string()], "web", "", Some(&root), 1).await.expect("quote").remove(0);
    assert_eq!((last.offers.len(), last.consent_purpose.as_deref()), (1, Some("personalization")), "{last:?}");
}

tailor_testkit::both_backends!(
    quotes_promotions_guardrails_and_offers_on_this_backend,
    an_experiment_settles_on_the_best_price_from_real_orders,
    an_experiment_on_logit_demand_ends_no_worse_than_the_list_price,
    a_model_that_fails_its_check_switches_to_the_fallback_and_says_so,
    repricing_holds_scarce_stock_and_clears_overstock
);
