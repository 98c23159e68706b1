//! What a message says, decided at send time from what the engine knows now: the cart at
//! today's prices (the same quote `GET /v1/prices` gives), an item sold out meanwhile replaced
//! by a similar one in stock (recommendations restricted to its category), a discount priced
//! under each item's margin floor, and the unsubscribe link.

use serde_json::{json, Value};
use tailor_campaigns::journey::{SendChannel, SendOptions};
use tailor_core::Purpose;

use tailor_profiles::Contact;

use super::shelf::Shelf;
use crate::{Engine, EngineError, RecsRequest};

/// The message's content and why it says what it says.
#[derive(Debug, Default)]
pub(super) struct Content {
    /// Nothing left in the cart (a message that shows the cart is skipped).
    pub cart_empty: bool,
    /// Cart lines: sku, name, quantity, priceCents, currency, optional replaced.
    pub items: Vec<Value>,
    /// Similar in-stock items.
    pub similar: Vec<Value>,
    /// Items the customer viewed lately, in stock, not in the cart, at today's prices (read
    /// only for a message that shows them).
    pub viewed: Vec<Value>,
    /// Items due again by the customer's own repeat cycle, in stock, at today's prices (read
    /// only for a message that shows them).
    pub due: Vec<Value>,
    /// Watched items back in stock, and watched items cheaper than when viewed (read only for
    /// a message that shows them).
    pub back_in_stock: Vec<Value>,
    /// (See `back_in_stock`.)
    pub price_drop: Vec<Value>,
    /// The discount, if the step offers one and any item can take it.
    pub offer: Option<Value>,
    /// The cart total at today's prices.
    pub total_cents: i64,
    /// The currency.
    pub currency: String,
    /// The cart's lines as an order of them would earn points: amount in cents, category.
    pub earning: Vec<(i64, Option<String>)>,
    /// What was used: prices, replacements, the floor.
    pub explanation: Vec<String>,
}

