//! The flows, as data: which intent starts which action, the slots it needs, whether it needs a
//! signed-in shopper, and whether anything happens only after the shopper says yes. Dialogue
//! reads this table; adding a flow is adding a row.

use serde::{Deserialize, Serialize};

/// A piece of information a flow needs before it can act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// A product (from the message, the product in context, or a list shown).
    Product,
    /// A store (from the message, the conversation's store, or the shopper's preferred one).
    Store,
    /// A number of loyalty points.
    Points,
}

/// What a flow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Says hello and what it can do.
    Greet,
    /// Says you're welcome.
    Thanks,
    /// Says goodbye.
    Goodbye,
    /// Searches the catalog.
    FindProduct,
    /// Recommends products with reasons (personalization consent only).
    Advice,
    /// Stock at a store, else the nearest store with stock.
    Availability,
    /// Offers to hold units for pickup; holds them after a yes.
    Reserve,
    /// The price to pay, with promotions and personal offers.
    Price,
    /// The shopper's orders.
    OrderStatus,
    /// A quote from the knowledge base (returns, policies).
    Policy,
    /// Store hours, from the knowledge base.
    StoreHours,
    /// Points balance.
    LoyaltyBalance,
    /// Tier and points to the next tier.
    LoyaltyTier,
    /// Redeems points after a yes.
    Redeem,
    /// Adds a product to the cart (an event).
    AddToCart,
    /// Lists the cart.
    ViewCart,
    /// Hands the conversation to a person.
    Handoff,
    /// A complaint: a person takes it.
    Complaint,
    /// Yes, with nothing waiting for it.
    Affirm,
    /// No, with nothing waiting for it.
    Deny,
}

/// One flow: an intent and what it takes.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// The intent (as understanding names it) that starts it.
    pub intent: &'static str,
    /// What it does.
    pub action: Action,
    /// Slots it needs, asked in this order when missing.
    pub needs: &'static [Slot],
    /// Whether it reads or changes the shopper's own data (orders, points): a signed-in shopper.
    pub signed_in: bool,
    /// Whether it changes something only after the shopper confirms.
    pub confirm: bool,
}

const fn flow(intent: &'static str, action: Action, needs: &'static [Slot], signed_in: bool, confirm: bool) -> Flow {
    Flow { intent, action, needs, signed_in, confirm }
}

/// Every flow.
pub const FLOWS: &[Flow] = &[
    flow("greeting", Action::Greet, &[], false, false),
    flow("thanks", Action::Thanks, &[], false, false),
    flow("goodbye", Action::Goodbye, &[], false, false),
    flow("find_product", Action::FindProduct, &[Slot::Product], false, false),
    flow("recommendation", Action::Advice, &[], false, false),
    flow("availability", Action::Availability, &[Slot::Product, Slot::Store], false, false),
    flow("reserve_pickup", Action::Reserve, &[Slot::Product, Slot::Store], false, true),
    flow("price_offers", Action::Price, &[Slot::Product], false, false),
    flow("order_status", Action::OrderStatus, &[], true, false),
    flow("returns_policy", Action::Policy, &[], false, false),
    flow("store_hours", Action::StoreHours, &[], false, false),
    flow("loyalty_balance", Action::LoyaltyBalance, &[], true, false),
    flow("loyalty_tier", Action::LoyaltyTier, &[], true, false),
    flow("loyalty_redeem", Action::Redeem, &[Slot::Points], true, true),
    flow("add_to_cart", Action::AddToCart, &[Slot::Product], false, false),
    flow("view_cart", Action::ViewCart, &[], false, false),
    flow("human_handoff", Action::Handoff, &[], false, false),
    flow("complaint", Action::Complaint, &[], false, false),
    flow("affirm", Action::Affirm, &[], false, false),
    flow("deny", Action::Deny, &[], false, false),
];

/// The flow an intent starts.
pub fn for_intent(intent: &str) -> Option<&'static Flow> {
    FLOWS.iter().find(|f| f.intent == intent)
}

/// The flow of an action.
pub fn for_action(action: Action) -> Option<&'static Flow> {
    FLOWS.iter().find(|f| f.action == action)
}
