//! A fuzzer over the HTTP router, in process (no socket): intake bodies built from Segment's
//! shapes and mutated (extreme numbers written as text, deep nesting, long and odd strings, wrong
//! types, duplicate keys, broken bytes and encodings), and every route of the OpenAPI document
//! that takes a body, with bodies generated from the route's own schema and mutated, plus random
//! query strings on its GET routes and random ids in every path. Keys of every scope, and none.
//!
//! The property: no answer is a 5xx (but a 503 `overloaded` or `not_ready`), every 4xx is
//! problem+json with a `code`, no request takes longer than [`REQUEST_BOUND`], nothing panics (a
//! handler or a background job), and afterwards the projection catches up and `/healthz` answers.
//!
//! The run is short by default (for CI). Run it longer with `TAILOR_FUZZ_SECONDS` (per backend)
//! or `TAILOR_FUZZ_CASES`, e.g. `TAILOR_FUZZ_SECONDS=600 cargo nextest run -p tailor-server
//! --test fuzz --no-capture`. A failure prints the request, shrunk.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Map, Value};
use tailor_engine::import::{ImportKind, Silent};
use tailor_testkit::{TestBackend, TestEngine, TestKeys};
use tower::ServiceExt;

/// The longest any one request may take before it counts as a hang.
const REQUEST_BOUND: Duration = Duration::from_secs(10);
/// Cases per backend when neither `TAILOR_FUZZ_CASES` nor `TAILOR_FUZZ_SECONDS` is set.
const DEFAULT_CASES: u32 = 2_000;

/// Panics anywhere in the process: a handler, a background job, a spawned task.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// What a case is.

/// Which credential a request carries.
#[derive(Debug, Clone, Copy)]
enum Cred {
    Admin,
    Write,
    Source,
    Read,
    Missing,
    Unknown,
}

/// One piece of a path or a query value.
#[derive(Debug, Clone)]
enum Part {
    /// Literal route text.
    Lit(String),
    /// Text percent-encoded when sent (placeholders resolved first).
    Text(String),
    /// Sent as is (broken percent-encodings and the like).
    Raw(&'static str),
}

/// The body of a request.
#[derive(Debug, Clone)]
enum Payload {
    None,
    /// JSON text (with placeholders).
    Json(String),
    /// JSON text cut at a point.
    Truncated(String, Index),
    /// JSON text followed by something else.
    Trailing(String, &'static str),
    /// Bytes as they are.
    Bytes(Vec<u8>),
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    /// Says gzip, but the compressed stream is cut short.
    BrokenGzip,
    /// An encoding the server does not take.
    Brotli,
}

/// One request of a case.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: Vec<Part>,
    query: Vec<(String, Part)>,
    cred: Cred,
    basic: bool,
    payload: Payload,
    encoding: Encoding,
    content_type: Option<&'static str>,
    idempotency: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Placeholders: generated text names things that only exist at run time (ids the engine
// handed out) or that no `serde_json::Value` can hold (numbers out of range, duplicate keys).

/// A known id: `@@ID<n>@@` is replaced by the n-th id of the pool (modulo its size).
fn id_token() -> BoxedStrategy<String> {
    id_of(Kind::Any)
}

/// What an id names, so that a generated id is mostly of the right kind.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Profile,
    Sku,
    Location,
    Channel,
    Any,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Profile => 'p',
            Kind::Sku => 's',
            Kind::Location => 'l',
            Kind::Channel => 'c',
            Kind::Any => 'a',
        }
    }

    /// The kind a field or parameter named `name` (on `route`) holds.
    fn of(name: &str, route: &str) -> Kind {
        let n = name.to_ascii_lowercase();
        if n.contains("profile") || (n == "id" && route.starts_with("/v1/profiles/")) {
            Kind::Profile
        } else if n.contains("sku")
            || n.contains("product")
            || n.contains("item")
            || n == "components"
            || (n == "id" && route.starts_with("/v1/products/"))
        {
            Kind::Sku
        } else if n.contains("location") || n.contains("store") || n == "from" || n == "to" {
            Kind::Location
        } else if n.contains("channel") {
            Kind::Channel
        } else {
            Kind::Any
        }
    }
}

/// An id of `kind` known to the engine (mostly), or of any kind.
fn id_of(kind: Kind) -> BoxedStrategy<String> {
    (any::<u16>(), prop::bool::weighted(0.85))
        .prop_map(move |(n, right)| format!("@@ID{}{n}@@", if right { kind.letter() } else { 'a' }))
        .boxed()
}

/// A number written as raw text in the JSON: `"@@NUM:<text>@@"` becomes `<text>`.
const RAW_NUMBERS: &[&str] = &[
    "1e308",
    "-1e308",
    "1e400",
    "-1e400",
    "-0",
    "-0.0",
    "0e0",
    "1e-400",
    "4.9e-324",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9007199254740993",
    "1e15",
    "1e16",
    "1e19",
    "0.1",
    "0.005",
    "0.0049999999999",
    "1.0000000000000002",
    "123456789.123456789",
    "100000.0001",
    "1000000000",
    "10000000.001",
];

/// A duplicated key: `k@@DUP@@` is sent as `k`, beside the real `k`.
const DUP: &str = "@@DUP@@";

/// Known ids by the letter of their kind.
type Pool = BTreeMap<char, Vec<String>>;