/// The customer's address on a channel.
pub(super) fn address(contact: &Contact, channel: SendChannel) -> Option<String> {
    // Push goes to the app's push token (a trait or an identifier the app sends), else to the
    // device the app installed on, which the push gateway maps to its token.
    let (traits, kinds): (&[&str], &[&str]) = match channel {
        SendChannel::Email => (&["email"], &["email"]),
        SendChannel::Sms => (&["phone"], &["phone"]),
        SendChannel::Push => (&["push_token", "pushToken"], &["push_token", "device_token", "device_id"]),
        SendChannel::Onsite => return Some(contact.id.clone()),
    };
    let from_traits = traits
        .iter()
        .filter_map(|t| contact.traits.get(*t).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .map(str::to_string);
    let same = |kind: &str, want: &str| {
        kind.eq_ignore_ascii_case(want) || kind.replace('_', "").eq_ignore_ascii_case(&want.replace('_', ""))
    };
    let from_ids = || {
        kinds.iter().find_map(|want| contact.identifiers.iter().find(|(k, _)| same(k, want)).map(|(_, v)| v.clone()))
    };
    from_traits.or_else(from_ids)
}

/// A similar in-stock item for a sold-out `sku`: the recommendations for it, in its category,
/// not already in the cart.
async fn replacement(
    engine: &Engine,
    shelf: &Shelf,
    customer: &str,
    sku: &str,
    cart: &[String],
) -> Result<Option<String>, EngineError> {
    let category = engine.product(sku).await.ok().and_then(|p| p.category);
    let req = RecsRequest {
        user: Some(customer.to_string()),
        context: "item".into(),
        item: Some(sku.to_string()),
        k: 10,
        exclude: cart.to_vec(),
        categories: category.clone().into_iter().collect(),
        ..RecsRequest::default()
    };
    let Ok(recs) = engine.recommend(&req).await else { return Ok(None) };
    for item in recs.items {
        // The non-personal fallback (no model yet) ignores the category asked for.
        if category.is_some() && item.category != category {
            continue;
        }
        if item.product_id != sku
            && !cart.contains(&item.product_id)
            && !shelf.sold_out(engine, &item.product_id).await?
        {
            return Ok(Some(item.product_id));
        }
    }
    Ok(None)
}

/// The message's content for `contact` now.
pub(super) async fn content(
    engine: &Engine,
    shelf: &Shelf,
    contact: &Contact,
    options: &SendOptions,
) -> Result<Content, EngineError> {
    let customer = contact.id.as_str();
    let cart: Vec<String> = contact.cart.iter().map(|(sku, _)| sku.clone()).collect();
    let mut out = Content { cart_empty: cart.is_empty(), ..Content::default() };
    // (sku to show, quantity, the sold-out item it replaces)
    let mut lines: Vec<(String, i64, Option<String>)> = Vec::new();
    for (sku, quantity) in &contact.cart {
        if !shelf.sold_out(engine, sku).await? {
            lines.push((sku.clone(), *quantity, None));
            continue;
        }
        let taken: Vec<String> = cart.iter().cloned().chain(lines.iter().map(|(s, _, _)| s.clone())).collect();
        match replacement(engine, shelf, customer, sku, &taken).await? {
            Some(other) => {
                out.explanation.push(format!("{sku} sold out: replaced by similar {other} in stock"));
                lines.push((other, *quantity, Some(sku.clone())));
            }
            None => out.explanation.push(format!("{sku} sold out: no similar item in stock")),
        }
    }
    let skus: Vec<String> = lines.iter().map(|(s, _, _)| s.clone()).collect();
    let quoted = shelf.quotes(engine, customer, &skus).await?;
    let mut total: i64 = 0;
    for (sku, quantity, replaced) in &lines {
        let Some(q) = quoted.iter().find(|q| &q.sku == sku) else {
            out.explanation.push(format!("{sku} has no price: left out"));
            continue;
        };
        out.currency = q.currency.clone();
        let Some(amount) = q.price_cents.checked_mul(*quantity) else {
            out.explanation.push(format!("{sku}: {quantity} x {} cents is out of range: left out", q.price_cents));
            continue;
        };
        total = total.saturating_add(amount);
        out.earning.push((amount, shelf.category(engine, sku).await));
        let mut item = json!({
            "sku": sku, "name": shelf.name(engine, sku).await, "quantity": quantity,
            "priceCents": q.price_cents, "currency": q.currency,
        });
        if let Some(r) = replaced {
            item["replaced"] = json!({"sku": r, "name": shelf.name(engine, r).await});
        }
        out.explanation.push(format!("{sku} at {} cents (today's price)", q.price_cents));
        out.items.push(item);
    }
    out.total_cents = total;
    out.cart_empty = out.items.is_empty();
    if let Some(pct) = options.discount_percent {
        out.offer = offer(engine, shelf, &out.items, pct, &mut out.explanation).await?;
    }
    if options.similar > 0 {
        // Suggestions that go with the cart, or for an e-mail when it is empty.
        let shown: Vec<String> = cart.iter().chain(&skus).cloned().collect();
        out.similar = similar(engine, shelf, customer, &shown, options.similar as usize).await?;
    }
    Ok(out)
}

/// A discount of `pct` on each item, never under its margin floor (pricing's guardrails);
/// items the floor leaves no room on are left out.
async fn offer(
    engine: &Engine,
    shelf: &Shelf,
    items: &[Value],
    pct: u32,
    explanation: &mut Vec<String>,
) -> Result<Option<Value>, EngineError> {
    let mut lines = Vec::new();
    for item in items {
        let (Some(sku), Some(was)) = (item["sku"].as_str(), item["priceCents"].as_i64()) else { continue };
        let wanted = was.saturating_mul(i64::from(100 - pct.min(100))).saturating_add(99) / 100;
        let floor = shelf.floor(engine, sku).await?;
        let price = floor.map_or(wanted, |f| wanted.max(f));
        if let Some(f) = floor.filter(|f| *f > wanted) {
            explanation.push(format!("discount on {sku} held at its margin floor ({f} cents)"));
        }
        if price < was {
            let mut line = json!({"sku": sku, "name": item["name"], "priceCents": price, "wasCents": was, "currency": item["currency"]});
            if let Some(r) = item.get("replaced") {
                line["replaced"] = r.clone();
            }
            lines.push(line);
        }
    }
    if lines.is_empty() {
        explanation.push("no item has room for a discount above its margin floor".into());
        return Ok(None);
    }
    explanation.push(format!("{pct}% discount on {} items", lines.len()));
    Ok(Some(json!({"percent": pct, "items": lines})))
}

/// Items viewed at most in a message.
const VIEWED: usize = 4;

/// The items `contact` viewed most recently that are in stock and not in their cart, at
/// today's prices.
pub(super) async fn viewed(
    engine: &Engine,
    shelf: &Shelf,
    contact: &Contact,
    explanation: &mut Vec<String>,
) -> Result<Vec<Value>, EngineError> {
    let seen = {
        let mut conn = engine.db().reader().acquire().await?;
        tailor_profiles::viewed(&mut conn, &contact.members, 3 * VIEWED).await?
    };
    let mut skus = Vec::new();
    for sku in seen {
        if contact.cart.iter().any(|(c, _)| c == &sku) {
            continue;
        }
        if shelf.sold_out(engine, &sku).await? {
            explanation.push(format!("viewed {sku} is sold out: left out"));
            continue;
        }
        skus.push(sku);
        if skus.len() == VIEWED {
            break;
        }
    }
    let mut out = Vec::new();
    for q in shelf.quotes(engine, &contact.id, &skus).await? {
        explanation.push(format!("viewed {} at {} cents (today's price)", q.sku, q.price_cents));
        out.push(json!({"sku": q.sku, "name": shelf.name(engine, &q.sku).await, "quantity": 1, "priceCents": q.price_cents, "currency": q.currency}));
    }
    Ok(out)
}

/// Purchase lines a repeat cycle is read from at most.
const PURCHASES: i64 = 500;
/// How fast old purchases fade in a habit's strength (days).
const HALF_LIFE_DAYS: f64 = 180.0;

/// The items `contact` buys again and again whose usual interval has (nearly) passed since they
/// last bought them (`tailor_recs::replenish`), in stock, at today's prices; the most habitual
/// first.
pub(super) async fn due_again(
    engine: &Engine,
    shelf: &Shelf,
    contact: &Contact,
    now: i64,
    explanation: &mut Vec<String>,
) -> Result<Vec<Value>, EngineError> {
    let bought = {
        let mut conn = engine.db().reader().acquire().await?;
        tailor_profiles::purchased(&mut conn, &contact.members, PURCHASES).await?
    };
    // Items as numbers for the pure computation, times in seconds.
    let mut names: Vec<String> = Vec::new();
    let mut lines = Vec::with_capacity(bought.len());
    for (sku, ms) in &bought {
        let i = match names.iter().position(|n| n == sku) {
            Some(i) => i,
            None => {
                names.push(sku.clone());
                names.len() - 1
            }
        };
        lines.push((u32::try_from(i).unwrap_or(u32::MAX), ms.div_euclid(1000)));
    }
    let mut skus = Vec::new();
    let mut every = Vec::new();
    for h in tailor_recs::replenish::habits(&lines, now.div_euclid(1000), HALF_LIFE_DAYS) {
        let (Some(sku), Some(interval)) = (names.get(h.item as usize), h.interval_days) else { continue };
        if !h.due() || skus.len() == VIEWED {
            continue;
        }
        if shelf.sold_out(engine, sku).await? {
            explanation.push(format!("{sku} is due again but sold out: left out"));
            continue;
        }
        explanation
            .push(format!("{sku} due again: bought about every {interval:.0} days, last {:.0} days ago", h.days_since));
        skus.push(sku.clone());
        every.push(interval.round() as i64);
    }
    let mut out = Vec::new();
    for q in shelf.quotes(engine, &contact.id, &skus).await? {
        let days = skus.iter().position(|s| s == &q.sku).and_then(|i| every.get(i)).copied().unwrap_or(0);
        out.push(json!({"sku": q.sku, "name": shelf.name(engine, &q.sku).await, "quantity": 1,
            "priceCents": q.price_cents, "currency": q.currency, "everyDays": days}));
    }
    Ok(out)
}

async fn similar(
    engine: &Engine,
    shelf: &Shelf,
    customer: &str,
    cart: &[String],
    k: usize,
) -> Result<Vec<Value>, EngineError> {
    let req = RecsRequest {
        user: Some(customer.to_string()),
        context: if cart.is_empty() { "email" } else { "cart" }.into(),
        k,
        exclude: cart.to_vec(),
        ..RecsRequest::default()
    };
    let Ok(recs) = engine.recommend(&req).await else { return Ok(Vec::new()) };
    // The non-personal fallback (no model yet) ignores `exclude`.
    let skus: Vec<String> =
        recs.items.iter().map(|i| i.product_id.clone()).filter(|p| !cart.contains(p)).take(k).collect();
    let quoted = shelf.quotes(engine, customer, &skus).await?;
    let mut out = Vec::new();
    for q in quoted {
        if shelf.sold_out(engine, &q.sku).await? {
            continue;
        }
        out.push(json!({"sku": q.sku, "name": shelf.name(engine, &q.sku).await, "quantity": 1, "priceCents": q.price_cents, "currency": q.currency}));
    }
    Ok(out)
}

/// The render context (see `tailor_templates::VARIABLES`).
pub(super) fn context(
    engine: &Engine,
    contact: &Contact,
    c: &Content,
    loyalty: &super::points::Shown,
    unsubscribe: &str,
) -> Value {
    let channels = engine.channels();
    let mut customer = json!({"id": contact.id});
    for (from, to) in [("firstName", "firstName"), ("first_name", "firstName"), ("email", "email")] {
        if let Some(v) = contact.traits.get(from).and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
            customer[to] = json!(v);
        }
    }
    let mut ctx = json!({
        "brand": {
            "name": if channels.brand_name.is_empty() { "Tailor" } else { channels.brand_name.as_str() },
            "url": if channels.brand_url.is_empty() { "http://127.0.0.1:8080" } else { channels.brand_url.as_str() },
        },
        "customer": customer,
        "cart": {"items": c.items, "totalCents": c.total_cents, "currency": c.currency},
        "similar": c.similar,
        "unsubscribeUrl": unsubscribe,
    });
    if let Some(o) = &c.offer {
        ctx["offer"] = o.clone();
    }
    if !c.viewed.is_empty() {
        ctx["viewed"] = json!(c.viewed);
    }
    if !c.due.is_empty() {
        ctx["due"] = json!(c.due);
    }
    if !c.back_in_stock.is_empty() {
        ctx["backInStock"] = json!(c.back_in_stock);
    }
    if !c.price_drop.is_empty() {
        ctx["priceDrop"] = json!(c.price_drop);
    }
    for (name, v) in [
        ("points", &loyalty.points),
        ("expiring", &loyalty.expiring),
        ("tierRisk", &loyalty.tier_risk),
        ("birthday", &loyalty.birthday),
    ] {
        if let Some(v) = v {
            ctx[name] = v.clone();
        }
    }
    ctx
}

