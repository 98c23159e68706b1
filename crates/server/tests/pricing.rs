//! Pricing over a real socket: one list price on every channel (a channel differs only by a
//! declared promotion), guardrails on every proposed price with each clamp recorded, repricing
//! from market conditions, personal offers that see behaviour and never demographics, and bad
//! input answered with problem+json naming the field, changing nothing.

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

async fn priced(s: TestServer) -> TestServer {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(
        &file,
        "id,title,price,category,currency\nMILK,Milk 1l,1.49,DAIRY,USD\nSOUP,Tomato soup,2.00,CANNED,USD\n",
    )
    .expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    s
}

async fn profile(s: &TestServer, user: &str) -> String {
    let (_, found) = s.get(&format!("/v1/profiles/lookup?userId={user}")).await;
    found["id"].as_str().expect("profile").to_string()
}

async fn quote(s: &TestServer, query: &str) -> Value {
    let (status, body) = s.get(&format!("/v1/prices?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"][0].clone()
}

async fn one_list_price_on_every_channel_unless_a_channel_promotion_is_declared(s: TestServer) {
    let s = priced(s).await;
    let promo = json!({"id": "dairy10", "name": "10% off dairy", "discount": {"type": "percentage", "percent": 10},
        "categories": ["DAIRY"]});
    let (status, body) = s.call("PUT", "/v1/promotions/dairy10", &s.admin_key, Some(&promo)).await;
    assert_eq!(status, 200, "{body}");
    let mut seen = Vec::new();
    for channel in ["web", "app", "store", "support"] {
        let q = quote(&s, &format!("sku=MILK&channel={channel}")).await;
        seen.push((q["listCents"].as_i64(), q["priceCents"].as_i64()));
    }
    assert!(seen.iter().all(|x| *x == (Some(149), Some(134))), "the same on every channel: {seen:?}");
    // A declared web-only promotion changes the web price only, and says so.
    let web = json!({"id": "web5", "name": "Web saver", "discount": {"type": "amount", "cents": 20}, "skus": ["MILK"],
        "channels": ["web"], "priority": 5, "stackable": true});
    let (status, _) = s.call("PUT", "/v1/promotions/web5", &s.admin_key, Some(&web)).await;
    assert_eq!(status, 200);
    let on_web = quote(&s, "sku=MILK&channel=web").await;
    let in_store = quote(&s, "sku=MILK&channel=store").await;
    assert_eq!((on_web["listCents"].as_i64(), in_store["listCents"].as_i64()), (Some(149), Some(149)));
    assert_eq!(in_store["priceCents"], 134);
    assert_eq!(on_web["priceCents"], 129, "web5 (priority 5) applies; dairy10 does not stack with it: {on_web}");
    assert_eq!(on_web["promotions"][0]["channelOnly"], true, "{on_web}");
    assert!(on_web["explanation"].to_string().contains("web only"), "{on_web}");
    // The bulk form.
    let (_, both) = s.get("/v1/prices?sku=MILK,SOUP&channel=app").await;
    assert_eq!(both["items"].as_array().map(Vec::len), Some(2), "{both}");
}

async fn every_proposed_price_passes_the_guardrails_and_each_clamp_is_recorded(s: TestServer) {
    let s = priced(s).await;
    let rails =
        json!({"unitCostCents": 120, "minMargin": 0.1, "ceilingCents": 300, "maxDailyChange": 0.1, "endingCents": 99});
    let (status, body) = s.call("PUT", "/v1/pricing/guardrails/SOUP", &s.admin_key, Some(&rails)).await;
    assert_eq!(status, 200, "{body}");
    let (status, d) = s
        .call("PUT", "/v1/prices/SOUP", &s.admin_key, Some(&json!({"currency": "USD", "cents": 400, "reason": "test"})))
        .await;
    assert_eq!(status, 200, "{d}");
    // From 2.00, at most +10% a day, ending in .99: 1.99.
    assert_eq!((d["proposedCents"].as_i64(), d["cents"].as_i64()), (Some(400), Some(199)), "{d}");
    let rules: Vec<&str> = d["clamps"].as_array().expect("clamps").iter().filter_map(|c| c["rule"].as_str()).collect();
    assert_eq!(rules, ["max_daily_change", "ending"], "{d}");
    assert_eq!(quote(&s, "sku=SOUP&channel=web").await["listCents"], 199);
    // A competitor below: repricing follows it down to the floor (cost + 10%) and no further.
    let (status, _) = s
        .call(
            "POST",
            "/v1/pricing/market",
            &s.admin_key,
            Some(&json!({"sku": "SOUP", "source": "MegaMart", "cents": 150})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, d) = s.call("POST", "/v1/prices/SOUP/reprice", &s.admin_key, None).await;
    assert_eq!(status, 200, "{d}");
    assert!(d["reason"].as_str().unwrap_or("").contains("MegaMart"), "{d}");
    assert!(d["cents"].as_i64().expect("cents") >= 132, "never below cost × 1.1: {d}");
    let (_, history) = s.get("/v1/prices/SOUP/history").await;
    assert_eq!(history["items"].as_array().map(Vec::len), Some(2), "{history}");

    // Bad input changes nothing.
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        ("PUT", "/v1/prices/SOUP", json!({"currency": "USD", "cents": -5}), 400, "cents"),
        ("PUT", "/v1/prices/SOUP", json!({"currency": "EUR", "cents": 180}), 400, "currency"),
        ("PUT", "/v1/prices/SOUP", json!({"currency": "usd", "cents": 180}), 400, "currency"),
        ("PUT", "/v1/prices/NOPE", json!({"currency": "USD", "cents": 180}), 404, "sku"),
        ("PUT", "/v1/pricing/guardrails/SOUP", json!({"unitCostCents": 500, "ceilingCents": 300}), 400, "ceilingCents"),
        ("PUT", "/v1/pricing/guardrails/SOUP", json!({"mapCents": -1}), 400, "mapCents"),
        (
            "PUT",
            "/v1/promotions/x",
            json!({"id": "x", "name": "X", "discount": {"type": "percentage", "percent": 150}, "skus": ["SOUP"]}),
            400,
            "promotion.discount.percent",
        ),
        ("POST", "/v1/pricing/market", json!({"sku": "SOUP", "source": "MegaMart", "cents": -1}), 400, "cents"),
    ];
    for (method, path, body, status, field) in cases {
        let (got, problem) = s.call(method, path, &s.admin_key, Some(&body)).await;
        assert_eq!((got, problem["field"].as_str()), (status, Some(field)), "{method} {path} {body}: {problem}");
    }
    // A markdown plan for SOUP may only use prices within its guardrails.
    let plan = |prices: Value| {
        json!({"sku": "SOUP", "stock": 400, "periods": 14, "prices": prices, "referencePrice": 2.99, "unitCost": 1.2,
            "salvageValue": 0.2, "demand": {"model": "constant_elasticity", "baseDemand": 10, "elasticity": -2.0}})
    };
    let (status, problem) =
        s.call("POST", "/v1/pricing/markdown", &s.admin_key, Some(&plan(json!([2.99, 1.00])))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("prices[1]")), "{problem}");
    let (status, ok) = s.call("POST", "/v1/pricing/markdown", &s.admin_key, Some(&plan(json!([2.99, 1.99])))).await;
    assert_eq!(status, 200, "{ok}");
    let steps = ok["steps"].as_array().expect("steps");
    assert!(!steps.is_empty() && steps.iter().all(|s| s["price"] == 2.99 || s["price"] == 1.99), "{ok}");
    assert_eq!(steps.last().expect("step")["price"], 1.99, "400 units in 14 days are marked down: {ok}");

    let (_, after) = s.get("/v1/prices/SOUP/history").await;
    assert_eq!(after, history, "nothing changed");
    let (_, rails_now) = s.get("/v1/pricing/guardrails/SOUP").await;
    assert_eq!(rails_now["ceilingCents"], 300);
    for (query, field) in
        [("sku=NOPE&channel=web", "sku"), ("sku=SOUP&channel=fax", "channel"), ("sku=SOUP&quantity=0", "quantity")]
    {
        let (status, problem) = s.get(&format!("/v1/prices?{query}")).await;
        assert!(status == 400 || status == 404, "{query}: {status}");
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
}

async fn personal_offers_see_behaviour_never_demographics_and_need_consent(s: TestServer) {
    let s = priced(s).await;
    let day = 86_400_000i64;
    let now = chrono::Utc::now().timestamp_millis();
    let iso = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).expect("time").to_rfc3339();
    // Two customers with the same weekly habit, lapsed 40 days ago; one has demographic traits.
    for (user, traits) in [
        ("same-a", json!({"email": "a@example.com"})),
        (
            "same-b",
            json!({"email": "b@example.com", "age": "45-54", "income": "125-149K", "household_size": "5+", "kids": 3}),
        ),
    ] {
        let mut batch =
            vec![json!({"type": "identify", "userId": user, "messageId": format!("{user}-id"), "traits": traits})];
        for i in 0..6 {
            let at = now - (40 + 7 * i) * day;
            batch.push(
                json!({"type": "track", "event": "Order Completed", "userId": user, "messageId": format!("{user}-o{i}"),
                "timestamp": iso(at), "properties": {"order_id": format!("{user}-o{i}"), "total": 40.0}}),
            );
        }
        let (status, body) = s.send_trusted("/v1/batch", &json!({"batch": batch})).await;
        assert_eq!(status, 200, "{body}");
    }
    s.engine.sync().await.expect("project");
    let (a, b) = (profile(&s, "same-a").await, profile(&s, "same-b").await);
    // Without consent: no offers, and the answer says why.
    let q = quote(&s, &format!("sku=SOUP&channel=app&user={a}")).await;
    assert_eq!((q["offers"].as_array().map(Vec::len), &q["consentPurpose"]), (Some(0), &Value::Null), "{q}");
    assert!(q["explanation"].to_string().contains("personalization"), "{q}");
    for p in [&a, &b] {
        let (status, _) = s
            .call(
                "PUT",
                &format!("/v1/profiles/{p}/consent"),
                &s.admin_key,
                Some(&json!({"purpose": "personalization", "granted": true})),
            )
            .await;
        assert_eq!(status, 204);
    }
    let qa = quote(&s, &format!("sku=SOUP&channel=app&user={a}")).await;
    let qb = quote(&s, &format!("sku=SOUP&channel=app&user={b}")).await;
    assert_eq!(qa["consentPurpose"], "personalization");
    assert_eq!(qa["offers"][0]["kind"], "lapsing", "{qa}");
    assert!(qa["offers"][0]["reason"].as_str().unwrap_or("").contains("every 7 days"), "{qa}");
    assert_eq!(qa["offers"], qb["offers"], "demographics change nothing");
    // Shown again while valid, not issued twice: the cap counts what was issued.
    assert_eq!(quote(&s, &format!("sku=SOUP&channel=app&user={a}")).await["offers"], qa["offers"]);
    let (status, problem) = s.get("/v1/prices?sku=SOUP&user=nobody").await;
    assert_eq!((status, problem["field"].as_str()), (404, Some("user")), "{problem}");
}