/// Replaces the placeholders of `text` with ids from `pool` and raw numbers.
fn resolve(text: &str, pool: &Pool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("@@") {
        let (before, from) = rest.split_at(at);
        if let Some(tail) = from.strip_prefix("@@ID") {
            if let Some(end) = tail.find("@@").filter(|e| *e > 1) {
                let mut chars = tail[..end].chars();
                let kind = chars.next().unwrap_or('a');
                let ids = pool.get(&kind).filter(|ids| !ids.is_empty()).or_else(|| pool.get(&'a'));
                if let (Ok(n), Some(ids)) = (chars.as_str().parse::<usize>(), ids) {
                    out.push_str(before);
                    out.push_str(&ids[n % ids.len()]);
                    rest = &tail[end + 2..];
                    continue;
                }
            }
        }
        if let Some(tail) = from.strip_prefix("@@NUM:") {
            if let Some(end) = tail.find("@@\"") {
                // The number sits in a JSON string: drop the quote before it as well.
                out.push_str(before.strip_suffix('"').unwrap_or(before));
                out.push_str(&tail[..end]);
                rest = &tail[end + 3..];
                continue;
            }
        }
        if let Some(tail) = from.strip_prefix(DUP) {
            out.push_str(before);
            rest = tail;
            continue;
        }
        out.push_str(before);
        out.push_str("@@");
        rest = &from[2..];
    }
    out.push_str(rest);
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// JSON values.

const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "a\u{0}b",
    "null",
    "true",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1",
    "0",
    "1.5",
    "../../etc/passwd",
    "%FF",
    "' OR 1=1 --",
    "\"",
    "\\",
    "🛒🛒",
    "\u{202e}abc",
    "\u{feff}",
    "ǅ",
    "İstanbul",
    "\u{10ffff}",
    "\r\n",
    "\t",
    "2026-01-01T00:00:00Z",
    "2026-03-01T10:00:00.123456789+14:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "-262143-01-01T00:00:00Z",
    "+262142-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01",
    "2026-01-01T25:00:00Z",
    "1970-01-01T00:00:00Z",
    "yesterday",
    "USD",
    "EUR",
    "usd",
    "XXX",
    "kg",
    "g",
    "lb",
    "each",
    "bushel",
    "web",
    "store",
    "app",
    "pos",
    "email",
    "sms",
    "set",
    "delta",
    "count",
    "percent",
    "amount",
    "checkout",
    "source",
    "write",
    "read",
    "admin",
    "S1",
    "S2",
    "P1",
    "jo@example.com",
    "+15551234567",
];

fn interesting_number() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (-3i64..120).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        2 => (0u32..10_000_000).prop_map(|c| json!(f64::from(c) / 100.0)),
        1 => (0u32..100_000).prop_map(|c| json!(f64::from(c) / 1000.0)),
        3 => prop::sample::select(RAW_NUMBERS).prop_map(|t| Value::String(format!("@@NUM:{t}@@"))),
    ]
    .boxed()
}

fn interesting_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => id_token(),
        2 => "[a-zA-Z0-9_ .@-]{0,12}",
        2 => "\\PC{0,16}",
        1 => ".{0,8}",
        3 => prop::sample::select(ODD_STRINGS).prop_map(str::to_string),
        1 => (1usize..5_000, prop::sample::select(&["a", "é", "🛒", "\u{0}"][..])).prop_map(|(n, c)| c.repeat(n)),
        1 => (30_000usize..70_000).prop_map(|n| "x".repeat(n)),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z_]{1,10}",
        1 => interesting_string(),
        2 => prop::sample::select(&[
            "userId", "anonymousId", "event", "properties", "traits", "context", "type", "id", "sku",
            "quantity", "price", "total", "points", "lines", "store", "locationId", "productId", "onHand",
            "mode", "reason", "amount", "currency", "channel", "startsAt", "endsAt", "percent", "floor",
            "ceiling", "map", "multiplier", "pointsPerUnit", "threshold", "name", "scope", "components",
        ][..])
        .prop_map(str::to_string),
    ]
    .boxed()
}

fn leaf_json() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => interesting_number(),
        3 => interesting_string().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value, nested a few levels.
fn any_json() -> BoxedStrategy<Value> {
    leaf_json()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Mostly `s`, sometimes any other JSON value (a wrong type, a null, a huge number).
fn mutated(s: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![40 => s, 1 => any_json()].boxed()
}

/// An object of the given fields, each present with probability `p` (required fields with 0.97),
/// each value sometimes mutated, a key sometimes duplicated, an unknown key sometimes added.
fn object(fields: Vec<(String, bool, BoxedStrategy<Value>)>, p: f64) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Vec<(String, Value)>>> = fields
        .into_iter()
        .map(|(name, required, value)| {
            let present = if required { 0.97 } else { p };
            let value = mutated(value);
            prop::option::weighted(present, (value.clone(), prop::option::weighted(0.01, value)))
                .prop_map(move |v| match v {
                    None => vec![],
                    Some((v, None)) => vec![(name.clone(), v)],
                    Some((v, Some(dup))) => vec![(name.clone(), v), (format!("{name}{DUP}"), dup)],
                })
                .boxed()
        })
        .collect();
    (parts, prop::option::weighted(0.02, (key(), any_json())))
        .prop_map(|(parts, extra)| {
            let mut m = Map::new();
            for (k, v) in parts.into_iter().flatten().chain(extra) {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

fn field(name: &str, value: BoxedStrategy<Value>) -> (String, bool, BoxedStrategy<Value>) {
    (name.to_string(), false, value)
}

fn string_of(s: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    s.prop_map(Value::String).boxed()
}

fn select_str(options: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::sample::select(options).prop_map(|s| Value::String(s.to_string())).boxed()
}

// ---------------------------------------------------------------------------------------------
// Segment events.

const EVENTS: &[&str] = &[
    "Order Completed",
    "Order Completed",
    "Order Refunded",
    "Order Cancelled",
    "Order Updated",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Checkout Started",
    "Cart Viewed",
    "Signed Up",
    "order completed",
];
const TYPES: &[&str] = &["track", "identify", "page", "screen", "group", "alias", "Track", "nope"];
const UNITS: &[&str] = &["each", "kg", "g", "lb", "oz", "l", "ml", "ea", "bushel", ""];
const CHANNELS: &[&str] = &["web", "app", "store", "pos", "email", "sms", "support", "call_center", "ios", "mars"];

/// A time: mostly a real one near now, sometimes one no client means.
fn timestamp() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (-400i64..400).prop_map(|d| json!((chrono::Utc::now() + chrono::Duration::days(d)).to_rfc3339())),
        1 => select_str(ODD_STRINGS),
    ]
    .boxed()
}

fn small_id(prefix: &'static str, n: u32) -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (0..n).prop_map(move |i| Value::String(format!("{prefix}{i}"))),
        3 => string_of(id_token()),
        1 => string_of(interesting_string()),
    ]
    .boxed()
}

fn money() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (0u32..100_000).prop_map(|c| json!(f64::from(c) / 100.0)),
        1 => (0u32..100).prop_map(Value::from),
        3 => interesting_number(),
        1 => string_of(interesting_string()),
    ]
    .boxed()
}

