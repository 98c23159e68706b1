//! Inventory on both backends (PostgreSQL when TAILOR_TEST_POSTGRES_URL is set): no oversell
//! under concurrency, bundles sharing components, expiry across a restart, and bad input that
//! changes nothing.

use tailor_core::time::now_millis;
use tailor_engine::import::{ImportKind, Silent};
use tailor_engine::{
    AdjustMode, Adjustment, Allocation, Engine, EngineConfig, EngineError, ReservationState, ReserveRequest,
};
use tailor_testkit::TestEngine;

/// Products A, B, C, X and two stores with coordinates.
async fn catalog(engine: &Engine) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, "id,title,price\nA,Apples,1\nB,Bread,2\nC,Candles,3\nX,Box,1\n").expect("write");
    engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(
        &file,
        "id,name,kind,region,timezone,latitude,longitude\nL1,North,store,N,UTC,52.52,13.40\nL2,South,store,S,UTC,48.14,11.58\nW1,Depot,warehouse,N,UTC,50.11,8.68\n",
    )
    .expect("write");
    engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
}

async fn stock(engine: &Engine, sku: &str, location: &str, on_hand: i64) {
    let a = Adjustment {
        sku: sku.into(),
        location_id: location.into(),
        mode: AdjustMode::Set,
        on_hand: Some(on_hand),
        safety_stock: None,
        damaged: None,
        incoming: None,
        incoming_at: None,
        reason: "count".into(),
    };
    engine.adjust_stock(&a, None, b"").await.expect("adjust");
}

fn one(sku: &str, q: i64) -> ReserveRequest {
    ReserveRequest {
        lines: vec![(sku.into(), q)],
        allocation: Allocation::MostStock,
        allow_split: true,
        channel: "web".into(),
        ttl_ms: 900_000,
    }
}

async fn level(engine: &Engine, sku: &str, loc: &str) -> (i64, i64) {
    let l = engine.stock_level(sku, loc).await.expect("level").expect("stocked");
    (l.reserved, l.available)
}

async fn the_last_units_are_reserved_exactly_once(t: &TestEngine) {
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "A", "L1", 7).await;
    stock(engine, "A", "L2", 5).await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.reserve(&one("A", 1), None, b"").await })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(r) => won.push(r),
            Err(EngineError::InsufficientStock(_) | EngineError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won.len(), 12, "exactly the 12 units are reserved");
    let held: i64 = won.iter().flat_map(|r| &r.lines).map(|l| l.quantity).sum();
    assert_eq!(held, 12);
    assert_eq!(level(engine, "A", "L1").await, (7, 0));
    assert_eq!(level(engine, "A", "L2").await, (5, 0));
    // Reserving more than any one store holds splits; with nothing left it fails cleanly.
    assert!(matches!(engine.reserve(&one("A", 1), None, b"").await, Err(EngineError::InsufficientStock(_))));
}

async fn bundles_sharing_a_component_never_oversell_it(t: &TestEngine) {
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "C", "L1", 5).await;
    stock(engine, "X", "L1", 100).await;
    engine.set_bundle("GIFT", &[("C".into(), 2), ("X".into(), 1)]).await.expect("bundle");
    engine.set_bundle("TRIO", &[("C".into(), 3)]).await.expect("bundle");
    let avail = engine.stock_availability(&["GIFT".into(), "TRIO".into()], None, None).await.expect("availability");
    assert_eq!(avail.iter().map(|a| (a.sku.as_str(), a.available)).collect::<Vec<_>>(), [("GIFT", 2), ("TRIO", 1)]);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let engine = engine.clone();
            let sku = if i % 2 == 0 { "GIFT" } else { "TRIO" };
            tokio::spawn(async move { engine.reserve(&one(sku, 1), None, b"").await })
        })
        .collect();
    let mut candles = 0;
    for t in tasks {
        if let Ok(r) = t.await.expect("task") {
            candles += r.lines.iter().filter(|l| l.sku == "C").map(|l| l.quantity).sum::<i64>();
        }
    }
    let (reserved, available) = level(engine, "C", "L1").await;
    assert!(reserved <= 5 && available >= 0, "reserved {reserved}, available {available}");
    assert_eq!(reserved, candles, "the stock and the reservations agree");
    assert!(candles >= 4, "the component was used: {candles}");
}

