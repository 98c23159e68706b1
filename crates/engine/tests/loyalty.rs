//! Loyalty on both backends (PostgreSQL when TAILOR_TEST_POSTGRES_URL is set): orders earn and
//! reverse points, concurrent redemptions never overspend, accounts follow merges, any sequence
//! of operations keeps the ledger consistent, and bad input changes nothing.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tailor_core::event::{Event, EventKind};
use tailor_core::time::now_millis;
use tailor_core::{Identifier, IdentifierKind};
use tailor_engine::{Balance, Engine, EngineError, LoyaltyTier, Reward, RewardLimit, RewardTrigger};
use tailor_testkit::TestEngine;

const DAY: i64 = 86_400_000;

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).expect("time").to_rfc3339()
}

async fn send(engine: &Engine, raws: Vec<Value>) {
    let events: Vec<Event> = raws
        .into_iter()
        .map(|raw| {
            let kind = raw["type"].as_str().and_then(EventKind::parse);
            Event::parse_trusted(raw, kind, now_millis()).expect("event")
        })
        .collect();
    engine.ingest(&events).await.expect("ingest");
    engine.sync().await.expect("project");
}

fn order(user: &str, id: &str, total: f64, at: i64) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": format!("{id}-done"),
        "timestamp": iso(at), "properties": {"order_id": id, "total": total}})
}

fn refund(user: &str, id: &str, amount: f64, n: u32) -> Value {
    json!({"type": "track", "event": "Order Refunded", "userId": user, "messageId": format!("{id}-refund-{n}"),
        "properties": {"order_id": id, "total": amount}})
}

async fn profile(engine: &Engine, user: &str) -> String {
    let id = Identifier::parse(IdentifierKind::UserId, user, "userId").expect("id");
    engine.lookup(&id).await.expect("lookup").expect("profile")
}

async fn balance(engine: &Engine, id: &str) -> Balance {
    engine.loyalty_account(id).await.expect("account").balance
}

async fn buy_then_refund_nets_zero_and_partial_returns_are_proportional(t: &TestEngine) {
    let e = &t.engine;
    let now = now_millis();
    send(e, vec![order("u1", "o1", 50.0, now), refund("u1", "o1", 50.0, 1)]).await;
    // Imports write amounts as strings.
    send(
        e,
        vec![json!({"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "o0-done",
            "properties": {"order_id": "o0", "total": "12.50"}})],
    )
    .await;
    let u1 = profile(e, "u1").await;
    assert_eq!(
        balance(e, &u1).await,
        Balance { pending: 12, ..Balance::default() },
        "bought and refunded: nothing earned"
    );
    send(e, vec![order("u1", "o2", 100.0, now), refund("u1", "o2", 25.0, 1)]).await;
    assert_eq!(balance(e, &u1).await.pending, 12 + 75);
    send(e, vec![refund("u1", "o2", 25.0, 2), refund("u1", "o2", 25.0, 2)]).await;
    assert_eq!(balance(e, &u1).await.pending, 12 + 50, "the same refund event twice counts once");
    // Points past the return window become active; spent, then the order refunded: owed.
    send(e, vec![order("u1", "o3", 80.0, now - 40 * DAY)]).await;
    let b = balance(e, &u1).await;
    assert_eq!((b.pending, b.active), (12 + 50, 80));
    e.redeem_points(&u1, 60, None, b"").await.expect("redeem");
    send(e, vec![refund("u1", "o3", 80.0, 1)]).await;
    let b = balance(e, &u1).await;
    assert_eq!((b.active, b.used, b.owed), (0, 60, 60), "20 taken back from active, 60 owed");
    // Points active for more than a year expire, oldest first.
    let u9 = {
        send(e, vec![order("u9", "o9a", 70.0, now - 500 * DAY), order("u9", "o9b", 30.0, now - 100 * DAY)]).await;
        profile(e, "u9").await
    };
    let b = balance(e, &u9).await;
    assert_eq!((b.active, b.expired), (30, 70));
    // The next points that become active settle the debt first.
    send(e, vec![order("u1", "o4", 100.0, now - 35 * DAY)]).await;
    let b = balance(e, &u1).await;
    assert_eq!((b.active, b.owed), (40, 0));
}