fn quantity() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (1i64..6).prop_map(Value::from),
        2 => (0u32..5_000).prop_map(|q| json!(f64::from(q) / 1000.0)),
        3 => interesting_number(),
    ]
    .boxed()
}

fn product_line() -> BoxedStrategy<Value> {
    object(
        vec![
            field("product_id", small_id("P", 12)),
            field("productId", small_id("P", 12)),
            field("sku", small_id("P", 12)),
            field("quantity", quantity()),
            field("price", money()),
            field("unit", select_str(UNITS)),
            field("category", select_str(&["DAIRY", "SOUP", "", "Produce"])),
            field("name", string_of(interesting_string())),
            field("reservationId", string_of(id_token())),
        ],
        0.5,
    )
}

fn order_properties() -> BoxedStrategy<Value> {
    object(
        vec![
            ("order_id".into(), true, small_id("o", 30)),
            field("orderId", small_id("o", 30)),
            field("total", money()),
            field("revenue", money()),
            field("subtotal", money()),
            field("discount", money()),
            field("tax", money()),
            field("shipping", money()),
            field("currency", select_str(&["USD", "EUR", "usd", "", "XXX"])),
            field("store_id", small_id("S", 3)),
            field("storeId", small_id("S", 3)),
            field("reservation_id", string_of(id_token())),
            field(
                "products",
                prop_oneof![
                    8 => prop::collection::vec(product_line(), 0..5).prop_map(Value::Array),
                    1 => prop::collection::vec(product_line(), 0..40).prop_map(Value::Array),
                ]
                .boxed(),
            ),
        ],
        0.5,
    )
}

fn traits() -> BoxedStrategy<Value> {
    object(
        vec![
            field(
                "email",
                prop_oneof![
                    3 => (0u32..20).prop_map(|i| json!(format!("user{i}@example.com"))),
                    1 => string_of(interesting_string()),
                ]
                .boxed(),
            ),
            field("phone", select_str(&["+15551234567", "555", "", "+1 (555) 123-4567"])),
            field("firstName", string_of(interesting_string())),
            field("loyaltyCard", small_id("card", 5)),
            field("posCustomerId", small_id("pos", 5)),
            field("age", interesting_number()),
            field("address", any_json()),
        ],
        0.4,
    )
}

fn context() -> BoxedStrategy<Value> {
    let consent = object(
        vec![field(
            "categoryPreferences",
            object(
                vec![
                    field("personalization", any::<bool>().prop_map(Value::Bool).boxed()),
                    field("marketing_email", any::<bool>().prop_map(Value::Bool).boxed()),
                    field("profiling", any::<bool>().prop_map(Value::Bool).boxed()),
                    field("analytics", any::<bool>().prop_map(Value::Bool).boxed()),
                ],
                0.5,
            ),
        )],
        0.8,
    );
    object(
        vec![
            field("channel", select_str(CHANNELS)),
            field("consent", consent),
            field("ip", select_str(&["127.0.0.1", "::1", "999.1.1.1", ""])),
            field("locale", select_str(&["en-US", "de", "", "xx-YY-zz"])),
            field("store", object(vec![field("id", small_id("S", 3))], 0.5)),
            field("traits", traits()),
        ],
        0.4,
    )
}

/// A Segment event for `route` (`None`: any type, as in a batch).
fn segment_event(route: Option<&'static str>) -> BoxedStrategy<Value> {
    let mut fields = vec![
        field("userId", small_id("u", 12)),
        field("anonymousId", small_id("a", 12)),
        field("messageId", small_id("m", 60)),
        field("timestamp", timestamp()),
        field("sentAt", timestamp()),
        field("context", context()),
        field("integrations", object(vec![field("All", any::<bool>().prop_map(Value::Bool).boxed())], 0.5)),
    ];
    let kind = route.unwrap_or("batch");
    if route.is_none() {
        fields.push(("type".into(), true, select_str(TYPES)));
    } else {
        fields.push(field("type", select_str(TYPES)));
    }
    if matches!(kind, "track" | "batch") {
        fields.push(("event".into(), true, select_str(EVENTS)));
        fields.push((
            "properties".into(),
            false,
            prop_oneof![
                5 => order_properties(),
                2 => object(vec![field("product_id", small_id("P", 12)), field("price", money())], 0.7),
                1 => any_json(),
            ]
            .boxed(),
        ));
    }
    if matches!(kind, "identify" | "group" | "batch") {
        fields.push(field("traits", traits()));
    }
    if matches!(kind, "page" | "screen" | "batch") {
        fields.push(field("name", string_of(interesting_string())));
        fields.push(field("properties", any_json()));
    }
    if matches!(kind, "group" | "batch") {
        fields.push(field("groupId", small_id("g", 4)));
    }
    if matches!(kind, "alias" | "batch") {
        fields.push(field("previousId", small_id("a", 12)));
    }
    object(fields, 0.6)
}

