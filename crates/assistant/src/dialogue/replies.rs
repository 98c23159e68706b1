//! Reply templates: one brand voice, a variant per channel where the channel needs one (SMS is
//! short and plain; the in-store kiosk points to the service desk). A template holds `{name}`
//! placeholders filled only with the facts of the turn, so a reply can say nothing the engine did
//! not answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the conversation happens; decides how replies are formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatChannel {
    /// The web chat widget: text, product cards and quick replies.
    #[default]
    Web,
    /// SMS: one short plain text, no cards.
    Sms,
    /// The in-store kiosk: text and cards, a person at the service desk for hand-off.
    Kiosk,
}

impl ChatChannel {
    /// Parses `web`, `sms` or `kiosk`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "sms" => Some(Self::Sms),
            "kiosk" => Some(Self::Kiosk),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Sms => "sms",
            Self::Kiosk => "kiosk",
        }
    }

    /// The pricing and stock channel a conversation on this channel quotes for.
    pub fn commerce_channel(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Sms => "support",
            Self::Kiosk => "store",
        }
    }

    /// How many products a list shows.
    pub fn list_len(self) -> usize {
        match self {
            Self::Sms => 3,
            Self::Web | Self::Kiosk => 5,
        }
    }
}

/// Longest SMS reply, in characters (two segments).
pub const SMS_MAX_CHARS: usize = 306;

/// (key, default text, SMS text when it differs, kiosk text when it differs).
const TEMPLATES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("greet", "Hi! I can find products, check stock at your store, hold items for pickup, quote prices and offers, look up your orders and points, and answer questions about returns and opening hours. What can I do for you?", Some("Hi! Ask me about products, stock, prices, pickup, orders, points, returns or hours."), None),
    ("thanks", "You're welcome! Anything else?", None, None),
    ("goodbye", "Goodbye, and thanks for shopping with us!", None, None),
    ("capabilities", "Sorry, I can't help with that. I can find products, check stock, hold items for pickup, quote prices, look up orders and points, and answer questions about returns and opening hours. You can also ask for a person.", Some("Sorry, I can't help with that. Ask me about products, stock, prices, pickup, orders, points, returns or hours, or say \"person\"."), None),
    ("refuse", "I can't change how I work or grant points. I can check your balance, redeem points you have (after you confirm), or find a product for you.", None, None),
    ("ask_product", "Which product do you mean?", None, None),
    ("ask_store", "Which store? Tell me its number, e.g. \"store 381\".", None, None),
    ("ask_points", "How many points would you like to redeem?", None, None),
    ("sign_in", "Please sign in so I can look at your {what}.", None, Some("Please scan your loyalty card or sign in so I can look at your {what}.")),
    ("not_found", "I couldn't find \"{query}\". Could you describe it differently?", None, None),
    ("found", "Here's what I found for \"{query}\":\n{list}", Some("For \"{query}\": {list}"), None),
    ("found_cheaper", "Cheaper options for \"{query}\":\n{list}", Some("Cheaper: {list}"), None),
    ("none_cheaper", "{title} is already the cheapest match for \"{query}\" I have.", None, None),
    ("details", "{title}: {price} {stock}", None, None),
    ("in_stock", "{title} is in stock at store {store}: {available} available.", None, None),
    ("sold_out_nearest", "{title} is sold out at store {store}. Store {nearest} has {available}{distance}. Shall I hold {quantity} for you there for pickup?", Some("{title}: sold out at store {store}; store {nearest} has {available}{distance}. Hold {quantity} there? Reply YES."), None),
    ("sold_out_nowhere", "{title} is sold out at store {store} and at every other store right now.", None, None),
    ("offer_hold", "{title} is in stock at store {store} ({available} available). Shall I hold {quantity} for you for pickup?", Some("{title}: {available} at store {store}. Hold {quantity}? Reply YES."), None),
    ("held", "Done: {quantity} × {title} held for you at store {store} until {until}. Reservation {reservation}.", Some("Held: {quantity} x {title} at store {store} until {until}. Ref {reservation}."), None),
    ("hold_failed", "Sorry, I couldn't hold {title} at store {store}: {reason}", None, None),
    ("not_held", "OK, I haven't held anything.", None, None),
    ("price", "{title} costs {price}{was}.{promotions}{offers}", None, None),
    ("no_price", "I don't have a price for {title} yet.", None, None),
    ("orders", "Your recent orders:\n{list}", Some("Orders: {list}"), None),
    ("no_orders", "I can't find any orders on your account.", None, None),
    ("order_one", "Order {order} from {date}: {status}, {total}.", None, None),
    ("order_unknown", "I can't find order {order} on your account.", None, None),
    ("policy", "From our {heading} policy: \"{quote}\"", None, None),
    ("policy_unknown", "I don't have an answer to that in our policies. Shall I get a person to help?", None, None),
    ("balance", "You have {active} points to spend{pending}.", None, None),
    ("tier", "You're in the {tier} tier.{next}", None, None),
    ("no_tier", "You don't have a tier yet.{next}", None, None),
    ("offer_redeem", "You have {active} points. Shall I redeem {points} points?", Some("Redeem {points} of your {active} points? Reply YES."), None),
    ("redeem_short", "You have {active} points, fewer than the {points} you asked for, so I haven't redeemed anything.", None, None),
    ("redeemed", "Done: {points} points redeemed for {discount} off. You have {active} points left.", None, None),
    ("redeem_failed", "Sorry, I couldn't redeem those points: {reason}", None, None),
    ("not_redeemed", "OK, I haven't redeemed anything.", None, None),
    ("added", "Added {quantity} × {title} to your cart.", Some("Added {quantity} x {title} to your cart."), None),
    ("cart", "Your cart:\n{list}", Some("Cart: {list}"), None),
    ("cart_empty", "Your cart is empty.", None, None),
    ("advice", "{intro}\n{list}", Some("{intro} {list}"), None),
    ("advice_not_personal", "These suggestions are not personal: you haven't allowed us to use your shopping history to personalize them.", None, None),
    ("handoff", "I'm passing you to a person who can see our conversation. They'll reply here shortly.", Some("A person will reply to you here shortly."), Some("I'm passing you to a colleague; please go to the service desk or wait here for their reply.")),
    ("handoff_low", "I'm not sure I understand, so I'm passing you to a person who can see our conversation.", None, None),
    ("handoff_sensitive", "I'm sorry about that. A person will take this over and reply here shortly.", None, None),
    ("nothing_pending", "Sorry, I'm not sure what you'd like me to do. What can I help you with?", None, None),
    ("still_pending", "By the way, I'm still holding off on {what}: say yes if you'd like me to go ahead.", None, None),
];