async fn an_unconfirmed_reservation_is_released_after_its_ttl_even_across_a_restart(t: &TestEngine) {
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "B", "L1", 3).await;
    let held = engine.reserve(&ReserveRequest { ttl_ms: 60_000, ..one("B", 2) }, None, b"").await.expect("reserve");
    assert_eq!(level(engine, "B", "L1").await, (2, 1));
    // Another process takes over without this one stopping cleanly.
    let again = Engine::open(EngineConfig { storage: t.storage.clone(), background: false, retrain_every: None })
        .await
        .expect("reopen");
    assert_eq!(again.expire_reservations(now_millis()).await.expect("expire"), 0, "not due yet");
    assert_eq!(again.expire_reservations(held.expires_at).await.expect("expire"), 1);
    assert_eq!(again.expire_reservations(held.expires_at).await.expect("expire"), 0, "released once");
    assert_eq!(level(&again, "B", "L1").await, (0, 3));
    assert_eq!(again.reservation(&held.id).await.expect("reservation").state, ReservationState::Expired);
    assert!(matches!(again.confirm_reservation(&held.id, None).await, Err(EngineError::Conflict(_))));
    // A confirmed one is a sale: on hand goes down with reserved.
    let sold = again.reserve(&one("B", 1), None, b"").await.expect("reserve");
    again.confirm_reservation(&sold.id, Some("o-1")).await.expect("confirm");
    let l = again.stock_level("B", "L1").await.expect("level").expect("stocked");
    assert_eq!((l.on_hand, l.reserved, l.available), (2, 0, 2));
}

/// The field a refused request names.
fn field<T>(r: Result<T, EngineError>) -> String {
    match r {
        Err(EngineError::Invalid(f)) => f.field,
        Err(e) => panic!("expected a field error, got {e}"),
        Ok(_) => panic!("expected a field error, got success"),
    }
}

async fn bad_input_gets_a_clear_error_and_changes_nothing(t: &TestEngine) {
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "A", "L1", 4).await;
    assert_eq!(field(engine.reserve(&one("A", -1), None, b"").await), "lines[0].quantity");
    assert_eq!(field(engine.reserve(&one("A", 0), None, b"").await), "lines[0].quantity");
    assert_eq!(field(engine.reserve(&one("NOPE", 1), None, b"").await), "lines[0].sku");
    let pickup = ReserveRequest { allocation: Allocation::Pickup("L9".into()), ..one("A", 1) };
    assert_eq!(field(engine.reserve(&pickup, None, b"").await), "store");
    let mut a = Adjustment {
        sku: "A".into(),
        location_id: "L9".into(),
        mode: AdjustMode::Delta,
        on_hand: Some(-1),
        safety_stock: None,
        damaged: None,
        incoming: None,
        incoming_at: None,
        reason: "breakage".into(),
    };
    assert_eq!(field(engine.adjust_stock(&a, None, b"").await), "locationId");
    a.location_id = "L1".into();
    a.on_hand = Some(-5);
    assert_eq!(field(engine.adjust_stock(&a, None, b"").await), "onHand", "below zero");
    let r = engine.reserve(&one("A", 2), None, b"").await.expect("reserve");
    assert_eq!(field(engine.release_reservation(&r.id, Some(("A", 3))).await), "quantity");
    // The same Idempotency-Key: same body → the first answer, applied once; other body → refused.
    a.on_hand = Some(-1);
    let first = engine.adjust_stock(&a, Some("k-1"), b"body-1").await.expect("adjust");
    let retry = engine.adjust_stock(&a, Some("k-1"), b"body-1").await.expect("retry");
    assert_eq!(first, retry);
    assert_eq!(field(engine.adjust_stock(&a, Some("k-1"), b"body-2").await), "Idempotency-Key");
    let l = engine.stock_level("A", "L1").await.expect("level").expect("stocked");
    assert_eq!((l.on_hand, l.reserved), (3, 2), "only the valid changes landed, once");
    let partly = engine.release_reservation(&r.id, Some(("A", 1))).await.expect("release one");
    assert_eq!(partly.lines[0].quantity, 1);
    assert_eq!(level(engine, "A", "L1").await, (1, 2));
}