fn intake_body(route: &'static str) -> BoxedStrategy<Value> {
    if route == "batch" {
        object(
            vec![
                ("batch".into(), true, prop::collection::vec(segment_event(None), 0..8).prop_map(Value::Array).boxed()),
                field("context", context()),
                field("integrations", any_json()),
                field("sentAt", timestamp()),
            ],
            0.3,
        )
    } else {
        segment_event(Some(route))
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies from the OpenAPI document.

fn resolve_ref<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or("");
            let target = &doc["components"]["schemas"][name];
            if target.is_null() {
                schema
            } else {
                resolve_ref(doc, target)
            }
        }
        None => schema,
    }
}

fn from_schema(doc: &Value, schema: &Value, depth: u32, name: &str) -> BoxedStrategy<Value> {
    if depth > 6 {
        return leaf_json();
    }
    mutated(exact(doc, resolve_ref(doc, schema), depth, name))
}

fn exact(doc: &Value, schema: &Value, depth: u32, name: &str) -> BoxedStrategy<Value> {
    if let Some(options) = schema.get("enum").and_then(Value::as_array).filter(|o| !o.is_empty()) {
        return prop::sample::select(options.clone()).boxed();
    }
    if let Some(c) = schema.get("const") {
        return Just(c.clone()).boxed();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array).filter(|l| !l.is_empty()) {
            return Union::new(list.iter().map(|s| from_schema(doc, s, depth + 1, name))).boxed();
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in all {
            let part = resolve_ref(doc, part);
            if let Some(props) = part.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    merged["properties"][k] = v.clone();
                }
            }
            if let (Some(req), Some(into)) =
                (part.get("required").and_then(Value::as_array), merged["required"].as_array_mut())
            {
                into.extend(req.iter().cloned());
            }
        }
        return exact(doc, &merged, depth, name);
    }
    let mut types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.is_empty() {
        if schema.get("properties").is_some() {
            types.push("object");
        } else {
            return any_json();
        }
    }
    Union::new(types.into_iter().map(|t| typed(doc, schema, t, depth, name))).boxed()
}

/// The words a string field of that name takes, where the schema does not enumerate them.
fn words_for(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "scope" => &["write", "source", "read", "checkout", "pos", "admin"],
        "mode" => &["set", "delta", "adjust"],
        "currency" => &["USD", "EUR", "GBP"],
        "channel" => CHANNELS,
        "unit" => UNITS,
        "condition" => &["rain", "snow", "heat", "clear", "cold"],
        "kind" | "type" => &["percent", "amount", "fixed", "store", "warehouse", "multiplier"],
        _ => return None,
    })
}

fn typed(doc: &Value, schema: &Value, t: &str, depth: u32, name: &str) -> BoxedStrategy<Value> {
    match t {
        "null" => Just(Value::Null).boxed(),
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        "integer" | "number" => {
            let mut edges: Vec<Value> = vec![json!(0), json!(1), json!(-1)];
            for k in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
                if let Some(n) = schema.get(k).and_then(Value::as_f64) {
                    edges.extend([json!(n), json!(n - 1.0), json!(n + 1.0)]);
                    if let Some(i) = schema.get(k).and_then(Value::as_i64) {
                        edges.extend([json!(i.saturating_sub(1)), json!(i.saturating_add(1))]);
                    }
                }
            }
            let small = if t == "integer" {
                (0i64..50).prop_map(Value::from).boxed()
            } else {
                (0u32..10_000).prop_map(|c| json!(f64::from(c) / 100.0)).boxed()
            };
            prop_oneof![8 => small, 2 => prop::sample::select(edges), 1 => interesting_number()].boxed()
        }
        "string" => {
            let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
            if format == "date-time" || format == "date" || name.ends_with("At") || name.ends_with("Until") {
                timestamp()
            } else if let Some(words) = words_for(name) {
                prop_oneof![6 => select_str(words), 1 => string_of(interesting_string())].boxed()
            } else {
                prop_oneof![
                    4 => string_of(id_of(Kind::of(name, ""))),
                    3 => select_str(&["P1", "P2", "S1", "S2", "MILK", "u1", "web", "store", "count", "set", "USD"]),
                    1 => string_of(interesting_string()),
                ]
                .boxed()
            }
        }
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            let item = from_schema(doc, &items, depth + 1, name);
            // Long lists only at the top: nested ones multiply (64 lists of 64 of ...).
            if depth <= 1 {
                prop_oneof![
                    8 => prop::collection::vec(item.clone(), 0..4).prop_map(Value::Array),
                    1 => prop::collection::vec(item, 0..64).prop_map(Value::Array),
                ]
                .boxed()
            } else {
                prop::collection::vec(item, 0..3).prop_map(Value::Array).boxed()
            }
        }
        "object" => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut fields = Vec::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (prop, sub) in props {
                    fields.push((
                        prop.clone(),
                        required.contains(&prop.as_str()),
                        from_schema(doc, sub, depth + 1, prop),
                    ));
                }
            }
            let fixed = object(fields, 0.6);
            match schema.get("additionalProperties") {
                Some(extra @ Value::Object(_)) => {
                    let values = from_schema(doc, extra, depth + 1, name);
                    (fixed, prop::collection::btree_map(interesting_string(), values, 0..4))
                        .prop_map(|(mut v, more)| {
                            if let Value::Object(m) = &mut v {
                                m.extend(more);
                            }
                            v
                        })
                        .boxed()
                }
                _ => fixed,
            }
        }
        _ => any_json(),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// Bodies no client means to send.
