//! Building a price quote: the list price in force (price book, else catalog), the promotions
//! that apply on the channel, the guardrails' floor and ceiling that promotions stay within, and
//! the customer's personal offers, with an explanation in words of each step.

use serde::{Deserialize, Serialize};
use tailor_core::money::format_cents;
use tailor_core::FieldError;

use crate::book::{apply_promotions, Applied, Promotion};
use crate::guardrails::Guardrails;
use crate::offers::Offer;

/// The most SKUs one quote request may ask for.
pub const MAX_QUOTE_SKUS: usize = 200;
/// The most units one quote may price.
pub const MAX_QUOTE_QUANTITY: u32 = 10_000;

/// A price quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceQuote {
    /// The product.
    pub sku: String,
    /// The channel asked for.
    pub channel: String,
    /// ISO currency code.
    pub currency: String,
    /// The list price per unit, in cents: the same on every channel.
    pub list_cents: i64,
    /// The price to pay per unit after promotions, in cents (personal offers are listed
    /// separately; they apply at checkout up to their cap).
    pub price_cents: i64,
    /// What the quantity asked costs after promotions, in cents (exact, where the per-unit
    /// price is rounded).
    pub total_cents: i64,
    /// The promotions applied.
    pub promotions: Vec<Applied>,
    /// Personal offers for the customer, each with its reason.
    pub offers: Vec<Offer>,
    /// Why the price is what it is, in words.
    pub explanation: Vec<String>,
    /// The consent purpose personal offers used (`personalization`), when any were considered.
    pub consent_purpose: Option<String>,
}

/// A price from the price book: the cents, currency and zone of the list it came from (empty:
/// the default list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookPrice {
    /// The list price, in cents.
    pub cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// The zone whose list holds it; empty for the default list.
    pub zone: String,
}

/// The list price a quote starts from, and where it came from (for the explanation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPrice {
    /// The list price, in cents.
    pub cents: i64,
    /// ISO currency code.
    pub currency: String,
    /// Where it came from, in words: the price book (and zone) or the catalog.
    pub source: String,
}

impl ListPrice {
    /// The list price in force: the price book's when it has one, else the catalog's price in
    /// the catalog's currency; `None` when neither has one.
    pub fn in_force(book: Option<&BookPrice>, catalog_cents: Option<i64>, catalog_currency: &str) -> Option<ListPrice> {
        match book {
            Some(b) => Some(ListPrice {
                cents: b.cents,
                currency: b.currency.clone(),
                source: if b.zone.is_empty() { "price book".into() } else { format!("price book, zone {}", b.zone) },
            }),
            None => catalog_cents.map(|cents| ListPrice {
                cents,
                currency: catalog_currency.to_string(),
                source: "catalog".into(),
            }),
        }
    }
}

/// Checks a quote request's size: 1 to [`MAX_QUOTE_SKUS`] SKUs and 1 to
/// [`MAX_QUOTE_QUANTITY`] units; the error names the field.
pub fn check_request(skus: usize, quantity: u32) -> Result<(), FieldError> {
    if skus == 0 || skus > MAX_QUOTE_SKUS {
        return Err(FieldError::invalid("sku", "give 1 to 200 SKUs, comma-separated"));
    }
    if !(1..=MAX_QUOTE_QUANTITY).contains(&quantity) {
        return Err(FieldError::invalid("quantity", "between 1 and 10000"));
    }
    Ok(())
}

/// What every quote of one request shares: the channel, quantity and time, the promotions in
/// force and the customer's personal offers.
#[derive(Debug, Clone, Copy)]
pub struct QuoteContext<'a> {
    /// The channel asked for.
    pub channel: &'a str,
    /// Units asked for.
    pub quantity: u32,
    /// The time of the quote (unix ms): promotions must be running then.
    pub now: i64,
    /// Every promotion (those that apply are picked per product).
    pub promotions: &'a [Promotion],
    /// The customer's personal offers.
    pub offers: &'a [Offer],
    /// Whether the quote is for a known customer.
    pub for_customer: bool,
    /// The consent purpose personal offers used, when the customer granted it.
    pub consent_purpose: Option<&'a str>,
}

