//! Money at the boundary: amounts arrive as JSON numbers or strings and are kept as exact
//! decimals or integer minor units, never as floats.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// Parses a JSON number or numeric string into an exact decimal.
pub fn decimal(v: &Value) -> Option<Decimal> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).ok()
}

/// Parses an amount into minor units (cents), rounding half away from zero.
pub fn cents(v: &Value) -> Option<i64> {
    let d = decimal(v)?.checked_mul(Decimal::from(100))?;
    i64::try_from(d.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero).mantissa()).ok()
}

/// Formats minor units as a decimal string with two places, e.g. `1234` → `12.34`.
pub fn format_cents(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(cents(&json!(19.99)), Some(1999));
        assert_eq!(cents(&json!("0.105")), Some(11));
        assert_eq!(cents(&json!(3)), Some(300));
        assert_eq!(cents(&json!("abc")), None);
        assert_eq!(cents(&json!("79228162514264337593543950335")), None);
        assert_eq!(cents(&json!(1e300)), None);
        assert_eq!(format_cents(1234), "12.34");
        assert_eq!(format_cents(-5), "-0.05");
    }
}