const ODD_BODIES: &[&[u8]] = &[
    b"{\"userId\":\"\xff\xfe\",\"event\":\"E\"}",
    b"\xef\xbb\xbf{\"userId\":\"u1\",\"event\":\"E\"}",
    b"{\"userId\":\"\\ud800\",\"event\":\"E\"}",
    b"{\"a\":1,\"a\":2}",
    b"[]",
    b"null",
    b"\"string\"",
    b"1e400",
    b"{",
    b"",
];

fn payload(json: BoxedStrategy<Value>) -> BoxedStrategy<Payload> {
    let deep = (1usize..400, any::<bool>()).prop_map(|(n, arr)| {
        let text = if arr {
            format!("{}{}", "[".repeat(n), "]".repeat(n))
        } else {
            format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
        };
        Payload::Json(text)
    });
    prop_oneof![
        30 => json.clone().prop_map(|v| Payload::Json(v.to_string())),
        2 => (json.clone(), any::<Index>()).prop_map(|(v, i)| Payload::Truncated(v.to_string(), i)),
        2 => (json, prop::sample::select(&[" x", "{}", "]", "\u{0}", " {\"a\":1}", "\n\n garbage"][..]))
            .prop_map(|(v, t)| Payload::Trailing(v.to_string(), t)),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Payload::Bytes),
        // Over intake's limits (32 KB, 500 KB) and the general one (4 MB).
        1 => prop::sample::select(&[33_000usize, 600_000, 4_300_000][..])
            .prop_map(|n| Payload::Json(format!("{{\"pad\":\"{}\"}}", "x".repeat(n)))),
        1 => prop::sample::select(ODD_BODIES)
        .prop_map(|b| Payload::Bytes(b.to_vec())),
        1 => deep,
        1 => Just(Payload::None),
    ]
    .boxed()
}

fn path_parts(template: &str) -> BoxedStrategy<Vec<Part>> {
    let mut parts: Vec<BoxedStrategy<Part>> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        parts.push(Just(Part::Lit(rest[..open].to_string())).boxed());
        let kind = Kind::of(&rest[open + 1..close - 1], template);
        parts.push(
            prop_oneof![
                8 => id_of(kind).prop_map(Part::Text),
                2 => "[a-zA-Z0-9_-]{1,12}".prop_map(Part::Text),
                1 => any::<i64>().prop_map(|n| Part::Text(n.to_string())),
                1 => interesting_string().prop_map(Part::Text),
                1 => prop::sample::select(&["%FF%FE", "%00", "..", "%2F", "%", "a%2Fb", "%C0%AF", "%ED%A0%80"][..])
                    .prop_map(Part::Raw),
            ]
            .boxed(),
        );
        rest = &rest[close..];
    }
    parts.push(Just(Part::Lit(rest.to_string())).boxed());
    parts.prop_map(|p| p).boxed()
}

fn query(names: Vec<String>) -> BoxedStrategy<Vec<(String, Part)>> {
    let name = if names.is_empty() {
        key().boxed()
    } else {
        prop_oneof![6 => prop::sample::select(names), 1 => key()].boxed()
    };
    let value = prop_oneof![
        3 => (0i64..30).prop_map(|n| Part::Text(n.to_string())),
        3 => id_of(Kind::Any).prop_map(Part::Text),
        2 => prop::sample::select(ODD_STRINGS).prop_map(|s| Part::Text(s.to_string())),
        2 => prop::sample::select(RAW_NUMBERS).prop_map(|s| Part::Text(s.to_string())),
        1 => interesting_string().prop_map(Part::Text),
        1 => prop::sample::select(&["%FF", "%", "a,b,,c", "52.5,13.4", "91,181", "NaN,NaN", "P1,P2,%FF"][..])
            .prop_map(Part::Raw),
    ];
    prop::collection::vec((name, value), 0..5).boxed()
}

fn cred(intake: bool) -> BoxedStrategy<Cred> {
    if intake {
        prop_oneof![
            5 => Just(Cred::Write),
            5 => Just(Cred::Source),
            1 => Just(Cred::Admin),
            1 => Just(Cred::Read),
            1 => Just(Cred::Missing),
            1 => Just(Cred::Unknown),
        ]
        .boxed()
    } else {
        prop_oneof![
            12 => Just(Cred::Admin),
            2 => Just(Cred::Read),
            1 => Just(Cred::Write),
            1 => Just(Cred::Source),
            1 => Just(Cred::Missing),
            1 => Just(Cred::Unknown),
        ]
        .boxed()
    }
}