async fn a_stock_file_sets_levels_and_names_its_bad_rows(t: &TestEngine) {
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "A", "L1", 50).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("stock.csv");
    std::fs::write(
        &file,
        "sku,store_id,on_hand,safety_stock\nA,L1,8,2\nB,L2,0,0\nNOPE,L1,3,0\nC,L9,3,0\nC,L1,-4,0\nC,L1,2.5,0\n",
    )
    .expect("write");
    for _ in 0..2 {
        let report = engine.import(ImportKind::Stock, &file, &Silent).await.expect("import");
        assert_eq!((report.rows, report.accepted), (6, 2), "{report:?}");
        let reasons: Vec<String> = report.rejected.iter().map(|r| format!("{}:{}", r.row, r.column)).collect();
        assert_eq!(reasons, ["3:sku", "4:location_id", "5:on_hand", "6:on_hand"]);
    }
    let a = engine.stock_level("A", "L1").await.expect("level").expect("stocked");
    assert_eq!((a.on_hand, a.safety_stock, a.available), (8, 2, 6), "set, not added, even twice");
    let b = engine.stock_availability(&["B".into()], None, None).await.expect("availability");
    assert_eq!(b.iter().map(|x| (x.location_id.as_str(), x.available)).collect::<Vec<_>>(), [("L2", 0)]);
}

async fn channels_hold_stock_by_their_policy(t: &TestEngine) {
    use serde_json::json;
    use tailor_core::event::{Event, EventKind};
    use tailor_engine::{ChannelPolicy, Policy};
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "A", "L1", 5).await;
    let set = |channel: &str, policy: Policy| ChannelPolicy { channel: channel.into(), policy, cart_ttl_ms: 600_000 };
    engine.set_channel_policy(&set("web", Policy::ReserveOnCart)).await.expect("policy");
    engine.set_channel_policy(&set("support", Policy::None)).await.expect("policy");
    assert_eq!(field(engine.set_channel_policy(&set("fax", Policy::None)).await), "channel");
    // A channel that does not hold stock refuses reservations, naming the channel.
    let by_phone = ReserveRequest { channel: "support".into(), ..one("A", 1) };
    assert_eq!(field(engine.reserve(&by_phone, None, b"").await), "channel");
    let mut n = 0;
    let mut send = |event: &str, props: serde_json::Value| {
        n += 1;
        let raw = json!({"type": "track", "event": event, "userId": "cart-u", "messageId": format!("cart-{n}"),
            "context": {"channel": "web"}, "properties": props});
        let kind = raw["type"].as_str().and_then(EventKind::parse);
        Event::parse_trusted(raw, kind, now_millis()).expect("event")
    };
    // Adding to the cart holds; adding more grows the hold; removing gives back.
    let events = vec![
        send("Product Added", json!({"product_id": "A", "quantity": 2})),
        send("Product Added", json!({"product_id": "A", "quantity": 1})),
    ];
    engine.ingest(&events).await.expect("ingest");
    engine.sync().await.expect("project");
    assert_eq!(level(engine, "A", "L1").await, (3, 2));
    engine.ingest(&[send("Product Removed", json!({"product_id": "A", "quantity": 1}))]).await.expect("ingest");
    engine.sync().await.expect("project");
    assert_eq!(level(engine, "A", "L1").await, (2, 3));
    // Checking out sells what the cart held.
    let order = send("Order Completed", json!({"order_id": "web-1", "products": [{"product_id": "A", "quantity": 2}]}));
    engine.ingest(&[order]).await.expect("ingest");
    engine.sync().await.expect("project");
    let a = engine.stock_level("A", "L1").await.expect("level").expect("stocked");
    assert_eq!((a.on_hand, a.reserved, a.available), (3, 0, 3));
}