async fn concurrent_redemptions_never_overspend(t: &TestEngine) {
    let e = &t.engine;
    send(e, vec![order("u2", "big", 5.0, now_millis())]).await;
    let u2 = profile(e, "u2").await;
    e.adjust_points(&u2, 500, "welcome").await.expect("adjust");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (e, u2) = (e.clone(), u2.clone());
            tokio::spawn(async move { e.redeem_points(&u2, 10, None, b"").await })
        })
        .collect();
    let mut spent = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(r) => spent += r.points,
            Err(EngineError::InsufficientPoints(_)) => {}
            Err(err) => panic!("unexpected: {err}"),
        }
    }
    let b = balance(e, &u2).await;
    assert_eq!((spent, b.active, b.used), (500, 0, 500));
}

async fn accounts_follow_merges_and_unmerges(t: &TestEngine) {
    let e = &t.engine;
    let now = now_millis();
    send(e, vec![order("ua", "oa", 30.0, now - 40 * DAY)]).await;
    send(
        e,
        vec![json!({"type": "track", "event": "Order Completed", "anonymousId": "anon-b", "messageId": "ob-done",
            "properties": {"order_id": "ob", "total": 20.0}, "timestamp": iso(now - 40 * DAY)})],
    )
    .await;
    let ua = profile(e, "ua").await;
    assert_eq!(balance(e, &ua).await.active, 30);
    send(e, vec![json!({"type": "identify", "userId": "ua", "anonymousId": "anon-b", "messageId": "link"})]).await;
    let root = profile(e, "ua").await;
    assert_eq!(balance(e, &root).await.active, 50, "one account for the merged customer");
    e.unmerge(&root, None).await.expect("unmerge");
    let ua = profile(e, "ua").await;
    let anon = Identifier::parse(IdentifierKind::AnonymousId, "anon-b", "anonymousId").expect("id");
    let b = e.lookup(&anon).await.expect("lookup").expect("profile");
    assert_ne!(ua, b);
    assert_eq!((balance(e, &ua).await.active, balance(e, &b).await.active), (30, 20), "split back");
}

/// Which bucket moves each kind of entry may make: (kind, bucket, sign).
const LEGAL: [(&str, &str, i64); 11] = [
    ("earn", "pending", 1),
    ("mature", "pending", -1),
    ("mature", "active", 1),
    ("redeem", "active", -1),
    ("redeem", "used", 1),
    ("expire", "active", -1),
    ("expire", "expired", 1),
    ("settle", "active", -1),
    ("settle", "owed", -1),
    ("reverse", "pending", -1),
    ("reverse", "owed", 1),
];