fn call(
    method: Method,
    path: BoxedStrategy<Vec<Part>>,
    query: BoxedStrategy<Vec<(String, Part)>>,
    intake: bool,
    body: BoxedStrategy<Payload>,
) -> BoxedStrategy<Call> {
    let encoding = prop_oneof![
        30 => Just(Encoding::Identity),
        2 => Just(Encoding::Gzip),
        1 => Just(Encoding::Deflate),
        1 => Just(Encoding::BrokenGzip),
        1 => Just(Encoding::Brotli),
    ];
    let content_type = prop_oneof![
        20 => Just(Some("application/json")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/x-www-form-urlencoded")),
    ];
    let idempotency = prop::option::weighted(0.15, prop_oneof![3 => "[a-z0-9-]{1,20}", 1 => ".{0,300}"]);
    // Segment's libraries send the key as the Basic user name; other clients use Bearer.
    let basic = prop::bool::weighted(if intake { 0.5 } else { 0.05 });
    (path, query, cred(intake), basic, body, encoding, content_type, idempotency)
        .prop_map(move |(path, query, cred, basic, payload, encoding, content_type, idempotency)| Call {
            method: method.clone(),
            path,
            query,
            cred,
            basic,
            payload,
            encoding,
            content_type,
            idempotency,
        })
        .boxed()
}

fn tailor_intake(path: &str) -> bool {
    matches!(path, "/v1/track" | "/v1/identify" | "/v1/page" | "/v1/screen" | "/v1/group" | "/v1/alias" | "/v1/batch")
}

/// Every route of the document as a weighted strategy; intake routes take Segment events.
fn routes(doc: &Value) -> (BoxedStrategy<Call>, usize) {
    let mut options: Vec<(u32, BoxedStrategy<Call>)> = Vec::new();
    let no_query = || Just(Vec::new()).boxed();
    for route in ["track", "identify", "page", "screen", "group", "alias", "batch"] {
        let path = format!("/v1/{route}");
        options.push((
            12,
            call(Method::POST, Just(vec![Part::Lit(path)]).boxed(), no_query(), true, payload(intake_body(route))),
        ));
    }
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (template, ops) in &paths {
        if tailor_intake(template) {
            continue;
        }
        for (method, op) in ops.as_object().into_iter().flatten() {
            let params: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            let (method, weight, body) = match method.as_str() {
                "get" => (Method::GET, 2, Just(Payload::None).boxed()),
                "delete" => (Method::DELETE, 1, Just(Payload::None).boxed()),
                m @ ("post" | "put" | "patch") => {
                    let schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
                    let json = if schema.is_null() { any_json() } else { from_schema(doc, &schema, 0, "") };
                    let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).expect("method");
                    let weight = if template.ends_with("/train") { 1 } else { 6 };
                    (method, weight, payload(json))
                }
                _ => continue,
            };
            let q = if method == Method::GET { query(params) } else { no_query() };
            options.push((weight, call(method, path_parts(template), q, false, body)));
        }
    }
    let n = options.len();
    (Union::new_weighted(options).boxed(), n)
}

// ---------------------------------------------------------------------------------------------
// Running.

/// Routes with a known finding tolerated on PostgreSQL until its fix lands (none now: the store
/// weather binds its temperature through `tailor_store::Float`).
const KNOWN_ON_POSTGRES: &[&str] = &[];

/// The router on a seeded engine, the ids it knows, and what it answered.
struct Harness {
    backend: TestBackend,
    app: tailor_server::Router,
    keys: TestKeys,
    pool: Mutex<Pool>,
    seen: Mutex<BTreeMap<String, [u32; 4]>>,
}