async fn transfers_move_stock_between_locations(t: &TestEngine) {
    use tailor_engine::TransferState;
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "A", "L1", 10).await;
    let eta = now_millis() + 2 * 86_400_000;
    let sent = engine.transfer_stock("A", "L1", "L2", 4, Some(eta)).await.expect("transfer");
    assert_eq!(level(engine, "A", "L1").await, (0, 6));
    let at_l2 = engine.stock_level("A", "L2").await.expect("level").expect("incoming");
    assert_eq!((at_l2.on_hand, at_l2.incoming, at_l2.incoming_at), (0, 4, Some(eta)));
    let promised = engine.stock_availability(&["A".into()], Some(&["L2".into()]), None).await.expect("availability");
    assert_eq!((promised[0].available, promised[0].ships_by), (0, Some(eta)), "promised from the expected date");
    assert!(matches!(engine.transfer_stock("A", "L1", "L2", 7, None).await, Err(EngineError::InsufficientStock(_))));
    assert_eq!(field(engine.transfer_stock("A", "L1", "L1", 1, None).await), "toLocationId");
    assert_eq!(field(engine.transfer_stock("A", "L1", "L2", 0, None).await), "quantity");
    engine.finish_transfer(&sent.id, TransferState::Received).await.expect("receive");
    let at_l2 = engine.stock_level("A", "L2").await.expect("level").expect("stocked");
    assert_eq!((at_l2.on_hand, at_l2.incoming, at_l2.available), (4, 0, 4));
    assert!(matches!(engine.finish_transfer(&sent.id, TransferState::Cancelled).await, Err(EngineError::Conflict(_))));
    // A cancelled transfer puts the units back at the source.
    let back = engine.transfer_stock("A", "L1", "L2", 2, None).await.expect("transfer");
    engine.finish_transfer(&back.id, TransferState::Cancelled).await.expect("cancel");
    assert_eq!(level(engine, "A", "L1").await, (0, 6));
    assert_eq!(level(engine, "A", "L2").await, (0, 4));
}

tailor_testkit::both_backends!(
    the_last_units_are_reserved_exactly_once,
    bundles_sharing_a_component_never_oversell_it,
    an_unconfirmed_reservation_is_released_after_its_ttl_even_across_a_restart,
    bad_input_gets_a_clear_error_and_changes_nothing,
    orders_move_stock_once,
    a_stock_file_sets_levels_and_names_its_bad_rows,
    channels_hold_stock_by_their_policy,
    transfers_move_stock_between_locations,
);

async fn orders_move_stock_once(t: &TestEngine) {
    use serde_json::json;
    use tailor_core::event::{Event, EventKind};
    let engine = &t.engine;
    catalog(engine).await;
    stock(engine, "A", "L1", 10).await;
    stock(engine, "B", "L1", 10).await;
    let held = engine
        .reserve(&ReserveRequest { allocation: Allocation::Pickup("L1".into()), ..one("A", 3) }, None, b"")
        .await
        .expect("reserve");
    let event = |raw: serde_json::Value| {
        let kind = raw["type"].as_str().and_then(EventKind::parse);
        Event::parse_trusted(raw, kind, now_millis()).expect("event")
    };
    let events = vec![
        // The web order that held A: confirmed, so A is sold from the hold.
        event(json!({"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m1",
            "properties": {"order_id": "o1", "reservation_id": held.id, "products": [{"product_id": "A", "quantity": 3}]}})),
        // A till sale of 2 B at L1, then 1 returned.
        event(json!({"type": "track", "event": "Order Completed", "userId": "u2", "messageId": "m2",
            "properties": {"order_id": "o2", "store_id": "L1", "products": [{"product_id": "B", "quantity": 2}]}})),
        event(json!({"type": "track", "event": "Order Refunded", "userId": "u2", "messageId": "m3",
            "properties": {"order_id": "o2", "store_id": "L1", "products": [{"product_id": "B", "quantity": 1}]}})),
    ];
    engine.ingest(&events).await.expect("ingest");
    engine.ingest(&events).await.expect("the same events again");
    engine.sync().await.expect("project");
    assert_eq!(engine.reservation(&held.id).await.expect("reservation").state, ReservationState::Confirmed);
    let a = engine.stock_level("A", "L1").await.expect("level").expect("stocked");
    assert_eq!((a.on_hand, a.reserved), (7, 0));
    let b = engine.stock_level("B", "L1").await.expect("level").expect("stocked");
    assert_eq!((b.on_hand, b.reserved), (9, 0), "sold 2, 1 back, once");
}
