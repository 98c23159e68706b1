//! Dialogue: deterministic flows over what understanding says. Understanding names the intent;
//! [`decide`] picks the flow (the table in [`flows`]), fills its slots from the message and the
//! conversation's [`Context`], and returns the [`Tool`] to run against the engine — or a reply
//! needing no facts, or a hand-off. The engine runs the tool and gives back [`Facts`];
//! [`respond`] turns them into a [`Reply`] from the templates in [`replies`], listing every fact
//! it states with its source. Nothing is held, spent or granted without a shopper's yes to an
//! offer this module made, and nothing here does I/O.

pub mod flows;
pub mod lexicon;
pub mod replies;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use flows::{Action, Flow, Slot, FLOWS};
pub use replies::ChatChannel;
use replies::{list, money, render};

use crate::knowledge::Quote;
use crate::Understood;

/// Below this confidence an in-scope intent counts as a low-confidence turn.
pub const LOW_CONFIDENCE: f32 = 0.3;

/// Low-confidence turns in a row after which a person takes over.
pub const LOW_CONFIDENCE_TURNS: u32 = 2;

/// A product as the conversation knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRef {
    /// SKU.
    pub sku: String,
    /// Display title.
    pub title: String,
    /// Catalog price in cents, when known (for "cheaper").
    pub price_cents: Option<i64>,
    /// Currency of that price.
    #[serde(default)]
    pub currency: String,
}

/// An action that waits for the shopper's yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Pending {
    /// Hold units for pickup.
    Reserve {
        /// What.
        product: ProductRef,
        /// Where.
        store: String,
        /// How many.
        quantity: i64,
    },
    /// Redeem points.
    Redeem {
        /// How many.
        points: i64,
    },
}

impl Pending {
    fn tool(&self) -> Tool {
        match self {
            Pending::Reserve { product, store, quantity } => {
                Tool::Reserve { product: product.clone(), store: store.clone(), quantity: *quantity }
            }
            Pending::Redeem { points } => Tool::Redeem { points: *points },
        }
    }

    fn describe(&self) -> String {
        match self {
            Pending::Reserve { product, store, quantity } => {
                format!("holding {quantity} × {} at store {store}", product.title)
            }
            Pending::Redeem { points } => format!("redeeming {points} points"),
        }
    }
}

/// A slot the assistant asked for, and the flow that resumes once it is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Awaiting {
    /// The slot asked.
    pub slot: Slot,
    /// The flow waiting for it.
    pub action: Action,
    /// A product already named for that flow, if any.
    #[serde(default)]
    pub product: Option<String>,
}

/// What a conversation remembers between turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// The store the shopper is talking about.
    pub store: Option<String>,
    /// The product in focus.
    pub product: Option<ProductRef>,
    /// The last product search.
    pub query: Option<String>,
    /// Whether the last search asked for organic products.
    #[serde(default)]
    pub organic: bool,
    /// The last list shown, in order ("the second one").
    #[serde(default)]
    pub results: Vec<ProductRef>,
    /// An action offered and waiting for a yes.
    pub pending: Option<Pending>,
    /// A slot asked for.
    pub awaiting: Option<Awaiting>,
    /// Low-confidence turns in a row.
    #[serde(default)]
    pub low_confidence: u32,
    /// The last tool run, re-run by a correction ("no, store 381").
    pub last: Option<Tool>,
    /// The last intent understood.
    pub last_intent: Option<String>,
    /// The pending action survived a digression this turn: remind the shopper of it.
    #[serde(default)]
    pub remind: bool,
}

/// A product asked for: known from context, or words to search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "by", content = "value")]
pub enum Want {
    /// A product in context.
    Known(ProductRef),
    /// Words to search the catalog with (the best match is taken).
    Query(String),
}

/// What the engine runs for a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "tool")]
pub enum Tool {
    /// Product search.
    Search {
        /// The words.
        query: String,
        /// Organic products only.
        organic: bool,
        /// Only products cheaper than this (cents).
        below_cents: Option<i64>,
    },
    /// Price and stock of one product.
    Details {
        /// The product.
        product: ProductRef,
        /// The store for stock.
        store: Option<String>,
    },
    /// Stock at a store, and the nearest store with stock when it has none.
    Availability {
        /// The product.
        product: Want,
        /// The store.
        store: String,
        /// Units wanted.
        quantity: i64,
        /// Offer to hold it (the shopper asked to reserve).
        reserve: bool,
    },
    /// Holds units for pickup (only after a yes).
    Reserve {
        /// The product.
        product: ProductRef,
        /// The store.
        store: String,
        /// Units.
        quantity: i64,
    },
    /// The price to pay.
    Price {
        /// The product.
        product: Want,
    },
    /// The shopper's orders (one, when named).
    Orders {
        /// An order id named in the message.
        order: Option<String>,
    },
    /// A quote from the knowledge base.
    Knowledge {
        /// The question.
        question: String,
    },
    /// The loyalty account.
    Loyalty {
        /// Whether the tier was asked (else the balance).
        tier: bool,
    },
    /// The balance, before offering to redeem.
    RedeemCheck {
        /// Points asked.
        points: i64,
    },
    /// Redeems points (only after a yes).
    Redeem {
        /// Points.
        points: i64,
    },
    /// Adds to the cart (an event).
    AddToCart {
        /// The product.
        product: Want,
        /// Units.
        quantity: i64,
    },
    /// The cart.
    Cart,
    /// Recommendations with reasons.
    Advice,
}

