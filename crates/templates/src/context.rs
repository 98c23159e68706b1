//! The render context every message template sees, and the probe contexts the check renders
//! with: the sparsest customer (only what is always present) and a full one.

use serde_json::{json, Value};

/// The variables a template may use. Those marked optional may be absent for a customer and
/// must be guarded (`| default(...)` or `{% if %}`).
pub const VARIABLES: &[(&str, &str)] = &[
    ("brand.name", "the brand's name"),
    ("brand.url", "the shop's address"),
    ("customer.id", "the customer's profile id"),
    ("customer.firstName", "optional: the first name from traits"),
    ("customer.email", "optional: the e-mail address"),
    ("cart.items", "the cart lines: sku, name, quantity, priceCents, currency, optional url, optional replaced"),
    ("cart.totalCents", "the cart total at today's prices, in cents"),
    ("cart.currency", "the currency"),
    ("similar", "similar in-stock items: sku, name, priceCents, currency"),
    ("offer", "optional: percent, items (sku, name, priceCents, wasCents, currency), endsAt"),
    ("points", "optional: earn (points the cart would earn at the prices shown), balance (spendable), optional tier"),
    ("viewed", "optional: items viewed lately, in stock and not in the cart: sku, name, priceCents, currency"),
    ("due", "optional: items due again by the customer's repeat cycle, in stock: sku, name, priceCents, currency, everyDays"),
    ("backInStock", "optional: items the customer wanted that are back in stock: sku, name, priceCents, currency"),
    ("priceDrop", "optional: items viewed that cost less now: sku, name, priceCents, wasCents, currency"),
    ("expiring", "optional: points (active points expiring within the warning window), by (a date)"),
    ("tierRisk", "optional: tier (held in its grace period), graceUntil (a date), optional pointsNeeded, optional spendNeededCents"),
    ("birthday", "optional: points (the birthday reward)"),
    ("unsubscribeUrl", "the one-click unsubscribe link"),
];

/// The contexts a template must render with: (label, context).
pub fn probe_contexts() -> Vec<(&'static str, Value)> {
    let item = json!({"sku": "1", "name": "Bananas", "quantity": 1, "priceCents": 98, "currency": "USD"});
    let sparse = json!({
        "brand": {"name": "Tailor", "url": "https://shop.example"},
        "customer": {"id": "p-1"},
        "cart": {"items": [item.clone()], "totalCents": 98, "currency": "USD"},
        "similar": [],
        "unsubscribeUrl": "https://shop.example/u",
    });
    let full = json!({
        "brand": {"name": "Tailor", "url": "https://shop.example"},
        "customer": {"id": "p-1", "firstName": "Sam", "email": "sam@example.com"},
        "cart": {"items": [
            {"sku": "1", "name": "Bananas", "quantity": 2, "priceCents": 98, "currency": "USD", "url": "https://shop.example/p/1",
             "replaced": {"sku": "9", "name": "Plantains"}}
        ], "totalCents": 196, "currency": "USD"},
        "similar": [item],
        "offer": {"percent": 10, "items": [{"sku": "1", "name": "Bananas", "priceCents": 88, "wasCents": 98, "currency": "USD"}], "endsAt": "2026-12-02T00:00:00Z"},
        "points": {"earn": 2, "balance": 120, "tier": "Gold"},
        "viewed": [{"sku": "2", "name": "Pears", "quantity": 1, "priceCents": 300, "currency": "USD"}],
        "due": [{"sku": "3", "name": "Coffee", "quantity": 1, "priceCents": 450, "currency": "USD", "everyDays": 7}],
        "backInStock": [{"sku": "4", "name": "Soup", "quantity": 1, "priceCents": 250, "currency": "USD"}],
        "priceDrop": [{"sku": "2", "name": "Pears", "quantity": 1, "priceCents": 250, "wasCents": 300, "currency": "USD"}],
        "expiring": {"points": 120, "by": "2026-12-31"},
        "tierRisk": {"tier": "Gold", "graceUntil": "2027-01-31", "pointsNeeded": 300, "spendNeededCents": 15000},
        "birthday": {"points": 100},
        "unsubscribeUrl": "https://shop.example/u",
    });
    vec![("a customer with only the variables always present", sparse), ("a customer with every variable", full)]
}

/// `{{ cents | money(currency) }}`: 98 → `$0.98` (USD) or `0.98 EUR`.
pub(crate) fn money(cents: i64, currency: Option<String>) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let amount = format!("{sign}{}.{:02}", abs / 100, abs % 100);
    match currency.as_deref().unwrap_or("USD") {
        "USD" => format!("${amount}"),
        "EUR" => format!("€{amount}"),
        "GBP" => format!("£{amount}"),
        other => format!("{amount} {other}"),
    }
}
