//! Product search over a real socket, on SQLite and PostgreSQL: words, typos and synonyms find
//! the right products with facets and reasons; a customer's purchases order the results only
//! with their consent, and not at all once they are erased; catalog and stock changes reach
//! search at once; bad input is a 4xx naming the parameter.

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

/// id, title, brand, category, subcategory, size, price.
const CATALOG: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("a-milk", "Whole Milk", "Acme", "DAIRY", "FLUID MILK", "1 GAL", "3.49"),
    ("b-milk", "Whole Milk", "Brookside", "DAIRY", "FLUID MILK", "1 GAL", "3.49"),
    ("oat-milk", "Oat Milk Original", "Oatly", "DAIRY", "MILK ALTERNATIVES", "64 OZ", "4.99"),
    ("banana", "Bananas", "Acme", "PRODUCE", "TROPICAL FRUIT", "1 LB", "0.59"),
    ("cola", "Cola Soft Drink", "Fizz", "BEVERAGES", "SOFT DRINKS", "12 OZ", "1.25"),
    ("cheddar", "Sharp Cheddar Cheese", "Acme", "DAIRY", "CHEESE", "8 OZ", "5.99"),
    ("avocado", "Hass Avocados", "Green", "PRODUCE", "TROPICAL FRUIT", "EACH", "1.50"),
];

async fn import_catalog(s: &TestServer, rows: &[(&str, &str, &str, &str, &str, &str, &str)]) {
    let dir = tempfile::tempdir().expect("dir");
    let mut csv = String::from("id,title,brand,department,category,subcategory,size,price,available\n");
    for (id, title, brand, cat, sub, size, price) in rows {
        csv.push_str(&format!("{id},{title},{brand},GROCERY,{cat},{sub},{size},{price},true\n"));
    }
    let file = dir.path().join("products.csv");
    std::fs::write(&file, csv).expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone\nS1,North Store,store,North,UTC\n").expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
}

fn ids(body: &Value) -> Vec<&str> {
    body["items"].as_array().into_iter().flatten().filter_map(|i| i["productId"].as_str()).collect()
}

fn codes(item: &Value) -> Vec<&str> {
    item["reasons"].as_array().into_iter().flatten().filter_map(|r| r["code"].as_str()).collect()
}