impl Tool {
    /// The same tool at another store, for a correction; the product found last time stays.
    fn at_store(&self, store: &str, found: Option<&ProductRef>) -> Option<Tool> {
        match self {
            Tool::Availability { product, quantity, reserve, .. } => Some(Tool::Availability {
                product: found.map(|p| Want::Known(p.clone())).unwrap_or_else(|| product.clone()),
                store: store.to_string(),
                quantity: *quantity,
                reserve: *reserve,
            }),
            Tool::Details { product, .. } => {
                Some(Tool::Details { product: product.clone(), store: Some(store.into()) })
            }
            _ => None,
        }
    }
}

/// A price as the pricing engine quoted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceFact {
    /// Currency.
    pub currency: String,
    /// List price per unit, cents.
    pub list_cents: i64,
    /// Price to pay per unit after promotions, cents.
    pub price_cents: i64,
    /// Promotions applied: (name, cents saved).
    pub promotions: Vec<(String, i64)>,
    /// Personal offers: their reasons in words.
    pub offers: Vec<String>,
    /// The quote's explanation.
    pub explanation: Vec<String>,
}

/// A store with stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStock {
    /// Location id.
    pub store: String,
    /// Units that can be promised.
    pub available: i64,
    /// Distance from the asked store, km, when both have coordinates.
    pub distance_km: Option<f64>,
}

/// An order of the shopper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFact {
    /// Order id.
    pub order_id: String,
    /// When (RFC 3339).
    pub date: String,
    /// Total, cents.
    pub total_cents: i64,
    /// Refunded, cents.
    pub refunded_cents: i64,
    /// Currency.
    pub currency: String,
    /// Store it was bought at.
    pub store: Option<String>,
}

impl OrderFact {
    fn status(&self) -> &'static str {
        if self.refunded_cents <= 0 {
            "completed"
        } else if self.refunded_cents >= self.total_cents {
            "refunded"
        } else {
            "partly refunded"
        }
    }
}

/// A loyalty account as the loyalty engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyFact {
    /// Spendable points.
    pub active: i64,
    /// Points waiting for return windows to close.
    pub pending: i64,
    /// Tier held.
    pub tier: Option<String>,
    /// Next tier's name.
    pub next_tier: Option<String>,
    /// Qualifying points still needed for it.
    pub points_needed: Option<i64>,
}

/// A cart line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLineFact {
    /// Product.
    pub sku: String,
    /// Title, when the catalog knows it.
    pub title: String,
    /// Units.
    pub quantity: i64,
}

/// What the engine answered for a tool.
#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// Search results (best first) and the query.
    Products {
        /// The words searched.
        query: String,
        /// Matches.
        items: Vec<ProductRef>,
    },
    /// No product matched the words.
    NoProduct {
        /// The words.
        query: String,
    },
    /// Price and stock of one product.
    Details {
        /// The product.
        product: ProductRef,
        /// Its price, when it has one.
        price: Option<PriceFact>,
        /// Stock at the store, when a store is known.
        stock: Option<(String, i64)>,
    },
    /// Stock at the asked store and, when short, the nearest with enough.
    Availability {
        /// The product.
        product: ProductRef,
        /// The store asked.
        store: String,
        /// Units there.
        available: i64,
        /// The nearest other store with enough, when the asked one is short.
        nearest: Option<StoreStock>,
    },
    /// Units held.
    Reserved {
        /// Reservation id.
        reservation: String,
        /// Until when (RFC 3339).
        until: String,
    },
    /// The engine refused (not enough stock, not enough points…): its reason.
    Refused {
        /// Why, in words.
        reason: String,
    },
    /// A price.
    Price {
        /// The product.
        product: ProductRef,
        /// The quote; `None` when the product has no price yet.
        price: Option<PriceFact>,
    },
    /// The shopper's orders, newest first.
    Orders(Vec<OrderFact>),
    /// A knowledge-base quote, when one matched.
    Knowledge(Option<Quote>),
    /// The loyalty account.
    Loyalty(LoyaltyFact),
    /// Points redeemed.
    Redeemed {
        /// Points spent.
        points: i64,
        /// Discount bought, cents.
        discount_cents: i64,
        /// Currency of the discount.
        currency: String,
        /// Spendable points left.
        active: i64,
    },
    /// Added to the cart.
    CartAdded {
        /// The product.
        product: ProductRef,
        /// Units.
        quantity: i64,
    },
    /// The cart.
    Cart(Vec<CartLineFact>),
    /// Recommendations.
    Advice {
        /// Whether the shopper's own data shaped the list.
        personalized: bool,
        /// Whether the personalization consent is granted.
        consent: bool,
        /// Products with their first reason.
        items: Vec<(ProductRef, String)>,
    },
}