/// The status, content type and body of an answer.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Harness {
    fn credential(&self, cred: Cred) -> Option<String> {
        match cred {
            Cred::Admin => Some(self.keys.admin.clone()),
            Cred::Write => Some(self.keys.write.clone()),
            Cred::Source => Some(self.keys.source.clone()),
            Cred::Read => Some(self.keys.read.clone()),
            Cred::Missing => None,
            Cred::Unknown => Some("tk_admin_not_a_key".into()),
        }
    }

    /// Sends `req` and waits at most [`REQUEST_BOUND`] for its whole answer.
    async fn send(&self, req: Request<Body>) -> Result<Answer, String> {
        let app = self.app.clone();
        let task = tokio::spawn(async move {
            let res = app.oneshot(req).await.unwrap_or_else(|never| match never {});
            let status = res.status().as_u16();
            let content_type =
                res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            // A live feed never ends: its headers are the answer.
            let body = if content_type.starts_with("text/event-stream") {
                Vec::new()
            } else {
                axum::body::to_bytes(res.into_body(), 64 << 20).await.map(|b| b.to_vec()).unwrap_or_default()
            };
            Answer { status, content_type, body }
        });
        let abort = task.abort_handle();
        match tokio::time::timeout(REQUEST_BOUND, task).await {
            Err(_) => {
                abort.abort();
                Err(format!("no answer within {REQUEST_BOUND:?}"))
            }
            Ok(Err(e)) if e.is_panic() => Err("the handler panicked".into()),
            Ok(Err(e)) => Err(format!("the request task failed: {e}")),
            Ok(Ok(answer)) => Ok(answer),
        }
    }

    /// A JSON request for seeding and checks.
    async fn json(&self, method: Method, path: &str, cred: Cred, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = self.credential(cred) {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let answer = self.send(req.body(body).expect("request")).await.expect("answer");
        (answer.status, serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
    }

    fn build(&self, call: &Call) -> Option<(Request<Body>, String)> {
        let pool = self.pool.lock().expect("pool").clone();
        let mut path = String::new();
        for part in &call.path {
            match part {
                Part::Lit(t) => path.push_str(t),
                Part::Text(t) => path.push_str(&percent_encode(&resolve(t, &pool))),
                Part::Raw(t) => path.push_str(t),
            }
        }
        if !call.query.is_empty() {
            let pairs: Vec<String> = call
                .query
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Part::Lit(t) | Part::Text(t) => percent_encode(&resolve(t, &pool)),
                        Part::Raw(t) => t.to_string(),
                    };
                    format!("{}={v}", percent_encode(&resolve(k, &pool)))
                })
                .collect();
            path = format!("{path}?{}", pairs.join("&"));
        }
        let uri: axum::http::Uri = path.parse().ok()?;
        let text = |t: &str| resolve(t, &pool).into_bytes();
        let mut body = match &call.payload {
            Payload::None => Vec::new(),
            Payload::Json(t) => text(t),
            Payload::Truncated(t, at) => {
                let mut b = text(t);
                b.truncate(at.index(b.len().max(1)));
                b
            }
            Payload::Trailing(t, tail) => {
                let mut b = text(t);
                b.extend_from_slice(tail.as_bytes());
                b
            }
            Payload::Bytes(b) => b.clone(),
        };
        let mut req = Request::builder().method(call.method.clone()).uri(uri);
        match call.encoding {
            Encoding::Identity => {}
            Encoding::Gzip | Encoding::BrokenGzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&body).expect("gzip");
                body = e.finish().expect("gzip");
                if matches!(call.encoding, Encoding::BrokenGzip) {
                    body.truncate(body.len() / 2);
                }
                req = req.header(header::CONTENT_ENCODING, "gzip");
            }
            Encoding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&body).expect("deflate");
                body = e.finish().expect("deflate");
                req = req.header(header::CONTENT_ENCODING, "deflate");
            }
            Encoding::Brotli => req = req.header(header::CONTENT_ENCODING, "br"),
        }
        if let Some(ct) = call.content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(key) = self.credential(call.cred) {
            let value = if call.basic {
                use base64::Engine as _;
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
            } else {
                format!("Bearer {key}")
            };
            req = req.header(header::AUTHORIZATION, value);
        }
        if let Some(k) = &call.idempotency {
            if let Ok(v) = HeaderValue::from_str(k) {
                req = req.header("idempotency-key", v);
            }
        }
        let shown = format!("{} {}", call.method, path);
        Some((req.body(Body::from(body)).ok()?, shown))
    }

    /// One case: the request is answered in time, never with a 5xx, every error as problem+json.
    /// With `TAILOR_FUZZ_KEEP_GOING` set, a failure is printed and the run goes on (to survey
    /// every kind of failure at once rather than the first).
    async fn check(&self, call: Call) -> Result<(), TestCaseError> {
        let result = self.check_one(&call).await;
        match result {
            Err(TestCaseError::Fail(why)) if std::env::var_os("TAILOR_FUZZ_KEEP_GOING").is_some() => {
                let shown: String = format!("{call:?}").chars().take(2_000).collect();
                eprintln!("FAILURE: {why}\n  request: {shown}");
                Ok(())
            }
            other => other,
        }
    }

    async fn check_one(&self, call: &Call) -> Result<(), TestCaseError> {
        let Some((req, shown)) = self.build(call) else {
            return Ok(()); // Not a URI a client could send.
        };
        let answer = self.send(req).await.map_err(|e| TestCaseError::fail(format!("{shown}: {e}")))?;
        let route: String = call
            .path
            .iter()
            .map(|p| match p {
                Part::Lit(t) => t.as_str(),
                _ => "{}",
            })
            .collect();
        let class = usize::from(answer.status / 100).saturating_sub(2).min(3);
        self.seen.lock().expect("seen").entry(format!("{} {route}", call.method)).or_insert([0; 4])[class] += 1;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if std::env::var_os("TAILOR_FUZZ_TRACE").is_some() {
            eprintln!(
                "{shown} -> {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
            );
        }
        let text = || String::from_utf8_lossy(&answer.body[..answer.body.len().min(600)]).to_string();
        if answer.status >= 400 {
            if !answer.content_type.starts_with("application/problem+json") {
                return Err(TestCaseError::fail(format!(
                    "{shown}: {} answered as {:?}, not problem+json: {}",
                    answer.status,
                    answer.content_type,
                    text()
                )));
            }
            let code = body["code"].as_str().unwrap_or("");
            if code.is_empty() || body["status"] != answer.status {
                return Err(TestCaseError::fail(format!("{shown}: a problem without its code: {}", text())));
            }
            let documented_503 = answer.status == 503 && matches!(code, "overloaded" | "not_ready");
            let known = answer.status == 500
                && self.backend == TestBackend::Postgres
                && KNOWN_ON_POSTGRES.contains(&route.as_str());
            if answer.status >= 500 && !documented_503 && !known {
                return Err(TestCaseError::fail(format!("{shown}: {} {}", answer.status, text())));
            }
        } else if answer.status < 300 && matches!(call.method, Method::POST | Method::PUT) {
            // Ids the engine hands out are used by later cases (reservations, transfers, ...).
            let mut pool = self.pool.lock().expect("pool");
            for k in ["id", "seq", "reservationId", "transferId", "profileId"] {
                let v = match &body[k] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                let ids = pool.entry(if k == "profileId" { 'p' } else { 'a' }).or_default();
                if ids.len() >= 400 {
                    let at = 200 + v.len() % 200;
                    ids[at] = v;
                } else {
                    ids.push(v);
                }
            }
        }
        let panics = PANICS.load(Ordering::SeqCst);
        if panics > 0 {
            return Err(TestCaseError::fail(format!("{shown}: {panics} panic(s) in the process (see the log)")));
        }
        Ok(())
    }
}