/// One product to quote: its SKU and category (promotions by category), its list price in force
/// and its guardrails (its own, else the defaults; the default value when none are set).
#[derive(Debug, Clone, Copy)]
pub struct QuoteItem<'a> {
    /// The product.
    pub sku: &'a str,
    /// Its category.
    pub category: Option<&'a str>,
    /// Its list price in force.
    pub list: &'a ListPrice,
    /// Its guardrails.
    pub guardrails: &'a Guardrails,
}

/// Quotes one product: the list price, less the promotions that apply on the channel, held
/// within the guardrails' floor and ceiling, with the customer's offers listed beside it.
pub fn quote(ctx: &QuoteContext<'_>, item: QuoteItem<'_>) -> PriceQuote {
    let QuoteItem { sku, category, list, guardrails } = item;
    let (promoted, applied) =
        apply_promotions(list.cents, sku, category, ctx.channel, ctx.quantity, ctx.promotions, ctx.now);
    let mut explanation = vec![format!(
        "list price {} {} ({}), the same on every channel",
        format_cents(list.cents),
        list.currency,
        list.source
    )];
    for a in &applied {
        let scope = if a.channel_only { format!(", {} only", ctx.channel) } else { String::new() };
        explanation.push(format!("promotion '{}' saves {}{scope}", a.name, format_cents(a.saved_cents)));
    }
    // Promotions, too, stay within the floor (cost and margin, or MAP) and the ceiling.
    let price_cents = guardrails.bound(promoted);
    if price_cents != promoted {
        explanation.push(format!("held at {} by the guardrails (floor or ceiling)", format_cents(price_cents)));
    }
    for o in ctx.offers {
        explanation.push(format!(
            "personal offer: {}% off up to {} because {}",
            o.percent_off,
            format_cents(o.max_discount_cents),
            o.reason
        ));
    }
    if ctx.for_customer && ctx.consent_purpose.is_none() {
        explanation.push("no personal offers: the customer has not granted personalization".into());
    }
    PriceQuote {
        sku: sku.to_string(),
        channel: ctx.channel.to_string(),
        currency: list.currency.clone(),
        list_cents: list.cents,
        price_cents,
        total_cents: total_cents(list.cents, &applied, ctx.quantity, price_cents, promoted),
        promotions: applied,
        offers: ctx.offers.to_vec(),
        explanation,
        consent_purpose: ctx.consent_purpose.map(str::to_string),
    }
}