/// A fact stated in a reply, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    /// What it is: `price`, `stock`, `points`, `reservation`, `order`, `policy`…
    pub name: String,
    /// The value as the engine gave it.
    pub value: Value,
    /// The engine API that answered it (the same a caller would use).
    pub source: String,
}

/// A product shown with a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// SKU.
    pub sku: String,
    /// Title.
    pub title: String,
    /// Price as text, when quoted.
    pub price: Option<String>,
    /// Why it is shown (recommendations).
    pub reason: Option<String>,
}

/// The assistant's answer to one turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    /// The text, formatted for the channel.
    pub text: String,
    /// Template used.
    pub template: String,
    /// Products shown (none on SMS).
    pub cards: Vec<Card>,
    /// Suggested answers ("Yes", "No").
    pub quick_replies: Vec<String>,
    /// Every fact the text states, with its source.
    pub facts: Vec<Fact>,
    /// Why the assistant answered this way.
    pub explanation: Vec<String>,
    /// The consent purpose a personal answer used, if any.
    pub consent_purpose: Option<String>,
    /// Set when this turn handed the conversation to a person: why.
    pub handoff: Option<String>,
}

/// Why a conversation was handed to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The shopper asked for a person.
    Requested,
    /// Two turns in a row were not understood.
    LowConfidence,
    /// A complaint or a payment problem.
    Sensitive,
}

impl HandoffReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::LowConfidence => "low_confidence",
            Self::Sensitive => "sensitive",
        }
    }
}

/// One shopper message, understood.
#[derive(Debug, Clone)]
pub struct Turn<'a> {
    /// The text.
    pub text: &'a str,
    /// What understanding said.
    pub understood: &'a Understood,
    /// Whether the conversation belongs to a signed-in customer (orders, points).
    pub signed_in: bool,
    /// The channel.
    pub channel: ChatChannel,
}

/// What to do with a turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answer without facts from the engine.
    Say(Reply),
    /// Run a tool, then [`respond`].
    Run(Tool),
    /// Hand the conversation to a person, with this reply.
    Handoff(HandoffReason, Reply),
}

type Vars = BTreeMap<&'static str, String>;

fn say(key: &str, channel: ChatChannel, vars: &Vars) -> Reply {
    Reply { text: render(key, channel, vars), template: key.to_string(), ..Reply::default() }
}

fn handoff(ctx: &mut Context, reason: HandoffReason, channel: ChatChannel) -> Step {
    ctx.pending = None;
    ctx.awaiting = None;
    ctx.low_confidence = 0;
    let key = match reason {
        HandoffReason::Requested => "handoff",
        HandoffReason::LowConfidence => "handoff_low",
        HandoffReason::Sensitive => "handoff_sensitive",
    };
    let mut r = say(key, channel, &Vars::new());
    r.handoff = Some(reason.as_str().to_string());
    r.explanation.push(format!("handed to a person: {}", reason.as_str()));
    Step::Handoff(reason, r)
}

fn asks_person(text: &str) -> bool {
    let w = lexicon::words(text);
    let person = w
        .iter()
        .any(|x| ["human", "person", "agent", "someone", "somebody", "representative", "staff"].contains(&x.as_str()));
    let ask =
        w.iter().any(|x| ["talk", "speak", "want", "need", "get", "connect", "real", "chat"].contains(&x.as_str()));
    person && (ask || w.len() <= 3)
}

fn asks_advice(text: &str) -> bool {
    let w = lexicon::words(text);
    w.iter().any(|x| {
        ["recommend", "recommendation", "recommendations", "suggest", "suggestion", "suggestions", "advice", "ideas"]
            .contains(&x.as_str())
    }) || w.windows(3).any(|p| p[0] == "what" && p[1] == "should" && (p[2] == "i" || p[2] == "we"))
}

fn entity<'a>(u: &'a Understood, kind: &str) -> Option<&'a str> {
    u.entities.iter().find(|e| e.entity == kind).map(|e| e.canonical.as_str())
}

/// Slot values a message gives.
#[derive(Debug, Default)]
struct Given {
    product: Option<String>,
    store: Option<String>,
    points: Option<i64>,
    quantity: Option<i64>,
}

fn given(text: &str, u: &Understood) -> Given {
    Given {
        product: lexicon::product_phrase(text, entity(u, "product")),
        store: lexicon::store(text).or_else(|| entity(u, "store").map(str::to_string)),
        points: lexicon::points(text),
        quantity: lexicon::quantity(text),
    }
}