async fn limits_hold_across_repeated_changes_promotions_and_concurrent_quotes(s: TestServer) {
    let s = priced(s).await;
    let rails = json!({"unitCostCents": 130, "minMargin": 0.1, "maxDailyChange": 0.1});
    let (status, _) = s.call("PUT", "/v1/pricing/guardrails/MILK", &s.admin_key, Some(&rails)).await;
    assert_eq!(status, 200);
    // Three raises in a row still move at most 10% from the day before (1.49 → 1.63).
    for _ in 0..3 {
        let (status, d) =
            s.call("PUT", "/v1/prices/MILK", &s.admin_key, Some(&json!({"currency": "USD", "cents": 300}))).await;
        assert_eq!((status, d["cents"].as_i64()), (200, Some(163)), "{d}");
    }
    // A 50% promotion is held at the floor (cost 1.30 + 10% = 1.43), and says so.
    let promo = json!({"id": "half", "name": "Half price", "discount": {"type": "percentage", "percent": 50}, "skus": ["MILK"]});
    let (status, _) = s.call("PUT", "/v1/promotions/half", &s.admin_key, Some(&promo)).await;
    assert_eq!(status, 200);
    let q = quote(&s, "sku=MILK&channel=web&quantity=2").await;
    assert_eq!((q["priceCents"].as_i64(), q["totalCents"].as_i64()), (Some(143), Some(286)), "{q}");
    assert!(q["explanation"].to_string().contains("guardrails"), "{q}");
    // A frozen product cannot be experimented on; a competitor below half the price is not followed.
    let (status, _) = s.call("PUT", "/v1/pricing/guardrails/SOUP", &s.admin_key, Some(&json!({"frozen": true}))).await;
    assert_eq!(status, 200);
    let (status, problem) =
        s.call("PUT", "/v1/pricing/experiments/SOUP", &s.admin_key, Some(&json!({"pricesCents": [180, 200]}))).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("pricesCents")), "{problem}");
    let (status, _) = s.call("PUT", "/v1/pricing/guardrails/SOUP", &s.admin_key, Some(&json!({}))).await;
    assert_eq!(status, 200);
    let (status, _) = s
        .call("POST", "/v1/pricing/market", &s.admin_key, Some(&json!({"sku": "SOUP", "source": "Typo", "cents": 20})))
        .await;
    assert_eq!(status, 204);
    let (_, d) = s.call("POST", "/v1/prices/SOUP/reprice", &s.admin_key, None).await;
    assert_eq!(d["cents"], 200, "{d}");
    assert!(d["reason"].as_str().unwrap_or("").contains("not followed"), "{d}");

    // Concurrent quotes for a lapsing customer issue one offer, not one each.
    let day = 86_400_000i64;
    let now = chrono::Utc::now().timestamp_millis();
    let mut batch =
        vec![json!({"type": "identify", "userId": "lapsed", "traits": {"consent": {"personalization": true}}})];
    for i in 0..6 {
        let at = chrono::DateTime::from_timestamp_millis(now - (40 + 7 * i) * day).expect("time").to_rfc3339();
        batch.push(json!({"type": "track", "event": "Order Completed", "userId": "lapsed", "timestamp": at,
            "properties": {"order_id": format!("lapsed-{i}"), "total": 30.0}}));
    }
    let (status, _) = s.send_trusted("/v1/batch", &json!({"batch": batch})).await;
    assert_eq!(status, 200);
    s.engine.sync().await.expect("project");
    let user = profile(&s, "lapsed").await;
    let path = format!("/v1/prices?sku=SOUP&channel=app&user={user}");
    let answers = futures_util::future::join_all((0..6).map(|_| s.get(&path))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let after = quote(&s, &format!("sku=SOUP&channel=app&user={user}")).await;
    assert_eq!(after["offers"].as_array().map(Vec::len), Some(1), "issued once: {after}");
}

