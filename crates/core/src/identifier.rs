//! Customer identifiers and their normalization. The identity graph links them to profiles.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// The type of an identifier. The order of the variants is the attribution priority: when an
/// event's identifiers point to different profiles, the highest-priority one decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// The retailer's own account id (Segment `userId`).
    UserId,
    /// An e-mail address, lower-cased.
    Email,
    /// A loyalty card number.
    LoyaltyCard,
    /// The customer id of the point-of-sale system.
    PosCustomerId,
    /// A phone number in E.164.
    Phone,
    /// A device id (`context.device.id`).
    DeviceId,
    /// A Segment `anonymousId` (browser cookie, app install).
    AnonymousId,
}

impl IdentifierKind {
    /// Every kind, in priority order.
    pub const ALL: [IdentifierKind; 7] = [
        Self::UserId,
        Self::Email,
        Self::LoyaltyCard,
        Self::PosCustomerId,
        Self::Phone,
        Self::DeviceId,
        Self::AnonymousId,
    ];

    /// The stored and query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserId => "user_id",
            Self::Email => "email",
            Self::LoyaltyCard => "loyalty_card",
            Self::PosCustomerId => "pos_customer_id",
            Self::Phone => "phone",
            Self::DeviceId => "device_id",
            Self::AnonymousId => "anonymous_id",
        }
    }

    /// Parses a name in snake_case or camelCase (`userId`, `loyaltyCard`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        let key: String = s.chars().filter(|c| *c != '_').map(|c| c.to_ascii_lowercase()).collect();
        Some(match key.as_str() {
            "userid" => Self::UserId,
            "email" => Self::Email,
            "loyaltycard" => Self::LoyaltyCard,
            "poscustomerid" => Self::PosCustomerId,
            "phone" => Self::Phone,
            "deviceid" => Self::DeviceId,
            "anonymousid" => Self::AnonymousId,
            _ => return None,
        })
    }

    /// How many identifiers of this kind one profile may hold. A merge that would exceed it is
    /// refused: this is what keeps a shared store tablet from fusing two customers.
    pub fn max_per_profile(self) -> usize {
        match self {
            Self::UserId | Self::PosCustomerId | Self::Email => 1,
            Self::LoyaltyCard | Self::Phone => 2,
            Self::DeviceId => 10,
            Self::AnonymousId => 100,
        }
    }

    /// Whether the identifier names a person (account, e-mail, card, phone) rather than a
    /// browser or device, which several people may share. A shared browser or device never
    /// links two profiles that both name a person.
    pub fn is_strong(self) -> bool {
        !matches!(self, Self::AnonymousId | Self::DeviceId)
    }

    /// Normalizes a raw value of this kind, or explains why it is not valid.
    pub fn normalize(self, raw: &str) -> Result<String, String> {
        match self {
            Self::Email => normalize_email(raw),
            Self::Phone => normalize_phone(raw),
            _ => {
                let v = raw.trim();
                if v.is_empty() {
                    Err("must not be empty".into())
                } else if v.len() > 256 {
                    Err("must be at most 256 characters".into())
                } else {
                    Ok(v.to_string())
                }
            }
        }
    }
}

/// One identifier: a kind and a normalized value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// Its kind.
    pub kind: IdentifierKind,
    /// Its normalized value.
    pub value: String,
}

impl Identifier {
    /// Normalizes `raw` as `kind`; the error names `field`.
    pub fn parse(kind: IdentifierKind, raw: &str, field: &str) -> Result<Self, FieldError> {
        kind.normalize(raw).map(|value| Self { kind, value }).map_err(|m| FieldError::invalid(field, m))
    }
}

/// Lower-cases and checks an e-mail address: one `@`, a non-empty local part, a dotted domain,
/// no spaces.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let v = raw.trim().to_lowercase();
    let bad = || Err(format!("'{}' is not a valid e-mail address (expected name@domain.tld)", mask(&v)));
    let Some((local, domain)) = v.split_once('@') else {
        return bad();
    };
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || v.chars().any(|c| c.is_whitespace() || c.is_control())
        || v.len() > 254
    {
        return bad();
    }
    Ok(v)
}

/// Normalizes a phone number to E.164: `+` and 8 to 15 digits. Spaces, dashes, dots and
/// parentheses are dropped; a leading `00` becomes `+`. Numbers without a country code are
/// refused, because guessing one merges the wrong people.
pub fn normalize_phone(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let mut digits = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '+' => {}
            _ => return Err("a phone number may hold only digits, spaces, + - . ( )".into()),
        }
    }
    let digits = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else {
        return Err("phone numbers need a country code in E.164 form, e.g. +14155550123".into());
    };
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err("an E.164 phone number has 8 to 15 digits after the +, e.g. +14155550123".into());
    }
    Ok(format!("+{digits}"))
}

/// Masks a value for error messages and logs: keeps its shape, not its content.
pub fn mask(v: &str) -> String {
    let n = v.chars().count();
    let head: String = v.chars().take(2).collect();
    format!("{head}***({n} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["ann", "ann@", "@x.com", "ann@x", "a b@x.com", "a@@x.com", "a@x.com."] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(normalize_phone("+1 (415) 555-0123").unwrap(), "+14155550123");
        assert_eq!(normalize_phone("0044 20 7946 0958").unwrap(), "+442079460958");
        for bad in ["4155550123", "+12", "+1415555012345678", "+1-415-CALL-NOW"] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_parse_from_both_cases_and_keep_priority() {
        assert_eq!(IdentifierKind::parse("loyaltyCard"), Some(IdentifierKind::LoyaltyCard));
        assert_eq!(IdentifierKind::parse("anonymous_id"), Some(IdentifierKind::AnonymousId));
        assert!(IdentifierKind::UserId < IdentifierKind::AnonymousId);
    }
}
