//! Recommendations over a real socket on a small store whose right answers are known: two
//! groups of customers (dairy and bakery at store S1, soups and snacks at S2), a product nobody
//! bought, one customer who refused personalization.

use std::sync::Arc;

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

const DAIRY: [&str; 6] = ["milk", "butter", "cheese", "yogurt", "cream", "kefir"];
const BAKERY: [&str; 4] = ["bread", "bagel", "croissant", "muffin"];
const SOUP: [&str; 6] = ["tomato-soup", "chicken-soup", "lentil-soup", "broth", "miso-soup", "pea-soup"];
const SNACKS: [&str; 4] = ["chips", "pretzels", "popcorn", "nuts"];

fn category_of(p: &str) -> &'static str {
    if DAIRY.contains(&p) || p == "goat-milk" {
        "DAIRY"
    } else if BAKERY.contains(&p) {
        "BAKERY"
    } else if SOUP.contains(&p) {
        "SOUP"
    } else {
        "SNACKS"
    }
}

/// The catalog (with goat milk, which nobody buys), two stores, and 40 customers' orders.
async fn store_with_history(s: &TestServer) {
    let dir = tempfile::tempdir().expect("dir");
    let mut products = String::from("id,title,brand,department,category,subcategory,price,available\n");
    for p in DAIRY.iter().chain(&BAKERY).chain(&SOUP).chain(&SNACKS).chain(&["goat-milk"]) {
        let title = match *p {
            "milk" => "Whole Milk".to_string(),
            "goat-milk" => "Organic Goat Milk".to_string(),
            other => other.replace('-', " "),
        };
        let sub = if p.contains("milk") { "MILK" } else { category_of(p) };
        products.push_str(&format!("{p},{title},Acme,GROCERY,{},{sub},2.50,true\n", category_of(p)));
    }
    let file = dir.path().join("products.csv");
    std::fs::write(&file, products).expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(
        &file,
        "id,name,kind,region,timezone\nS1,North Store,store,North,UTC\nS2,South Store,store,South,UTC\n",
    )
    .expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");

    let mut batch = Vec::new();
    for c in 0..40 {
        let (items, store): (Vec<&str>, &str) = if c < 20 {
            (DAIRY.iter().chain(&BAKERY).copied().collect(), "S1")
        } else {
            (SOUP.iter().chain(&SNACKS).copied().collect(), "S2")
        };
        // c39 refused personalization; everyone else agreed.
        let consent = c != 39;
        for o in 0..6 {
            let lines: Vec<Value> = (0..4)
                .map(|l| {
                    let p = items[(c * 3 + o * 5 + l * 7) % items.len()];
                    json!({"product_id": p, "quantity": 1, "price": 2.5, "category": category_of(p)})
                })
                .collect();
            batch.push(json!({"type": "track", "event": "Order Completed", "userId": format!("c{c}"),
                "messageId": format!("o-{c}-{o}"), "timestamp": format!("2026-0{}-{:02}T10:00:00Z", 1 + o / 3, 1 + (o % 3) * 9 + c % 5),
                "context": {"channel": "store", "consent": {"categoryPreferences": {"personalization": consent}}},
                "properties": {"order_id": format!("o-{c}-{o}"), "store_id": store, "total": 10.0, "products": lines}}));
        }
    }
    for chunk in batch.chunks(100) {
        let (status, body) = s.send_trusted("/v1/batch", &json!({"batch": chunk})).await;
        assert_eq!(status, 200, "{body}");
    }
    s.engine.sync().await.expect("project");
    s.engine.train_model(Arc::new(|_| {})).await.expect("train");
}

fn ids(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["productId"].as_str().unwrap_or("").to_string())
        .collect()
}

