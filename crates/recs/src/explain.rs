//! What a shopper (and a program) is told about each recommended product: its catalog facts
//! and the reasons behind it, as stable codes and sentences.

use serde::Serialize;

use crate::model::Model;
use crate::recommend::{Answer, Query, Reason, Recommendation, Source};
use crate::situation::Moment;

/// Why a product is recommended, for people and for programs.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonView {
    /// Stable code, e.g. `because_you_bought`, `due_again`, `popular_at_store`, `in_stock`.
    pub code: &'static str,
    /// A sentence to show.
    pub text: String,
    /// The product behind it, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

/// One recommended product.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedItem {
    /// Product id.
    pub product_id: String,
    /// Display title.
    pub title: String,
    /// Category.
    pub category: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// Blended score (pinned items: null).
    pub score: Option<f32>,
    /// Why, strongest first.
    pub reasons: Vec<ReasonView>,
}

impl RecommendedItem {
    /// A recent best seller, as the non-personal fallback lists it while no model serves.
    pub fn best_seller(product_id: String, title: String, category: Option<String>, brand: Option<String>) -> Self {
        RecommendedItem {
            product_id,
            title,
            category,
            brand,
            score: None,
            reasons: vec![ReasonView { code: "popular", text: "A best seller lately".into(), product_id: None }],
        }
    }
}

/// The model's answer as the API lists it: each item with its catalog facts and its reasons;
/// with a store in the query, every item also says it is available there (the rules let only
/// such items through).
pub fn explain_answer(model: &Model, answer: &Answer, q: &Query) -> Vec<RecommendedItem> {
    answer.items.iter().map(|r| explain_item(model, r, q)).collect()
}

fn explain_item(model: &Model, r: &Recommendation, q: &Query) -> RecommendedItem {
    let mut reasons: Vec<ReasonView> = r.reasons.iter().map(|reason| explain(r.item, reason, model, q)).collect();
    if let Some(s) = &q.store {
        reasons.push(ReasonView { code: "in_stock", text: format!("Available at store {s}"), product_id: None });
    }
    RecommendedItem {
        product_id: model.items[r.item as usize].clone(),
        title: display(model, r.item),
        category: model.content.category_of(r.item).map(str::to_string),
        brand: model.content.brand_of(r.item).map(str::to_string),
        score: r.score.is_finite().then_some(r.score),
        reasons,
    }
}

/// The product's title as the catalog knows it (its id when it is not in the catalog).
fn display(model: &Model, i: u32) -> String {
    model.titles.get(i as usize).filter(|t| !t.is_empty()).cloned().unwrap_or_else(|| model.items[i as usize].clone())
}

/// One reason for item `recommended` in words, with the product behind it.
fn explain(recommended: u32, reason: &Reason, model: &Model, q: &Query) -> ReasonView {
    let (code, text, product_id) = match reason {
        Reason::Source { source, item } => explain_source(*source, *item, recommended, model, q),
        Reason::Habit { every_days, due } => match (every_days, due) {
            (Some(d), true) => ("due_again", format!("You buy this about every {} — it's due", period(*d)), None),
            (Some(d), false) => ("buy_again", format!("You buy this about every {}", period(*d)), None),
            _ => ("buy_again", "You bought this before".to_string(), None),
        },
        Reason::Boosted => ("promoted", "Promoted by the store".to_string(), None),
        Reason::Pinned => ("featured", "Featured by the store".to_string(), None),
        Reason::Fill => ("popular", "Popular overall".to_string(), None),
    };
    ReasonView { code, text, product_id }
}

/// Code, sentence and product of a source's reason; `item` is the shopper's item behind it.
fn explain_source(
    source: Source,
    item: Option<u32>,
    recommended: u32,
    model: &Model,
    q: &Query,
) -> (&'static str, String, Option<String>) {
    let product = item.map(|i| model.items[i as usize].clone());
    let about = item.map(|i| display(model, i)).unwrap_or_else(|| "items like this".into());
    match source {
        Source::Als => ("your_taste", "Picked for your taste from what you buy".to_string(), None),
        Source::Knn | Source::Ease => ("because_you_bought", format!("Because you bought {about}"), product),
        Source::Session => ("because_you_viewed", format!("Because you looked at {about}"), product),
        Source::Together => ("bought_together", format!("Often bought with {about}"), product),
        Source::Content => ("similar", format!("Similar to {about}"), product),
        Source::Repeat => ("buy_again", "You buy this regularly".to_string(), None),
        Source::Popularity => match q.store.as_deref() {
            Some(s) if model.by_store.contains_key(s) => ("popular_at_store", format!("Popular at store {s}"), None),
            Some(_) => ("popular_in_region", "Popular in your region".to_string(), None),
            None => ("popular", "Popular right now".to_string(), None),
        },
        Source::Trending => ("trending", "Trending: selling more than usual lately".to_string(), None),
        Source::CatchingOn => {
            ("catching_on", "Catching on: many shoppers tried it for the first time lately".to_string(), None)
        }
        Source::Moment => {
            ("right_now", format!("Sells well on {}", Moment::at(q.now, q.utc_offset_secs).describe()), None)
        }
        Source::Weather => {
            ("weather", format!("Fits the weather at your store ({})", q.weather.map_or("", |w| w.name())), None)
        }
        Source::Category => (
            "favourite_category",
            format!(
                "A best seller in {}, which you buy often",
                model.content.category_of(recommended).unwrap_or("a category")
            ),
            None,
        ),
    }
}

