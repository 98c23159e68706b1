//! The storage conformance suite: the same behaviour on the embedded SQLite store and on
//! PostgreSQL (run when TAILOR_TEST_POSTGRES_URL is set; CI sets it).

use serde_json::{json, Value};
use tailor_core::event::{Event, EventKind};
use tailor_core::time::now_millis;
use tailor_core::{Identifier, IdentifierKind};
use tailor_engine::{Engine, EngineConfig};
use tailor_testkit::TestEngine;

fn event(raw: Value) -> Event {
    let kind = raw["type"].as_str().and_then(EventKind::parse);
    Event::parse_trusted(raw, kind, now_millis()).expect("valid event")
}

async fn ingest(engine: &Engine, raws: Vec<Value>) {
    let events: Vec<Event> = raws.into_iter().map(event).collect();
    engine.ingest(&events).await.expect("ingest");
    engine.sync().await.expect("project");
}

async fn lookup(engine: &Engine, kind: IdentifierKind, value: &str) -> Option<String> {
    let id = Identifier::parse(kind, value, "q").expect("identifier");
    engine.lookup(&id).await.expect("lookup")
}

async fn migrations_are_idempotent(t: &TestEngine) {
    let again = Engine::open(EngineConfig { storage: t.storage.clone(), background: false, retrain_every: None })
        .await
        .expect("reopen");
    assert_eq!(again.log().count().await.expect("count"), 0);
}

async fn the_same_batch_twice_is_stored_once(t: &TestEngine) {
    let engine = &t.engine;
    let batch: Vec<Event> = (0..50)
        .map(|i| event(json!({"type": "track", "event": "Product Viewed", "anonymousId": format!("a{}", i % 5), "messageId": format!("m{i}")})))
        .collect();
    assert_eq!(engine.ingest(&batch).await.expect("first"), 50);
    assert_eq!(engine.ingest(&batch).await.expect("retry"), 0);
    assert_eq!(engine.log().count().await.expect("count"), 50);
    engine.sync().await.expect("sync");
    let stats = engine.stats().await.expect("stats");
    assert_eq!(stats.profiles, 5);
    assert_eq!(stats.projection_lag, 0);
}

/// The four-channel journey of one customer, as the identity scenario describes it.
fn journey(email: &str, card: &str, phone: &str, anon: &str, tag: &str) -> Vec<Value> {
    vec![
        json!({"type": "page", "name": "Rain boots", "anonymousId": anon, "messageId": format!("{tag}-1"),
               "timestamp": "2026-03-01T10:00:00Z", "context": {"channel": "web"}, "properties": {"path": "/boots"}}),
        json!({"type": "track", "event": "Product Viewed", "anonymousId": anon, "messageId": format!("{tag}-2"),
               "timestamp": "2026-03-01T10:01:00Z", "context": {"channel": "web"}, "properties": {"product_id": "boot-1"}}),
        json!({"type": "identify", "anonymousId": anon, "messageId": format!("{tag}-3"), "timestamp": "2026-03-02T09:00:00Z",
               "context": {"channel": "app"}, "traits": {"email": email, "firstName": "Ann", "consent": {"personalization": true}}}),
        json!({"type": "identify", "messageId": format!("{tag}-4"), "timestamp": "2026-03-05T17:00:00Z",
               "context": {"channel": "store", "traits": {"email": email, "loyalty_card": card}}}),
        json!({"type": "track", "event": "Order Completed", "messageId": format!("{tag}-5"), "timestamp": "2026-03-05T17:05:00Z",
               "context": {"channel": "store", "traits": {"loyalty_card": card}},
               "properties": {"order_id": format!("{tag}-o1"), "store_id": "S1", "total": 59.90, "currency": "USD",
                              "products": [{"product_id": "boot-1", "price": 49.90, "quantity": 1, "category": "Shoes"},
                                           {"product_id": "sock-2", "price": 5.00, "quantity": 2, "category": "Socks"}]}}),
        json!({"type": "track", "event": "Support Ticket Opened", "messageId": format!("{tag}-6"), "timestamp": "2026-03-09T12:00:00Z",
               "context": {"channel": "support", "traits": {"phone": phone, "email": email}}, "properties": {"topic": "sizing"}}),
    ]
}

