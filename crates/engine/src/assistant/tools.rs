//! The assistant's tools: each runs one [`Tool`] over the engine's own APIs (search, stock,
//! reservations, prices, orders, loyalty, recommendations, events) and returns the [`Facts`] the
//! reply may state. No business rule is repeated here: a price is `quote_prices`, stock is
//! `stock_availability`, points are `loyalty_account`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tailor_assistant::dialogue::{
    CartLineFact, ChatChannel, Facts, LoyaltyFact, OrderFact, PriceFact, ProductRef, StoreStock, Tool, Want,
};
use tailor_assistant::knowledge::KnowledgeBase;
use tailor_assistant::store as chat_store;
use tailor_core::bucket::{Bucket, Buckets};
use tailor_core::time::{format_millis, now_millis};
use tailor_core::{Event, EventKind};
use tailor_inventory::{Allocation, ReserveRequest};

use super::Caller;
use crate::{Engine, EngineError, RecsRequest, SearchRequest};

/// How long the assistant holds units for pickup (the shipped policy says 24 hours).
pub const PICKUP_HOLD_MS: i64 = 24 * 3_600_000;

/// Most units one hold asked for from a browser may take.
pub const BROWSER_HOLD_MAX_UNITS: i64 = 5;

/// Caps on the holds browsers' turns make, per client address and per shopper, kept in memory
/// on each node: a script holding the write key cannot empty a store's shelf by chatting. Holds
/// last 24 hours, so the buckets refill slowly: three holds at once per address, then one an
/// hour; two per shopper, then one every 30 minutes.
pub(crate) struct HoldCaps {
    per_client: Buckets<IpAddr>,
    per_shopper: Buckets<String>,
}

impl Default for HoldCaps {
    fn default() -> Self {
        Self {
            per_client: Buckets::new(Bucket { burst: 3.0, per_second: 1.0 / 3_600.0 }),
            per_shopper: Buckets::new(Bucket { burst: 2.0, per_second: 1.0 / 1_800.0 }),
        }
    }
}

impl HoldCaps {
    /// Takes a hold token of the client and of the shopper; on refusal gives back what it took
    /// and says why.
    fn admit(&self, client: Option<IpAddr>, shopper: &str) -> Result<(), String> {
        let now = Instant::now();
        let refused = |wait: Duration| {
            format!(
                "that is as many holds as we take online for now; try again in {} minutes, or ask for a person",
                wait.as_secs().div_ceil(60).max(1)
            )
        };
        if let Some(ip) = client {
            self.per_client.take(&ip, now).map_err(refused)?;
        }
        if let Err(wait) = self.per_shopper.take(&shopper.to_string(), now) {
            if let Some(ip) = client {
                self.per_client.give_back(&ip);
            }
            return Err(refused(wait));
        }
        Ok(())
    }
}

/// Who the turn is for and where.
pub(crate) struct Who<'a> {
    /// The conversation id (idempotency keys, event ids).
    pub conversation: &'a str,
    /// A key unique to this turn's state, so a retried turn is not applied twice.
    pub turn_key: String,
    /// The customer's root profile, when one exists.
    pub profile: Option<String>,
    /// The shop's userId, when signed in.
    pub user_id: Option<&'a str>,
    /// The visitor's anonymousId.
    pub anonymous_id: Option<&'a str>,
    /// The channel.
    pub channel: ChatChannel,
    /// The store in context.
    pub store: Option<String>,
    /// A browser or the shop's servers, and from where.
    pub caller: Caller,
}

/// Cents from a decimal string ("3.49" → 349); `None` when it is not one.
fn cents(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: i64 = whole.parse().ok()?;
    let frac = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac[..2].parse::<i64>().ok()?,
    };
    let sign = if s.starts_with('-') { -1 } else { 1 };
    whole.checked_mul(100)?.checked_add(sign * frac)
}