/// PUTs a raw body (for numbers JSON values cannot carry) with the admin key.
async fn put_raw(s: &TestServer, path: &str, body: &str) -> (u16, Value) {
    let res = s
        .http
        .put(s.url(path))
        .bearer_auth(&s.admin_key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn category_elasticities_are_stored_checked_and_become_the_prior_of_new_experiments(s: TestServer) {
    let s = priced(s).await;
    let path = "/v1/pricing/elasticities/CANNED";
    let (status, problem) = s.get(path).await;
    assert_eq!(status, 404, "no estimate yet: {problem}");
    // Without a stored estimate an experiment starts from the weak prior.
    let body = json!({"pricesCents": [180, 200, 220]});
    let (status, weak) = s.call("PUT", "/v1/pricing/experiments/SOUP", &s.admin_key, Some(&body)).await;
    assert_eq!(status, 200, "{weak}");
    assert!(!weak["prior"]["source"].as_str().unwrap_or("").contains("CANNED"), "{weak}");
    let (status, _) = s.call("DELETE", "/v1/pricing/experiments/SOUP", &s.admin_key, None).await;
    assert_eq!(status, 200);

    let estimate = json!({"mean": -1.8, "meanSd": 0.2, "tau": 0.4, "products": 40});
    // A read key cannot set it.
    let (status, _) = s.call("PUT", path, &s.read_key, Some(&estimate)).await;
    assert_eq!(status, 403);
    // Bad input is refused naming the field, and stores nothing.
    let with = |field: &str, value: Value| {
        let mut e = estimate.clone();
        e[field] = value;
        e
    };
    let cases = [
        (with("mean", json!(0.5)), "mean"),
        (with("mean", json!(-25.0)), "mean"),
        (with("mean", json!("NaN")), "mean"),
        (with("meanSd", json!(-0.1)), "meanSd"),
        (with("meanSd", json!(11.0)), "meanSd"),
        (with("tau", json!(f64::MAX)), "tau"),
        (with("products", json!(0)), "products"),
        (with("products", json!(-3)), "products"),
        (json!({"mean": -1.8, "meanSd": 0.2, "tau": 0.4}), "products"),
        (with("colour", json!(1)), "colour"),
    ];
    for (body, field) in cases {
        let (status, problem) = s.call("PUT", path, &s.admin_key, Some(&body)).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{body}: {problem}");
    }
    // A number no f64 holds is named at its key; NaN is no JSON at all.
    for (raw, field) in [
        (r#"{"mean": -1e999, "meanSd": 0.2, "tau": 0.4, "products": 40}"#, "mean"),
        (r#"{"mean": -1.8, "meanSd": 0.2, "tau": 1e400, "products": 40}"#, "tau"),
        (r#"{"mean": NaN, "meanSd": 0.2, "tau": 0.4, "products": 40}"#, "body"),
    ] {
        let (status, problem) = put_raw(&s, path, raw).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)), "{raw}: {problem}");
    }
    let long = format!("/v1/pricing/elasticities/{}", "C".repeat(201));
    let (status, problem) = s.call("PUT", &long, &s.admin_key, Some(&estimate)).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("category")), "{problem}");
    let (status, _) = s.get(path).await;
    assert_eq!(status, 404, "nothing was stored");

    // A good estimate is stored, read back with a read key, and replaced by the next one.
    let (status, stored) = s.call("PUT", path, &s.admin_key, Some(&estimate)).await;
    assert_eq!((status, &stored), (200, &estimate));
    let (status, read) = s.get(path).await;
    assert_eq!((status, &read), (200, &estimate));
    let newer = with("mean", json!(-2.4));
    let (status, _) = s.call("PUT", path, &s.admin_key, Some(&newer)).await;
    assert_eq!(status, 200);
    assert_eq!(s.get(path).await.1["mean"], -2.4);
    assert_eq!(s.get("/v1/pricing/elasticities/DAIRY").await.0, 404, "one category's estimate only");
    // A new experiment on one of its products starts from it.
    let (status, e) = s.call("PUT", "/v1/pricing/experiments/SOUP", &s.admin_key, Some(&body)).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["prior"]["mean"], -2.4, "{e}");
    assert!(e["prior"]["source"].as_str().unwrap_or("").contains("CANNED"), "{e}");
}

tailor_testkit::http_both_backends!(
    one_list_price_on_every_channel_unless_a_channel_promotion_is_declared,
    every_proposed_price_passes_the_guardrails_and_each_clamp_is_recorded,
    personal_offers_see_behaviour_never_demographics_and_need_consent,
    limits_hold_across_repeated_changes_promotions_and_concurrent_quotes,
    category_elasticities_are_stored_checked_and_become_the_prior_of_new_experiments,
);