/// Products, stores, stock, prices, people and an order, so that generated ids hit real rows.
async fn seed(t: &TestEngine, h: &Harness) {
    let dir = tempfile::tempdir().expect("dir");
    let mut products = String::from("id,title,price,category,currency\n");
    for i in 0..12 {
        products.push_str(&format!("P{i},Product {i},{}.49,{},USD\n", i + 1, ["DAIRY", "SOUP"][i % 2]));
    }
    products.push_str("MILK,Milk 1l,1.49,DAIRY,USD\n");
    let file = dir.path().join("products.csv");
    std::fs::write(&file, products).expect("write");
    t.engine.import(ImportKind::Products, &file, &Silent).await.expect("products");
    let file = dir.path().join("stores.csv");
    std::fs::write(
        &file,
        "id,name,kind,region,timezone,latitude,longitude\nS0,Web,store,N,UTC,52.5,13.4\nS1,North,store,N,UTC,52.52,13.40\nS2,South,store,S,Europe/Berlin,48.14,11.58\n",
    )
    .expect("write");
    t.engine.import(ImportKind::Locations, &file, &Silent).await.expect("stores");
    for i in 0..12 {
        for store in ["S1", "S2"] {
            let (status, body) = h
                .json(
                    Method::POST,
                    "/v1/inventory/adjustments",
                    Cred::Admin,
                    Some(json!({"sku": format!("P{i}"), "locationId": store, "mode": "set", "onHand": 20, "reason": "count"})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let mut batch = Vec::new();
    for u in 0..12 {
        batch.push(json!({"type": "identify", "userId": format!("u{u}"), "anonymousId": format!("a{u}"),
            "traits": {"email": format!("user{u}@example.com"), "firstName": "Jo"},
            "context": {"consent": {"categoryPreferences": {"personalization": true, "marketing_email": true}}}}));
        batch.push(json!({"type": "track", "userId": format!("u{u}"), "event": "Order Completed",
            "messageId": format!("seed-o{u}"), "context": {"channel": "store"},
            "properties": {"order_id": format!("o{u}"), "store_id": "S1", "total": 10.0,
                "products": [{"product_id": format!("P{}", u % 12), "quantity": 2, "price": 5.0}]}}));
    }
    let (status, body) = h.json(Method::POST, "/v1/batch", Cred::Source, Some(json!({"batch": batch}))).await;
    assert_eq!(status, 200, "{body}");
    t.engine.sync().await.expect("sync");
    let (status, body) = h
        .json(
            Method::POST,
            "/v1/reservations",
            Cred::Admin,
            Some(json!({"lines": [{"sku": "P3", "quantity": 1}], "store": "S1"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut pool = Pool::new();
    let skus: Vec<String> = (0..12).map(|i| format!("P{i}")).chain(["MILK".to_string()]).collect();
    pool.insert('s', skus.clone());
    pool.insert('l', ["S0", "S1", "S2"].map(str::to_string).to_vec());
    pool.insert('c', ["web", "app", "store", "pos", "email"].map(str::to_string).to_vec());
    let mut any: Vec<String> = skus;
    any.extend((0..12).map(|u| format!("u{u}")));
    any.extend((0..12).map(|u| format!("o{u}")));
    any.extend(body["id"].as_str().map(str::to_string));
    let mut profiles = Vec::new();
    for u in 0..12 {
        let (status, p) = h.json(Method::GET, &format!("/v1/profiles/lookup?userId=u{u}"), Cred::Read, None).await;
        assert_eq!(status, 200, "{p}");
        profiles.extend(p["id"].as_str().map(str::to_string));
    }
    any.extend(profiles.iter().cloned());
    pool.insert('p', profiles);
    pool.insert('a', any);
    *h.pool.lock().expect("pool") = pool;
}

fn fuzz(backend: TestBackend) {
    count_panics();
    // Internal errors are logged: show them beside the failure (RUST_LOG to see more).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let Some(t) = rt.block_on(TestEngine::new(backend)) else {
        return;
    };
    let h = rt.block_on(async {
        let keys = TestKeys::create(&t.engine).await;
        let h = Harness {
            backend,
            app: tailor_server::app(t.engine.clone()),
            keys,
            pool: Mutex::new(Pool::from([('a', vec!["none".to_string()])])),
            seen: Mutex::new(BTreeMap::new()),
        };
        seed(&t, &h).await;
        h
    });
    let (status, doc) = rt.block_on(h.json(Method::GET, "/openapi.json", Cred::Missing, None));
    assert_eq!(status, 200);
    let (strategy, routes) = routes(&doc);

    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seconds = env("TAILOR_FUZZ_SECONDS");
    let cases = env("TAILOR_FUZZ_CASES").unwrap_or(if seconds.is_some() { u64::MAX } else { u64::from(DEFAULT_CASES) });
    let until = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let started = Instant::now();
    let mut ran: u64 = 0;
    let h = Arc::new(h);
    while ran < cases && until.is_none_or(|u| Instant::now() < u) {
        let round = (cases - ran).min(200) as u32;
        let config = Config {
            cases: round,
            failure_persistence: None,
            max_shrink_iters: 512,
            max_shrink_time: 120_000,
            max_global_rejects: 1_000_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let round_started = Instant::now();
        let result = runner.run(&strategy, |call| rt.block_on(h.check(call)));
        ran += u64::from(round);
        if round_started.elapsed() > Duration::from_secs(20) {
            eprintln!("slow round: {round} cases took {:.1?}", round_started.elapsed());
        }
        if let Err(e) = result {
            match e {
                TestError::Fail(why, call) => panic!("after {ran} cases: {why}\nshrunk request: {call:#?}"),
                TestError::Abort(why) => panic!("aborted: {why}"),
            }
        }
    }
    let took = started.elapsed();

    // Afterwards the projection catches up and the server answers.
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), t.engine.sync())
            .await
            .expect("the projection catches up")
            .expect("the projection catches up without an error");
        let (status, health) = h.json(Method::GET, "/healthz", Cred::Missing, None).await;
        assert_eq!(status, 200, "{health}");
        let (status, letters) = h.json(Method::GET, "/v1/dead-letters?limit=100", Cred::Admin, None).await;
        assert!(status == 200 || status == 401, "{letters}");
        for letter in letters["items"].as_array().into_iter().flatten() {
            eprintln!(
                "dead letter: {} {}: {}",
                letter["field"],
                letter["error"],
                letter["event"].to_string().chars().take(300).collect::<String>()
            );
        }
        eprintln!("health after the run: {health}");
    });
    let seen = h.seen.lock().expect("seen");
    eprintln!("{backend:?}: {ran} cases over {routes} routes in {took:.1?}; answers per route [2xx, 3xx, 4xx, 5xx]:");
    for (route, counts) in seen.iter() {
        eprintln!("  {route}: {counts:?}");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a background job panicked (see the log)");
    drop(seen);
    rt.block_on(t.engine.close());
}

#[test]
fn random_requests_never_get_a_5xx_a_bare_error_or_a_hang_on_sqlite() {
    fuzz(TestBackend::Sqlite);
}

#[test]
fn random_requests_never_get_a_5xx_a_bare_error_or_a_hang_on_postgres() {
    fuzz(TestBackend::Postgres);
}
