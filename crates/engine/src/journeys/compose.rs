//! What a message says, decided at send time from what the engine knows now: the cart at
//! today's prices (the same quote `GET /v1/prices` gives), an item sold out meanwhile replaced
//! by a similar one in stock (recommendations restricted to its category), a discount priced
//! under each item's margin floor, and the unsubscribe link.

use serde_json::{json, Value};
use tailor_campaigns::journey::{SendChannel, SendOptions};
use tailor_core::Purpose;

use crate::{Engine, EngineError, ProfileView, RecsRequest};

/// The message's content and why it says what it says.
#[derive(Debug, Default)]
pub(super) struct Content {
    /// Nothing left in the cart (the send is skipped).
    pub cart_empty: bool,
    /// Cart lines: sku, name, quantity, priceCents, currency, optional replaced.
    pub items: Vec<Value>,
    /// Similar in-stock items.
    pub similar: Vec<Value>,
    /// The discount, if the step offers one and any item can take it.
    pub offer: Option<Value>,
    /// The cart total at today's prices.
    pub total_cents: i64,
    /// The currency.
    pub currency: String,
    /// What was used: prices, replacements, the floor.
    pub explanation: Vec<String>,
}

/// The customer's address on a channel.
pub(super) fn address(profile: &ProfileView, channel: SendChannel) -> Option<String> {
    // Push goes to the app's push token (a trait or an identifier the app sends), else to the
    // device the app installed on, which the push gateway maps to its token.
    let (traits, kinds): (&[&str], &[&str]) = match channel {
        SendChannel::Email => (&["email"], &["email"]),
        SendChannel::Sms => (&["phone"], &["phone"]),
        SendChannel::Push => (&["push_token", "pushToken"], &["push_token", "device_token", "device_id"]),
        SendChannel::Onsite => return Some(profile.id.clone()),
    };
    let from_traits = traits
        .iter()
        .filter_map(|t| profile.traits.get(*t).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .map(str::to_string);
    let same = |kind: &str, want: &str| {
        kind.eq_ignore_ascii_case(want) || kind.replace('_', "").eq_ignore_ascii_case(&want.replace('_', ""))
    };
    let from_ids = || {
        kinds.iter().find_map(|want| profile.identifiers.iter().find(|i| same(&i.kind, want)).map(|i| i.value.clone()))
    };
    from_traits.or_else(from_ids)
}

async fn sold_out(engine: &Engine, sku: &str) -> Result<bool, EngineError> {
    let mut conn = engine.db().reader().acquire().await?;
    let on_hand = tailor_inventory::units_on_hand(&mut conn, sku).await.map_err(|e| EngineError::Io(e.to_string()))?;
    Ok(on_hand.is_some_and(|n| n <= 0))
}

async fn name_of(engine: &Engine, sku: &str) -> String {
    engine.product(sku).await.map(|p| p.title).unwrap_or_else(|_| sku.to_string())
}

/// A similar in-stock item for a sold-out `sku`: the recommendations for it, in its category,
/// not already in the cart.
async fn replacement(
    engine: &Engine,
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
        if item.product_id != sku && !cart.contains(&item.product_id) && !sold_out(engine, &item.product_id).await? {
            return Ok(Some(item.product_id));
        }
    }
    Ok(None)
}