fn codes(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|i| i["reasons"].as_array().cloned().unwrap_or_default())
        .map(|r| r["code"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Polls `path` until its answer satisfies `done` (the event the test waits for: the engine saw
/// the change); returns the last answer, which the caller's assertion shows when it never came.
async fn once(s: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let (status, body) = s.get_until(path, |status, body| status != 200 || done(body)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_product_marked_unavailable_at_a_store_disappears_for_its_shoppers(s: TestServer) {
    store_with_history(&s).await;
    let (status, before) = s.get("/v1/recommendations?user=c1&store=S1&k=10").await;
    assert_eq!(status, 200, "{before}");
    assert!(before["personalized"].as_bool().expect("personalized"));
    let gone = ids(&before)[0].clone();
    assert!(codes(&before).contains(&"in_stock".to_string()));
    let (status, _) = s
        .call(
            "PUT",
            "/v1/availability",
            &s.admin_key,
            Some(&json!({"productId": gone, "locationId": "S1", "available": false})),
        )
        .await;
    assert_eq!(status, 204);
    let after = once(&s, "/v1/recommendations?user=c1&store=S1&k=10", |a| !ids(a).contains(&gone)).await;
    assert!(!ids(&after).contains(&gone), "{gone} still recommended");
    // Shoppers of another store still get it.
    let (_, elsewhere) = s.get("/v1/recommendations?user=c1&store=S2&k=10").await;
    assert!(ids(&elsewhere).contains(&gone), "{elsewhere}");
}

async fn a_new_visitor_with_two_views_in_a_category_gets_that_category(s: TestServer) {
    store_with_history(&s).await;
    for (n, p) in ["tomato-soup", "lentil-soup"].iter().enumerate() {
        let (status, _) = s
            .send("/v1/track", &json!({"anonymousId": "visitor-1", "event": "Product Viewed", "messageId": format!("v{n}"),
                "properties": {"product_id": p}, "context": {"consent": {"categoryPreferences": {"personalization": true}}}}))
            .await;
        assert_eq!(status, 200);
    }
    let answer = once(&s, "/v1/recommendations?anonymousId=visitor-1&k=5", |a| {
        a["personalized"] == json!(true) && codes(a).contains(&"because_you_viewed".to_string())
    })
    .await;
    assert!(answer["personalized"].as_bool().expect("personalized"), "{answer}");
    let top = ids(&answer);
    let soups = top.iter().filter(|p| category_of(p) == "SOUP").count();
    assert!(soups >= 3 && category_of(&top[0]) == "SOUP", "{top:?}");
}

async fn a_product_nobody_bought_is_recommended_through_content(s: TestServer) {
    store_with_history(&s).await;
    let (status, answer) = s.get("/v1/recommendations?context=item&item=milk&k=10").await;
    assert_eq!(status, 200, "{answer}");
    let goat = answer["items"].as_array().expect("items").iter().find(|i| i["productId"] == "goat-milk");
    let goat = goat.unwrap_or_else(|| panic!("goat milk missing: {answer}"));
    assert_eq!(goat["reasons"][0]["code"], "similar");
    assert_eq!(goat["reasons"][0]["productId"], "milk");
}

async fn a_customer_without_personalization_consent_gets_non_personal_results_marked_so(s: TestServer) {
    store_with_history(&s).await;
    let (status, refused) = s.get("/v1/recommendations?user=c39&store=S2&k=8").await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["personalized"], false);
    assert_eq!(refused["consent"]["purpose"], "personalization");
    assert_eq!(refused["consent"]["granted"], false);
    let personal = ["your_taste", "because_you_bought", "because_you_viewed", "buy_again", "due_again"];
    assert!(codes(&refused).iter().all(|c| !personal.contains(&c.as_str())), "{refused}");
    // The same list a stranger gets at that store.
    let (_, stranger) = s.get("/v1/recommendations?user=nobody-knows-me&store=S2&k=8").await;
    assert_eq!(ids(&refused), ids(&stranger));
    assert_eq!(stranger["profileId"], Value::Null);
    // A customer who agreed gets their own items.
    let (_, agreed) = s.get("/v1/recommendations?user=c38&store=S2&k=8").await;
    assert_eq!(agreed["personalized"], true);
    assert!(codes(&agreed).iter().any(|c| personal.contains(&c.as_str())), "{agreed}");
    // Withdrawn: the very next answer (the shopper was just read, and is kept) honours it.
    let profile = agreed["profileId"].as_str().expect("profile id");
    let withdraw = json!({"purpose": "personalization", "granted": false});
    let (status, _) = s.call("PUT", &format!("/v1/profiles/{profile}/consent"), &s.admin_key, Some(&withdraw)).await;
    assert_eq!(status, 204);
    let (_, withdrawn) = s.get("/v1/recommendations?user=c38&store=S2&k=8").await;
    assert_eq!(withdrawn["personalized"], false, "{withdrawn}");
    assert_eq!(ids(&withdrawn), ids(&stranger));
}

async fn a_view_changes_the_next_answer(s: TestServer) {
    store_with_history(&s).await;
    let (_, before) = s.get("/v1/recommendations?user=c2&k=5&novel=true").await;
    assert!(!codes(&before).contains(&"because_you_viewed".to_string()), "{before}");
    let (status, _) = s
        .send(
            "/v1/track",
            &json!({"userId": "c2", "event": "Product Added", "messageId": "c2-add",
            "properties": {"product_id": "miso-soup"}}),
        )
        .await;
    assert_eq!(status, 200);
    let after = once(&s, "/v1/recommendations?user=c2&k=5&novel=true", |a| ids(a) != ids(&before)).await;
    assert_ne!(ids(&after), ids(&before), "unchanged: {after}");
    let viewed: Vec<&Value> = after["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|i| i["reasons"].as_array().expect("reasons"))
        .filter(|r| r["code"] == "because_you_viewed")
        .collect();
    assert!(!viewed.is_empty() && viewed.iter().all(|r| r["productId"] == "miso-soup"), "{after}");
}

async fn merchandising_pins_boosts_and_diversity_apply(s: TestServer) {
    store_with_history(&s).await;
    let rules = json!({"pins": ["nuts"], "maxPerCategory": 2, "boosts": [{"category": "BAKERY", "factor": 3.0}], "exclude": ["cheese"]});
    let (status, body) = s.call("PUT", "/v1/recommendations/rules", &s.admin_key, Some(&rules)).await;
    assert_eq!(status, 200, "{body}");
    let (_, answer) = s.get("/v1/recommendations?user=c1&k=6").await;
    let top = ids(&answer);
    assert_eq!(top[0], "nuts");
    assert_eq!(answer["items"][0]["reasons"][0]["code"], "featured");
    assert!(!top.contains(&"cheese".to_string()));
    for cat in ["DAIRY", "BAKERY", "SOUP", "SNACKS"] {
        assert!(top.iter().filter(|p| category_of(p) == cat).count() <= 2, "{top:?}");
    }
    assert!(codes(&answer).contains(&"promoted".to_string()), "{answer}");
    let (status, bad) =
        s.call("PUT", "/v1/recommendations/rules", &s.admin_key, Some(&json!({"boosts": [{"factor": 2.0}]}))).await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("boosts[0]")));
}

async fn rain_at_a_store_lifts_soups_there(s: TestServer) {
    store_with_history(&s).await;
    let soups = |answer: &Value| ids(answer).iter().filter(|p| category_of(p) == "SOUP").count();
    let (_, dry) = s.get("/v1/recommendations?store=S1&k=10").await;
    let (status, _) = s
        .call(
            "POST",
            "/v1/context/weather",
            &s.admin_key,
            Some(&json!({"storeId": "S1", "condition": "rain", "temperatureC": 9.5})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, answer) = s.get("/v1/recommendations?store=S1&k=10").await;
    assert_eq!(answer["weather"], "rain");
    assert!(soups(&answer) > soups(&dry), "rain lifts soups at S1: {dry} then {answer}");
    let (_, elsewhere) = s.get("/v1/recommendations?store=S2&k=10").await;
    assert_eq!(elsewhere["weather"], Value::Null, "no rain reported at S2: {elsewhere}");
    let soup = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| category_of(i["productId"].as_str().unwrap_or("")) == "SOUP");
    let soup = soup.unwrap_or_else(|| panic!("no soup in the rain: {answer}"));
    assert!(soup["reasons"].as_array().expect("reasons").iter().any(|r| r["code"] == "weather"), "{soup}");
    let (status, bad) = s
        .call("POST", "/v1/context/weather", &s.admin_key, Some(&json!({"storeId": "S1", "condition": "tornado"})))
        .await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("condition")));
}

async fn bad_input_gets_problem_json_and_unknown_users_get_popular_items(s: TestServer) {
    // Before any model: the non-personal fallback answers, not an error.
    let (status, body) = s.get("/v1/recommendations?user=c1").await;
    assert_eq!((status, body["personalized"].as_bool()), (200, Some(false)), "{body}");
    store_with_history(&s).await;
    for (query, status, field) in [
        ("context=shelf", 400, "context"),
        ("k=0", 400, "k"),
        ("k=101", 400, "k"),
        ("k=ten", 400, "k"),
        ("context=item", 400, "item"),
        ("context=item&item=no-such-product", 404, "item"),
        ("store=S9", 404, "store"),
        ("category=TOYS", 404, "category"),
        ("novel=maybe", 400, "novel"),
        ("context=item&item=milk&kind=alike", 400, "kind"),
        ("kind=similar", 400, "kind"),
        ("colour=red", 400, "colour"),
    ] {
        let res = s
            .http
            .get(s.url(&format!("/v1/recommendations?{query}")))
            .bearer_auth(&s.read_key)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status().as_u16(), status, "{query}");
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{query}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let (status, body) = s.get("/v1/recommendations?user=stranger&k=5").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["personalized"], false);
    assert_eq!(ids(&body).len(), 5);
    let (status, _) = s.call("GET", "/v1/recommendations", &s.write_key, None).await;
    assert_eq!(status, 403, "the browser write key cannot read recommendations");
}

