//! Lines that are not merchandise — fuel, coupons, bags, deposits, gift cards, postage,
//! donations, miscellaneous sales — told from the catalog's classification (department,
//! category, sub-category; never the title, so "tea bags" stay merchandise). They are sold
//! often, so popularity and co-purchase lists would fill up with them; every list leaves them
//! out unless the retailer says otherwise ([`crate::Merchandising::non_merchandise`]).

/// The default patterns, matched (lower-case) as parts of an item's classification.
pub const DEFAULT_PATTERNS: &[&str] = &[
    "fuel",
    "gasoline",
    "kiosk-gas",
    "coupon",
    "misc sales",
    "misc. trans",
    "gift card",
    "gift cert",
    "lottery",
    "deposit",
    "postage",
    "postal",
    "charitable",
    "donation",
    "bag fee",
    "carryout bag",
    "shopping bag",
];

/// At most this many patterns, each at most [`MAX_PATTERN_CHARS`] long.
pub const MAX_PATTERNS: usize = 100;
/// The longest pattern.
pub const MAX_PATTERN_CHARS: usize = 100;

/// The patterns in use: the retailer's (lower-cased; an empty list turns detection off), else
/// the defaults.
pub fn patterns(configured: Option<&[String]>) -> Vec<String> {
    match configured {
        Some(list) => list.iter().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect(),
        None => DEFAULT_PATTERNS.iter().map(|p| p.to_string()).collect(),
    }
}

/// Whether an item of classification `kind` (lower-case) matches one of `patterns`.
pub fn matches(kind: &str, patterns: &[String]) -> bool {
    !kind.is_empty() && patterns.iter().any(|p| kind.contains(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_coupons_and_deposits_are_found_and_groceries_are_not() {
        let p = patterns(None);
        for kind in [
            "kiosk-gas | coupon/misc items | gasoline-reg unleaded",
            "misc sales tran | | ",
            "grocery | bottle deposit",
        ] {
            assert!(matches(kind, &p), "{kind}");
        }
        for kind in ["grocery | tea | tea bags", "produce | tropical fruit | bananas", ""] {
            assert!(!matches(kind, &p), "{kind}");
        }
        assert!(!matches("kiosk-gas | fuel", &patterns(Some(&[]))), "an empty list turns it off");
        assert!(matches("grocery | tea | tea bags", &patterns(Some(&[" Tea Bags ".to_string()]))));
    }
}