/// Decides what to do with a turn; updates the context (slots, pending, counters).
pub fn decide(ctx: &mut Context, turn: &Turn) -> Step {
    let (text, u, ch) = (turn.text, turn.understood, turn.channel);
    let intent = u.intent.as_deref();
    ctx.remind = false;
    // Guards first: an attempt to change the rules triggers nothing, not even a pending action.
    if lexicon::is_override_attempt(text) {
        ctx.pending = None;
        ctx.awaiting = None;
        let mut r = say("refuse", ch, &Vars::new());
        r.explanation.push("the message tried to change the assistant's rules; nothing was done".into());
        return Step::Say(r);
    }
    if lexicon::is_sensitive(text) || intent == Some("complaint") {
        return handoff(ctx, HandoffReason::Sensitive, ch);
    }
    if intent == Some("human_handoff") || asks_person(text) {
        return handoff(ctx, HandoffReason::Requested, ch);
    }
    // An offer waiting for yes or no.
    if let Some(p) = ctx.pending.clone() {
        if lexicon::is_yes(text) || (intent == Some("affirm") && !lexicon::is_no(text)) {
            ctx.pending = None;
            return Step::Run(p.tool());
        }
        if let (Pending::Reserve { product, quantity, .. }, true, Some(store)) =
            (&p, lexicon::is_correction(text), lexicon::store(text))
        {
            ctx.pending = None;
            ctx.store = Some(store.clone());
            return Step::Run(Tool::Availability {
                product: Want::Known(product.clone()),
                store,
                quantity: *quantity,
                reserve: true,
            });
        }
        if lexicon::is_no(text) || intent == Some("deny") {
            ctx.pending = None;
            let key = if matches!(p, Pending::Reserve { .. }) { "not_held" } else { "not_redeemed" };
            return Step::Say(say(key, ch, &Vars::new()));
        }
        // A digression: answer it and keep the offer open.
        ctx.remind = true;
    }
    // A correction re-runs the last answer with the new store.
    if lexicon::is_correction(text) {
        if let Some(store) = lexicon::store(text) {
            ctx.store = Some(store.clone());
            if let Some(t) = ctx.last.as_ref().and_then(|t| t.at_store(&store, ctx.product.as_ref())) {
                return Step::Run(t);
            }
        }
    }
    // Follow-ups on the list shown.
    if !ctx.results.is_empty() {
        if let Some(k) = lexicon::ordinal(text, ctx.results.len()) {
            let product = ctx.results[k].clone();
            ctx.product = Some(product.clone());
            return Step::Run(Tool::Details { product, store: ctx.store.clone() });
        }
        if let Some(query) = ctx.query.clone() {
            if lexicon::wants_cheaper(text) {
                let below = ctx
                    .product
                    .as_ref()
                    .and_then(|p| p.price_cents)
                    .or_else(|| ctx.results.iter().filter_map(|p| p.price_cents).min());
                return Step::Run(Tool::Search { query, organic: ctx.organic, below_cents: below });
            }
            if lexicon::wants_organic(text) {
                return Step::Run(Tool::Search { query, organic: true, below_cents: None });
            }
        }
    }
    if asks_advice(text) {
        return Step::Run(Tool::Advice);
    }
    // The answer to a slot asked for resumes its flow.
    if let Some(aw) = ctx.awaiting.take() {
        let strong_other = intent.and_then(flows::for_intent).is_some_and(|f| {
            f.action != aw.action
                && u.confidence >= 0.6
                && !matches!(f.action, Action::FindProduct | Action::Affirm | Action::Deny)
        });
        if !strong_other {
            let mut g = given(text, u);
            match aw.slot {
                Slot::Product => {
                    if g.product.is_none() {
                        g.product = lexicon::product_phrase(text, None);
                    }
                }
                Slot::Store => {
                    if g.store.is_none() {
                        g.store = lexicon::words(text).into_iter().find(|w| w.chars().any(|c| c.is_ascii_digit()));
                    }
                    if g.product.is_none() {
                        g.product = aw.product.clone();
                    }
                    // a bare store number is no product
                    if g.store.is_some() && g.product.as_deref().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
                    {
                        g.product = None;
                    }
                }
                Slot::Points => {
                    if g.points.is_none() {
                        g.points = lexicon::words(text).iter().find_map(|w| w.parse().ok());
                    }
                }
            }
            if let Some(flow) = flows::for_action(aw.action) {
                return plan(ctx, flow, g, turn);
            }
        }
    }
    let understood = !u.out_of_scope && u.confidence >= LOW_CONFIDENCE;
    let flow = intent.filter(|_| understood).and_then(flows::for_intent);
    let Some(flow) = flow else {
        ctx.low_confidence = ctx.low_confidence.saturating_add(1);
        if ctx.low_confidence >= LOW_CONFIDENCE_TURNS {
            return handoff(ctx, HandoffReason::LowConfidence, ch);
        }
        let mut r = say("capabilities", ch, &Vars::new());
        r.explanation.push(format!("not understood (closest: {}, confidence {:.2})", u.closest, u.confidence));
        return Step::Say(r);
    };
    ctx.low_confidence = 0;
    ctx.last_intent = Some(flow.intent.to_string());
    plan(ctx, flow, given(text, u), turn)
}

