use std::collections::BTreeSet;

use serde_json::json;

use crate::guard::{judge, quiet_until, SendFacts, Verdict};
use crate::journey::{Guardrails, JourneyDef};
use crate::machine::{after, enter, resolve, Decision, Facts, Position};

fn templates() -> BTreeSet<String> {
    ["cart_reminder", "cart_discount"].into_iter().map(String::from).collect()
}

fn cart_journey() -> JourneyDef {
    serde_json::from_value(json!({
        "name": "Abandoned cart",
        "trigger": {"event": "Product Added"},
        "steps": [
            {"id": "wait1", "type": "wait", "seconds": 3600},
            {"id": "reminder", "type": "send", "channel": "email", "template": "cart_reminder"},
            {"id": "wait2", "type": "wait", "seconds": 82800},
            {"id": "check", "type": "branch", "condition": {"type": "cartNotEmpty"}, "then": "discount", "otherwise": "done"},
            {"id": "discount", "type": "send", "channel": "email", "template": "cart_discount", "options": {"discountPercent": 10, "similar": 2}},
            {"id": "done", "type": "exit"}
        ],
        "exitOn": ["Order Completed"],
        "restartOn": ["Product Added", "Product Removed"]
    }))
    .expect("parse")
}

#[test]
fn the_cart_journey_checks_and_walks() {
    let def = cart_journey();
    def.check(&templates()).expect("valid");
    let facts = Facts { cart_lines: 1, ..Facts::default() };
    assert_eq!(enter(&def, 0, &facts), Decision::Wait(Position { step: 1, due_at: 3_600_000 }));
    assert_eq!(resolve(&def, Some(1), 3_600_000, &facts), Decision::Act(1));
    assert_eq!(after(&def, 1, 3_600_000, &facts), Decision::Wait(Position { step: 3, due_at: 86_400_000 }));
    assert_eq!(resolve(&def, Some(3), 86_400_000, &facts), Decision::Act(4));
    let empty = Facts::default();
    assert_eq!(resolve(&def, Some(3), 86_400_000, &empty), Decision::End("exit step"));
    assert_eq!(after(&def, 4, 86_400_000, &facts), Decision::End("exit step"));
}

#[test]
fn bad_definitions_are_refused_naming_the_field() {
    let t = templates();
    let mut def = cart_journey();
    def.steps[5].kind = crate::StepKind::Wait { seconds: 60 };
    def.steps[5].next = Some("check".into());
    let e = def.check(&t).expect_err("a cycle");
    assert!(e.field.starts_with("steps["), "{e:?}");
    assert!(e.message.contains("loop"), "{e:?}");

    let mut def = cart_journey();
    def.trigger.event = "Product Teleported".into();
    assert_eq!(def.check(&t).expect_err("unknown").field, "trigger.event");

    let mut def = cart_journey();
    def.steps[0].kind = crate::StepKind::Webhook { url: "ftp://example.com/hook".into() };
    assert_eq!(def.check(&t).expect_err("not http").field, "steps[0].url");

    let mut def = cart_journey();
    def.steps[1].kind = crate::StepKind::Send {
        channel: crate::SendChannel::Email,
        template: "nope".into(),
        options: Default::default(),
    };
    assert_eq!(def.check(&t).expect_err("template").field, "steps[1].template");

    let mut def = cart_journey();
    def.steps[0].kind = crate::StepKind::Wait { seconds: 0 };
    assert_eq!(def.check(&t).expect_err("zero wait").field, "steps[0].seconds");

    let g = Guardrails { per_day: 0, ..Guardrails::default() };
    assert_eq!(g.check().expect_err("cap of 0").field, "perDay");
    let g = Guardrails { per_week: 0, ..Guardrails::default() };
    assert_eq!(g.check().expect_err("cap of 0").field, "perWeek");
    let g = Guardrails { default_time_zone: "Mars/Olympus".into(), ..Guardrails::default() };
    assert_eq!(g.check().expect_err("zone").field, "defaultTimeZone");
}

#[test]
fn quiet_hours_wait_for_the_local_morning() {
    let g = Guardrails::default();
    // 2026-12-01 22:30 in New York is 03:30 UTC on the 2nd.
    let late = chrono::DateTime::parse_from_rfc3339("2026-12-02T03:30:00Z").expect("t").timestamp_millis();
    let ny: chrono_tz::Tz = "America/New_York".parse().expect("tz");
    let morning = chrono::DateTime::parse_from_rfc3339("2026-12-02T13:00:00Z").expect("t").timestamp_millis();
    assert_eq!(quiet_until(&g, ny, late), Some(morning));
    // The same instant is 03:30 in London: still quiet, until 08:00 there.
    let london: chrono_tz::Tz = "Europe/London".parse().expect("tz");
    let at8 = chrono::DateTime::parse_from_rfc3339("2026-12-02T08:00:00Z").expect("t").timestamp_millis();
    assert_eq!(quiet_until(&g, london, late), Some(at8));
    assert_eq!(quiet_until(&g, london, at8), None);
    let facts = SendFacts {
        consent: true,
        purpose: "marketing_email",
        suppressed: false,
        has_address: true,
        sent_day: 0,
        sent_week: 0,
        time_zone: Some("America/New_York"),
    };
    assert!(matches!(judge(&g, &facts, late), Verdict::Defer(t, _) if t == morning));
    assert_eq!(
        judge(&g, &SendFacts { consent: false, ..facts.clone() }, morning),
        Verdict::Skip("no marketing_email consent at send time".into())
    );
    assert!(
        matches!(judge(&g, &SendFacts { sent_day: 2, ..facts.clone() }, morning), Verdict::Skip(r) if r.contains("cap"))
    );
    assert_eq!(judge(&g, &facts, morning), Verdict::Send);
}