async fn four_channels_resolve_to_one_profile(t: &TestEngine) {
    let engine = &t.engine;
    ingest(engine, journey("ann@example.com", "LC-100", "+14155550100", "anon-ann", "ann")).await;
    let by_email = lookup(engine, IdentifierKind::Email, "ANN@example.com").await.expect("email");
    for (kind, value) in [
        (IdentifierKind::LoyaltyCard, "LC-100"),
        (IdentifierKind::Phone, "+1 415 555 0100"),
        (IdentifierKind::AnonymousId, "anon-ann"),
    ] {
        assert_eq!(lookup(engine, kind, value).await.as_deref(), Some(by_email.as_str()), "{kind:?}");
    }
    let timeline = engine.timeline(&by_email, None, 100).await.expect("timeline");
    assert_eq!(timeline.len(), 6);
    let mut channels: Vec<&str> = timeline.iter().map(|e| e.channel.as_str()).collect();
    channels.sort();
    channels.dedup();
    assert_eq!(channels, ["app", "store", "support", "web"]);
    let profile = engine.profile(&by_email).await.expect("profile");
    assert_eq!(profile.features.order_count, 1);
    assert_eq!(profile.features.spend, "59.90");
    assert_eq!(profile.features.preferred_store.as_deref(), Some("S1"));
    assert_eq!(profile.features.top_categories.first().map(String::as_str), Some("Shoes"));
    assert_eq!(profile.traits["firstName"], "Ann");
    assert!(profile.consent.iter().any(|c| c.purpose == "personalization" && c.granted));
    assert_eq!(engine.stats().await.expect("stats").profiles, 1);
}

async fn a_shared_tablet_does_not_merge_two_customers(t: &TestEngine) {
    let engine = &t.engine;
    ingest(
        engine,
        vec![
            json!({"type": "identify", "userId": "u-ann", "anonymousId": "tablet-7", "messageId": "t1", "traits": {"email": "ann@example.com"}, "context": {"channel": "store"}}),
            json!({"type": "track", "event": "Product Viewed", "anonymousId": "tablet-7", "messageId": "t2", "properties": {"product_id": "p1"}}),
            json!({"type": "identify", "userId": "u-bob", "anonymousId": "tablet-7", "messageId": "t3", "traits": {"email": "bob@example.com"}, "context": {"channel": "store"}}),
            json!({"type": "track", "event": "Order Completed", "anonymousId": "pos-terminal-1", "messageId": "t4",
                   "context": {"channel": "store", "traits": {"loyalty_card": "LC-ANN"}}, "properties": {"order_id": "o-ann", "total": 10}}),
            json!({"type": "identify", "userId": "u-ann", "messageId": "t5", "traits": {"loyalty_card": "LC-ANN"}}),
            json!({"type": "track", "event": "Order Completed", "anonymousId": "pos-terminal-1", "messageId": "t6",
                   "context": {"channel": "store", "traits": {"loyalty_card": "LC-BOB"}}, "properties": {"order_id": "o-bob", "total": 20}}),
        ],
    )
    .await;
    let ann = lookup(engine, IdentifierKind::UserId, "u-ann").await.expect("ann");
    let bob = lookup(engine, IdentifierKind::UserId, "u-bob").await.expect("bob");
    assert_ne!(ann, bob);
    assert_eq!(lookup(engine, IdentifierKind::Email, "bob@example.com").await.as_deref(), Some(bob.as_str()));
    let bob_card = lookup(engine, IdentifierKind::LoyaltyCard, "LC-BOB").await.expect("bob's card");
    assert_ne!(bob_card, ann, "a shared POS terminal must not give Bob's card to Ann");
    let ann_profile = engine.profile(&ann).await.expect("ann");
    assert_eq!(ann_profile.features.spend, "10.00");
    assert!(ann_profile.identifiers.iter().all(|i| i.value != "bob@example.com" && i.value != "LC-BOB"));
}