/// The step of a flow once its slots are looked for.
fn plan(ctx: &mut Context, flow: &Flow, g: Given, turn: &Turn) -> Step {
    let ch = turn.channel;
    let mut vars = Vars::new();
    if flow.signed_in && !turn.signed_in {
        let what = match flow.action {
            Action::OrderStatus => "orders",
            _ => "points",
        };
        vars.insert("what", what.into());
        return Step::Say(say("sign_in", ch, &vars));
    }
    if let Some(s) = &g.store {
        ctx.store = Some(s.clone());
    }
    let mut want = None;
    for need in flow.needs {
        match need {
            Slot::Product => {
                want = match (&g.product, &ctx.product) {
                    (Some(q), _) => Some(Want::Query(q.clone())),
                    (None, Some(p)) if flow.action != Action::FindProduct => Some(Want::Known(p.clone())),
                    _ => None,
                };
                if want.is_none() {
                    ctx.awaiting = Some(Awaiting { slot: Slot::Product, action: flow.action, product: None });
                    return Step::Say(say("ask_product", ch, &vars));
                }
            }
            Slot::Store => {
                if ctx.store.is_none() {
                    let named = match &want {
                        Some(Want::Query(q)) => Some(q.clone()),
                        _ => None,
                    };
                    ctx.awaiting = Some(Awaiting { slot: Slot::Store, action: flow.action, product: named });
                    return Step::Say(say("ask_store", ch, &vars));
                }
            }
            Slot::Points => {
                if g.points.is_none_or(|p| p <= 0) {
                    ctx.awaiting = Some(Awaiting { slot: Slot::Points, action: flow.action, product: None });
                    return Step::Say(say("ask_points", ch, &vars));
                }
            }
        }
    }
    let store = ctx.store.clone().unwrap_or_default();
    let quantity = g.quantity.unwrap_or(1);
    let tool = match flow.action {
        Action::Greet => return Step::Say(say("greet", ch, &vars)),
        Action::Thanks => return Step::Say(say("thanks", ch, &vars)),
        Action::Goodbye => return Step::Say(say("goodbye", ch, &vars)),
        Action::Affirm | Action::Deny => return Step::Say(say("nothing_pending", ch, &vars)),
        Action::Handoff => return handoff(ctx, HandoffReason::Requested, ch),
        Action::Complaint => return handoff(ctx, HandoffReason::Sensitive, ch),
        Action::FindProduct => {
            let query = g.product.clone().unwrap_or_default();
            Tool::Search { query, organic: lexicon::wants_organic(turn.text), below_cents: None }
        }
        Action::Advice => Tool::Advice,
        Action::Availability | Action::Reserve => Tool::Availability {
            product: want.unwrap_or(Want::Query(String::new())),
            store,
            quantity,
            reserve: flow.action == Action::Reserve,
        },
        Action::Price => Tool::Price { product: want.unwrap_or(Want::Query(String::new())) },
        Action::OrderStatus => Tool::Orders { order: lexicon::number_after(turn.text, &["order", "number"]) },
        Action::Policy => Tool::Knowledge { question: turn.text.to_string() },
        Action::StoreHours => Tool::Knowledge { question: format!("{} store hours open", turn.text) },
        Action::LoyaltyBalance => Tool::Loyalty { tier: false },
        Action::LoyaltyTier => Tool::Loyalty { tier: true },
        Action::Redeem => Tool::RedeemCheck { points: g.points.unwrap_or(0) },
        Action::AddToCart => Tool::AddToCart { product: want.unwrap_or(Want::Query(String::new())), quantity },
        Action::ViewCart => Tool::Cart,
    };
    Step::Run(tool)
}

fn fact(name: &str, value: Value, source: String) -> Fact {
    Fact { name: name.to_string(), value, source }
}

fn price_text(p: &PriceFact) -> String {
    money(p.price_cents, &p.currency)
}

fn price_fact(sku: &str, p: &PriceFact, channel: ChatChannel) -> Fact {
    fact(
        "price",
        json!({"sku": sku, "priceCents": p.price_cents, "listCents": p.list_cents, "currency": p.currency,
               "promotions": p.promotions.iter().map(|(n, s)| json!({"name": n, "savedCents": s})).collect::<Vec<_>>(),
               "offers": p.offers}),
        format!("GET /v1/prices?sku={sku}&channel={}", channel.commerce_channel()),
    )
}

fn stock_fact(sku: &str, store: &str, available: i64) -> Fact {
    fact(
        "stock",
        json!({"sku": sku, "store": store, "available": available}),
        format!("GET /v1/availability?sku={sku}&store={store}"),
    )
}

fn card(p: &ProductRef, price: Option<String>, reason: Option<String>) -> Card {
    Card { sku: p.sku.clone(), title: p.title.clone(), price, reason }
}

