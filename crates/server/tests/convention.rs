//! The one API convention (docs/api.md), checked on the OpenAPI document of a real server and on
//! real answers: camelCase property names, RFC 3339 times (never epoch milliseconds), every list
//! paged with `limit` and `cursor` → `{items, nextCursor}`, and answers that match their schema.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::TestServer;

/// Lists that are small configuration replaced whole by a PUT, so they stay plain arrays
/// (docs/api.md says why).
const WHOLE_LISTS: [&str; 4] =
    ["/v1/loyalty/rules", "/v1/loyalty/tiers", "/v1/loyalty/rewards", "/v1/inventory/policies"];

/// Answers about exactly what the request names (the SKUs in `sku`, `k` recommendations, the
/// best `limit` search results): all of it in `items`, with no cursor (docs/api.md).
const ASKED_FOR: [&str; 4] = ["/v1/availability", "/v1/prices", "/v1/recommendations", "/v1/search"];

/// Names of times that the word test below does not catch.
const TIME_NAMES: [&str; 4] = ["validFrom", "validTo", "shipsBy", "expireBy"];

/// Whether `name` is camelCase: starts with a lowercase letter, only letters and digits.
fn camel(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The lowercase words of a camelCase name: `tierGraceUntil` → tier, grace, until.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![String::new()];
    for c in name.chars() {
        if c.is_ascii_uppercase() || c == '_' {
            out.push(String::new());
        }
        if c != '_' {
            out.last_mut().expect("a word").push(c.to_ascii_lowercase());
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Whether the name says the value is a point in time (or a time in milliseconds).
fn names_a_time(name: &str) -> bool {
    let w = words(name);
    TIME_NAMES.contains(&name)
        || w.iter()
            .any(|w| matches!(w.as_str(), "at" | "time" | "timestamp" | "ts" | "ms" | "until" | "since" | "seen"))
}

/// The schema's types (OpenAPI 3.1 allows a list, e.g. `["integer", "null"]`).
fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Follows a `$ref` into `components.schemas`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// Walks a schema (inline; `$ref`s are walked where they are defined) and records every
/// property that breaks the convention.
fn walk(schema: &Value, at: &str, bad: &mut BTreeSet<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            let here = format!("{at}.{name}");
            if !camel(name) {
                bad.insert(format!("{here}: not camelCase"));
            }
            let ty = types(prop);
            if names_a_time(name) && (ty.contains(&"integer") || ty.contains(&"number")) {
                bad.insert(format!("{here}: a time as a number; use type string, format date-time"));
            }
            if names_a_time(name) && ty.contains(&"string") && prop["format"] != "date-time" {
                bad.insert(format!("{here}: a time without format date-time"));
            }
            walk(prop, &here, bad);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if schema[key].is_object() {
            walk(&schema[key], &format!("{at}[{key}]"), bad);
        }
    }
    for key in ["allOf", "oneOf", "anyOf", "prefixItems"] {
        for (i, s) in schema[key].as_array().into_iter().flatten().enumerate() {
            walk(s, &format!("{at}.{key}[{i}]"), bad);
        }
    }
}

/// Every violation in the document: component schemas, inline request and response schemas,
/// parameter names, and lists not paged by the convention.
fn violations(doc: &Value) -> BTreeSet<String> {
    let mut bad = BTreeSet::new();
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        walk(schema, name, &mut bad);
    }
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let at = format!("{} {path}", method.to_uppercase());
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or("");
                if !camel(name) {
                    bad.insert(format!("{at} parameter {name}: not camelCase"));
                }
                if names_a_time(name) && p["schema"]["format"] != "date-time" {
                    bad.insert(format!("{at} parameter {name}: a time that is not an RFC 3339 string"));
                }
            }
            for (mime, c) in op["requestBody"]["content"].as_object().into_iter().flatten() {
                walk(&c["schema"], &format!("{at} request {mime}"), &mut bad);
            }
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                for (mime, c) in r["content"].as_object().into_iter().flatten() {
                    walk(&c["schema"], &format!("{at} {status} {mime}"), &mut bad);
                }
            }
            if method == "get" {
                paging(doc, path, op, &at, &mut bad);
            }
        }
    }
    bad
}