/// Quotes `skus` for the customer as `GET /v1/prices?channel=web&user=…` does; SKUs without a
/// price are left out.
async fn quotes(engine: &Engine, customer: &str, skus: &[String]) -> Result<Vec<crate::PriceQuote>, EngineError> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    match engine.quote_prices(skus, "web", "", Some(customer), 1).await {
        Ok(q) => Ok(q),
        Err(EngineError::NoPrice(_) | EngineError::Invalid(_)) => {
            let mut out = Vec::new();
            for sku in skus {
                if let Ok(mut q) = engine.quote_prices(std::slice::from_ref(sku), "web", "", Some(customer), 1).await {
                    out.append(&mut q);
                }
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// The message's content for `profile` now.
pub(super) async fn content(
    engine: &Engine,
    profile: &ProfileView,
    options: &SendOptions,
    _now: i64,
) -> Result<Content, EngineError> {
    let customer = profile.id.as_str();
    let cart: Vec<String> = profile.cart.iter().map(|l| l.product_id.clone()).collect();
    let mut out = Content { cart_empty: cart.is_empty(), ..Content::default() };
    // (sku to show, quantity, the sold-out item it replaces)
    let mut lines: Vec<(String, i64, Option<String>)> = Vec::new();
    for l in &profile.cart {
        if !sold_out(engine, &l.product_id).await? {
            lines.push((l.product_id.clone(), l.quantity, None));
            continue;
        }
        let taken: Vec<String> = cart.iter().cloned().chain(lines.iter().map(|(s, _, _)| s.clone())).collect();
        match replacement(engine, customer, &l.product_id, &taken).await? {
            Some(other) => {
                out.explanation.push(format!("{} sold out: replaced by similar {other} in stock", l.product_id));
                lines.push((other, l.quantity, Some(l.product_id.clone())));
            }
            None => out.explanation.push(format!("{} sold out: no similar item in stock", l.product_id)),
        }
    }
    let skus: Vec<String> = lines.iter().map(|(s, _, _)| s.clone()).collect();
    let quoted = quotes(engine, customer, &skus).await?;
    let mut total: i64 = 0;
    for (sku, quantity, replaced) in &lines {
        let Some(q) = quoted.iter().find(|q| &q.sku == sku) else {
            out.explanation.push(format!("{sku} has no price: left out"));
            continue;
        };
        out.currency = q.currency.clone();
        total = total.saturating_add(q.price_cents.saturating_mul(*quantity));
        let mut item = json!({
            "sku": sku, "name": name_of(engine, sku).await, "quantity": quantity,
            "priceCents": q.price_cents, "currency": q.currency,
        });
        if let Some(r) = replaced {
            item["replaced"] = json!({"sku": r, "name": name_of(engine, r).await});
        }
        out.explanation.push(format!("{sku} at {} cents (today's price)", q.price_cents));
        out.items.push(item);
    }
    out.total_cents = total;
    out.cart_empty = out.items.is_empty();
    if let Some(pct) = options.discount_percent {
        out.offer = offer(engine, &out.items, pct, &mut out.explanation).await?;
    }
    if options.similar > 0 && !skus.is_empty() {
        let shown: Vec<String> = cart.iter().chain(&skus).cloned().collect();
        out.similar = similar(engine, customer, &shown, options.similar as usize).await?;
    }
    Ok(out)
}

/// A discount of `pct` on each item, never under its margin floor (pricing's guardrails);
/// items the floor leaves no room on are left out.
async fn offer(
    engine: &Engine,
    items: &[Value],
    pct: u32,
    explanation: &mut Vec<String>,
) -> Result<Option<Value>, EngineError> {
    let mut lines = Vec::new();
    for item in items {
        let (Some(sku), Some(was)) = (item["sku"].as_str(), item["priceCents"].as_i64()) else { continue };
        let wanted = was.saturating_mul(i64::from(100 - pct.min(100))).saturating_add(99) / 100;
        let floor = engine.guardrails(sku).await?.hard_floor();
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

async fn similar(engine: &Engine, customer: &str, cart: &[String], k: usize) -> Result<Vec<Value>, EngineError> {
    let req = RecsRequest {
        user: Some(customer.to_string()),
        context: "cart".into(),
        k,
        exclude: cart.to_vec(),
        ..RecsRequest::default()
    };
    let Ok(recs) = engine.recommend(&req).await else { return Ok(Vec::new()) };
    // The non-personal fallback (no model yet) ignores `exclude`.
    let skus: Vec<String> =
        recs.items.iter().map(|i| i.product_id.clone()).filter(|p| !cart.contains(p)).take(k).collect();
    let quoted = quotes(engine, customer, &skus).await?;
    let mut out = Vec::new();
    for q in quoted {
        if sold_out(engine, &q.sku).await? {
            continue;
        }
        out.push(json!({"sku": q.sku, "name": name_of(engine, &q.sku).await, "quantity": 1, "priceCents": q.price_cents, "currency": q.currency}));
    }
    Ok(out)
}

/// The render context (see `tailor_templates::VARIABLES`).
pub(super) fn context(engine: &Engine, profile: &ProfileView, c: &Content, unsubscribe: &str) -> Value {
    let channels = engine.channels();
    let mut customer = json!({"id": profile.id});
    for (from, to) in [("firstName", "firstName"), ("first_name", "firstName"), ("email", "email")] {
        if let Some(v) = profile.traits.get(from).and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
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
    use tailor_profiles::{Features, IdentifierView};

    use super::*;

    fn profile(traits: Value, ids: &[(&str, &str)]) -> ProfileView {
        ProfileView {
            id: "p1".into(),
            created_at: String::new(),
            traits,
            identifiers: ids
                .iter()
                .map(|(kind, value)| IdentifierView {
                    kind: kind.to_string(),
                    value: value.to_string(),
                    first_seen: String::new(),
                    profile_id: "p1".into(),
                })
                .collect(),
            features: Features {
                first_seen: None,
                last_seen: None,
                channels: Vec::new(),
                event_count: 0,
                order_count: 0,
                spend: "0".into(),
                currency: "USD".into(),
                top_categories: Vec::new(),
                preferred_store: None,
            },
            consent: Vec::new(),
            cart: Vec::new(),
            merged_profiles: Vec::new(),
        }
    }

    #[test]
    fn push_reaches_the_apps_push_token_first_then_its_device() {
        let none = profile(json!({"email": "a@b.co"}), &[]);
        assert_eq!(address(&none, SendChannel::Push), None, "no app: push cannot reach them");
        assert_eq!(address(&none, SendChannel::Email).as_deref(), Some("a@b.co"));
        let device = profile(json!({}), &[("deviceId", "dev-1")]);
        assert_eq!(address(&device, SendChannel::Push).as_deref(), Some("dev-1"));
        let token = profile(json!({"push_token": "tok-9"}), &[("device_id", "dev-1")]);
        assert_eq!(address(&token, SendChannel::Push).as_deref(), Some("tok-9"));
        let id_token = profile(json!({}), &[("device_id", "dev-1"), ("push_token", "tok-3")]);
        assert_eq!(address(&id_token, SendChannel::Push).as_deref(), Some("tok-3"));
        assert_eq!(address(&none, SendChannel::Sms), None);
    }
}