/// The template text of `key` for `channel`.
pub fn template(key: &str, channel: ChatChannel) -> &'static str {
    TEMPLATES
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, text, sms, kiosk)| match channel {
            ChatChannel::Sms => sms.unwrap_or(text),
            ChatChannel::Kiosk => kiosk.unwrap_or(text),
            ChatChannel::Web => text,
        })
        .unwrap_or("")
}

/// Whether a template exists (tests check every key the flows use).
pub fn has_template(key: &str) -> bool {
    TEMPLATES.iter().any(|(k, ..)| *k == key)
}

/// Renders `key` for `channel` with `vars`; a placeholder without a value is left out.
pub fn render(key: &str, channel: ChatChannel, vars: &BTreeMap<&str, String>) -> String {
    let src = template(key, channel);
    let mut out = String::with_capacity(src.len() + 64);
    let mut rest = src;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if after[..close].chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                if let Some(v) = vars.get(&after[..close]) {
                    out.push_str(v);
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    format_for(channel, &out)
}

/// Channel formatting: SMS is one line within [`SMS_MAX_CHARS`], cut at a word.
pub fn format_for(channel: ChatChannel, text: &str) -> String {
    match channel {
        ChatChannel::Sms => {
            let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if one.chars().count() <= SMS_MAX_CHARS {
                return one;
            }
            let mut cut: String = one.chars().take(SMS_MAX_CHARS - 1).collect();
            if let Some(sp) = cut.rfind(' ') {
                cut.truncate(sp);
            }
            cut.push('…');
            cut
        }
        _ => text.trim().to_string(),
    }
}

/// A list for a reply: numbered lines on the web and kiosk, `1) a; 2) b` on SMS.
pub fn list(channel: ChatChannel, lines: &[String]) -> String {
    match channel {
        ChatChannel::Sms => {
            lines.iter().enumerate().map(|(i, l)| format!("{}) {l}", i + 1)).collect::<Vec<_>>().join("; ")
        }
        _ => lines.iter().enumerate().map(|(i, l)| format!("{}. {l}", i + 1)).collect::<Vec<_>>().join("\n"),
    }
}

/// Money for a reply: `$3.49` for USD, `3.49 EUR` otherwise.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let amount = format!("{sign}{}.{:02}", abs / 100, abs % 100);
    match currency {
        "USD" | "" => format!("${amount}"),
        "EUR" => format!("€{amount}"),
        "GBP" => format!("£{amount}"),
        c => format!("{amount} {c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_per_channel() {
        let mut v = BTreeMap::new();
        v.insert("title", "Bananas".to_string());
        v.insert("store", "381".to_string());
        v.insert("available", "7".to_string());
        assert_eq!(render("in_stock", ChatChannel::Web, &v), "Bananas is in stock at store 381: 7 available.");
        let long: String = "word ".repeat(200);
        let sms = format_for(ChatChannel::Sms, &long);
        assert!(sms.chars().count() <= SMS_MAX_CHARS && sms.ends_with('…'));
        assert_ne!(template("handoff", ChatChannel::Kiosk), template("handoff", ChatChannel::Web));
        assert_eq!(money(349, "USD"), "$3.49");
        assert_eq!(money(5, "SEK"), "0.05 SEK");
    }
}