/// A GET answering a list answers `{items, nextCursor}` and takes `limit` and `cursor`.
fn paging(doc: &Value, path: &str, op: &Value, at: &str, bad: &mut BTreeSet<String>) {
    let Some(schema) = op["responses"]["200"]["content"]["application/json"].get("schema") else { return };
    if ASKED_FOR.contains(&path) {
        return;
    }
    let schema = resolve(doc, schema);
    if types(schema).contains(&"array") {
        if !WHOLE_LISTS.contains(&path) {
            bad.insert(format!("{at}: answers a bare array; answer {{items, nextCursor}}"));
        }
        return;
    }
    let props = &schema["properties"];
    let is_list = props.as_object().is_some_and(|p| p.values().any(|v| types(resolve(doc, v)).contains(&"array")));
    if !is_list {
        return;
    }
    // Answers that hold a list among other things (a profile's identifiers) are not lists; a
    // list answer has `items` and `nextCursor` and nothing else.
    let keys: BTreeSet<&str> = props.as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    let listish = keys.contains("items") || keys.contains("next") || keys.contains("nextCursor");
    if !listish {
        return;
    }
    if keys != BTreeSet::from(["items", "nextCursor"]) {
        bad.insert(format!("{at}: a page is {{items, nextCursor}}; found {keys:?}"));
    }
    let params: BTreeSet<&str> =
        op["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    for p in ["limit", "cursor"] {
        if !params.contains(p) {
            bad.insert(format!("{at}: a list without the `{p}` parameter"));
        }
    }
}

#[test]
fn the_checker_finds_what_breaks_the_convention() {
    let doc = json!({
        "components": {"schemas": {
            "A": {"type": "object", "properties": {
                "product_id": {"type": "string"},
                "startsAt": {"type": "integer"},
                "tierGraceUntil": {"type": ["integer", "null"]},
                "ok": {"type": "object", "properties": {"nested": {"type": "array", "items": {
                    "oneOf": [{"type": "object", "properties": {"Bad": {"type": "string"}}}]}}}},
                "at": {"type": "string", "format": "date-time"},
                "cartTtlSeconds": {"type": "integer"},
                "lastSeen": {"type": "string"},
                "validFrom": {"type": ["integer", "null"]}
            }}
        }},
        "paths": {"/v1/things": {"get": {"responses": {"200": {"content": {"application/json": {"schema":
            {"type": "array", "items": {"$ref": "#/components/schemas/A"}}}}}}}}}
    });
    let bad = violations(&doc);
    let expected = [
        "A.product_id: not camelCase",
        "A.startsAt: a time as a number; use type string, format date-time",
        "A.tierGraceUntil: a time as a number; use type string, format date-time",
        "A.ok.nested[items].oneOf[0].Bad: not camelCase",
        "A.lastSeen: a time without format date-time",
        "A.validFrom: a time as a number; use type string, format date-time",
        "GET /v1/things: answers a bare array; answer {items, nextCursor}",
    ];
    for e in expected {
        assert!(bad.contains(e), "missed {e}: {bad:#?}");
    }
    assert_eq!(bad.len(), expected.len(), "{bad:#?}");
    assert!(names_a_time("lastSeen") && names_a_time("createdAt") && names_a_time("cartTtlMs"));
    assert!(!names_a_time("toLocationId") && !names_a_time("attributes") && !names_a_time("status"));
}

