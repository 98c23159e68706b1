//! One request end to end, without I/O: what the shopper did (by product ids), what is asked,
//! the merchandisers' rules and where products can be bought go in; the explained, merchandised,
//! available list comes out. The engine reads the inputs from the store and calls [`serve`].

use std::sync::Arc;

use tailor_core::FieldError;

use crate::explain::{explain_answer, RecommendedItem};
use crate::merchandising::{Filters, Merchandising};
use crate::model::Model;
use crate::recommend::{Action, ItemKind, Query, Rules, Shopper, Surface};
use crate::replenish::DayHabits;
use crate::situation::Weather;

/// The most items one request may ask for.
pub const MAX_K: usize = 100;
/// Views and adds older than this (ms) are not the current session.
pub const SESSION_MILLIS: i64 = 6 * 3600 * 1000;

/// The surface a request names, once its shape is right: a known context, `k` from 1 to
/// [`MAX_K`], and a product for the item context.
pub fn surface_of(context: &str, k: usize, item: Option<&str>) -> Result<Surface, FieldError> {
    let names = Surface::ALL.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
    let surface = Surface::parse(context)
        .ok_or_else(|| FieldError::invalid("context", format!("unknown context; use one of {names}")))?;
    if k == 0 || k > MAX_K {
        return Err(FieldError::invalid("k", format!("k is between 1 and {MAX_K}")));
    }
    if surface == Surface::Item && item.is_none() {
        return Err(FieldError::invalid("item", "the item context needs ?item=PRODUCT_ID"));
    }
    Ok(surface)
}

/// What an item page asks for: `similar` (substitutes), `goes_with` (complements) or, when
/// not given, both; only the item context takes it.
pub fn item_kind(kind: Option<&str>, surface: Surface) -> Result<Option<ItemKind>, FieldError> {
    let Some(kind) = kind else { return Ok(None) };
    let names = ItemKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(" or ");
    let parsed =
        ItemKind::parse(kind).ok_or_else(|| FieldError::invalid("kind", format!("unknown kind; use {names}")))?;
    if surface != Surface::Item {
        return Err(FieldError::invalid("kind", "kind applies to context=item"));
    }
    Ok(Some(parsed))
}

/// The store a list is for and why: the one the request names, else (with consent) the store
/// of most of the shopper's orders, else none.
pub fn choose_store(
    requested: Option<&str>,
    preferred: Option<&str>,
    personal: bool,
) -> (Option<String>, Option<&'static str>) {
    match (requested, preferred) {
        (Some(s), _) => (Some(s.to_string()), Some("request")),
        (None, Some(p)) if personal => (Some(p.to_string()), Some("preferred")),
        _ => (None, None),
    }
}

/// What is known of the shopper, by profile and product ids as the store keeps them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// The shopper's profiles (root first); the first the model was trained with is theirs.
    pub members: &'a [String],
    /// Purchased products with the order time (ms), newest first.
    pub purchases: &'a [(String, i64)],
    /// Products viewed (`false`) or added (`true`) this session with the time (ms), newest first.
    pub session: &'a [(String, bool, i64)],
    /// Products in the cart.
    pub cart: &'a [String],
    /// Whether they consented to personalization; without it nothing of theirs is used.
    pub personal: bool,
    /// `purchases` already in the model's terms ([`Observed::indexed_purchases`] of this
    /// model), when the caller kept them from an earlier request: converting thousands of
    /// product ids is most of a request's own work.
    pub indexed: Option<&'a Arc<Vec<(u32, i64)>>>,
    /// The habits of `indexed`, when the caller kept them (see [`Shopper::habits_at`]).
    pub habits: Option<&'a Arc<DayHabits>>,
}