fn token_mac(secret: &[u8], customer: &str, purpose: &str) -> String {
    let sig = tailor_campaigns::channels::signature(secret, format!("{customer}\n{purpose}").as_bytes());
    sig.trim_start_matches("sha256=").chars().take(32).collect()
}

/// A token naming a customer and a purpose, signed so nobody can unsubscribe someone else.
pub(super) fn unsubscribe_token(secret: &[u8], customer: &str, purpose: Purpose) -> String {
    let p = purpose.as_str();
    format!("{}.{p}.{}", hex::encode(customer.as_bytes()), token_mac(secret, customer, p))
}

/// The customer and purpose of a valid token.
pub(super) fn read_unsubscribe_token(secret: &[u8], token: &str) -> Option<(String, Purpose)> {
    let mut parts = token.splitn(3, '.');
    let customer = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
    let purpose = parts.next()?;
    let mac = parts.next()?;
    let expected = token_mac(secret, &customer, purpose);
    // Equal lengths and every byte compared: no early exit a timing could read.
    let same = mac.len() == expected.len() && mac.bytes().zip(expected.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
    same.then_some(())?;
    Some((customer, Purpose::parse(purpose)?))
}

impl Engine {
    /// The one-click unsubscribe URL for a customer and purpose.
    pub(super) async fn unsubscribe_url(&self, customer: &str, purpose: Purpose) -> Result<String, EngineError> {
        let secret = self.unsubscribe_secret().await?;
        let base = self.channels().public_url;
        let base = if base.is_empty() { "http://127.0.0.1:8080".to_string() } else { base };
        Ok(format!(
            "{}/v1/unsubscribe?token={}",
            base.trim_end_matches('/'),
            unsubscribe_token(&secret, customer, purpose)
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contact(traits: Value, ids: &[(&str, &str)]) -> Contact {
        Contact {
            id: "p1".into(),
            members: vec!["p1".into()],
            traits,
            identifiers: ids.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            consent: Default::default(),
            cart: Vec::new(),
            withdrawn: Vec::new(),
        }
    }

    #[test]
    fn push_reaches_the_apps_push_token_first_then_its_device() {
        let none = contact(json!({"email": "a@b.co"}), &[]);
        assert_eq!(address(&none, SendChannel::Push), None, "no app: push cannot reach them");
        assert_eq!(address(&none, SendChannel::Email).as_deref(), Some("a@b.co"));
        let device = contact(json!({}), &[("deviceId", "dev-1")]);
        assert_eq!(address(&device, SendChannel::Push).as_deref(), Some("dev-1"));
        let token = contact(json!({"push_token": "tok-9"}), &[("device_id", "dev-1")]);
        assert_eq!(address(&token, SendChannel::Push).as_deref(), Some("tok-9"));
        let id_token = contact(json!({}), &[("device_id", "dev-1"), ("push_token", "tok-3")]);
        assert_eq!(address(&id_token, SendChannel::Push).as_deref(), Some("tok-3"));
        assert_eq!(address(&none, SendChannel::Sms), None);
    }
}
