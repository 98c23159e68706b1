//! Setting a list price: the input a merchandiser (or a rule) proposes, the checks it must pass,
//! and the recorded decision — what the guardrails made of the proposal and why it was made.

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::guardrails::{Clamp, Guardrails};

/// A list price as set in the price book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPriceInput {
    /// The price zone (a region or channel group's price list); empty: the default list.
    #[serde(default)]
    pub zone: String,
    /// ISO currency code.
    pub currency: String,
    /// The list price, in cents.
    pub cents: i64,
    /// From when it holds (default now).
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<i64>,
    /// Until when (exclusive).
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_to: Option<i64>,
    /// Why (kept with the decision).
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the guardrails made of a proposed price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceDecision {
    /// The product.
    pub sku: String,
    /// The zone.
    pub zone: String,
    /// The price before, in cents.
    pub previous_cents: Option<i64>,
    /// What was proposed, in cents.
    pub proposed_cents: i64,
    /// The price now, in cents.
    pub cents: i64,
    /// Each guardrail that moved the proposal, in order: `{rule, from, to}`.
    #[schema(value_type = Vec<Object>)]
    pub clamps: Vec<Clamp>,
    /// Why the price was proposed.
    pub reason: String,
}

/// Whether `c` looks like an ISO 4217 code (three capital letters).
pub fn currency_ok(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}

impl ListPriceInput {
    /// Checks the input on its own as of `now`; returns from when the price holds. The error
    /// names the field.
    pub fn check(&self, now: i64) -> Result<i64, FieldError> {
        if self.cents < 1 {
            return Err(FieldError::invalid("cents", "a price in cents, at least 1; it cannot be negative"));
        }
        if !currency_ok(&self.currency) {
            return Err(FieldError::invalid("currency", "an ISO 4217 code such as USD or EUR"));
        }
        let from = self.valid_from.unwrap_or(now);
        if self.valid_to.is_some_and(|t| t <= from) {
            return Err(FieldError::invalid("validTo", "must be after validFrom"));
        }
        Ok(from)
    }

    /// Checks the price is given in the currency `sku` is sold in.
    pub fn check_currency(&self, sku: &str, sold_in: &str) -> Result<(), FieldError> {
        if self.currency == sold_in {
            return Ok(());
        }
        Err(FieldError::invalid("currency", format!("{sku} is sold in {sold_in}; give its prices in {sold_in}")))
    }
}

/// Decides the price `input` proposes for `sku` under `rails`: `previous` is the price in force
/// when the new one starts and `day_before` the one a day earlier. The daily limit compares with
/// the price a day before, so several changes in one day cannot add up past it; a freeze holds
/// the price in force.
pub fn decide(
    sku: &str,
    input: &ListPriceInput,
    rails: &Guardrails,
    previous: Option<i64>,
    day_before: Option<i64>,
) -> PriceDecision {
    let guarded = if rails.frozen {
        rails.apply(input.cents, previous)
    } else {
        rails.apply(input.cents, day_before.or(previous))
    };
    PriceDecision {
        sku: sku.to_string(),
        zone: input.zone.clone(),
        previous_cents: previous,
        proposed_cents: input.cents,
        cents: guarded.cents,
        clamps: guarded.clamps,
        reason: input.reason.clone().unwrap_or_else(|| "set in the price book".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::Rule;

    fn input(cents: i64) -> ListPriceInput {
        ListPriceInput {
            zone: String::new(),
            currency: "USD".into(),
            cents,
            valid_from: None,
            valid_to: None,
            reason: None,
        }
    }

    #[test]
    fn input_checks_name_the_field() {
        assert_eq!(input(0).check(5).unwrap_err().field, "cents");
        assert_eq!(ListPriceInput { currency: "usd".into(), ..input(100) }.check(5).unwrap_err().field, "currency");
        let backwards = ListPriceInput { valid_from: Some(10), valid_to: Some(10), ..input(100) };
        assert_eq!(backwards.check(5).unwrap_err().field, "validTo");
        assert_eq!(input(100).check(5), Ok(5), "valid from now by default");
        assert_eq!(input(100).check_currency("A", "EUR").unwrap_err().field, "currency");
        assert!(input(100).check_currency("A", "USD").is_ok());
    }

    #[test]
    fn the_daily_limit_counts_from_the_day_before_and_a_freeze_holds_the_price_in_force() {
        let rails = Guardrails { max_daily_change: Some(0.1), ..Default::default() };
        // Already moved to 1100 today from 1000 yesterday: 1200 is held at 1100, not 1210.
        let d = decide("A", &input(1200), &rails, Some(1100), Some(1000));
        assert_eq!((d.previous_cents, d.cents, d.clamps[0].rule), (Some(1100), 1100, Rule::MaxDailyChange));
        assert_eq!(d.reason, "set in the price book");
        let frozen = Guardrails { frozen: true, ..Default::default() };
        let d =
            decide("A", &ListPriceInput { reason: Some("why".into()), ..input(900) }, &frozen, Some(1100), Some(1000));
        assert_eq!((d.cents, d.clamps[0].rule, d.reason.as_str()), (1100, Rule::Freeze, "why"));
        assert_eq!(
            decide("A", &input(900), &Guardrails::default(), None, None).cents,
            900,
            "nothing before: as proposed"
        );
    }
}