/// Turns a tool's facts into the reply; remembers what the shopper will refer to next (the list
/// shown, the product in focus, an offer waiting for a yes).
pub fn respond(ctx: &mut Context, tool: &Tool, facts: Facts, channel: ChatChannel) -> Reply {
    let ch = channel;
    let mut vars = Vars::new();
    let mut r = match (tool, facts) {
        (Tool::Search { organic, below_cents, .. }, Facts::Products { query, items }) => {
            let shown: Vec<ProductRef> = items.into_iter().take(ch.list_len()).collect();
            ctx.query = Some(query.clone());
            ctx.organic = *organic;
            vars.insert("query", query.clone());
            if shown.is_empty() {
                let key = if below_cents.is_some() { "none_cheaper" } else { "not_found" };
                if let Some(p) = &ctx.product {
                    vars.insert("title", p.title.clone());
                }
                return finish(ctx, say(key, ch, &vars), ch);
            }
            let lines: Vec<String> = shown
                .iter()
                .map(|p| match p.price_cents {
                    Some(c) => format!("{} — {}", p.title, money(c, &p.currency)),
                    None => p.title.clone(),
                })
                .collect();
            vars.insert("list", list(ch, &lines));
            let key = if below_cents.is_some() { "found_cheaper" } else { "found" };
            let mut r = say(key, ch, &vars);
            r.cards = shown.iter().map(|p| card(p, p.price_cents.map(|c| money(c, &p.currency)), None)).collect();
            r.facts = shown
                .iter()
                .map(|p| {
                    fact(
                        "product",
                        json!({"sku": p.sku, "title": p.title, "catalogPriceCents": p.price_cents}),
                        format!("GET /v1/search?q={query}"),
                    )
                })
                .collect();
            if *organic {
                r.explanation.push("organic products only".into());
            }
            if let Some(b) = below_cents {
                r.explanation.push(format!("cheaper than {}", money(*b, &shown[0].currency)));
            }
            ctx.product = shown.first().cloned();
            ctx.results = shown;
            r
        }
        (_, Facts::NoProduct { query }) => {
            vars.insert("query", query);
            say("not_found", ch, &vars)
        }
        (Tool::Details { .. }, Facts::Details { product, price, stock }) => {
            vars.insert("title", product.title.clone());
            let mut facts = Vec::new();
            match &price {
                Some(p) => {
                    vars.insert("price", format!("{}.", price_text(p)));
                    facts.push(price_fact(&product.sku, p, ch));
                }
                None => {
                    vars.insert("price", "no price yet.".into());
                }
            }
            if let Some((store, n)) = &stock {
                let s = if *n > 0 {
                    format!("{n} in stock at store {store}.")
                } else {
                    format!("Sold out at store {store}.")
                };
                vars.insert("stock", s);
                facts.push(stock_fact(&product.sku, store, *n));
            }
            let mut r = say("details", ch, &vars);
            r.cards = vec![card(&product, price.as_ref().map(price_text), None)];
            r.facts = facts;
            ctx.product = Some(product);
            r
        }
        (Tool::Availability { quantity, reserve, .. }, Facts::Availability { product, store, available, nearest }) => {
            vars.insert("title", product.title.clone());
            vars.insert("store", store.clone());
            vars.insert("quantity", quantity.to_string());
            let mut facts = vec![stock_fact(&product.sku, &store, available)];
            let key;
            if available >= *quantity {
                vars.insert("available", available.to_string());
                if *reserve {
                    ctx.pending =
                        Some(Pending::Reserve { product: product.clone(), store: store.clone(), quantity: *quantity });
                    key = "offer_hold";
                } else {
                    key = "in_stock";
                }
            } else if let Some(n) = &nearest {
                vars.insert("nearest", n.store.clone());
                vars.insert("available", n.available.to_string());
                vars.insert("distance", n.distance_km.map(|d| format!(" ({d:.1} km away)")).unwrap_or_default());
                facts.push(stock_fact(&product.sku, &n.store, n.available));
                ctx.pending =
                    Some(Pending::Reserve { product: product.clone(), store: n.store.clone(), quantity: *quantity });
                key = "sold_out_nearest";
            } else {
                key = "sold_out_nowhere";
            }
            let mut r = say(key, ch, &vars);
            r.facts = facts;
            if ctx.pending.is_some() {
                r.quick_replies = vec!["Yes".into(), "No".into()];
            }
            r.cards = vec![card(&product, None, None)];
            ctx.product = Some(product);
            r
        }
        (Tool::Reserve { product, store, quantity }, Facts::Reserved { reservation, until }) => {
            vars.insert("title", product.title.clone());
            vars.insert("store", store.clone());
            vars.insert("quantity", quantity.to_string());
            vars.insert("reservation", reservation.clone());
            vars.insert("until", until.clone());
            let mut r = say("held", ch, &vars);
            r.facts.push(fact(
                "reservation",
                json!({"id": reservation, "sku": product.sku, "store": store, "quantity": quantity, "expiresAt": until}),
                format!("GET /v1/reservations/{reservation}"),
            ));
            r
        }
        (Tool::Reserve { product, store, .. }, Facts::Refused { reason }) => {
            vars.insert("title", product.title.clone());
            vars.insert("store", store.clone());
            vars.insert("reason", reason);
            say("hold_failed", ch, &vars)
        }
        (Tool::Price { .. }, Facts::Price { product, price }) => {
            vars.insert("title", product.title.clone());
            let r = match &price {
                None => say("no_price", ch, &vars),
                Some(p) => {
                    vars.insert("price", price_text(p));
                    if p.list_cents > p.price_cents {
                        vars.insert("was", format!(" (was {})", money(p.list_cents, &p.currency)));
                    }
                    if !p.promotions.is_empty() {
                        let names: Vec<&str> = p.promotions.iter().map(|(n, _)| n.as_str()).collect();
                        vars.insert("promotions", format!(" Promotion: {}.", names.join(", ")));
                    }
                    if !p.offers.is_empty() {
                        vars.insert("offers", format!(" Your personal offer: {}.", p.offers.join("; ")));
                    }
                    let mut r = say("price", ch, &vars);
                    r.facts.push(price_fact(&product.sku, p, ch));
                    r.explanation = p.explanation.clone();
                    if !p.offers.is_empty() {
                        r.consent_purpose = Some("personalization".into());
                    }
                    r
                }
            };
            let mut r = r;
            r.cards = vec![card(&product, price.as_ref().map(price_text), None)];
            ctx.product = Some(product);
            r
        }
        (Tool::Orders { order }, Facts::Orders(orders)) => {
            let source = "GET /v1/profiles/{id} (orders)".to_string();
            let one = |o: &OrderFact, vars: &mut Vars| {
                vars.insert("order", o.order_id.clone());
                vars.insert("date", o.date.chars().take(10).collect());
                vars.insert("status", o.status().into());
                vars.insert("total", money(o.total_cents, &o.currency));
            };
            let to_fact = |o: &OrderFact| {
                fact(
                    "order",
                    json!({"orderId": o.order_id, "totalCents": o.total_cents, "refundedCents": o.refunded_cents, "status": o.status(), "date": o.date}),
                    source.clone(),
                )
            };
            match order {
                Some(id) => match orders.iter().find(|o| o.order_id == *id) {
                    Some(o) => {
                        one(o, &mut vars);
                        let mut r = say("order_one", ch, &vars);
                        r.facts.push(to_fact(o));
                        r
                    }
                    None => {
                        vars.insert("order", id.clone());
                        say("order_unknown", ch, &vars)
                    }
                },
                None if orders.is_empty() => say("no_orders", ch, &vars),
                None => {
                    let shown: Vec<&OrderFact> = orders.iter().take(ch.list_len()).collect();
                    let lines: Vec<String> = shown
                        .iter()
                        .map(|o| {
                            format!(
                                "{} ({}): {}, {}",
                                o.order_id,
                                o.date.chars().take(10).collect::<String>(),
                                o.status(),
                                money(o.total_cents, &o.currency)
                            )
                        })
                        .collect();
                    vars.insert("list", list(ch, &lines));
                    let mut r = say("orders", ch, &vars);
                    r.facts = shown.iter().map(|o| to_fact(o)).collect();
                    r
                }
            }
        }
        (Tool::Knowledge { .. }, Facts::Knowledge(quote)) => match quote {
            None => say("policy_unknown", ch, &vars),
            Some(q) => {
                vars.insert("heading", q.section.heading.to_lowercase());
                let text: String = q.section.text.split_whitespace().collect::<Vec<_>>().join(" ");
                vars.insert("quote", text.clone());
                let mut r = say("policy", ch, &vars);
                r.facts.push(fact("policy", json!({"heading": q.section.heading, "text": text}), q.section.source()));
                r
            }
        },
        (Tool::Loyalty { tier }, Facts::Loyalty(l)) => {
            let mut r = if *tier {
                let next = match (&l.next_tier, l.points_needed) {
                    (Some(n), Some(p)) => format!(" {p} more qualifying points reach {n}."),
                    (Some(n), None) => format!(" Next tier: {n}."),
                    _ => String::new(),
                };
                vars.insert("next", next);
                match &l.tier {
                    Some(t) => {
                        vars.insert("tier", t.clone());
                        say("tier", ch, &vars)
                    }
                    None => say("no_tier", ch, &vars),
                }
            } else {
                vars.insert("active", l.active.to_string());
                if l.pending > 0 {
                    vars.insert("pending", format!(", and {} pending until return windows close", l.pending));
                }
                say("balance", ch, &vars)
            };
            r.facts.push(fact(
                "points",
                json!({"active": l.active, "pending": l.pending, "tier": l.tier, "nextTier": l.next_tier, "pointsNeeded": l.points_needed}),
                "GET /v1/loyalty/{profileId}".into(),
            ));
            r
        }
        (Tool::RedeemCheck { points }, Facts::Loyalty(l)) => {
            vars.insert("active", l.active.to_string());
            vars.insert("points", points.to_string());
            let mut r = if l.active >= *points {
                ctx.pending = Some(Pending::Redeem { points: *points });
                let mut r = say("offer_redeem", ch, &vars);
                r.quick_replies = vec!["Yes".into(), "No".into()];
                r
            } else {
                say("redeem_short", ch, &vars)
            };
            r.facts.push(fact("points", json!({"active": l.active}), "GET /v1/loyalty/{profileId}".into()));
            r
        }
        (Tool::Redeem { .. }, Facts::Redeemed { points, discount_cents, currency, active }) => {
            vars.insert("points", points.to_string());
            vars.insert("discount", money(discount_cents, &currency));
            vars.insert("active", active.to_string());
            let mut r = say("redeemed", ch, &vars);
            r.facts.push(fact(
                "redemption",
                json!({"points": points, "discountCents": discount_cents, "active": active}),
                "POST /v1/loyalty/{profileId}/redeem".into(),
            ));
            r
        }
        (Tool::Redeem { .. }, Facts::Refused { reason }) => {
            vars.insert("reason", reason);
            say("redeem_failed", ch, &vars)
        }
        (Tool::AddToCart { .. }, Facts::CartAdded { product, quantity }) => {
            vars.insert("title", product.title.clone());
            vars.insert("quantity", quantity.to_string());
            let mut r = say("added", ch, &vars);
            r.facts.push(fact(
                "cart",
                json!({"sku": product.sku, "quantity": quantity}),
                "POST /v1/track (Product Added)".into(),
            ));
            ctx.product = Some(product);
            r
        }
        (Tool::Cart, Facts::Cart(lines)) => {
            if lines.is_empty() {
                say("cart_empty", ch, &vars)
            } else {
                let text: Vec<String> = lines.iter().map(|l| format!("{} × {}", l.quantity, l.title)).collect();
                vars.insert("list", list(ch, &text));
                let mut r = say("cart", ch, &vars);
                r.facts = lines
                    .iter()
                    .map(|l| {
                        fact(
                            "cartLine",
                            json!({"sku": l.sku, "quantity": l.quantity}),
                            "GET /v1/profiles/{id} (cart)".into(),
                        )
                    })
                    .collect();
                r
            }
        }
        (Tool::Advice, Facts::Advice { personalized, consent, items }) => {
            let shown: Vec<&(ProductRef, String)> = items.iter().take(ch.list_len()).collect();
            let lines: Vec<String> = shown.iter().map(|(p, why)| format!("{} — {why}", p.title)).collect();
            let intro = if personalized {
                "Picked for you:".to_string()
            } else if !consent {
                render("advice_not_personal", ch, &Vars::new()) + " Popular right now:"
            } else {
                "Popular right now:".to_string()
            };
            vars.insert("intro", intro);
            vars.insert("list", list(ch, &lines));
            let mut r = say("advice", ch, &vars);
            r.cards = shown.iter().map(|(p, why)| card(p, None, Some(why.clone()))).collect();
            r.facts = shown
                .iter()
                .map(|(p, why)| {
                    fact("recommendation", json!({"sku": p.sku, "reason": why}), "GET /v1/recommendations".into())
                })
                .collect();
            r.consent_purpose = Some("personalization".into());
            r.explanation.push(if personalized {
                "personalized with the customer's personalization consent".into()
            } else if !consent {
                "not personalized: no personalization consent".into()
            } else {
                "not personalized: no personal model for this shopper yet".into()
            });
            ctx.results = shown.iter().map(|(p, _)| p.clone()).collect();
            ctx.product = ctx.results.first().cloned();
            r
        }
        (_, Facts::Refused { reason }) => {
            vars.insert("reason", reason);
            say("redeem_failed", ch, &vars)
        }
        (t, f) => {
            // A tool answered with facts of another tool: a bug in the engine's tool runner.
            debug_assert!(false, "facts {f:?} do not answer {t:?}");
            say("nothing_pending", ch, &vars)
        }
    };
    if matches!(tool, Tool::Availability { .. } | Tool::Details { .. } | Tool::Price { .. } | Tool::Search { .. }) {
        ctx.last = Some(tool.clone());
    }
    r.cards.retain(|_| ch != ChatChannel::Sms);
    finish(ctx, r, ch)
}

fn finish(ctx: &mut Context, mut r: Reply, ch: ChatChannel) -> Reply {
    if ch == ChatChannel::Sms {
        r.cards.clear();
    }
    if ctx.remind {
        ctx.remind = false;
        if let Some(p) = &ctx.pending {
            let mut vars = Vars::new();
            vars.insert("what", p.describe());
            r.text = format!("{}\n{}", r.text, render("still_pending", ch, &vars));
            r.quick_replies = vec!["Yes".into(), "No".into()];
        }
    }
    r
}

/// Finishes a reply made without tool facts (a [`Step::Say`]): the pending reminder, SMS format.
pub fn finish_say(ctx: &mut Context, r: Reply, channel: ChatChannel) -> Reply {
    finish(ctx, r, channel)
}

#[cfg(test)]
mod tests;