impl Observed<'_> {
    /// `purchases` in the model's terms: (item, unix seconds), oldest first, products it does
    /// not know left out.
    pub fn indexed_purchases(&self, model: &Model) -> Vec<(u32, i64)> {
        let idx = |id: &str| model.item_index.get(id).copied();
        self.purchases.iter().rev().filter_map(|(p, ts)| Some((idx(p)?, ts / 1000))).collect()
    }

    /// The shopper in the model's terms (products it does not know are left out).
    pub fn shopper(&self, model: &Model) -> Shopper {
        if !self.personal {
            return Shopper::default();
        }
        let idx = |id: &str| model.item_index.get(id).copied();
        Shopper {
            user: self.members.iter().find_map(|m| model.user_index.get(m).copied()),
            purchases: match self.indexed {
                Some(p) => p.clone(),
                None => Arc::new(self.indexed_purchases(model)),
            },
            habits: self.habits.cloned(),
            session: self
                .session
                .iter()
                .rev()
                .filter_map(|(p, added, ts)| {
                    Some((idx(p)?, if *added { Action::Added } else { Action::Viewed }, ts / 1000))
                })
                .collect(),
            cart: self.cart.iter().filter_map(|p| idx(p)).collect(),
            personal: true,
        }
    }
}

/// What is asked, by product ids.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Where the list is shown.
    pub surface: Surface,
    /// The product in view.
    pub item: Option<&'a str>,
    /// More cart products the caller names.
    pub cart: &'a [String],
    /// Products not to show.
    pub exclude: &'a [String],
    /// Only these categories, when not empty.
    pub categories: &'a [String],
    /// The store the list is for.
    pub store: Option<&'a str>,
    /// The weather at that store.
    pub weather: Option<Weather>,
    /// How many items.
    pub k: usize,
    /// Leave out products the shopper already bought.
    pub novel: bool,
    /// On an item page: substitutes or complements only.
    pub kind: Option<ItemKind>,
    /// Now, in unix milliseconds.
    pub now_millis: i64,
}