async fn words_typos_and_synonyms_find_products_with_facets_and_reasons(s: TestServer) {
    import_catalog(&s, CATALOG).await;
    let (status, body) = s.get("/v1/search?q=BANANAS").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body).first(), Some(&"banana"), "{body}");
    assert!(codes(&body["items"][0]).contains(&"matched"), "{body}");
    assert_eq!(body["personalized"], false);

    // A typo: "chedar" is one letter from cheddar.
    let (_, body) = s.get("/v1/search?q=chedar").await;
    assert_eq!(ids(&body), ["cheddar"], "{body}");
    assert!(codes(&body["items"][0]).contains(&"typo"), "{body}");

    // A synonym: soda means soft drink.
    let (_, body) = s.get("/v1/search?q=soda").await;
    assert_eq!(ids(&body), ["cola"], "{body}");
    assert!(codes(&body["items"][0]).contains(&"synonym"), "{body}");

    // Facets count every match; a filter narrows them.
    let (_, body) = s.get("/v1/search?q=milk").await;
    assert_eq!(body["total"], 3, "{body}");
    let brands: Vec<(&str, u64)> = body["facets"]["brand"]
        .as_array()
        .expect("brand facet")
        .iter()
        .map(|f| (f["value"].as_str().unwrap_or(""), f["count"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(brands, [("Acme", 1), ("Brookside", 1), ("Oatly", 1)], "{body}");
    assert_eq!(body["facets"]["subcategory"][0], json!({"value": "FLUID MILK", "count": 2}), "{body}");
    assert_eq!(body["facets"]["availability"], json!([{"value": "in_stock", "count": 3}]), "{body}");
    let (_, body) = s.get("/v1/search?q=milk&brand=oatly").await;
    assert_eq!(ids(&body), ["oat-milk"], "{body}");
    let (_, body) = s.get("/v1/search?q=milk&maxPrice=4").await;
    assert_eq!(ids(&body).len(), 2, "{body}");
    assert!(!ids(&body).contains(&"oat-milk"), "{body}");
    let (_, body) = s.get("/v1/search?q=fruit&category=tropical%20fruit&limit=1").await;
    assert_eq!((body["total"].as_u64(), ids(&body).len()), (Some(2), 1), "{body}");
    assert_eq!(body["items"][0]["price"].as_str().map(|p| p.contains('.')), Some(true), "{body}");
}

/// c1 (consent) and c2 (no consent) both buy Brookside milk, four times.
async fn two_shoppers(s: &TestServer) -> (String, String) {
    import_catalog(s, CATALOG).await;
    let mut batch = Vec::new();
    for (c, consent) in [("c1", true), ("c2", false)] {
        for o in 0..4 {
            batch.push(json!({"type": "track", "event": "Order Completed", "userId": c,
                "messageId": format!("{c}-{o}"), "timestamp": format!("2026-01-0{}T10:00:00Z", o + 1),
                "context": {"channel": "store", "consent": {"categoryPreferences": {"personalization": consent}}},
                "properties": {"order_id": format!("{c}-{o}"), "store_id": "S1", "total": 3.49,
                    "products": [{"product_id": "b-milk", "quantity": 1, "price": 3.49}]}}));
        }
    }
    let (status, body) = s.send_trusted("/v1/batch", &json!({"batch": batch})).await;
    assert_eq!(status, 200, "{body}");
    s.engine.sync().await.expect("project");
    let mut roots = Vec::new();
    for c in ["c1", "c2"] {
        let (status, p) = s.get(&format!("/v1/profiles/lookup?userId={c}")).await;
        assert_eq!(status, 200, "{p}");
        roots.push(p["id"].as_str().expect("profile id").to_string());
    }
    (roots[0].clone(), roots[1].clone())
}

async fn purchases_order_results_only_with_consent_and_not_after_erasure(s: TestServer) {
    let (c1, c2) = two_shoppers(&s).await;
    // Both whole milks match "milk" equally; without a person, the ids decide.
    let (_, plain) = s.get("/v1/search?q=whole%20milk").await;
    assert_eq!(ids(&plain)[..2], ["a-milk", "b-milk"], "{plain}");

    let (status, mine) = s.get("/v1/search?q=whole%20milk&user=c1").await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(ids(&mine)[0], "b-milk", "{mine}");
    assert_eq!((mine["personalized"].as_bool(), mine["profileId"].as_str()), (Some(true), Some(c1.as_str())));
    assert_eq!(mine["consent"]["granted"], true, "{mine}");
    assert!(codes(&mine["items"][0]).contains(&"bought_before"), "{mine}");

    // c2 bought the same but refused personalization: the plain order, and it says so.
    let (_, theirs) = s.get("/v1/search?q=whole%20milk&user=c2").await;
    assert_eq!(ids(&theirs), ids(&plain), "{theirs}");
    assert_eq!((theirs["personalized"].as_bool(), theirs["consent"]["granted"].as_bool()), (Some(false), Some(false)));
    assert_eq!(theirs["profileId"].as_str(), Some(c2.as_str()));
    assert!(theirs["items"].as_array().into_iter().flatten().all(|i| !codes(i).contains(&"bought_before")));

    // Forgotten: nothing of c1 orders a search any more.
    let (status, body) = s.call("DELETE", &format!("/v1/profiles/{c1}"), &s.admin_key, None).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let (status, after) = s.get("/v1/search?q=whole%20milk&user=c1").await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(ids(&after), ids(&plain), "{after}");
    assert_eq!((after["personalized"].as_bool(), after["profileId"].as_str()), (Some(false), None), "{after}");
}

async fn catalog_and_stock_changes_reach_search_at_once(s: TestServer) {
    import_catalog(&s, CATALOG).await;
    let (_, body) = s.get("/v1/search?q=kefir").await;
    assert_eq!(body["total"], 0, "{body}");
    import_catalog(&s, &[("kefir", "Plain Kefir", "Acme", "DAIRY", "CULTURED MILK", "32 OZ", "3.99")]).await;
    let (_, body) = s.get("/v1/search?q=kefir").await;
    assert_eq!(ids(&body), ["kefir"], "{body}");
    // A renamed product is found by its new name only.
    import_catalog(&s, &[("banana", "Plantains", "Acme", "PRODUCE", "TROPICAL FRUIT", "1 LB", "0.79")]).await;
    let (_, body) = s.get("/v1/search?q=plantain").await;
    assert_eq!(ids(&body), ["banana"], "{body}");
    assert_eq!(body["items"][0]["price"], "0.79", "{body}");
    let (_, body) = s.get("/v1/search?q=bananas").await;
    assert_eq!(body["total"], 0, "{body}");

    // Sold out at S1: marked there (and last), and left out when only stock is wanted.
    let (status, body) = s
        .call(
            "PUT",
            "/v1/availability",
            &s.admin_key,
            Some(&json!({"productId": "avocado", "locationId": "S1", "available": false})),
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let (_, body) = s.get("/v1/search?q=tropical%20fruit&store=S1").await;
    assert_eq!(ids(&body), ["banana", "avocado"], "{body}");
    assert_eq!(body["items"][1]["available"], false, "{body}");
    assert!(codes(&body["items"][1]).contains(&"out_of_stock"), "{body}");
    let (_, body) = s.get("/v1/search?q=tropical%20fruit&store=S1&inStock=true").await;
    assert_eq!(ids(&body), ["banana"], "{body}");
    let (_, body) = s.get("/v1/search?q=avocado").await;
    assert_eq!(body["items"][0]["available"], true, "elsewhere it is in stock: {body}");
}

async fn bad_input_is_refused_naming_the_parameter(s: TestServer) {
    import_catalog(&s, CATALOG).await;
    let long = "a".repeat(201);
    for (path, field) in [
        ("/v1/search".to_string(), "q"),
        ("/v1/search?q=%20%20".to_string(), "q"),
        (format!("/v1/search?q={long}"), "q"),
        ("/v1/search?q=milk&limit=0".to_string(), "limit"),
        ("/v1/search?q=milk&limit=101".to_string(), "limit"),
        ("/v1/search?q=milk&limit=ten".to_string(), "limit"),
        ("/v1/search?q=milk&minPrice=-1".to_string(), "minPrice"),
        ("/v1/search?q=milk&maxPrice=cheap".to_string(), "maxPrice"),
        ("/v1/search?q=milk&minPrice=5&maxPrice=1".to_string(), "minPrice"),
        ("/v1/search?q=milk&inStock=maybe".to_string(), "inStock"),
        ("/v1/search?q=milk&color=red".to_string(), "color"),
    ] {
        let (status, body) = s.get(&path).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{path}: {body}");
        assert_eq!(body["code"], "invalid_field", "{path}: {body}");
    }
    let (status, body) = s.get("/v1/search?q=milk&store=NOWHERE").await;
    assert_eq!((status, body["field"].as_str()), (404, Some("store")), "{body}");
    // Words that analyze to nothing match nothing, without an error.
    let (status, body) = s.get("/v1/search?q=%21%21%21").await;
    assert_eq!((status, body["total"].as_u64()), (200, Some(0)), "{body}");
    // The read key (or admin) may search; a browser's write key may not.
    let (status, _) = s.call("GET", "/v1/search?q=milk", &s.write_key.clone(), None).await;
    assert_eq!(status, 403);
    let res = s.http.get(s.url("/v1/search?q=milk")).send().await.expect("send");
    assert_eq!(res.status().as_u16(), 401);
}

tailor_testkit::http_both_backends!(
    words_typos_and_synonyms_find_products_with_facets_and_reasons,
    purchases_order_results_only_with_consent_and_not_after_erasure,
    catalog_and_stock_changes_reach_search_at_once,
    bad_input_is_refused_naming_the_parameter,
);