// The document only: no storage involved, so SQLite alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schema_of_the_openapi_document_follows_the_convention() {
    let s = TestServer::start().await;
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["components"]["schemas"].as_object().is_some_and(|c| c.len() > 30), "too few schemas");
    let bad = violations(&doc);
    assert!(
        bad.is_empty(),
        "{} violations of docs/api.md:\n{}",
        bad.len(),
        bad.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Checks a real answer against its schema: every key is declared (free-form objects aside) and
/// camelCase, every date-time parses as RFC 3339 with an offset, numbers are not where strings are.
fn conforms(doc: &Value, value: &Value, schema: &Value, at: &str, bad: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            let fits = alts.iter().any(|alt| {
                let mut errs = Vec::new();
                conforms(doc, value, alt, at, &mut errs);
                errs.is_empty()
            });
            if !fits {
                bad.push(format!("{at}: fits none of {key}"));
            }
            return;
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        // A value of an allOf fits the union of its parts' properties.
        let mut merged = json!({"type": "object", "properties": {}});
        for part in all {
            let part = resolve(doc, part);
            for (k, v) in part["properties"].as_object().into_iter().flatten() {
                merged["properties"][k] = v.clone();
            }
            if part.get("additionalProperties").is_some() {
                merged["additionalProperties"] = part["additionalProperties"].clone();
            }
        }
        return conforms(doc, value, &merged, at, bad);
    }
    let ty = types(schema);
    match value {
        Value::Null => {
            if !ty.is_empty() && !ty.contains(&"null") {
                bad.push(format!("{at}: null where the schema says {ty:?}"));
            }
        }
        Value::Object(o) => {
            let props = schema["properties"].as_object();
            for (k, v) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(p) => {
                        if !camel(k) {
                            bad.push(format!("{at}.{k}: not camelCase"));
                        }
                        conforms(doc, v, p, &format!("{at}.{k}"), bad);
                    }
                    None => match schema.get("additionalProperties") {
                        Some(Value::Object(extra)) if !extra.is_empty() => {
                            conforms(doc, v, &schema["additionalProperties"], &format!("{at}.{k}"), bad)
                        }
                        // A free-form object (traits, event properties): its keys are the sender's.
                        _ if props.is_none() => {}
                        _ => bad.push(format!("{at}.{k}: not in the schema")),
                    },
                }
            }
        }
        Value::Array(a) => {
            if !ty.is_empty() && !ty.contains(&"array") {
                bad.push(format!("{at}: an array where the schema says {ty:?}"));
            }
            for (i, v) in a.iter().enumerate() {
                conforms(doc, v, &schema["items"], &format!("{at}[{i}]"), bad);
            }
        }
        Value::String(s) => {
            if schema["format"] == "date-time" && chrono::DateTime::parse_from_rfc3339(s).is_err() {
                bad.push(format!("{at}: '{s}' is not an RFC 3339 time"));
            }
            if !ty.is_empty() && !ty.contains(&"string") {
                bad.push(format!("{at}: a string where the schema says {ty:?}"));
            }
        }
        Value::Number(_) => {
            if !ty.is_empty() && !ty.contains(&"integer") && !ty.contains(&"number") {
                bad.push(format!("{at}: a number where the schema says {ty:?}"));
            }
        }
        Value::Bool(_) => {}
    }
}

/// The schema of `path_template`'s answer to `method` with `status`.
fn answer_schema<'a>(doc: &'a Value, method: &str, template: &str, status: u16) -> &'a Value {
    let s = &doc["paths"][template][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(s.is_object(), "no JSON schema for {method} {template} {status}");
    s
}

/// A shop with two customers, a trained model, stock, a reservation, a price and loyalty points.
async fn shop(s: &TestServer) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("products.csv");
    let mut csv = String::from("id,title,brand,department,category,subcategory,price,available\n");
    for p in ["milk", "bread", "butter", "cheese", "soup", "chips"] {
        csv.push_str(&format!("{p},{p},Acme,GROCERY,FOOD,FOOD,2.50,true\n"));
    }
    // A product without a price anywhere.
    csv.push_str("gift,Gift card,Acme,GROCERY,GIFTS,GIFTS,,true\n");
    std::fs::write(&file, csv).expect("write");
    s.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(&file, "id,name,kind,region,timezone\nS1,North,store,North,UTC\nS2,South,store,South,UTC\n")
        .expect("write");
    s.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    let mut batch = Vec::new();
    let products = ["milk", "bread", "butter", "cheese", "soup", "chips"];
    for c in 0..6 {
        for o in 0..3 {
            let lines: Vec<Value> =
                (0..3).map(|l| json!({"product_id": products[(c + o + l) % 6], "quantity": 1, "price": 2.5})).collect();
            batch.push(json!({"type": "track", "event": "Order Completed", "userId": format!("c{c}"),
                "messageId": format!("o-{c}-{o}"), "timestamp": format!("2026-01-0{}T10:00:00Z", 1 + o),
                "context": {"channel": "store"},
                "properties": {"order_id": format!("o-{c}-{o}"), "store_id": "S1", "total": 7.5, "products": lines}}));
        }
    }
    batch.push(json!({"type": "identify", "userId": "c0", "messageId": "i-0", "traits": {"email": "c0@example.com", "first_name": "Cy"}}));
    let (status, body) = s.send_trusted("/v1/batch", &json!({"batch": batch})).await;
    assert_eq!(status, 200, "{body}");
    s.engine.sync().await.expect("project");
    s.engine.train_model(Arc::new(|_| {})).await.expect("train");
    let (status, profile) = s.get("/v1/profiles/lookup?userId=c0").await;
    assert_eq!(status, 200, "{profile}");
    profile["id"].as_str().expect("id").to_string()
}

