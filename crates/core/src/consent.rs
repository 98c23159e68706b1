//! Consent purposes: what a customer may or may not allow Tailor to use their data for.

use serde::{Deserialize, Serialize};

/// A purpose a customer consents to, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Personalized recommendations, prices and content.
    Personalization,
    /// Building a profile from behaviour (features, segments).
    Profiling,
    /// Marketing e-mail.
    MarketingEmail,
    /// Marketing SMS.
    MarketingSms,
    /// Marketing push notifications.
    MarketingPush,
    /// Aggregate analytics.
    Analytics,
}

impl Purpose {
    /// Every purpose, in display order.
    pub const ALL: [Purpose; 6] = [
        Self::Personalization,
        Self::Profiling,
        Self::MarketingEmail,
        Self::MarketingSms,
        Self::MarketingPush,
        Self::Analytics,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personalization => "personalization",
            Self::Profiling => "profiling",
            Self::MarketingEmail => "marketing_email",
            Self::MarketingSms => "marketing_sms",
            Self::MarketingPush => "marketing_push",
            Self::Analytics => "analytics",
        }
    }

    /// Parses a purpose name; accepts snake_case, camelCase, spaces and a few consent-manager
    /// category names (e.g. `Advertising` → marketing e-mail is *not* guessed: unknown names are
    /// `None`).
    pub fn parse(s: &str) -> Option<Self> {
        let key: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
        Some(match key.as_str() {
            "personalization" | "personalisation" => Self::Personalization,
            "profiling" => Self::Profiling,
            "marketingemail" | "email" => Self::MarketingEmail,
            "marketingsms" | "sms" => Self::MarketingSms,
            "marketingpush" | "push" => Self::MarketingPush,
            "analytics" => Self::Analytics,
            _ => return None,
        })
    }
}
