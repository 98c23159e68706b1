//! One order model on both backends (PostgreSQL when TAILOR_TEST_POSTGRES_URL is set): a mixed
//! stream of orders — some sold by weight, some with a discount — partial refunds by line or by
//! amount, and cancellations gives the same revenue in the profile, the same spend and points in
//! loyalty, and the same units in stock, as computed here from the stream itself.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tailor_core::event::{Event, EventKind};
use tailor_core::time::now_millis;
use tailor_core::{Identifier, IdentifierKind};
use tailor_engine::import::{ImportKind, Silent};
use tailor_engine::{AdjustMode, Adjustment, Engine};
use tailor_testkit::TestEngine;

const START: i64 = 10_000;
const CUSTOMERS: [&str; 3] = ["c-1", "c-2", "c-3"];

async fn catalog(engine: &Engine) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price\nA,Apples,1.99\nB,Buns,0.35\nW,Walnuts by weight,4.99\n").expect("write");
    engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone,latitude,longitude\nL1,North,store,N,UTC,52.52,13.40\n")
        .expect("write");
    engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    for sku in ["A", "B", "W"] {
        let a = Adjustment {
            sku: sku.into(),
            location_id: "L1".into(),
            mode: AdjustMode::Set,
            on_hand: Some(START),
            safety_stock: None,
            damaged: None,
            incoming: None,
            incoming_at: None,
            reason: "count".into(),
        };
        engine.adjust_stock(&a, None, b"").await.expect("stock");
    }
}

/// One generated line: SKU, the JSON sent, its amount in cents and the stock units it moves.
struct Line {
    sku: &'static str,
    json: Value,
    cents: i64,
}

fn line(rng: &mut StdRng) -> Line {
    match rng.gen_range(0..3) {
        0 => {
            let q = rng.gen_range(1..=4);
            Line { sku: "A", json: json!({"product_id": "A", "quantity": q, "price": 1.99}), cents: 199 * q }
        }
        1 => {
            let q = rng.gen_range(1..=12);
            Line { sku: "B", json: json!({"product_id": "B", "quantity": q, "price": "0.35"}), cents: 35 * q }
        }
        _ => {
            // Weighed: 0.250 to 3.000 kg at 4.99 a kilogram, one bag off the shelf.
            let grams: i64 = rng.gen_range(250..=3000);
            let kg = grams as f64 / 1000.0;
            let cents = (499 * grams + 500) / 1000;
            Line { sku: "W", json: json!({"product_id": "W", "quantity": kg, "unit": "kg", "price": 4.99}), cents }
        }
    }
}

fn units(l: &Line) -> i64 {
    if l.sku == "W" {
        1
    } else {
        l.json["quantity"].as_i64().expect("count")
    }
}

fn track(user: &str, name: &str, id: &str, props: Value) -> Value {
    json!({"type": "track", "event": name, "userId": user, "messageId": id, "properties": props})
}

#[derive(Default)]
struct Expected {
    revenue: BTreeMap<&'static str, i64>,
    points: BTreeMap<&'static str, i64>,
    stock: BTreeMap<&'static str, i64>,
}

/// Generates the stream and what each projection must show after it.
fn stream(seed: u64) -> (Vec<Value>, Expected) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut want = Expected::default();
    for sku in ["A", "B", "W"] {
        want.stock.insert(sku, START);
    }
    for n in 0..60 {
        let user = CUSTOMERS[rng.gen_range(0..CUSTOMERS.len())];
        let id = format!("o-{n}");
        let lines: Vec<Line> = (0..rng.gen_range(1..=3)).map(|_| line(&mut rng)).collect();
        let sum: i64 = lines.iter().map(|l| l.cents).sum();
        let mut props = json!({"order_id": id, "store_id": "L1",
            "products": lines.iter().map(|l| l.json.clone()).collect::<Vec<_>>()});
        // A third of the orders carry a total with a 10% discount; the rest let the lines add up.
        let total = if n % 3 == 0 {
            let t = sum - sum / 10;
            props["total"] = json!(format!("{}.{:02}", t / 100, t % 100));
            t
        } else {
            sum
        };
        events.push(track(user, "Order Completed", &format!("{id}-done"), props));
        for l in &lines {
            *want.stock.get_mut(l.sku).expect("sku") -= units(l);
        }
        let points = total / 100;
        let mut refunded = 0;
        match n % 5 {
            // Cancelled: it names only the order; everything comes back.
            0 => {
                events.push(track(user, "Order Cancelled", &format!("{id}-cancel"), json!({"order_id": id})));
                refunded = total;
                for l in &lines {
                    *want.stock.get_mut(l.sku).expect("sku") += units(l);
                }
            }
            // The first line is returned (its price, at most what is left to refund).
            1 => {
                let l = &lines[0];
                events.push(track(
                    user,
                    "Order Refunded",
                    &format!("{id}-refund"),
                    json!({"order_id": id, "products": [l.json.clone()]}),
                ));
                refunded = l.cents.min(total);
                *want.stock.get_mut(l.sku).expect("sku") += units(l);
            }
            // A goodwill refund of an amount: money and points back, no goods.
            2 => {
                let amount = (total / 3).max(1);
                events.push(track(
                    user,
                    "Order Refunded",
                    &format!("{id}-goodwill"),
                    json!({"order_id": id, "total": amount as f64 / 100.0}),
                ));
                refunded = amount;
            }
            _ => {}
        }
        let reversed = if total == 0 || refunded >= total { points } else { points * refunded / total };
        *want.revenue.entry(user).or_default() += total - refunded;
        *want.points.entry(user).or_default() += points - reversed;
    }
    (events, want)
}

fn cents(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    whole.parse::<i64>().expect("whole") * 100 + format!("{frac:0<2}")[..2].parse::<i64>().expect("cents")
}

async fn revenue_stock_and_points_agree_for_every_order(t: &TestEngine) {
    let engine = &t.engine;
    catalog(engine).await;
    let (raws, want) = stream(7);
    let events: Vec<Event> = raws
        .into_iter()
        .map(|raw| Event::parse(raw, Some(EventKind::Track), now_millis()).expect("every generated event is valid"))
        .collect();
    engine.ingest(&events).await.expect("ingest");
    engine.sync().await.expect("project");
    assert_eq!(engine.readiness().await.expect("readiness").dead_letters, 0);
    for user in CUSTOMERS {
        let id = Identifier { kind: IdentifierKind::UserId, value: user.into() };
        let profile = engine.lookup(&id).await.expect("lookup").expect("profile");
        let view = engine.profile(&profile).await.expect("view");
        let account = engine.loyalty_account(&profile).await.expect("account");
        let revenue = want.revenue.get(user).copied().unwrap_or(0);
        assert_eq!(cents(&view.features.spend), revenue, "{user}: the profile's revenue");
        assert_eq!(account.qualifying.spend_cents, revenue, "{user}: loyalty's spend");
        assert_eq!(account.balance.pending, want.points.get(user).copied().unwrap_or(0), "{user}: points");
    }
    for (sku, on_hand) in &want.stock {
        let level = engine.stock_level(sku, "L1").await.expect("level").expect("stocked");
        assert_eq!(level.on_hand, *on_hand, "{sku}: units on the shelf");
    }
}

tailor_testkit::both_backends!(revenue_stock_and_points_agree_for_every_order);