impl Ask<'_> {
    /// The query in the model's terms: the item in view and the cart products as anchors.
    pub fn query(&self, model: &Model) -> Query {
        let idx = |id: &str| model.item_index.get(id).copied();
        Query {
            surface: self.surface,
            anchors: self.item.and_then(idx).into_iter().chain(self.cart.iter().filter_map(|p| idx(p))).collect(),
            store: self.store.map(str::to_string),
            k: self.k,
            now: self.now_millis / 1000,
            utc_offset_secs: 0,
            weather: self.weather,
            novel: self.novel,
            kind: self.kind,
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The products, best first, explained.
    pub items: Vec<RecommendedItem>,
    /// Whether the shopper's own data was used.
    pub personalized: bool,
}

/// Ranks, merchandises and explains one request. `available` says whether a product can be
/// bought at the asked store; others never appear. Fails only on a category filter the model
/// does not know.
pub fn serve(
    model: &Model,
    observed: &Observed<'_>,
    ask: &Ask<'_>,
    merchandising: &Merchandising,
    available: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Served, FieldError> {
    let available = |i: u32| available(&model.items[i as usize]);
    let filters = Filters { surface: ask.surface, exclude: ask.exclude, categories: ask.categories };
    let rules = merchandising.rules(model, &filters, &available)?;
    let query = ask.query(model);
    let answer = model.recommend(&observed.shopper(model), &query, &rules);
    Ok(Served { items: explain_answer(model, &answer, &query), personalized: answer.personalized })
}

/// The in-stock product that best replaces `product` (the same need: its category, alike by
/// content), for a cart or an answer that holds a product sold out where the shopper buys.
/// `available` says what can be bought there; None when the model does not know the product
/// or nothing like it is available. The abandoned-cart loop and the assistant call this.
pub fn substitute(
    model: &Model,
    product: &str,
    available: &(dyn Fn(&str) -> bool + Sync),
    now_millis: i64,
) -> Option<RecommendedItem> {
    let anchor = *model.item_index.get(product)?;
    let available = |i: u32| available(&model.items[i as usize]);
    let rules = Rules { available: &available, ..Rules::default() };
    let query = Query {
        surface: Surface::Item,
        anchors: vec![anchor],
        store: None,
        k: 1,
        now: now_millis / 1000,
        utc_offset_secs: 0,
        weather: None,
        novel: false,
        kind: Some(ItemKind::Similar),
    };
    let answer = model.recommend(&Shopper::default(), &query, &rules);
    // The popularity fill is no substitute: only a real neighbour of the product is.
    let found = answer.items.into_iter().filter(|r| !r.reasons.contains(&crate::recommend::Reason::Fill));
    let answer = crate::recommend::Answer { items: found.collect(), ..answer };
    explain_answer(model, &answer, &query).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{small_model, NOW};

    fn ask(surface: Surface) -> Ask<'static> {
        Ask {
            surface,
            item: None,
            cart: &[],
            exclude: &[],
            categories: &[],
            store: None,
            weather: None,
            k: 4,
            novel: false,
            kind: None,
            now_millis: NOW * 1000,
        }
    }

    fn ids(served: &Served) -> Vec<&str> {
        served.items.iter().map(|i| i.product_id.as_str()).collect()
    }

    #[test]
    fn requests_of_the_wrong_shape_are_refused_naming_the_field() {
        let field = |c: &str, k, item| surface_of(c, k, item).err().map(|e| e.field);
        assert_eq!(surface_of("home", 10, None).ok(), Some(Surface::Home));
        assert_eq!(field("homepage", 10, None), Some("context".into()));
        assert_eq!(field("home", 0, None), Some("k".into()));
        assert_eq!(field("home", MAX_K + 1, None), Some("k".into()));
        assert_eq!(surface_of("home", MAX_K, None).ok(), Some(Surface::Home));
        assert_eq!(field("item", 5, None), Some("item".into()));
        assert_eq!(surface_of("item", 5, Some("milk")).ok(), Some(Surface::Item));
    }

    #[test]
    fn a_kind_is_similar_or_goes_with_and_only_on_an_item_page() {
        assert_eq!(item_kind(None, Surface::Home), Ok(None));
        assert_eq!(item_kind(Some("similar"), Surface::Item), Ok(Some(ItemKind::Similar)));
        assert_eq!(item_kind(Some("goes_with"), Surface::Item), Ok(Some(ItemKind::GoesWith)));
        assert_eq!(item_kind(Some("alike"), Surface::Item).err().map(|e| e.field), Some("kind".into()));
        assert_eq!(item_kind(Some("similar"), Surface::Cart).err().map(|e| e.field), Some("kind".into()));
    }

    #[test]
    fn substitutes_share_the_need_and_complements_do_not() {
        let model = small_model();
        let on_page = |kind| {
            let a = Ask { item: Some("milk"), kind: Some(kind), ..ask(Surface::Item) };
            let served = serve(&model, &Observed::default(), &a, &Merchandising::default(), &|_| true).expect("served");
            served.items.iter().map(|i| i.category.clone().unwrap_or_default()).collect::<Vec<_>>()
        };
        let similar = on_page(ItemKind::Similar);
        assert!(!similar.is_empty() && similar.iter().all(|c| c == "DAIRY"), "{similar:?}");
        let goes_with = on_page(ItemKind::GoesWith);
        assert!(!goes_with.is_empty() && goes_with.iter().all(|c| c != "DAIRY"), "{goes_with:?}");
    }

    #[test]
    fn a_sold_out_product_is_replaced_by_an_available_one_of_the_same_need() {
        let model = small_model();
        let everywhere = substitute(&model, "milk", &|_| true, NOW * 1000).expect("a substitute");
        assert_eq!(everywhere.category.as_deref(), Some("DAIRY"));
        assert_ne!(everywhere.product_id, "milk");
        let first = everywhere.product_id.clone();
        let other = substitute(&model, "milk", &|p| p != first, NOW * 1000).expect("another");
        assert!(other.product_id != first && other.category.as_deref() == Some("DAIRY"), "{other:?}");
        assert_eq!(substitute(&model, "no-such-product", &|_| true, NOW * 1000), None);
        assert_eq!(
            substitute(&model, "milk", &|p| !["eggs", "goat-milk"].contains(&p), NOW * 1000),
            None,
            "no dairy left"
        );
    }

    #[test]
    fn the_requested_store_wins_and_the_preferred_one_needs_consent() {
        assert_eq!(choose_store(Some("S1"), Some("S2"), false), (Some("S1".into()), Some("request")));
        assert_eq!(choose_store(None, Some("S2"), true), (Some("S2".into()), Some("preferred")));
        assert_eq!(choose_store(None, Some("S2"), false), (None, None));
        assert_eq!(choose_store(None, None, true), (None, None));
    }

    #[test]
    fn without_consent_nothing_of_the_shopper_is_used() {
        let model = small_model();
        let (members, purchases) = (["c0".to_string()], [("milk".to_string(), NOW * 1000)]);
        let observed = Observed { members: &members, purchases: &purchases, personal: false, ..Default::default() };
        let s = observed.shopper(&model);
        assert!(!s.personal && s.user.is_none() && s.purchases.is_empty());
    }

    #[test]
    fn the_shopper_is_put_in_model_terms_oldest_first_in_seconds() {
        let model = small_model();
        let members = ["new-profile".to_string(), "c1".to_string()];
        let purchases = [("jam".to_string(), 3_000), ("unknown".to_string(), 2_000), ("milk".to_string(), 1_000)];
        let session = [("miso-soup".to_string(), true, 9_000), ("eggs".to_string(), false, 8_000)];
        let cart = ["bread".to_string(), "unknown".to_string()];
        let observed = Observed {
            members: &members,
            purchases: &purchases,
            session: &session,
            cart: &cart,
            personal: true,
            indexed: None,
            habits: None,
        };
        let s = observed.shopper(&model);
        let idx = |id: &str| model.item_index[id];
        assert_eq!(s.user, Some(model.user_index["c1"]), "the first member the model knows");
        assert_eq!(*s.purchases, vec![(idx("milk"), 1), (idx("jam"), 3)]);
        assert_eq!(s.session, vec![(idx("eggs"), Action::Viewed, 8), (idx("miso-soup"), Action::Added, 9)]);
        assert_eq!(s.cart, vec![idx("bread")]);
    }

    #[test]
    fn an_unavailable_product_is_never_served() {
        let model = small_model();
        let m = Merchandising::default();
        let everything = serve(&model, &Observed::default(), &ask(Surface::Home), &m, &|_| true).expect("served");
        let first = ids(&everything)[0].to_string();
        let without = serve(&model, &Observed::default(), &ask(Surface::Home), &m, &|p| p != first).expect("served");
        assert!(!ids(&without).contains(&first.as_str()), "{:?}", ids(&without));
        assert_eq!(without.items.len(), 4);
        assert!(!without.personalized);
    }

    #[test]
    fn pins_come_first_and_exclusions_never_appear() {
        let model = small_model();
        let m = Merchandising { pins: vec!["goat-milk".into()], exclude: vec!["bread".into()], ..Default::default() };
        let excluded = ["milk".to_string()];
        let a = Ask { exclude: &excluded, ..ask(Surface::Home) };
        let served = serve(&model, &Observed::default(), &a, &m, &|_| true).expect("served");
        assert_eq!(ids(&served)[0], "goat-milk");
        assert_eq!(served.items[0].reasons[0].code, "featured");
        assert!(!ids(&served).contains(&"bread") && !ids(&served).contains(&"milk"), "{:?}", ids(&served));
    }

    #[test]
    fn a_shopper_with_consent_gets_a_personal_list_explained() {
        let model = small_model();
        let members = ["c7".to_string()];
        let purchases: Vec<(String, i64)> =
            (0..4).map(|w| ("miso-soup".to_string(), (NOW - w * 7 * 86_400) * 1000)).collect();
        let observed = Observed { members: &members, purchases: &purchases, personal: true, ..Default::default() };
        let store = Some("S2");
        let served =
            serve(&model, &observed, &Ask { store, ..ask(Surface::Home) }, &Merchandising::default(), &|_| true)
                .expect("served");
        assert!(served.personalized);
        assert!(served.items.iter().all(|i| i.reasons.last().is_some_and(|r| r.code == "in_stock")));
        let codes: Vec<&str> = served.items.iter().flat_map(|i| i.reasons.iter().map(|r| r.code)).collect();
        assert!(
            codes.iter().any(|c| ["buy_again", "due_again", "your_taste", "because_you_bought"].contains(c)),
            "{codes:?}"
        );
    }

    #[test]
    fn the_item_in_view_anchors_the_list_and_an_unknown_category_is_refused() {
        let model = small_model();
        let a = Ask { item: Some("milk"), ..ask(Surface::Item) };
        assert_eq!(a.query(&model).anchors, vec![model.item_index["milk"]]);
        let typo = ["SOPU".to_string()];
        let a = Ask { categories: &typo, ..ask(Surface::Home) };
        let err = serve(&model, &Observed::default(), &a, &Merchandising::default(), &|_| true).err();
        assert_eq!(err.map(|e| e.field), Some("category".into()));
    }
}