async fn any_sequence_keeps_the_ledger_consistent(t: &TestEngine) {
    let e = &t.engine;
    let now = now_millis();
    for case in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(case);
        let user = format!("prop-{case}");
        send(e, vec![order(&user, &format!("{user}-first"), 10.0, now)]).await;
        let id = profile(e, &user).await;
        let mut orders: Vec<String> = Vec::new();
        for step in 0..25 {
            match rng.gen_range(0..5) {
                0 => {
                    let o = format!("{user}-{step}");
                    let age = [0, 40, 400][rng.gen_range(0..3)] * DAY;
                    send(e, vec![order(&user, &o, rng.gen_range(1..200) as f64, now - age)]).await;
                    orders.push(o);
                }
                1 if !orders.is_empty() => {
                    let o = orders[rng.gen_range(0..orders.len())].clone();
                    send(e, vec![refund(&user, &o, rng.gen_range(1..120) as f64, step)]).await;
                }
                2 => match e.redeem_points(&id, rng.gen_range(1..150), None, b"").await {
                    Ok(_) | Err(EngineError::InsufficientPoints(_)) => {}
                    Err(err) => panic!("redeem: {err}"),
                },
                3 => match e.adjust_points(&id, rng.gen_range(-50..80), "test").await {
                    Ok(_) | Err(EngineError::InsufficientPoints(_)) | Err(EngineError::Invalid(_)) => {}
                    Err(err) => panic!("adjust: {err}"),
                },
                _ => {
                    balance(e, &id).await;
                }
            }
            let b = balance(e, &id).await;
            for (name, v) in [
                ("pending", b.pending),
                ("active", b.active),
                ("used", b.used),
                ("expired", b.expired),
                ("owed", b.owed),
            ] {
                assert!(v >= 0, "case {case} step {step}: {name} = {v}");
            }
            let sums: Vec<(String, i64)> = sqlx::query_as(
                "SELECT bucket, CAST(SUM(points) AS BIGINT) FROM loyalty_entries WHERE profile_id = $1 GROUP BY bucket",
            )
            .bind(id.clone())
            .fetch_all(e.db().reader())
            .await
            .expect("sums");
            let sum = |name: &str| sums.iter().find(|s| s.0 == name).map_or(0, |s| s.1);
            assert_eq!(
                (sum("pending"), sum("active"), sum("used"), sum("expired"), sum("owed")),
                (b.pending, b.active, b.used, b.expired, b.owed),
                "case {case} step {step}: the balance is the ledger's sum"
            );
            // What a batch of journey messages reads in one query is what the account says.
            let mut conn = e.db().reader().acquire().await.expect("conn");
            let policy = e.loyalty_policy();
            for when in [now, now + 200 * DAY, now + 400 * DAY] {
                let batch = tailor_loyalty::active_by_profile(&mut conn, std::slice::from_ref(&id), &policy, when)
                    .await
                    .expect("batch");
                let (active, credits, debits) = batch.get(&id).copied().unwrap_or((0, 0, 0));
                let expiring = tailor_loyalty::expiring_by(&mut conn, std::slice::from_ref(&id), &policy, when)
                    .await
                    .expect("expiring");
                assert_eq!((active, (credits - debits).max(0)), (b.active, expiring), "case {case} step {step}");
            }
        }
        let moves: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, bucket, CAST(CASE WHEN points > 0 THEN 1 ELSE -1 END AS BIGINT) FROM loyalty_entries \
             WHERE profile_id = $1 AND points <> 0 AND kind <> 'adjust' GROUP BY kind, bucket, CASE WHEN points > 0 THEN 1 ELSE -1 END",
        )
        .bind(id.clone())
        .fetch_all(e.db().reader())
        .await
        .expect("moves");
        for (kind, bucket, sign) in moves {
            let legal = LEGAL.iter().any(|(k, b, s)| *k == kind && *b == bucket && *s == sign)
                || (kind == "reverse" && bucket == "active" && sign < 0);
            assert!(legal, "case {case}: illegal move {kind} {bucket} {sign}");
        }
    }
}

async fn bad_input_gets_a_clear_error_and_changes_nothing(t: &TestEngine) {
    let e = &t.engine;
    send(e, vec![order("u5", "o5", 30.0, now_millis() - 40 * DAY)]).await;
    let u5 = profile(e, "u5").await;
    let before = balance(e, &u5).await;
    assert!(matches!(e.redeem_points(&u5, 31, None, b"").await, Err(EngineError::InsufficientPoints(_))));
    let field = |r: Result<tailor_engine::Redemption, EngineError>| match r {
        Err(EngineError::Invalid(f)) => f.field,
        other => panic!("expected a field error, got {:?}", other.map(|r| r.points)),
    };
    assert_eq!(field(e.redeem_points(&u5, -5, None, b"").await), "points");
    assert_eq!(field(e.redeem_points("nobody", 5, None, b"").await), "profileId");
    e.redeem_points(&u5, 10, Some("k1"), b"a").await.expect("redeem");
    let again = e.redeem_points(&u5, 10, Some("k1"), b"a").await.expect("retry");
    assert_eq!(again.balance.active, 20, "the retry answers the first result, spending once");
    assert_eq!(field(e.redeem_points(&u5, 5, Some("k1"), b"b").await), "Idempotency-Key");
    let after = balance(e, &u5).await;
    assert_eq!((after.active, after.used), (before.active - 10, 10));
}