async fn unmerge_restores_both_profiles_exactly(t: &TestEngine) {
    let engine = &t.engine;
    ingest(
        engine,
        vec![
            json!({"type": "track", "event": "Product Viewed", "anonymousId": "web-1", "messageId": "u1", "properties": {"product_id": "p1"}, "context": {"channel": "web"}}),
            json!({"type": "identify", "anonymousId": "web-1", "messageId": "u2", "traits": {"name": "Web Person", "city": "Oslo"}}),
            json!({"type": "track", "event": "Order Completed", "messageId": "u3", "context": {"channel": "store", "traits": {"loyalty_card": "LC-9"}},
                   "properties": {"order_id": "o9", "total": 12.5}}),
            json!({"type": "identify", "messageId": "u4", "context": {"channel": "store"}, "traits": {"email": "c@example.com", "loyalty_card": "LC-9", "name": "Store Person"}}),
        ],
    )
    .await;
    let web = lookup(engine, IdentifierKind::AnonymousId, "web-1").await.expect("web");
    let store = lookup(engine, IdentifierKind::LoyaltyCard, "LC-9").await.expect("store");
    assert_ne!(web, store);
    let before_web = serde_json::to_value(engine.profile(&web).await.expect("web")).expect("json");
    let before_store = serde_json::to_value(engine.profile(&store).await.expect("store")).expect("json");
    let before_web_tl = serde_json::to_value(engine.timeline(&web, None, 100).await.expect("tl")).expect("json");

    // Signing in on the web with the store customer's e-mail links the two.
    let sign_in = |id: &str| json!({"type": "track", "event": "Signed In", "anonymousId": "web-1", "messageId": id, "context": {"traits": {"email": "c@example.com"}}});
    ingest(engine, vec![sign_in("u5")]).await;
    let merged = lookup(engine, IdentifierKind::AnonymousId, "web-1").await.expect("merged");
    assert_eq!(Some(merged.clone()), lookup(engine, IdentifierKind::LoyaltyCard, "LC-9").await);
    let merges = engine.merges(&merged).await.expect("merges");
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0].cause_kind, "anonymous_id");
    assert!(merges[0].event_seq.is_some());

    let absorbed = merges[0].absorbed.clone();
    let undone = engine.unmerge(&absorbed, None).await.expect("unmerge");
    assert!(undone.undone_at.is_some());
    let after_web = engine.profile(&web).await.expect("web");
    let after_store = engine.profile(&store).await.expect("store");
    // Both are back as they were; the merging event itself stays with the survivor.
    let strip = |v: Value| {
        let mut v = v;
        for f in ["lastSeen", "eventCount", "channels"] {
            v["features"][f] = Value::Null;
        }
        v
    };
    let after_web = serde_json::to_value(after_web).expect("json");
    let after_store = serde_json::to_value(after_store).expect("json");
    assert_eq!(strip(after_web), strip(before_web.clone()));
    assert_eq!(strip(after_store.clone()), strip(before_store.clone()));
    let (absorbed_before, absorbed_after) = if undone.absorbed == store {
        (before_store, after_store)
    } else {
        (before_web.clone(), serde_json::to_value(engine.profile(&web).await.expect("web")).expect("json"))
    };
    assert_eq!(absorbed_after, absorbed_before, "the absorbed profile is restored exactly");
    let after_web_tl = serde_json::to_value(engine.timeline(&web, None, 100).await.expect("tl")).expect("json");
    let tail: Vec<&Value> = after_web_tl
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["seq"] != merges[0].event_seq.map(Value::from).unwrap_or_default())
        .collect();
    assert_eq!(tail.len(), before_web_tl.as_array().map(Vec::len).unwrap_or(0));
    // The pair does not merge again on the next event that links them.
    ingest(engine, vec![sign_in("u6")]).await;
    assert_ne!(
        lookup(engine, IdentifierKind::AnonymousId, "web-1").await,
        lookup(engine, IdentifierKind::LoyaltyCard, "LC-9").await
    );
}