async fn retraining_swaps_the_model_without_a_failed_request(s: TestServer) {
    store_with_history(&s).await;
    let first = s.engine.model_version().expect("version");
    let engine = s.engine.clone();
    let training = tokio::spawn(async move { engine.train_model(Arc::new(|_| {})).await });
    let mut answered = 0;
    while !training.is_finished() {
        let (status, body) = s.get("/v1/recommendations?user=c3&k=5").await;
        assert_eq!(status, 200, "{body}");
        answered += 1;
    }
    let summary = training.await.expect("join").expect("train");
    assert_eq!(summary.version, first + 1);
    let (_, body) = s.get("/v1/recommendations?user=c3&k=5").await;
    assert_eq!(body["modelVersion"], first + 1);
    assert!(answered > 0);
    let (_, models) = s.get("/v1/models").await;
    assert_eq!(models["items"].as_array().map(Vec::len), Some(2));
}

async fn a_new_order_changes_the_next_answer(s: TestServer) {
    store_with_history(&s).await;
    // Discovery lists leave out what the shopper bought: buying the first suggestion removes it,
    // even though the first answer put their order history in the cache.
    let path = "/v1/recommendations?user=c2&k=5&novel=true";
    let (_, before) = s.get(path).await;
    let first = ids(&before).first().cloned().expect("a suggestion");
    let (status, body) = s
        .send_trusted(
            "/v1/track",
            &json!({"userId": "c2", "event": "Order Completed", "messageId": "c2-new-order",
            "properties": {"order_id": "c2-new-order", "store_id": "S1", "total": 2.5,
                "products": [{"product_id": first, "quantity": 1, "price": 2.5}]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = once(&s, path, |a| !ids(a).contains(&first)).await;
    assert!(!ids(&after).contains(&first), "{first} still suggested: {after}");
}

async fn a_product_that_runs_out_at_a_store_leaves_its_recommendations(s: TestServer) {
    store_with_history(&s).await;
    let path = "/v1/recommendations?user=c2&k=5&store=S1";
    let (_, before) = s.get(path).await;
    let first = ids(&before).first().cloned().expect("a suggestion");
    let mut events = s.engine.stock_events();
    // One unit at S1, then a shopper holds it: nothing left to promise there.
    let (status, body) = s
        .call(
            "POST",
            "/v1/inventory/adjustments",
            &s.admin_key,
            Some(&json!({"sku": first, "locationId": "S1", "mode": "set", "onHand": 1, "reason": "count"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .call(
            "POST",
            "/v1/reservations",
            &s.admin_key,
            Some(&json!({"lines": [{"sku": first, "quantity": 1}], "store": "S1"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let after = once(&s, path, |a| !ids(a).contains(&first)).await;
    assert!(!ids(&after).contains(&first), "{first} still recommended at S1: {after}");
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push((e.kind, e.sku, e.location_id));
    }
    assert!(kinds.contains(&("out_of_stock", first.clone(), "S1".to_string())), "{kinds:?}");
    // Released, it is back.
    let id = body["id"].as_str().expect("id");
    s.call("POST", &format!("/v1/reservations/{id}/release"), &s.admin_key, None).await;
    let back = once(&s, path, |a| ids(a).contains(&first)).await;
    assert!(ids(&back).contains(&first), "{back}");
}

/// The store of [`store_with_history`] where every order also holds fuel and a coupon line,
/// as in the Complete Journey demo, so they are the best sellers.
async fn store_with_fuel_in_every_basket(s: &TestServer) {
    store_with_history(s).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    std::fs::write(
        &file,
        "id,title,brand,department,category,subcategory,price,available\n\
         gas,Regular Unleaded,Kiosk,KIOSK-GAS,COUPON/MISC ITEMS,GASOLINE-REG UNLEADED,3.10,true\n\
         store-coupon,Store Coupon,,MISC SALES TRAN,COUPON/MISC ITEMS,COUPON,0,true\n",
    )
    .expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let mut batch = Vec::new();
    for c in 0..40 {
        for o in 0..3 {
            let lines: Vec<Value> = ["gas", "store-coupon", if c < 20 { "milk" } else { "broth" }]
                .iter()
                .map(|p| json!({"product_id": p, "quantity": 1, "price": 2.5}))
                .collect();
            batch.push(json!({"type": "track", "event": "Order Completed", "userId": format!("c{c}"),
                "messageId": format!("fuel-{c}-{o}"), "timestamp": format!("2026-03-{:02}T10:00:00Z", 1 + o * 7 + c % 5),
                "context": {"channel": "store"},
                "properties": {"order_id": format!("fuel-{c}-{o}"), "store_id": if c < 20 { "S1" } else { "S2" }, "total": 10.0, "products": lines}}));
        }
    }
    for chunk in batch.chunks(100) {
        let (status, body) = s.send_trusted("/v1/batch", &json!({"batch": chunk})).await;
        assert_eq!(status, 200, "{body}");
    }
    s.engine.sync().await.expect("project");
    s.engine.train_model(Arc::new(|_| {})).await.expect("train");
}

async fn fuel_and_coupons_never_appear_unless_the_retailer_says_so(s: TestServer) {
    store_with_fuel_in_every_basket(&s).await;
    let fuel = ["gas".to_string(), "store-coupon".to_string()];
    // A visitor's popular and trending lists, a store's, a customer's and a cart's.
    for path in [
        "/v1/recommendations?k=20",
        "/v1/recommendations?store=S1&k=20",
        "/v1/recommendations?user=c1&k=20",
        "/v1/recommendations?user=c1&context=cart&cart=milk&k=20",
        "/v1/recommendations?context=item&item=milk&k=20",
    ] {
        let (status, answer) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert!(!ids(&answer).is_empty(), "{path}: {answer}");
        assert!(!ids(&answer).iter().any(|i| fuel.contains(i)), "{path}: {answer}");
    }
    // The retailer turns the filter off: the best seller is back.
    let (status, body) =
        s.call("PUT", "/v1/recommendations/rules", &s.admin_key, Some(&json!({"nonMerchandise": []}))).await;
    assert_eq!(status, 200, "{body}");
    let back = once(&s, "/v1/recommendations?k=20", |a| ids(a).contains(&fuel[0])).await;
    assert!(ids(&back).contains(&fuel[0]), "{back}");
    let (status, bad) =
        s.call("PUT", "/v1/recommendations/rules", &s.admin_key, Some(&json!({"nonMerchandise": ["fuel", ""]}))).await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("nonMerchandise[1]")), "{bad}");
}

async fn an_item_page_shows_substitutes_or_complements(s: TestServer) {
    store_with_history(&s).await;
    let categories =
        |answer: &Value| -> Vec<String> { ids(answer).iter().map(|p| category_of(p).to_string()).collect() };
    let (status, similar) = s.get("/v1/recommendations?context=item&item=milk&kind=similar&k=5").await;
    assert_eq!(status, 200, "{similar}");
    assert!(!ids(&similar).is_empty() && categories(&similar).iter().all(|c| c == "DAIRY"), "{similar}");
    let (status, goes_with) = s.get("/v1/recommendations?context=item&item=milk&kind=goes_with&k=5").await;
    assert_eq!(status, 200, "{goes_with}");
    assert!(!ids(&goes_with).is_empty() && categories(&goes_with).iter().all(|c| c != "DAIRY"), "{goes_with}");
    assert!(codes(&goes_with).contains(&"bought_together".to_string()), "{goes_with}");
}

tailor_testkit::http_both_backends!(
    a_product_marked_unavailable_at_a_store_disappears_for_its_shoppers,
    a_new_visitor_with_two_views_in_a_category_gets_that_category,
    a_product_nobody_bought_is_recommended_through_content,
    a_customer_without_personalization_consent_gets_non_personal_results_marked_so,
    a_view_changes_the_next_answer,
    merchandising_pins_boosts_and_diversity_apply,
    rain_at_a_store_lifts_soups_there,
    bad_input_gets_problem_json_and_unknown_users_get_popular_items,
    retraining_swaps_the_model_without_a_failed_request,
    a_new_order_changes_the_next_answer,
    a_product_that_runs_out_at_a_store_leaves_its_recommendations,
    fuel_and_coupons_never_appear_unless_the_retailer_says_so,
    an_item_page_shows_substitutes_or_complements,
);