async fn earning_rules_are_data(t: &TestEngine) {
    use tailor_engine::LoyaltyRule;
    let e = &t.engine;
    let now = now_millis();
    let rule = |name: &str, channel: Option<&str>, category: Option<&str>, rate: Option<f64>, bonus: Option<f64>| {
        LoyaltyRule {
            name: name.into(),
            channel: channel.map(Into::into),
            category: category.map(Into::into),
            points_per_unit: rate,
            multiplier: bonus,
            starts_at: bonus.map(|_| now - 3 * DAY),
            ends_at: bonus.map(|_| now - DAY),
        }
    };
    let rules = vec![
        rule("web", Some("web"), None, Some(2.0), None),
        rule("dairy", None, Some("DAIRY"), Some(5.0), None),
        rule("double days", Some("web"), None, None, Some(2.0)),
    ];
    e.set_loyalty_rules(&rules).await.expect("rules");
    assert_eq!(e.loyalty_rules().await.expect("rules").len(), 3);
    let lines = json!([{"product_id": "m", "price": 10.0, "category": "DAIRY"}, {"product_id": "b", "price": 10.0, "category": "BAKERY"}]);
    let at = |channel: &str, id: &str, when: i64| {
        json!({"type": "track", "event": "Order Completed", "userId": "r1",
        "messageId": id, "timestamp": iso(when), "context": {"channel": channel},
        "properties": {"order_id": id, "total": 20.0, "products": lines}})
    };
    // Web during the double days: dairy 10 × 5 × 2 + bakery 10 × 2 × 2.
    send(e, vec![at("web", "r-web", now - 2 * DAY)]).await;
    let r1 = profile(e, "r1").await;
    assert_eq!(balance(e, &r1).await.pending, 140);
    // In store, after the campaign: dairy 10 × 5 + bakery at the default 1 per unit.
    send(e, vec![at("store", "r-store", now)]).await;
    assert_eq!(balance(e, &r1).await.pending, 140 + 60);
    let mut bad = rules.clone();
    bad[0].multiplier = Some(3.0);
    match e.set_loyalty_rules(&bad).await {
        Err(EngineError::Invalid(f)) => assert_eq!(f.field, "rules[0].pointsPerUnit"),
        other => panic!("expected a field error, got {other:?}"),
    }
    let mut by_name = rules.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(e.loyalty_rules().await.expect("rules"), by_name, "a wrong set changes nothing");
}

fn tier(name: &str, points: Option<i64>, spend_cents: Option<i64>, multiplier: f64, grace_days: i64) -> LoyaltyTier {
    LoyaltyTier { name: name.into(), min_points: points, min_spend_cents: spend_cents, multiplier, grace_days }
}

/// The account's events of `kind`, oldest first.
async fn events_of(engine: &Engine, profile: &str, kind: &str) -> Vec<Value> {
    let page = engine.loyalty_events(0, 1000).await.expect("events");
    page.events.into_iter().filter(|e| e.profile_id == profile && e.kind == kind).map(|e| e.details).collect()
}

async fn tiers_follow_qualifying_points_and_multiply_earning(t: &TestEngine) {
    let e = &t.engine;
    let tiers = vec![tier("Silver", Some(100), None, 1.5, 0), tier("Gold", Some(1000), None, 2.0, 0)];
    e.set_loyalty_tiers(&tiers).await.expect("tiers");
    let now = now_millis();
    send(e, vec![order("t1", "t-a", 80.0, now - 3 * DAY), order("t1", "t-b", 40.0, now - 2 * DAY)]).await;
    let t1 = profile(e, "t1").await;
    let a = e.loyalty_account(&t1).await.expect("account");
    assert_eq!((a.qualifying.points, a.tier.as_deref()), (120, Some("Silver")));
    let next = a.next_tier.expect("next tier");
    assert_eq!((next.name.as_str(), next.points_needed), ("Gold", Some(880)));
    // As Silver, the next order earns one and a half times.
    send(e, vec![order("t1", "t-c", 10.0, now - DAY)]).await;
    assert_eq!(balance(e, &t1).await.pending, 80 + 40 + 15);
    // Refunds count against the tier.
    send(e, vec![refund("t1", "t-b", 40.0, 1), refund("t1", "t-c", 10.0, 1)]).await;
    let a = e.loyalty_account(&t1).await.expect("account");
    assert_eq!((a.qualifying.points, a.tier), (80, None), "without a grace period the tier drops at once");
    let bad = vec![tier("Bronze", Some(-1), None, 1.0, 0)];
    match e.set_loyalty_tiers(&bad).await {
        Err(EngineError::Invalid(f)) => assert_eq!(f.field, "tiers[0].minPoints"),
        other => panic!("expected a field error, got {other:?}"),
    }
    assert_eq!(e.loyalty_tiers().await.expect("tiers"), tiers);
}

