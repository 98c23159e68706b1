//! The channel an event came from: where the customer met the retailer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A customer touch point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The web shop.
    Web,
    /// A mobile app.
    App,
    /// A physical store (POS, associate tablet).
    Store,
    /// Customer support (phone, a person's chat).
    Support,
    /// The shopping assistant's conversations.
    Chat,
    /// E-mail.
    Email,
    /// A server-side integration with no customer-facing channel.
    Server,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::App => "app",
            Self::Store => "store",
            Self::Support => "support",
            Self::Chat => "chat",
            Self::Email => "email",
            Self::Server => "server",
        }
    }

    /// Parses a stored or declared channel name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "web" | "browser" => Self::Web,
            "app" | "mobile" => Self::App,
            "store" | "pos" | "instore" | "in_store" => Self::Store,
            "support" | "call_center" | "callcenter" => Self::Support,
            "chat" | "assistant" => Self::Chat,
            "email" => Self::Email,
            "server" => Self::Server,
            _ => return None,
        })
    }

    /// Infers the channel of a Segment event: `context.channel` (Tailor's extension) first, then
    /// Segment's top-level `channel`, then the SDK that sent it, then the call type.
    pub fn infer(raw: &Value, kind: &str) -> Self {
        let declared = raw
            .pointer("/context/channel")
            .or_else(|| raw.get("channel"))
            .and_then(Value::as_str)
            .and_then(Self::parse);
        if let Some(channel) = declared {
            return channel;
        }
        if let Some(lib) = raw.pointer("/context/library/name").and_then(Value::as_str) {
            let lib = lib.to_ascii_lowercase();
            if lib.contains("ios") || lib.contains("android") || lib.contains("react-native") {
                return Self::App;
            }
            if lib.contains("analytics.js") || lib.contains("analytics-next") {
                return Self::Web;
            }
        }
        if raw.pointer("/context/app").is_some() || kind == "screen" {
            return Self::App;
        }
        if kind == "page" || raw.pointer("/context/page").is_some() {
            return Self::Web;
        }
        Self::Server
    }
}