async fn erasure_leaves_no_personal_data(t: &TestEngine) {
    let engine = &t.engine;
    let mut events = journey("erase.me@example.com", "LC-ERASE-77", "+14155550177", "anon-erase-77", "er");
    events.push(json!({"type": "identify", "userId": "user-erase-77", "anonymousId": "anon-erase-77", "messageId": "er-7",
        "traits": {"firstName": "Zebulon", "lastName": "Quixotic", "address": {"street": "12 Erasure Lane"}, "phone": "+14155550177"}}));
    // The same person under their e-mail as a userId: once through alias, once on its own (a
    // second profile that only the shared value links to them).
    events.push(
        json!({"type": "alias", "previousId": "anon-erase-77", "userId": "erase.me@example.com", "messageId": "er-8"}),
    );
    events.push(
        json!({"type": "track", "event": "Product Viewed", "userId": "Erase.Me@Example.com", "messageId": "er-9",
        "properties": {"product_id": "sock-2"}}),
    );
    events.extend(journey("keep@example.com", "LC-KEEP", "+14155550111", "anon-keep", "kp"));
    ingest(engine, events).await;
    let id = lookup(engine, IdentifierKind::Email, "erase.me@example.com").await.expect("profile");
    let second = lookup(engine, IdentifierKind::UserId, "Erase.Me@Example.com").await.expect("second profile");
    engine.train_model(std::sync::Arc::new(|_: &str| {})).await.expect("a model that holds their vector");
    let export = engine.export(&id).await.expect("export");
    assert!(export["events"].as_array().map(Vec::len).unwrap_or(0) >= 8, "{export}");
    assert_eq!(export["orders"][0]["lines"].as_array().map(Vec::len), Some(2));
    assert!(export["loyalty"]["entries"].as_array().is_some_and(|e| !e.is_empty()), "points are exported");
    assert!(export["profiles"].to_string().contains(&second), "the linked profile is exported too");
    let orders_before = engine.stats().await.expect("stats").orders;

    assert!(engine.erase(&id).await.expect("erase") >= 2, "both profiles of the person are erased");
    let secrets = [
        "erase.me@example.com",
        "Erase.Me@Example.com",
        "LC-ERASE-77",
        "+14155550177",
        "anon-erase-77",
        "user-erase-77",
        "Zebulon",
        "Quixotic",
        "Erasure Lane",
        id.as_str(),
        second.as_str(),
    ];
    let tables = engine.db().table_names().await.expect("tables");
    for table in &tables {
        for row in engine.db().dump_table(table).await.expect("dump") {
            for secret in secrets {
                assert!(!row.contains(secret), "{secret} is still in {table}: {row}");
            }
        }
    }
    // Model artifacts are binary: look for the ids' bytes.
    let artifacts: Vec<Vec<u8>> = {
        use tailor_store::Row;
        sqlx::query("SELECT artifact FROM models")
            .fetch_all(engine.db().reader())
            .await
            .expect("models")
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert!(!artifacts.is_empty());
    for bytes in &artifacts {
        for secret in [id.as_str(), second.as_str()] {
            assert!(!contains(bytes, secret.as_bytes()), "a stored model still holds {secret}");
        }
    }
    // The embedded file itself, after the erasure's checkpoint: secure_delete zeroed the pages.
    if let tailor_engine::Storage::Embedded(dir) = &t.storage {
        for name in ["tailor.db", "tailor.db-wal"] {
            let Ok(bytes) = std::fs::read(dir.join(name)) else { continue };
            for secret in secrets {
                assert!(!contains(&bytes, secret.as_bytes()), "{secret} is still in the bytes of {name}");
            }
        }
    }
    assert_eq!(lookup(engine, IdentifierKind::Email, "erase.me@example.com").await, None);
    assert_eq!(lookup(engine, IdentifierKind::LoyaltyCard, "LC-ERASE-77").await, None);
    assert!(engine.profile(&id).await.is_err());
    // Anonymous aggregates stay; other customers are untouched.
    assert_eq!(engine.stats().await.expect("stats").orders, orders_before);
    assert!(lookup(engine, IdentifierKind::Email, "keep@example.com").await.is_some());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn consent_comes_from_traits_context_and_api(t: &TestEngine) {
    let engine = &t.engine;
    ingest(
        engine,
        vec![
            json!({"type": "identify", "userId": "c1", "messageId": "c-1", "timestamp": "2026-01-01T00:00:00Z", "traits": {"consent": {"marketing_email": true, "profiling": false}}}),
            json!({"type": "track", "event": "Page Viewed", "userId": "c1", "messageId": "c-2", "timestamp": "2026-01-02T00:00:00Z",
                   "context": {"consent": {"categoryPreferences": {"marketingEmail": false, "analytics": true, "Advertising": true}}}}),
        ],
    )
    .await;
    let id = lookup(engine, IdentifierKind::UserId, "c1").await.expect("profile");
    engine.set_consent(&id, tailor_core::Purpose::MarketingSms, true, "preference_center").await.expect("consent");
    let p = engine.profile(&id).await.expect("profile");
    let get = |purpose: &str| p.consent.iter().find(|c| c.purpose == purpose).map(|c| (c.granted, c.source.clone()));
    assert_eq!(get("marketing_email"), Some((false, "context.consent".into())));
    assert_eq!(get("profiling"), Some((false, "identify.traits".into())));
    assert_eq!(get("analytics"), Some((true, "context.consent".into())));
    assert_eq!(get("marketing_sms"), Some((true, "preference_center".into())));
    assert_eq!(get("personalization"), None);
}

async fn carts_and_refunds_are_projected(t: &TestEngine) {
    let engine = &t.engine;
    ingest(
        engine,
        vec![
            json!({"type": "track", "event": "Product Added", "userId": "k1", "messageId": "k-1", "properties": {"product_id": "a", "price": 2.5, "quantity": 2}}),
            json!({"type": "track", "event": "Product Added", "userId": "k1", "messageId": "k-2", "properties": {"product_id": "b", "price": 1}}),
            json!({"type": "track", "event": "Product Removed", "userId": "k1", "messageId": "k-3", "properties": {"product_id": "a", "quantity": 1}}),
        ],
    )
    .await;
    let id = lookup(engine, IdentifierKind::UserId, "k1").await.expect("profile");
    let cart = engine.profile(&id).await.expect("profile").cart;
    assert_eq!(cart.iter().map(|l| (l.product_id.as_str(), l.quantity)).collect::<Vec<_>>(), [("a", 1), ("b", 1)]);
    ingest(
        engine,
        vec![
            json!({"type": "track", "event": "Order Completed", "userId": "k1", "messageId": "k-4", "properties": {"order_id": "ko", "total": 30,
                   "products": [{"product_id": "a", "price": 10, "quantity": 2}, {"product_id": "b", "price": 10}]}}),
            json!({"type": "track", "event": "Order Refunded", "userId": "k1", "messageId": "k-5", "properties": {"order_id": "ko", "products": [{"product_id": "b", "price": 10}]}}),
        ],
    )
    .await;
    let p = engine.profile(&id).await.expect("profile");
    assert!(p.cart.is_empty());
    assert_eq!(p.features.spend, "20.00");
    assert_eq!(p.features.order_count, 1);
}

async fn recommendations_follow_new_orders(t: &TestEngine) {
    let engine = &t.engine;
    // Two groups of shoppers with overlapping baskets, all consenting to personalization.
    let mut orders = Vec::new();
    for c in 0..12 {
        let items: Vec<String> = (0..6).map(|i| format!("g{}-{}", c % 2, (c + i) % 8)).collect();
        for (o, pair) in items.chunks(2).enumerate() {
            orders.push(json!({"type": "track", "event": "Order Completed", "userId": format!("r{c}"),
                "messageId": format!("r-{c}-{o}"), "timestamp": format!("2026-03-{:02}T10:00:00Z", 1 + o * 7),
                "context": {"consent": {"categoryPreferences": {"personalization": true}}},
                "properties": {"order_id": format!("r-{c}-{o}"), "total": 2,
                    "products": pair.iter().map(|p| json!({"product_id": p, "price": 1})).collect::<Vec<_>>()}}));
        }
    }
    ingest(engine, orders).await;
    engine.train_model(std::sync::Arc::new(|_| {})).await.expect("train");
    let ask = tailor_engine::RecsRequest {
        user: Some("r0".into()),
        context: "home".into(),
        k: 5,
        novel: true,
        ..Default::default()
    };
    let before = engine.recommend(&ask).await.expect("recommend");
    let first = before.items.first().map(|i| i.product_id.clone()).expect("a suggestion");
    // Discovery lists leave out what was bought, so buying the first suggestion removes it:
    // the order history read for the first answer must not be served again.
    ingest(
        engine,
        vec![json!({"type": "track", "event": "Order Completed", "userId": "r0", "messageId": "r-0-new",
            "properties": {"order_id": "r-0-new", "total": 1, "products": [{"product_id": first, "price": 1}]}})],
    )
    .await;
    let after = engine.recommend(&ask).await.expect("recommend");
    assert!(after.items.iter().all(|i| i.product_id != first), "{first} is still suggested");
    assert!(!after.items.is_empty());
}

tailor_testkit::both_backends!(
    migrations_are_idempotent,
    the_same_batch_twice_is_stored_once,
    four_channels_resolve_to_one_profile,
    a_shared_tablet_does_not_merge_two_customers,
    unmerge_restores_both_profiles_exactly,
    erasure_leaves_no_personal_data,
    consent_comes_from_traits_context_and_api,
    carts_and_refunds_are_projected,
    recommendations_follow_new_orders,
);