async fn a_tier_is_held_through_its_grace_period_and_changes_are_events(t: &TestEngine) {
    let e = &t.engine;
    // Silver by points, Gold by spend ($500 a year) or points.
    let tiers = vec![tier("Silver", Some(100), None, 1.0, 30), tier("Gold", Some(5000), Some(50_000), 1.0, 30)];
    e.set_loyalty_tiers(&tiers).await.expect("tiers");
    let now = now_millis();
    send(e, vec![order("g1", "g-a", 120.0, now - 2 * DAY)]).await;
    let g1 = profile(e, "g1").await;
    assert_eq!(e.loyalty_account(&g1).await.expect("account").tier.as_deref(), Some("Silver"));
    assert_eq!(events_of(e, &g1, "tier_changed").await.last().expect("upgrade")["to"], "Silver");
    assert_eq!(events_of(e, &g1, "points_earned").await[0]["points"], 120);
    // Below Silver after a refund: kept for 30 days, and the customer is told it is at risk.
    send(e, vec![refund("g1", "g-a", 60.0, 1)]).await;
    let a = e.loyalty_account(&g1).await.expect("account");
    assert_eq!((a.qualifying.points, a.tier.as_deref()), (60, Some("Silver")));
    let until = a.tier_grace_until.expect("grace period");
    assert!((until - now - 30 * DAY).abs() < DAY, "grace ends in 30 days");
    assert_eq!(events_of(e, &g1, "tier_at_risk").await.len(), 1);
    let later = e.loyalty_account_at(&g1, until - DAY).await.expect("account");
    assert_eq!(later.tier.as_deref(), Some("Silver"), "still within the grace period");
    e.sweep_loyalty(until + 1).await.expect("sweep");
    let after = e.loyalty_account_at(&g1, until + 2).await.expect("account");
    assert_eq!((after.tier, after.tier_grace_until), (None, None), "dropped when the grace period ended");
    let changes = events_of(e, &g1, "tier_changed").await;
    assert_eq!((changes.len(), &changes[1]["direction"]), (2, &json!("down")), "{changes:?}");
    // Spend alone reaches Gold.
    send(e, vec![order("g2", "g-b", 600.0, now - DAY)]).await;
    let g2 = profile(e, "g2").await;
    let a = e.loyalty_account(&g2).await.expect("account");
    assert_eq!((a.tier.as_deref(), a.qualifying.spend_cents), (Some("Gold"), 60_000));
    // Tiers listed out of order are refused.
    let reversed = vec![tiers[1].clone(), tiers[0].clone()];
    match e.set_loyalty_tiers(&reversed).await {
        Err(EngineError::Invalid(f)) => assert_eq!(f.field, "tiers[1].minPoints"),
        other => panic!("expected a field error, got {other:?}"),
    }
}