#[test]
fn webhook_signatures_are_hmac_sha256() {
    // RFC 4231 test case 2.
    assert_eq!(
        crate::channels::signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn waiting_journey() -> JourneyDef {
    serde_json::from_value(json!({
        "name": "Wait for the order",
        "trigger": {"event": "Checkout Started"},
        "steps": [
            {"id": "pause", "type": "wait", "seconds": 60},
            {"id": "order", "type": "waitUntil", "event": "Order Completed", "seconds": 3600, "then": "thank", "otherwise": "nudge"},
            {"id": "nudge", "type": "send", "channel": "email", "template": "cart_reminder", "next": "done"},
            {"id": "thank", "type": "grantPoints", "points": 50, "reason": "thanks for ordering"},
            {"id": "mark", "type": "updateTrait", "name": "bought_after_nudge", "value": true},
            {"id": "done", "type": "exit"}
        ]
    }))
    .expect("parse")
}

#[test]
fn wait_until_moves_on_with_the_event_or_takes_the_other_way_at_the_timeout() {
    use crate::machine::{arrive, due, on_event};
    let def = waiting_journey();
    def.check(&templates()).expect("valid");
    let facts = Facts::default();
    // A wait before a wait keeps the position on the first wait.
    assert_eq!(enter(&def, 0, &facts), Decision::Wait(Position { step: 0, due_at: 60_000 }));
    // When it is over, the customer waits for the order until the timeout.
    assert_eq!(due(&def, Some(0), 60_000, &facts), Decision::Wait(Position { step: 1, due_at: 3_660_000 }));
    // The order in time: on to the grant, due now.
    assert_eq!(
        on_event(&def, Some(1), 3_660_000, "Order Completed", 100_000),
        Some(Decision::Wait(Position { step: 3, due_at: 100_000 }))
    );
    assert_eq!(due(&def, Some(3), 100_000, &facts), Decision::Act(3));
    assert_eq!(after(&def, 3, 100_000, &facts), Decision::Act(4));
    // Another event, or the order after the timeout, moves nothing.
    assert_eq!(on_event(&def, Some(1), 3_660_000, "Product Added", 100_000), None);
    assert_eq!(on_event(&def, Some(1), 3_660_000, "Order Completed", 3_660_001), None);
    assert_eq!(on_event(&def, Some(2), 3_660_000, "Order Completed", 100_000), None);
    // The timeout: the other way.
    assert_eq!(due(&def, Some(1), 3_660_000, &facts), Decision::Act(2));
    assert_eq!(arrive(&def, 1, 0), Decision::Wait(Position { step: 1, due_at: 3_600_000 }));
}

#[test]
fn new_steps_are_checked_naming_the_field() {
    let t = templates();
    let cases: Vec<(usize, serde_json::Value, &str)> = vec![
        (3, json!({"id": "thank", "type": "grantPoints", "points": 0}), "steps[3].points"),
        (3, json!({"id": "thank", "type": "grantPoints", "points": 100_001}), "steps[3].points"),
        (3, json!({"id": "thank", "type": "grantPoints", "points": 5, "reason": " "}), "steps[3].reason"),
        (3, json!({"id": "thank", "type": "issueOffer", "percentOff": 0, "validDays": 7}), "steps[3].percentOff"),
        (3, json!({"id": "thank", "type": "issueOffer", "percentOff": 10, "validDays": 91}), "steps[3].validDays"),
        (4, json!({"id": "mark", "type": "updateTrait", "name": "consent", "value": true}), "steps[4].name"),
        (4, json!({"id": "mark", "type": "updateTrait", "name": "a b", "value": true}), "steps[4].name"),
        (4, json!({"id": "mark", "type": "updateTrait", "name": "tags", "value": [1]}), "steps[4].value"),
        (
            1,
            json!({"id": "order", "type": "waitUntil", "event": "Order Teleported", "seconds": 60, "then": "thank", "otherwise": "nudge"}),
            "steps[1].event",
        ),
        (
            1,
            json!({"id": "order", "type": "waitUntil", "event": "Order Completed", "seconds": 0, "then": "thank", "otherwise": "nudge"}),
            "steps[1].seconds",
        ),
        (
            1,
            json!({"id": "order", "type": "waitUntil", "event": "Order Completed", "seconds": 60, "then": "nowhere", "otherwise": "nudge"}),
            "steps[1].then",
        ),
    ];
    for (i, step, field) in cases {
        let mut def = waiting_journey();
        def.steps[i] = serde_json::from_value(step).expect("step");
        assert_eq!(def.check(&t).expect_err(field).field, field);
    }
    // A wait-until that leads back to itself is a loop.
    let mut def = waiting_journey();
    def.steps[2].next = Some("order".into());
    assert!(def.check(&t).expect_err("loop").message.contains("loop"));
}