/// The total for `quantity`: list less what promotions saved, or the held unit price when the
/// guardrails moved it.
fn total_cents(list_cents: i64, applied: &[Applied], quantity: u32, unit: i64, promoted_unit: i64) -> i64 {
    if unit != promoted_unit {
        return unit * i64::from(quantity);
    }
    list_cents * i64::from(quantity) - applied.iter().map(|a| a.saved_cents).sum::<i64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Discount;

    fn promo(id: &str, discount: Discount, channels: &[&str]) -> Promotion {
        Promotion {
            id: id.into(),
            name: id.into(),
            discount,
            skus: vec![],
            categories: vec!["snacks".into()],
            channels: channels.iter().map(|c| c.to_string()).collect(),
            priority: 0,
            stackable: false,
            starts_at: None,
            ends_at: None,
        }
    }

    fn ctx<'a>(channel: &'a str, quantity: u32, promotions: &'a [Promotion]) -> QuoteContext<'a> {
        QuoteContext { channel, quantity, now: 0, promotions, offers: &[], for_customer: false, consent_purpose: None }
    }

    fn list(cents: i64) -> ListPrice {
        ListPrice { cents, currency: "USD".into(), source: "catalog".into() }
    }

    #[test]
    fn the_book_wins_over_the_catalog_and_says_which_zone() {
        let book = BookPrice { cents: 450, currency: "USD".into(), zone: "west".into() };
        let l = ListPrice::in_force(Some(&book), Some(500), "USD").unwrap();
        assert_eq!((l.cents, l.source.as_str()), (450, "price book, zone west"));
        let default_list = BookPrice { zone: String::new(), ..book };
        assert_eq!(ListPrice::in_force(Some(&default_list), None, "USD").unwrap().source, "price book");
        assert_eq!(
            ListPrice::in_force(None, Some(500), "EUR").unwrap(),
            ListPrice { cents: 500, currency: "EUR".into(), source: "catalog".into() }
        );
        assert_eq!(ListPrice::in_force(None, None, "USD"), None, "no price yet");
    }

    #[test]
    fn a_channel_promotion_applies_on_its_channel_and_says_so() {
        let promos = [promo("app10", Discount::Percentage { percent: 10.0 }, &["app"])];
        let rails = Guardrails::default();
        let item = QuoteItem { sku: "CHIPS", category: Some("snacks"), list: &list(450), guardrails: &rails };
        let web = quote(&ctx("web", 1, &promos), item);
        assert_eq!((web.list_cents, web.price_cents, web.total_cents), (450, 450, 450));
        assert_eq!(web.explanation, vec!["list price 4.50 USD (catalog), the same on every channel".to_string()]);
        let app = quote(&ctx("app", 2, &promos), item);
        assert_eq!((app.price_cents, app.total_cents), (405, 810));
        assert_eq!(app.explanation[1], "promotion 'app10' saves 0.90, app only");
    }

    #[test]
    fn promotions_are_held_at_the_floor_and_the_total_follows_the_held_price() {
        let promos = [promo("half", Discount::Percentage { percent: 50.0 }, &[])];
        let rails = Guardrails { unit_cost_cents: Some(300), min_margin: Some(0.1), ..Default::default() };
        let item = QuoteItem { sku: "CHIPS", category: Some("snacks"), list: &list(450), guardrails: &rails };
        let q = quote(&ctx("web", 3, &promos), item);
        assert_eq!((q.price_cents, q.total_cents), (330, 990));
        assert_eq!(q.explanation.last().unwrap(), "held at 3.30 by the guardrails (floor or ceiling)");
    }

    #[test]
    fn offers_are_listed_with_their_reason_and_consent_is_explained() {
        let offer = Offer {
            kind: "lapsing".into(),
            percent_off: 10.0,
            max_discount_cents: 1_000,
            valid_days: 14,
            reason: "you usually order every 7 days".into(),
        };
        let rails = Guardrails::default();
        let item = QuoteItem { sku: "CHIPS", category: None, list: &list(450), guardrails: &rails };
        let offers = [offer];
        let granted = QuoteContext {
            offers: &offers,
            for_customer: true,
            consent_purpose: Some("personalization"),
            ..ctx("web", 1, &[])
        };
        let q = quote(&granted, item);
        assert_eq!(q.offers.len(), 1);
        assert_eq!(q.consent_purpose.as_deref(), Some("personalization"));
        assert_eq!(q.explanation[1], "personal offer: 10% off up to 10.00 because you usually order every 7 days");
        let refused = QuoteContext { for_customer: true, ..ctx("web", 1, &[]) };
        let q = quote(&refused, item);
        assert_eq!(q.explanation[1], "no personal offers: the customer has not granted personalization");
        assert_eq!(q.consent_purpose, None);
    }

    #[test]
    fn request_size_is_checked_by_field() {
        assert_eq!(check_request(0, 1).unwrap_err().field, "sku");
        assert_eq!(check_request(201, 1).unwrap_err().field, "sku");
        assert_eq!(check_request(1, 0).unwrap_err().field, "quantity");
        assert_eq!(check_request(1, 10_001).unwrap_err().field, "quantity");
        assert!(check_request(200, 10_000).is_ok());
    }
}
