//! A small trained model for unit tests of serving rules: two taste groups of shoppers, a few
//! stores, and a catalog with categories and brands (one product nobody bought).

use std::collections::HashMap;

use crate::content::ItemAttributes;
use crate::data::Dataset;
use crate::model::{Model, ModelConfig, TrainingSet};

/// Product id, category, brand.
pub(crate) const CATALOG: &[(&str, &str, &str)] = &[
    ("milk", "DAIRY", "Acme"),
    ("bread", "BAKERY", "Acme"),
    ("eggs", "DAIRY", "Farm"),
    ("jam", "SPREADS", "Farm"),
    ("tomato-soup", "SOUP", "Acme"),
    ("miso-soup", "SOUP", "Farm"),
    ("goat-milk", "DAIRY", "Farm"),
];

/// Unix seconds of the newest purchase.
pub(crate) const NOW: i64 = 1_700_000_000;

/// Trains the model: shoppers `c0`–`c5` buy breakfast at store S1 every week, `c6`–`c9` buy
/// soup at store S2; nobody buys goat milk.
pub(crate) fn small_model() -> Model {
    let mut data = Dataset::default();
    let mut attributes = Vec::new();
    for (id, category, brand) in CATALOG {
        data.item(id);
        attributes.push(Some(ItemAttributes {
            title: format!("{} {}", brand, id.replace('-', " ")),
            department: Some("GROCERY".into()),
            category: Some(category.to_string()),
            subcategory: None,
            brand: Some(brand.to_string()),
        }));
    }
    for week in 0..6 {
        let ts = NOW - (5 - week) * 7 * 86_400;
        for c in 0..10 {
            let (store, basket): (&str, &[&str]) = if c < 6 {
                ("S1", if c % 2 == 0 { &["milk", "bread", "eggs"] } else { &["milk", "bread", "jam"] })
            } else {
                ("S2", if c % 2 == 0 { &["tomato-soup", "bread"] } else { &["miso-soup", "bread"] })
            };
            for p in basket {
                data.push(&format!("c{c}"), p, ts + c, 1.0, Some(store));
            }
        }
    }
    let store_region =
        HashMap::from([("S1".to_string(), "north".to_string()), ("S2".to_string(), "north".to_string())]);
    let set = TrainingSet { data: &data, attributes, store_region };
    Model::train(&set, &ModelConfig::default(), &|_| {})
}