async fn rewards_are_data_and_granted_once_per_period(t: &TestEngine) {
    let e = &t.engine;
    let reward = |name: &str, trigger, event: Option<&str>, points, limit| Reward {
        name: name.into(),
        trigger,
        event: event.map(Into::into),
        points,
        limit,
    };
    e.set_loyalty_rewards(&[
        reward("Welcome", RewardTrigger::Welcome, None, 100, None),
        reward("Birthday", RewardTrigger::Birthday, None, 200, None),
        reward("Review", RewardTrigger::Event, Some("Product Reviewed"), 25, Some(RewardLimit::PerDay)),
    ])
    .await
    .expect("rewards");
    let now = now_millis();
    // The birthday is 40 days out, so the server's own sweep (at start, for today) grants nothing
    // while the test checks the other rewards.
    let birthday_at = now + 40 * DAY;
    let today = chrono::DateTime::from_timestamp_millis(birthday_at).expect("then").format("1990-%m-%d").to_string();
    let track = |event: &str, n: u32, at: i64| json!({"type": "track", "event": event, "userId": "r1", "messageId": format!("r1-{event}-{n}"), "timestamp": iso(at)});
    send(
        e,
        vec![
            json!({"type": "identify", "userId": "r1", "messageId": "r1-id", "traits": {"birthday": today}}),
            track("Signed Up", 1, now),
            track("Signed Up", 2, now),
            track("Product Reviewed", 1, now),
            track("Product Reviewed", 2, now),
            track("Product Reviewed", 3, now - 2 * DAY),
        ],
    )
    .await;
    let r1 = profile(e, "r1").await;
    assert_eq!(balance(e, &r1).await.active, 100 + 25 + 25, "welcome once, a review a day");
    e.sweep_loyalty(birthday_at).await.expect("sweep");
    e.sweep_loyalty(birthday_at + 3_600_000).await.expect("sweep again");
    assert_eq!(balance(e, &r1).await.active, 150 + 200, "a birthday once a year");
    let granted = events_of(e, &r1, "reward_granted").await;
    assert_eq!(granted.len(), 4, "{granted:?}");
    let history = e.loyalty_account(&r1).await.expect("account").history;
    assert!(history.iter().any(|h| h.reason.as_deref() == Some("reward 'Birthday'")), "{history:?}");
    let bad = vec![reward("Review", RewardTrigger::Event, None, 25, None)];
    match e.set_loyalty_rewards(&bad).await {
        Err(EngineError::Invalid(f)) => assert_eq!(f.field, "rewards[0].event"),
        other => panic!("expected a field error, got {other:?}"),
    }
    assert_eq!(e.loyalty_rewards().await.expect("rewards").len(), 3, "a wrong set changes nothing");
}

async fn expiring_points_are_announced_then_expire(t: &TestEngine) {
    let e = &t.engine;
    let now = now_millis();
    // Active since 320 days ago (30-day return window): they expire in 45 days.
    send(e, vec![order("x1", "x-a", 70.0, now - 350 * DAY)]).await;
    let x1 = profile(e, "x1").await;
    e.sweep_loyalty(now).await.expect("sweep");
    assert!(events_of(e, &x1, "points_expiring_soon").await.is_empty(), "45 days out is not soon");
    e.sweep_loyalty(now + 20 * DAY).await.expect("sweep");
    e.sweep_loyalty(now + 21 * DAY).await.expect("sweep");
    let warned = events_of(e, &x1, "points_expiring_soon").await;
    assert_eq!((warned.len(), &warned[0]["points"]), (1, &json!(70)), "told once: {warned:?}");
    assert_eq!(e.loyalty_account_at(&x1, now + 21 * DAY).await.expect("account").expiring_soon, 70);
    e.sweep_loyalty(now + 46 * DAY).await.expect("sweep");
    assert_eq!(e.loyalty_account_at(&x1, now + 46 * DAY).await.expect("account").balance.expired, 70);
    assert_eq!(events_of(e, &x1, "points_expired").await[0]["points"], 70);
    // The feed pages with a cursor.
    let first = e.loyalty_events(0, 1).await.expect("page");
    let rest = e.loyalty_events(first.next, 1000).await.expect("page");
    assert!(rest.events.iter().all(|ev| ev.seq > first.next) && !rest.events.is_empty());
    assert!(matches!(e.loyalty_events(0, 0).await, Err(EngineError::Invalid(f)) if f.field == "limit"));
}

tailor_testkit::both_backends!(
    a_tier_is_held_through_its_grace_period_and_changes_are_events,
    rewards_are_data_and_granted_once_per_period,
    expiring_points_are_announced_then_expire,
    tiers_follow_qualifying_points_and_multiply_earning,
    earning_rules_are_data,
    buy_then_refund_nets_zero_and_partial_returns_are_proportional,
    concurrent_redemptions_never_overspend,
    accounts_follow_merges_and_unmerges,
    any_sequence_keeps_the_ledger_consistent,
    bad_input_gets_a_clear_error_and_changes_nothing,
);