impl Engine {
    /// Runs one tool.
    pub(crate) async fn run_tool(&self, who: &Who<'_>, tool: &Tool) -> Result<Facts, EngineError> {
        match tool {
            Tool::Search { query, organic, below_cents } => {
                let mut items = self.find_products(who, query, *organic, 20).await?;
                if let Some(b) = below_cents {
                    items.retain(|p| p.price_cents.is_some_and(|c| c < *b));
                    items.sort_by_key(|p| p.price_cents);
                }
                Ok(Facts::Products { query: query.clone(), items })
            }
            Tool::Details { product, store } => {
                let price = self.price_fact(who, &product.sku).await?;
                let stock = match store {
                    Some(s) => Some((s.clone(), self.available_at(&product.sku, s).await?)),
                    None => None,
                };
                Ok(Facts::Details { product: product.clone(), price, stock })
            }
            Tool::Availability { product, store, quantity, .. } => {
                let Some(product) = self.resolve(who, product).await? else {
                    return Ok(Facts::NoProduct { query: want_text(product) });
                };
                let available = self.available_at(&product.sku, store).await?;
                let nearest = if available >= *quantity {
                    None
                } else {
                    self.nearest_with(&product.sku, store, *quantity).await?
                };
                Ok(Facts::Availability { product, store: store.clone(), available, nearest })
            }
            Tool::Reserve { product, store, quantity } => {
                if who.caller.browser {
                    if *quantity > BROWSER_HOLD_MAX_UNITS {
                        return Ok(Facts::Refused {
                            reason: format!(
                                "online holds are for up to {BROWSER_HOLD_MAX_UNITS} units; for more, ask for a person"
                            ),
                        });
                    }
                    let shopper = who.user_id.or(who.anonymous_id).unwrap_or(who.conversation);
                    if let Err(reason) = self.inner.assistant.holds.admit(who.caller.client, shopper) {
                        metrics::counter!("tailor_assistant_holds_capped_total").increment(1);
                        return Ok(Facts::Refused { reason });
                    }
                }
                let req = ReserveRequest {
                    lines: vec![(product.sku.clone(), *quantity)],
                    allocation: Allocation::Pickup(store.clone()),
                    allow_split: false,
                    channel: who.channel.commerce_channel().to_string(),
                    ttl_ms: PICKUP_HOLD_MS,
                };
                let body = json!({"sku": product.sku, "store": store, "quantity": quantity}).to_string();
                match self.reserve(&req, Some(&who.turn_key), body.as_bytes()).await {
                    Ok(r) => Ok(Facts::Reserved { reservation: r.id, until: format_millis(r.expires_at) }),
                    Err(EngineError::InsufficientStock(m) | EngineError::Conflict(m)) => {
                        Ok(Facts::Refused { reason: m })
                    }
                    Err(EngineError::Invalid(f)) => Ok(Facts::Refused { reason: f.message }),
                    Err(e) => Err(e),
                }
            }
            Tool::Price { product } => {
                let Some(product) = self.resolve(who, product).await? else {
                    return Ok(Facts::NoProduct { query: want_text(product) });
                };
                let price = self.price_fact(who, &product.sku).await?;
                Ok(Facts::Price { product, price })
            }
            Tool::Orders { .. } => {
                let Some(profile) = &who.profile else { return Ok(Facts::Orders(Vec::new())) };
                let mut conn = self.db().reader().acquire().await?;
                let members = tailor_profiles::group_of(&mut conn, profile).await?;
                let orders = tailor_profiles::recent_orders(&mut conn, &members, 20).await?;
                Ok(Facts::Orders(
                    orders
                        .into_iter()
                        .map(|o| OrderFact {
                            order_id: o.order_id,
                            date: format_millis(o.ts),
                            total_cents: o.total_cents,
                            refunded_cents: o.refunded_cents,
                            currency: o.currency,
                            store: o.store_id,
                        })
                        .collect(),
                ))
            }
            Tool::Knowledge { question } => {
                let kb = self.knowledge_base().await?;
                Ok(Facts::Knowledge(kb.answer(question)))
            }
            Tool::Loyalty { .. } | Tool::RedeemCheck { .. } => Ok(Facts::Loyalty(self.loyalty_fact(who).await?)),
            Tool::Redeem { points } => {
                let Some(profile) = &who.profile else {
                    return Ok(Facts::Refused { reason: "there is no loyalty account for you yet".into() });
                };
                let body = json!({"points": points}).to_string();
                match self.redeem_points(profile, *points, Some(&who.turn_key), body.as_bytes()).await {
                    Ok(r) => Ok(Facts::Redeemed {
                        points: r.points,
                        discount_cents: r.discount_cents,
                        currency: "USD".into(),
                        active: r.balance.active,
                    }),
                    Err(EngineError::InsufficientPoints(m)) => Ok(Facts::Refused { reason: m }),
                    Err(EngineError::Invalid(f)) => Ok(Facts::Refused { reason: f.message }),
                    Err(e) => Err(e),
                }
            }
            Tool::AddToCart { product, quantity } => {
                let Some(product) = self.resolve(who, product).await? else {
                    return Ok(Facts::NoProduct { query: want_text(product) });
                };
                self.add_to_cart(who, &product, *quantity).await?;
                Ok(Facts::CartAdded { product, quantity: *quantity })
            }
            Tool::Cart => {
                let Some(profile) = &who.profile else { return Ok(Facts::Cart(Vec::new())) };
                let view = match self.profile(profile).await {
                    Ok(v) => v,
                    Err(EngineError::NotFound(_)) => return Ok(Facts::Cart(Vec::new())),
                    Err(e) => return Err(e),
                };
                let mut lines = Vec::new();
                for l in view.cart {
                    let title = match self.product(&l.product_id).await {
                        Ok(p) => p.title,
                        Err(_) => l.product_id.clone(),
                    };
                    lines.push(CartLineFact { sku: l.product_id, title, quantity: l.quantity });
                }
                Ok(Facts::Cart(lines))
            }
            Tool::Advice => {
                let req = RecsRequest {
                    user: who.profile.clone(),
                    anonymous_id: if who.profile.is_none() { who.anonymous_id.map(str::to_string) } else { None },
                    context: "home".into(),
                    store: who.store.clone(),
                    k: who.channel.list_len(),
                    ..RecsRequest::default()
                };
                let r = self.recommend(&req).await?;
                let items = r
                    .items
                    .into_iter()
                    .map(|i| {
                        let why = i.reasons.first().map(|x| x.text.clone()).unwrap_or_else(|| "A good match".into());
                        (
                            ProductRef {
                                sku: i.product_id,
                                title: i.title,
                                price_cents: None,
                                currency: String::new(),
                            },
                            why,
                        )
                    })
                    .collect();
                Ok(Facts::Advice { personalized: r.personalized, consent: r.consent.granted, items })
            }
        }
    }