async fn real_answers_match_their_schema_and_the_convention(s: TestServer) {
    let id = shop(&s).await;
    let admin = s.admin_key.clone();
    let (_, doc) = s.get("/openapi.json").await;
    let (status, body) = s
        .call(
            "POST",
            "/v1/inventory/adjustments",
            &admin,
            Some(&json!({"sku": "milk", "locationId": "S1", "mode": "set", "onHand": 10, "reason": "count"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, reservation) = s
        .call(
            "POST",
            "/v1/reservations",
            &admin,
            Some(&json!({"lines": [{"sku": "milk", "quantity": 2}], "store": "S1"})),
        )
        .await;
    assert_eq!(status, 201, "{reservation}");
    let rid = reservation["id"].as_str().expect("reservation id").to_string();
    let (status, body) = s
        .call(
            "PUT",
            "/v1/promotions/spring",
            &admin,
            Some(&json!({"id": "spring", "name": "Spring", "discount": {"type": "percentage", "percent": 10},
            "skus": ["milk"], "startsAt": "2026-03-01T00:00:00Z", "endsAt": "2099-03-31T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["startsAt"], "2026-03-01T00:00:00.000Z", "{body}");

    let reads: Vec<(&str, String)> = vec![
        ("/v1/profiles/{id}", format!("/v1/profiles/{id}")),
        ("/v1/profiles/{id}/timeline", format!("/v1/profiles/{id}/timeline?limit=2")),
        ("/v1/profiles/{id}/merges", format!("/v1/profiles/{id}/merges")),
        ("/v1/recommendations", format!("/v1/recommendations?user={id}&store=S1")),
        ("/v1/recommendations", "/v1/recommendations?context=item&item=milk".to_string()),
        ("/v1/models", "/v1/models".to_string()),
        ("/v1/loyalty/{profileId}", format!("/v1/loyalty/{id}")),
        ("/v1/loyalty/events", "/v1/loyalty/events?limit=5".to_string()),
        ("/v1/reservations/{id}", format!("/v1/reservations/{rid}")),
        ("/v1/availability", "/v1/availability?sku=milk&store=S1".to_string()),
        ("/v1/prices", "/v1/prices?sku=milk&channel=web".to_string()),
        ("/v1/prices/{sku}/history", "/v1/prices/milk/history".to_string()),
        ("/v1/promotions", "/v1/promotions".to_string()),
        ("/v1/stats", "/v1/stats".to_string()),
        ("/healthz", "/healthz".to_string()),
        ("/v1/keys", "/v1/keys".to_string()),
        ("/v1/products/{id}", "/v1/products/milk".to_string()),
        ("/v1/search", format!("/v1/search?q=milk&user={id}&store=S1")),
        ("/v1/search", "/v1/search?q=gift".to_string()),
    ];
    let mut bad = Vec::new();
    for (template, path) in reads {
        let (status, body) = s.call("GET", &path, &admin, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        conforms(&doc, &body, answer_schema(&doc, "get", template, 200), &format!("GET {path}"), &mut bad);
    }
    assert!(bad.is_empty(), "answers that break their schema or the convention:\n{}", bad.join("\n"));

    // The schema cannot lie about the names the pages are made of.
    let (_, recs) = s.get(&format!("/v1/recommendations?user={id}&store=S1")).await;
    for key in ["profileId", "modelVersion", "storeSource", "items"] {
        assert!(recs.get(key).is_some(), "recommendations without {key}: {recs}");
    }
    assert!(recs["items"][0].get("productId").is_some(), "{recs}");
    let (_, profile) = s.get(&format!("/v1/profiles/{id}")).await;
    for key in ["createdAt", "mergedProfiles", "identifiers", "features"] {
        assert!(profile.get(key).is_some(), "profile without {key}: {profile}");
    }
    assert_eq!(profile["traits"]["first_name"], "Cy", "traits are the sender's keys, as sent");
    assert!(profile["features"].get("orderCount").is_some(), "{profile}");
}

async fn a_list_pages_with_limit_and_cursor_until_next_cursor_is_null(s: TestServer) {
    let id = shop(&s).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => format!("/v1/profiles/{id}/timeline?limit=2"),
            Some(c) => format!("/v1/profiles/{id}/timeline?limit=2&cursor={c}"),
        };
        let (status, page) = s.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|e| e["seq"].as_i64().expect("seq")));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // Three orders and an identify, each seen once, newest first.
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 4, "{seen:?}");
    let (status, err) = s.get(&format!("/v1/profiles/{id}/timeline?cursor=nonsense")).await;
    assert_eq!((status, err["field"].as_str()), (400, Some("cursor")), "{err}");
}

async fn refusals_carry_a_code_that_says_what_is_missing(s: TestServer) {
    let id = shop(&s).await;
    let admin = s.admin_key.clone();
    let adjust = json!({"sku": "milk", "locationId": "S1", "mode": "set", "onHand": 1, "reason": "count"});
    assert_eq!(s.call("POST", "/v1/inventory/adjustments", &admin, Some(&adjust)).await.0, 200);
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "POST",
            "/v1/reservations".into(),
            json!({"lines": [{"sku": "milk", "quantity": 5}], "store": "S1"}),
            409,
            "insufficient_stock",
        ),
        (
            "POST",
            "/v1/inventory/transfers".into(),
            json!({"sku": "milk", "fromLocationId": "S1", "toLocationId": "S2", "quantity": 9}),
            409,
            "insufficient_stock",
        ),
        ("POST", format!("/v1/loyalty/{id}/redeem"), json!({"points": 1_000_000}), 409, "insufficient_points"),
        (
            "POST",
            format!("/v1/loyalty/{id}/adjust"),
            json!({"points": -1_000_000, "reason": "test"}),
            409,
            "insufficient_points",
        ),
        ("GET", "/v1/prices?sku=gift&channel=web".into(), Value::Null, 409, "no_price"),
        ("POST", "/v1/prices/gift/reprice".into(), Value::Null, 409, "no_price"),
        (
            "PUT",
            "/v1/promotions/p".into(),
            json!({"id": "p", "name": "P", "discount": {"type": "percentage", "percent": 5},
            "skus": ["milk"], "startsAt": "next tuesday"}),
            400,
            "invalid_field",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let body = (!body.is_null()).then_some(&body);
        let (got, problem) = s.call(method, &path, &admin, body).await;
        assert_eq!((got, problem["code"].as_str()), (status, Some(code)), "{method} {path}: {problem}");
        assert_eq!(problem["type"], format!("/docs/errors#{code}"), "{problem}");
    }
    // Every code is on the error page the `type` links to.
    let page = s.http.get(s.url("/docs/errors")).send().await.expect("page").text().await.expect("text");
    for code in ["insufficient_stock", "insufficient_points", "no_price", "not_ready"] {
        assert!(page.contains(&format!("id=\"{code}\"")), "{code} missing from /docs/errors");
    }
}

tailor_testkit::http_both_backends!(
    real_answers_match_their_schema_and_the_convention,
    a_list_pages_with_limit_and_cursor_until_next_cursor_is_null,
    refusals_carry_a_code_that_says_what_is_missing,
);
