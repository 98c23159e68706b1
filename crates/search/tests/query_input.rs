//! Whatever a shopper types, search answers or refuses it naming the field; it never panics.
//! Short by default (for CI); run longer with `TAILOR_FUZZ_CASES`, e.g.
//! `TAILOR_FUZZ_CASES=2000000 cargo nextest run -p tailor-search --test query_input --release`.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tailor_search::{
    Affinity, CatalogStamp, Filters, ProductDoc, SearchError, SearchIndex, SearchQuery, Synonyms, Weights,
    MAX_QUERY_CHARS,
};

fn catalog() -> Vec<ProductDoc> {
    let words = ["milk", "oat", "banana", "cheddar", "soft", "drink", "bread", "rye", "äpfel", "crème", "12oz", "1/2"];
    (0..200)
        .map(|i| ProductDoc {
            id: format!("p{i}"),
            title: format!("{} {} {}", words[i % words.len()], words[(i * 7) % words.len()], i),
            brand: (i % 3 > 0).then(|| format!("Brand{}", i % 5)),
            department: Some("GROCERY".into()),
            category: Some(words[(i * 3) % words.len()].to_uppercase()),
            subcategory: (i % 4 > 0).then(|| words[(i * 5) % words.len()].to_uppercase()),
            size: (i % 2 < 1).then(|| format!("{i} OZ")),
            price_cents: (i % 6 > 0).then_some(i as i64 * 37),
            currency: "USD".into(),
            available: i % 9 > 0,
        })
        .collect()
}

fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 ]{0,40}",
        proptest::collection::vec(
            prop_oneof![Just("milk"), Just("mlik"), Just("soda"), Just("~*?\"("), Just("\u{0}"), Just("ǅ")],
            0..30
        )
        .prop_map(|v| v.join(" ")),
        "\\PC{150,260}",
    ]
}

#[test]
fn any_query_text_and_filters_are_answered_or_refused_never_a_panic() {
    let index = SearchIndex::in_ram().expect("index");
    let docs = catalog();
    index.replace_all(&docs, CatalogStamp { count: docs.len() as i64, updated_at: 1 }).expect("index");
    let synonyms = Synonyms::defaults();
    let products = index.products();
    let affinity = Affinity::from_purchases(["p1", "p2", "p2", "nope"], |id| products.get(id).cloned());
    let popularity: HashMap<String, f32> = [("p3".to_string(), f32::NAN), ("p4".to_string(), 7.0)].into();
    let cases = std::env::var("TAILOR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (
        query_text(),
        0usize..120,
        proptest::option::of(any::<String>()),
        proptest::option::of("[A-Za-z ]{0,12}"),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i64>()),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(("p[0-9]{1,3}", any::<f32>()), 0..4),
    );
    runner
        .run(&strategy, |(text, limit, brand, category, min, max, in_stock, personal, semantic)| {
            let q = SearchQuery {
                text: &text,
                limit,
                filters: Filters { brand, category, min_price_cents: min, max_price_cents: max, in_stock },
                affinity: personal.then_some(&affinity),
                popularity: personal.then_some(&popularity),
                semantic: &semantic,
                available: &|p: &ProductDoc| p.id.ends_with(['1', '3', '5', '7', '9']),
                weights: Weights::default(),
            };
            match index.search(&q, &synonyms) {
                Ok(r) => {
                    prop_assert!(r.hits.len() <= limit);
                    prop_assert!(r.hits.len() as u64 <= r.total.max(r.hits.len() as u64));
                    prop_assert!(r.hits.iter().all(|h| h.score.is_finite()));
                }
                Err(SearchError::Invalid { field, .. }) => {
                    let too_long = text.chars().count() > MAX_QUERY_CHARS;
                    prop_assert!(
                        (field == "q" && too_long) || (field == "limit" && !(1..=100).contains(&limit)),
                        "refused {field} for {text:?} limit {limit}"
                    );
                }
                Err(e) => prop_assert!(false, "failed: {e}"),
            }
            Ok(())
        })
        .expect("no query input breaks search");
}