/// "3 weeks", "10 days", "2 months".
fn period(days: f32) -> String {
    let d = days.round().max(1.0) as i64;
    match d {
        1 => "day".into(),
        2..=13 => format!("{d} days"),
        14..=59 => format!("{} weeks", (days / 7.0).round() as i64),
        _ => format!("{} months", (days / 30.0).round() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::Surface;
    use crate::situation::Weather;
    use crate::testing::{small_model, NOW};

    fn query(store: Option<&str>) -> Query {
        Query {
            surface: Surface::Home,
            anchors: Vec::new(),
            store: store.map(str::to_string),
            k: 5,
            now: NOW,
            utc_offset_secs: 0,
            weather: Some(Weather::Rain),
            novel: false,
            kind: None,
        }
    }

    fn reason(model: &Model, reason: Reason, store: Option<&str>) -> ReasonView {
        explain(model.item_index["bread"], &reason, model, &query(store))
    }

    #[test]
    fn periods_read_as_days_weeks_and_months() {
        assert_eq!(period(0.4), "day");
        assert_eq!(period(1.0), "day");
        assert_eq!(period(10.0), "10 days");
        assert_eq!(period(21.0), "3 weeks");
        assert_eq!(period(61.0), "2 months");
    }

    #[test]
    fn reasons_name_the_product_behind_them_by_its_title() {
        let model = small_model();
        let milk = Some(model.item_index["milk"]);
        let r = reason(&model, Reason::Source { source: Source::Knn, item: milk }, None);
        assert_eq!(
            (r.code, r.text.as_str(), r.product_id.as_deref()),
            ("because_you_bought", "Because you bought Acme milk", Some("milk"))
        );
        let r = reason(&model, Reason::Source { source: Source::Content, item: None }, None);
        assert_eq!((r.code, r.text.as_str(), r.product_id), ("similar", "Similar to items like this", None));
        let r = reason(&model, Reason::Source { source: Source::Session, item: milk }, None);
        assert_eq!((r.code, r.product_id.as_deref()), ("because_you_viewed", Some("milk")));
        let r = reason(&model, Reason::Source { source: Source::Weather, item: None }, None);
        assert_eq!(r.text, "Fits the weather at your store (rain)");
        let r = reason(&model, Reason::Source { source: Source::Category, item: None }, None);
        assert_eq!(r.text, "A best seller in BAKERY, which you buy often");
    }

    #[test]
    fn popularity_says_where_it_comes_from() {
        let model = small_model();
        let popular = |store| reason(&model, Reason::Source { source: Source::Popularity, item: None }, store);
        assert_eq!(popular(Some("S1")).code, "popular_at_store");
        assert_eq!(popular(Some("S1")).text, "Popular at store S1");
        assert_eq!(popular(Some("S9")).code, "popular_in_region");
        assert_eq!(popular(None).code, "popular");
    }

    #[test]
    fn habits_say_whether_the_item_is_due() {
        let model = small_model();
        let habit = |every_days, due| reason(&model, Reason::Habit { every_days, due }, None);
        assert_eq!(habit(Some(7.0), true).code, "due_again");
        assert_eq!(habit(Some(7.0), true).text, "You buy this about every 7 days — it's due");
        assert_eq!(habit(Some(30.0), false).text, "You buy this about every 4 weeks");
        assert_eq!(habit(None, true).text, "You bought this before");
        assert_eq!(reason(&model, Reason::Pinned, None).code, "featured");
        assert_eq!(reason(&model, Reason::Boosted, None).code, "promoted");
        assert_eq!(reason(&model, Reason::Fill, None).code, "popular");
    }

    #[test]
    fn items_carry_catalog_facts_and_say_they_are_in_stock_at_the_store() {
        let model = small_model();
        let jam = model.item_index["jam"];
        let answer = Answer {
            items: vec![
                Recommendation { item: jam, score: f32::INFINITY, reasons: vec![Reason::Pinned] },
                Recommendation { item: model.item_index["eggs"], score: 0.5, reasons: vec![Reason::Fill] },
            ],
            personalized: false,
            popularity_scope: "store",
            moment: Moment::at(NOW, 0),
        };
        let items = explain_answer(&model, &answer, &query(Some("S1")));
        assert_eq!(items[0].product_id, "jam");
        assert_eq!(items[0].title, "Farm jam");
        assert_eq!((items[0].category.as_deref(), items[0].brand.as_deref()), (Some("SPREADS"), Some("Farm")));
        assert_eq!(items[0].score, None, "a pinned item has no score");
        assert_eq!(items[1].score, Some(0.5));
        let codes: Vec<_> = items[1].reasons.iter().map(|r| r.code).collect();
        assert_eq!(codes, ["popular", "in_stock"]);
        assert_eq!(items[1].reasons[1].text, "Available at store S1");
        let anywhere = explain_answer(&model, &answer, &query(None));
        assert!(anywhere.iter().all(|i| i.reasons.iter().all(|r| r.code != "in_stock")));
    }
}