    /// Products matching words, best first (organic ones only when asked).
    async fn find_products(
        &self,
        who: &Who<'_>,
        query: &str,
        organic: bool,
        limit: usize,
    ) -> Result<Vec<ProductRef>, EngineError> {
        if query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let q: String = query.chars().take(crate::MAX_QUERY_CHARS).collect();
        let q = if organic && !q.to_lowercase().contains("organic") { format!("organic {q}") } else { q };
        let req =
            SearchRequest { q, user: who.profile.clone(), store: who.store.clone(), limit, ..SearchRequest::default() };
        let res = self.search(&req).await?;
        let mut items: Vec<ProductRef> = res
            .items
            .into_iter()
            .filter(|h| {
                !organic
                    || h.title.to_lowercase().contains("organic")
                    || h.brand.as_deref().is_some_and(|b| b.to_lowercase().contains("organic"))
            })
            .map(|h| ProductRef {
                price_cents: h.price.as_deref().and_then(cents),
                sku: h.product_id,
                title: h.title,
                currency: h.currency,
            })
            .collect();
        items.truncate(limit);
        Ok(items)
    }

    async fn resolve(&self, who: &Who<'_>, want: &Want) -> Result<Option<ProductRef>, EngineError> {
        match want {
            Want::Known(p) => Ok(Some(p.clone())),
            Want::Query(q) => Ok(self.find_products(who, q, false, 1).await?.into_iter().next()),
        }
    }

