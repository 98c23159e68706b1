//! Personal offers: a discount for one customer, decided from what they did (lapsing from a
//! habit, a cart left behind), bounded by published caps per offer and per customer per period,
//! each with its reason. The decision sees a [`Behavior`] and nothing else: the type has no
//! place for age, income, household make-up or any other demographic attribute, and it is
//! built only from [`Fact`]s, which are things a customer did. So no change elsewhere can feed
//! a demographic into an offer without changing these types.
//!
//! ```compile_fail
//! // A profile's traits (where demographics live) are not facts: this does not compile.
//! let traits = serde_json::json!({"age": "45-54", "income": "50-74K"});
//! let b = tailor_pricing::offers::Behavior::from_facts(&[traits], 0);
//! ```
//!
//! ```compile_fail
//! // Nor can a Behavior be assembled by hand with extra fields: its fields are private.
//! let b = tailor_pricing::offers::Behavior { orders: 3, age: 45 };
//! ```

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::DAY_MS;

/// Something a customer did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fact {
    /// An order, at (unix ms), of this value (cents).
    Ordered {
        /// When.
        at: i64,
        /// Its value in cents.
        cents: i64,
    },
    /// The cart as it stands, last changed at (unix ms), worth `cents`.
    Cart {
        /// Last change.
        at: i64,
        /// Its value in cents.
        cents: i64,
    },
}

/// The facts a customer's orders (time, cents) and cart lines (last change, cents) make: each
/// order, and the cart as one (its latest change, its total).
pub fn facts_from(orders: &[(i64, i64)], cart: &[(i64, i64)]) -> Vec<Fact> {
    let mut facts: Vec<Fact> = orders.iter().map(|&(at, cents)| Fact::Ordered { at, cents }).collect();
    if let Some(at) = cart.iter().map(|c| c.0).max() {
        facts.push(Fact::Cart { at, cents: cart.iter().map(|c| c.1).sum() });
    }
    facts
}

/// What the offer logic knows about a customer: behaviour only.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    orders: u32,
    days_since_last_order: Option<f64>,
    usual_interval_days: Option<f64>,
    cart: Option<(f64, i64)>,
}

impl Behavior {
    /// Summarizes `facts` as of `now` (unix ms).
    pub fn from_facts(facts: &[Fact], now: i64) -> Behavior {
        let mut orders: Vec<i64> =
            facts.iter().filter_map(|f| if let Fact::Ordered { at, .. } = f { Some(*at) } else { None }).collect();
        orders.sort_unstable();
        let days = |ms: i64| ms as f64 / DAY_MS as f64;
        let usual = (orders.len() >= 3).then(|| {
            let mut gaps: Vec<i64> = orders.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_unstable();
            days(gaps[gaps.len() / 2])
        });
        let cart = facts
            .iter()
            .filter_map(|f| if let Fact::Cart { at, cents } = f { Some((days(now - at) * 24.0, *cents)) } else { None })
            .find(|c| c.1 > 0);
        Behavior {
            orders: orders.len() as u32,
            days_since_last_order: orders.last().map(|l| days(now - l)),
            usual_interval_days: usual,
            cart,
        }
    }
}

/// One kind of offer the retailer publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferTemplate {
    /// Percent off (0–100).
    pub percent_off: f64,
    /// Days it stays valid.
    pub valid_days: u32,
}

/// The published offer policy: which offers exist and their caps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OfferPolicy {
    /// For a customer well past their usual time between orders.
    #[serde(default)]
    pub lapsing: Option<OfferTemplate>,
    /// For a cart left for at least `cartIdleHours`.
    #[serde(default)]
    pub cart_abandoned: Option<OfferTemplate>,
    /// Hours a cart waits before it counts as abandoned.
    pub cart_idle_hours: f64,
    /// The most any one offer can take off, in cents.
    pub max_per_offer_cents: i64,
    /// The most one customer can be offered per period, in cents.
    pub max_per_customer_cents: i64,
    /// The period of that cap, in days.
    pub period_days: u32,
}

impl Default for OfferPolicy {
    fn default() -> Self {
        OfferPolicy {
            lapsing: Some(OfferTemplate { percent_off: 10.0, valid_days: 14 }),
            cart_abandoned: Some(OfferTemplate { percent_off: 5.0, valid_days: 3 }),
            cart_idle_hours: 2.0,
            max_per_offer_cents: 1_000,
            max_per_customer_cents: 2_000,
            period_days: 30,
        }
    }
}

impl OfferPolicy {
    /// The length of the per-customer cap's period, in milliseconds.
    pub fn period_ms(&self) -> i64 {
        i64::from(self.period_days) * DAY_MS
    }

    /// Checks the policy; the error names the field.
    pub fn check(&self) -> Result<(), FieldError> {
        for (field, t) in [("lapsing", &self.lapsing), ("cartAbandoned", &self.cart_abandoned)] {
            if let Some(t) = t {
                if !(t.percent_off > 0.0 && t.percent_off <= 100.0) {
                    return Err(FieldError::invalid(
                        format!("{field}.percentOff"),
                        "a percentage above 0, at most 100",
                    ));
                }
                if t.valid_days == 0 {
                    return Err(FieldError::invalid(format!("{field}.validDays"), "at least 1 day"));
                }
            }
        }
        if !(self.cart_idle_hours.is_finite() && self.cart_idle_hours >= 0.0) {
            return Err(FieldError::invalid("cartIdleHours", "hours, 0 or more"));
        }
        if self.max_per_offer_cents < 0 || self.max_per_customer_cents < 0 {
            let field = if self.max_per_offer_cents < 0 { "maxPerOfferCents" } else { "maxPerCustomerCents" };
            return Err(FieldError::invalid(field, "cents, 0 or more"));
        }
        if self.period_days == 0 {
            return Err(FieldError::invalid("periodDays", "at least 1 day"));
        }
        Ok(())
    }
}

