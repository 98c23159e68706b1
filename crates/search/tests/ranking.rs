//! Ranking on a small catalog whose right answers are known.

use tailor_search::{Affinity, CatalogStamp, Filters, ProductDoc, SearchIndex, SearchQuery, Synonyms, Weights};

fn doc(id: &str, title: &str, brand: &str, sub: &str) -> ProductDoc {
    ProductDoc {
        id: id.into(),
        title: title.into(),
        brand: Some(brand.into()),
        department: Some("GROCERY".into()),
        category: Some("DAIRY".into()),
        subcategory: Some(sub.into()),
        size: None,
        price_cents: Some(300),
        currency: "USD".into(),
        available: true,
    }
}

fn index() -> SearchIndex {
    let index = SearchIndex::in_ram().expect("index");
    let docs = [
        doc("1", "Whole Milk", "Acme", "FLUID MILK"),
        doc("2", "Whole Milk", "Best", "FLUID MILK"),
        doc("3", "Skim Milk", "Best", "FLUID MILK"),
        doc("4", "Milk Chocolate Bar", "Sweet", "CANDY"),
    ];
    index.replace_all(&docs, CatalogStamp { count: 4, updated_at: 1 }).expect("index");
    index
}

fn search(index: &SearchIndex, text: &str, affinity: Option<&Affinity>) -> Vec<String> {
    let q = SearchQuery {
        text,
        limit: 10,
        filters: Filters::default(),
        affinity,
        popularity: None,
        semantic: &[],
        available: &|_| true,
        weights: Weights::default(),
    };
    index.search(&q, &Synonyms::defaults()).expect("search").hits.into_iter().map(|h| h.product_id).collect()
}

#[test]
fn every_word_of_a_short_query_must_match() {
    let index = index();
    assert_eq!(search(&index, "whole milk", None), ["1", "2"]);
    // No product holds both words: any word will do.
    assert_eq!(search(&index, "skim chocolate", None).len(), 2);
}

#[test]
fn what_the_customer_buys_comes_first_among_the_matches_only() {
    let index = index();
    let products = index.products();
    let affinity = Affinity::from_purchases(["2", "2", "3"], |id| products.get(id).cloned());
    assert_eq!(search(&index, "whole milk", Some(&affinity)), ["2", "1"]);
    // Their brand lifts what they never bought over what they did not choose.
    let mine = search(&index, "milk", Some(&affinity));
    assert_eq!(&mine[..2], ["2", "3"]);
    // Personal taste never brings in a product the words do not match.
    assert!(!search(&index, "chocolate", Some(&affinity)).contains(&"2".to_string()));
}

#[test]
fn semantic_hits_join_and_lift_the_word_matches() {
    let index = index();
    let q = SearchQuery {
        text: "whole milk",
        limit: 10,
        filters: Filters::default(),
        affinity: None,
        popularity: None,
        semantic: &[("2".to_string(), 0.9), ("4".to_string(), 0.8)],
        available: &|_| true,
        weights: Weights::default(),
    };
    let ids: Vec<String> =
        index.search(&q, &Synonyms::defaults()).expect("search").hits.into_iter().map(|h| h.product_id).collect();
    assert_eq!(ids, ["2", "1", "4"]);
}