    async fn price_fact(&self, who: &Who<'_>, sku: &str) -> Result<Option<PriceFact>, EngineError> {
        let channel = who.channel.commerce_channel();
        match self.quote_prices(&[sku.to_string()], channel, "", who.profile.as_deref(), 1).await {
            Ok(mut q) if !q.is_empty() => {
                let q = q.swap_remove(0);
                Ok(Some(PriceFact {
                    currency: q.currency,
                    list_cents: q.list_cents,
                    price_cents: q.price_cents,
                    promotions: q.promotions.into_iter().map(|a| (a.name, a.saved_cents)).collect(),
                    offers: q.offers.into_iter().map(|o| format!("{}% off: {}", o.percent_off, o.reason)).collect(),
                    explanation: q.explanation,
                }))
            }
            Ok(_) | Err(EngineError::NoPrice(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn available_at(&self, sku: &str, store: &str) -> Result<i64, EngineError> {
        let rows = self.stock_availability(&[sku.to_string()], Some(&[store.to_string()]), None).await?;
        Ok(rows.iter().filter(|r| r.location_id == store).map(|r| r.available).sum())
    }

    /// The nearest other store with `quantity` units for pickup today; without coordinates, the
    /// one with the most.
    async fn nearest_with(&self, sku: &str, store: &str, quantity: i64) -> Result<Option<StoreStock>, EngineError> {
        let here = tailor_catalog::get_location(self.db(), store).await?;
        let near = here.and_then(|l| l.latitude.zip(l.longitude));
        let mut rows = self.stock_availability(&[sku.to_string()], None, near).await?;
        rows.retain(|r| r.location_id != store && r.available >= quantity && r.pickup_today);
        if near.is_none() {
            rows.sort_by(|a, b| b.available.cmp(&a.available).then(a.location_id.cmp(&b.location_id)));
        }
        Ok(rows.into_iter().next().map(|r| StoreStock {
            store: r.location_id,
            available: r.available,
            distance_km: r.distance_km,
        }))
    }

    async fn loyalty_fact(&self, who: &Who<'_>) -> Result<LoyaltyFact, EngineError> {
        let empty = LoyaltyFact { active: 0, pending: 0, tier: None, next_tier: None, points_needed: None };
        let Some(profile) = &who.profile else { return Ok(empty) };
        match self.loyalty_account(profile).await {
            Ok(a) => Ok(LoyaltyFact {
                active: a.balance.active,
                pending: a.balance.pending,
                tier: a.tier,
                next_tier: a.next_tier.as_ref().map(|n| n.name.clone()),
                points_needed: a.next_tier.as_ref().and_then(|n| n.points_needed),
            }),
            Err(EngineError::Invalid(_)) => Ok(empty),
            Err(e) => Err(e),
        }
    }

    /// Records "Product Added" for the shopper, as the shop's own page would.
    async fn add_to_cart(&self, who: &Who<'_>, product: &ProductRef, quantity: i64) -> Result<(), EngineError> {
        let mut raw = json!({
            "type": "track",
            "event": "Product Added",
            "messageId": format!("assistant-{}", who.turn_key),
            "properties": {"product_id": product.sku, "sku": product.sku, "name": product.title, "quantity": quantity},
            "context": {"channel": match who.channel { ChatChannel::Kiosk => "store", ChatChannel::Sms => "support", ChatChannel::Web => "web" }},
        });
        if let Some(c) = product.price_cents {
            raw["properties"]["price"] = json!(tailor_core::money::format_cents(c).parse::<f64>().unwrap_or(0.0));
        }
        match (who.user_id, who.anonymous_id) {
            (Some(u), _) => raw["userId"] = json!(u),
            (None, Some(a)) => raw["anonymousId"] = json!(a),
            (None, None) => raw["anonymousId"] = json!(format!("assistant-{}", who.conversation)),
        }
        let event = Event::parse(raw, Some(EventKind::Track), now_millis()).map_err(EngineError::Invalid)?;
        let source = tailor_stream::Source { name: "assistant".into(), trusted: false };
        self.ingest_from(&[event], &source).await?;
        Ok(())
    }

    /// The retailer's knowledge base, or the shipped one until they store theirs.
    pub(crate) async fn knowledge_base(&self) -> Result<KnowledgeBase, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        let (docs, _) = chat_store::documents(&mut conn).await?;
        if docs.is_empty() {
            return Ok(KnowledgeBase::shipped());
        }
        Ok(KnowledgeBase::new(docs.iter().map(|(n, b)| (n.as_str(), b.as_str()))))
    }
}

fn want_text(w: &Want) -> String {
    match w {
        Want::Known(p) => p.title.clone(),
        Want::Query(q) => q.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_prices_become_cents() {
        assert_eq!(super::cents("3.49"), Some(349));
        assert_eq!(super::cents("3.5"), Some(350));
        assert_eq!(super::cents("12"), Some(1200));
        assert_eq!(super::cents("x"), None);
    }
}