/// A personal offer and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// lapsing or cart_abandoned.
    pub kind: String,
    /// Percent off.
    pub percent_off: f64,
    /// The most it takes off, in cents (within both caps).
    pub max_discount_cents: i64,
    /// Days it stays valid.
    pub valid_days: u32,
    /// Why this customer gets it, in words.
    pub reason: String,
}

impl Offer {
    /// Until when (unix ms) an offer issued at `now` holds.
    pub fn valid_until(&self, now: i64) -> i64 {
        now + i64::from(self.valid_days) * DAY_MS
    }

    /// Whole days (rounded up) left at `now` of an offer valid until `valid_until`.
    pub fn days_left(valid_until: i64, now: i64) -> u32 {
        ((valid_until - now) as f64 / DAY_MS as f64).ceil() as u32
    }
}

/// The offers `behavior` earns under `policy`, given what the customer was already offered in
/// the current period (cents): at most one, the one worth most, within the caps.
pub fn offers_for(behavior: &Behavior, policy: &OfferPolicy, offered_this_period_cents: i64) -> Vec<Offer> {
    let budget = (policy.max_per_customer_cents - offered_this_period_cents).min(policy.max_per_offer_cents);
    if budget <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let (Some(t), Some((idle_hours, cents))) = (&policy.cart_abandoned, behavior.cart) {
        if idle_hours >= policy.cart_idle_hours {
            out.push(Offer {
                kind: "cart_abandoned".into(),
                percent_off: t.percent_off,
                max_discount_cents: budget.min((cents as f64 * t.percent_off / 100.0).round() as i64),
                valid_days: t.valid_days,
                reason: format!("a cart worth ${:.2} has waited {:.0} hours", cents as f64 / 100.0, idle_hours),
            });
        }
    }
    if let (Some(t), Some(since), Some(usual)) =
        (&policy.lapsing, behavior.days_since_last_order, behavior.usual_interval_days)
    {
        if since >= (2.0 * usual).max(14.0) {
            out.push(Offer {
                kind: "lapsing".into(),
                percent_off: t.percent_off,
                max_discount_cents: budget,
                valid_days: t.valid_days,
                reason: format!(
                    "usually orders every {usual:.0} days; {since:.0} days since the last of {} orders",
                    behavior.orders
                ),
            });
        }
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.max_discount_cents));
    out.truncate(1);
    out.retain(|o| o.max_discount_cents > 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn weekly_shopper(last_days_ago: i64) -> Vec<Fact> {
        (0..6).map(|i| Fact::Ordered { at: NOW - (last_days_ago + 7 * i) * DAY_MS, cents: 4_000 }).collect()
    }

    #[test]
    fn a_lapsing_customer_gets_a_capped_offer_with_its_reason() {
        let policy = OfferPolicy::default();
        let offers = offers_for(&Behavior::from_facts(&weekly_shopper(30), NOW), &policy, 0);
        assert_eq!(offers.len(), 1);
        assert_eq!((offers[0].kind.as_str(), offers[0].max_discount_cents), ("lapsing", 1_000));
        assert!(offers[0].reason.contains("every 7 days"), "{}", offers[0].reason);
        assert!(offers_for(&Behavior::from_facts(&weekly_shopper(3), NOW), &policy, 0).is_empty(), "not lapsing");
        // The per-customer cap: 1,500 of 2,000 already offered this period leaves 500.
        assert_eq!(
            offers_for(&Behavior::from_facts(&weekly_shopper(30), NOW), &policy, 1_500)[0].max_discount_cents,
            500
        );
        assert!(offers_for(&Behavior::from_facts(&weekly_shopper(30), NOW), &policy, 2_000).is_empty());
    }

    #[test]
    fn an_abandoned_cart_gets_its_share_of_the_cart() {
        let facts = [Fact::Cart { at: NOW - 5 * 3_600_000, cents: 6_000 }];
        let offers = offers_for(&Behavior::from_facts(&facts, NOW), &OfferPolicy::default(), 0);
        assert_eq!((offers[0].kind.as_str(), offers[0].max_discount_cents), ("cart_abandoned", 300));
        let fresh = [Fact::Cart { at: NOW - 600_000, cents: 6_000 }];
        assert!(offers_for(&Behavior::from_facts(&fresh, NOW), &OfferPolicy::default(), 0).is_empty());
    }

    #[test]
    fn orders_and_cart_lines_become_facts_and_validity_counts_whole_days() {
        let facts = facts_from(&[(10, 500)], &[(20, 300), (30, 200)]);
        assert_eq!(facts, vec![Fact::Ordered { at: 10, cents: 500 }, Fact::Cart { at: 30, cents: 500 }]);
        assert_eq!(facts_from(&[], &[]), vec![]);
        let offer = &offers_for(&Behavior::from_facts(&weekly_shopper(30), NOW), &OfferPolicy::default(), 0)[0];
        assert_eq!(offer.valid_until(NOW), NOW + 14 * DAY_MS);
        assert_eq!(Offer::days_left(NOW + 14 * DAY_MS - 1, NOW), 14);
        assert_eq!(Offer::days_left(NOW + DAY_MS + 1, NOW), 2);
        assert_eq!(OfferPolicy::default().period_ms(), 30 * DAY_MS);
    }
}
