//! Guardrails every proposed price passes through: floor (cost × (1 + minimum margin)),
//! ceiling, minimum advertised price (MAP), maximum change per day, price endings and a freeze.
//! Prices are integer cents. Each clamp or refusal is recorded with the rule that caused it.

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

/// No price goes above a billion currency units, whatever is configured or proposed.
pub const MAX_CENTS: i64 = 100_000_000_000;

/// Guardrails stored under this key apply to products without their own.
pub const DEFAULTS: &str = "*";

/// The limits for one product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guardrails {
    /// What one unit costs, in cents (with `min_margin`, sets the floor).
    #[serde(default)]
    pub unit_cost_cents: Option<i64>,
    /// Minimum margin over cost, as a fraction of cost (0.1: the price is at least cost × 1.1).
    #[serde(default)]
    pub min_margin: Option<f64>,
    /// The highest price allowed, in cents.
    #[serde(default)]
    pub ceiling_cents: Option<i64>,
    /// Minimum advertised price agreed with the brand, in cents.
    #[serde(default)]
    pub map_cents: Option<i64>,
    /// The largest change from one day's price to the next, as a fraction (0.1: ±10%).
    #[serde(default)]
    pub max_daily_change: Option<f64>,
    /// Prices end in these cents (e.g. 99 for x.99) when the limits leave room.
    #[serde(default)]
    pub ending_cents: Option<i64>,
    /// Frozen: the price does not move.
    #[serde(default)]
    pub frozen: bool,
}

/// The guardrails of several products: each product's own, else the defaults (stored under
/// [`DEFAULTS`]), else none (the default value, which only keeps prices at or above zero).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuardrailSet {
    own: std::collections::HashMap<String, Guardrails>,
    fallback: Guardrails,
}

impl GuardrailSet {
    /// The set made of stored `(sku, guardrails)` rows, the defaults among them under [`DEFAULTS`].
    pub fn from_rows(rows: impl IntoIterator<Item = (String, Guardrails)>) -> GuardrailSet {
        let mut own: std::collections::HashMap<String, Guardrails> = rows.into_iter().collect();
        let fallback = own.remove(DEFAULTS).unwrap_or_default();
        GuardrailSet { own, fallback }
    }

    /// The guardrails `sku` is priced under.
    pub fn get(&self, sku: &str) -> &Guardrails {
        self.own.get(sku).unwrap_or(&self.fallback)
    }
}

/// Which rule moved or held a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Cost × (1 + minimum margin).
    Floor,
    /// The ceiling.
    Ceiling,
    /// The minimum advertised price.
    Map,
    /// The maximum change per day.
    MaxDailyChange,
    /// The price ending.
    Ending,
    /// The freeze list.
    Freeze,
}

/// One clamp: `rule` moved the price from `from` to `to` (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Clamp {
    /// The rule.
    pub rule: Rule,
    /// The price before it (cents).
    pub from: i64,
    /// The price after it (cents).
    pub to: i64,
}

/// A guarded price and what the guardrails did to the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guarded {
    /// The price to use, in cents.
    pub cents: i64,
    /// What was proposed.
    pub proposed: i64,
    /// Each clamp, in order.
    pub clamps: Vec<Clamp>,
}

impl Guardrails {
    /// Checks the limits make sense together; the error names the field.
    pub fn check(&self) -> Result<(), FieldError> {
        let bad = |field: &str, why: &str| Err(FieldError::invalid(field, why));
        for (field, v) in [
            ("unitCostCents", self.unit_cost_cents),
            ("ceilingCents", self.ceiling_cents),
            ("mapCents", self.map_cents),
        ] {
            if v.is_some_and(|c| !(0..=MAX_CENTS).contains(&c)) {
                return bad(field, "cents between 0 and 100000000000; prices and costs cannot be negative");
            }
        }
        if self.min_margin.is_some_and(|m| !m.is_finite() || !(0.0..=10.0).contains(&m)) {
            return bad("minMargin", "a fraction of cost between 0 and 10, e.g. 0.15");
        }
        if self.max_daily_change.is_some_and(|m| !m.is_finite() || !(0.0..=1.0).contains(&m) || m == 0.0) {
            return bad("maxDailyChange", "a fraction above 0 and at most 1, e.g. 0.1 for ±10% a day");
        }
        if self.ending_cents.is_some_and(|e| !(0..100).contains(&e)) {
            return bad("endingCents", "the cents a price ends in, 0 to 99, e.g. 99");
        }
        if let (Some(floor), Some(ceiling)) = (self.hard_floor(), self.ceiling_cents) {
            if floor > ceiling {
                return bad("ceilingCents", &format!("is below the floor of {floor} cents (cost × margin, or MAP)"));
            }
        }
        Ok(())
    }

    /// Cost × (1 + minimum margin), in whole cents.
    fn margin_floor(&self) -> Option<i64> {
        self.unit_cost_cents.map(|c| up(c as f64 * (1.0 + self.min_margin.unwrap_or(0.0))))
    }

    /// The lowest price cost, margin and MAP allow.
    pub fn hard_floor(&self) -> Option<i64> {
        let margin = self.margin_floor();
        match (margin, self.map_cents) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The price to use for `proposed` (cents) when yesterday's was `previous`. The bounds from
    /// cost, MAP and ceiling always hold; the daily change holds whenever `previous` itself was
    /// within them (a price these guardrails set); the ending applies when it fits.
    pub fn apply(&self, proposed: i64, previous: Option<i64>) -> Guarded {
        let mut clamps = Vec::new();
        let mut price = proposed.max(0);
        let mut clamp = |rule: Rule, to: i64, price: &mut i64| {
            if to != *price {
                clamps.push(Clamp { rule, from: *price, to });
                *price = to;
            }
        };
        if self.frozen {
            if let Some(prev) = previous {
                clamp(Rule::Freeze, prev, &mut price);
                return Guarded { cents: price, proposed, clamps };
            }
        }
        // Each bound remembers the rule that set it, so a clamp is recorded with its cause.
        let margin_floor = self.margin_floor();
        let mut low = (0, Rule::Floor);
        for bound in
            [margin_floor.map(|f| (f, Rule::Floor)), self.map_cents.map(|m| (m, Rule::Map))].into_iter().flatten()
        {
            if bound.0 > low.0 {
                low = bound;
            }
        }
        let mut high = (self.ceiling_cents.unwrap_or(MAX_CENTS).min(MAX_CENTS), Rule::Ceiling);
        if let (Some(m), Some(prev)) = (self.max_daily_change, previous) {
            let (day_low, day_high) = (up(prev as f64 * (1.0 - m)), down(prev as f64 * (1.0 + m)));
            // Only when the two windows meet: otherwise the hard bounds win.
            if day_low.max(low.0) <= day_high.min(high.0) {
                if day_low > low.0 {
                    low = (day_low, Rule::MaxDailyChange);
                }
                if day_high < high.0 {
                    high = (day_high, Rule::MaxDailyChange);
                }
            }
        }
        if price < low.0 {
            clamp(low.1, low.0, &mut price);
        }
        if price > high.0 {
            clamp(high.1, high.0, &mut price);
        }
        let (low, high) = (low.0, high.0);
        if let Some(e) = self.ending_cents {
            let base = price.div_euclid(100) * 100 + e;
            let best = [base - 100, base, base + 100]
                .into_iter()
                .filter(|c| *c >= low && *c <= high && *c >= 0)
                .min_by_key(|c| ((c - price).abs(), *c));
            if let Some(c) = best {
                clamp(Rule::Ending, c, &mut price);
            }
        }
        Guarded { cents: price, proposed, clamps }
    }

    /// Keeps a price between the hard floor (cost and margin, or MAP) and the ceiling: the
    /// bounds promotions stay within, whatever they take off.
    pub fn bound(&self, cents: i64) -> i64 {
        let floor = self.hard_floor().unwrap_or(0);
        let ceiling = self.ceiling_cents.unwrap_or(i64::MAX);
        cents.clamp(floor.min(ceiling), ceiling)
    }

    /// Whether `cents` is a price these guardrails would set as it is (with no price before
    /// it): `None` when it is, else the first rule that would move it and where it would land.
    /// Candidate prices (experiments, markdown ladders) are refused rather than silently moved.
    pub fn refusal(&self, cents: i64) -> Option<(Rule, i64)> {
        let guarded = self.apply(cents, None);
        (guarded.cents != cents).then(|| (guarded.clamps.first().map_or(Rule::Floor, |c| c.rule), guarded.cents))
    }
}

/// Rounds up to whole cents, ignoring float noise (100 × 1.1 is 110, not 111).
fn up(x: f64) -> i64 {
    (x - 1e-6).ceil() as i64
}

/// Rounds down to whole cents, ignoring float noise.
fn down(x: f64) -> i64 {
    (x + 1e-6).floor() as i64
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn random_guardrails(rng: &mut StdRng) -> Guardrails {
        let cost = rng.gen_range(0..5_000);
        Guardrails {
            unit_cost_cents: rng.gen_bool(0.8).then_some(cost),
            min_margin: rng.gen_bool(0.7).then(|| rng.gen_range(0.0..0.8)),
            ceiling_cents: rng.gen_bool(0.7).then(|| cost + rng.gen_range(0..20_000)),
            map_cents: rng.gen_bool(0.4).then(|| rng.gen_range(0..8_000)),
            max_daily_change: rng.gen_bool(0.7).then(|| rng.gen_range(0.01..0.5)),
            ending_cents: rng.gen_bool(0.5).then(|| rng.gen_range(0..100)),
            frozen: rng.gen_bool(0.05),
        }
    }

    /// Property: whatever is proposed, day after day, no price leaves floor, ceiling or MAP
    /// and no change from one day to the next exceeds the maximum.
    #[test]
    fn no_price_leaves_the_bounds_and_no_day_moves_too_far() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut checked = 0;
        for _ in 0..3_000 {
            let g = random_guardrails(&mut rng);
            if g.check().is_err() {
                continue;
            }
            let floor = g.hard_floor().unwrap_or(0);
            let ceiling = g.ceiling_cents.unwrap_or(MAX_CENTS);
            let mut previous: Option<i64> = None;
            for _ in 0..60 {
                let proposed = match rng.gen_range(0..4) {
                    0 => rng.gen_range(-1_000..100_000),
                    1 => previous.map_or(0, |p| p * 3),
                    2 => previous.map_or(0, |p| p / 3),
                    _ => rng.gen_range(0..i64::MAX / 4),
                };
                let out = g.apply(proposed, previous);
                let p = out.cents;
                if !(g.frozen && previous.is_some()) {
                    assert!(p >= floor && p <= ceiling, "{p} outside [{floor}, {ceiling}] for {g:?}");
                }
                if let (Some(m), Some(prev)) = (g.max_daily_change, previous) {
                    let change = (p - prev).abs() as f64;
                    assert!(change <= prev as f64 * m + 1e-9, "{prev} → {p} moves more than {m} for {g:?}");
                }
                assert_eq!(out.clamps.last().map_or(out.proposed.max(0), |c| c.to), p, "the record ends at the price");
                previous = Some(p);
                checked += 1;
            }
        }
        assert!(checked > 50_000, "enough valid cases were generated: {checked}");
    }

    #[test]
    fn each_clamp_names_its_rule() {
        let g = Guardrails {
            unit_cost_cents: Some(200),
            min_margin: Some(0.25),
            ceiling_cents: Some(1_000),
            map_cents: Some(300),
            max_daily_change: Some(0.1),
            ending_cents: Some(99),
            frozen: false,
        };
        assert_eq!(g.apply(100, None).clamps[0].rule, Rule::Map);
        assert_eq!(g.apply(5_000, None).clamps[0].rule, Rule::Ceiling);
        let step = g.apply(800, Some(500));
        assert_eq!((step.clamps[0].rule, step.clamps[0].to), (Rule::MaxDailyChange, 550));
        assert_eq!(step.cents, 499, "the nearest .99 within the day's window [450, 550]");
        let frozen = Guardrails { frozen: true, ..g.clone() };
        assert_eq!(frozen.apply(800, Some(500)).clamps[0].rule, Rule::Freeze);
    }

    #[test]
    fn whole_cent_bounds_ignore_float_noise() {
        let g = Guardrails {
            unit_cost_cents: Some(100),
            min_margin: Some(0.1),
            ceiling_cents: Some(110),
            ..Default::default()
        };
        assert!(g.check().is_ok(), "cost 1.00 + 10% is 1.10");
        assert_eq!(g.apply(50, None).cents, 110);
        let g = Guardrails { max_daily_change: Some(0.15), ..Default::default() };
        assert_eq!(g.apply(200, Some(100)).cents, 115);
    }

    #[test]
    fn contradictory_limits_are_refused_by_field() {
        let g = Guardrails {
            unit_cost_cents: Some(1_000),
            min_margin: Some(0.2),
            ceiling_cents: Some(1_100),
            ..Default::default()
        };
        assert_eq!(g.check().map_err(|e| e.field), Err("ceilingCents".to_string()));
        let g = Guardrails { map_cents: Some(-5), ..Default::default() };
        assert_eq!(g.check().map_err(|e| e.field), Err("mapCents".to_string()));
    }

    #[test]
    fn promotions_stay_between_floor_and_ceiling_and_candidates_are_refused_by_rule() {
        let g = Guardrails {
            unit_cost_cents: Some(300),
            map_cents: Some(350),
            ceiling_cents: Some(900),
            ..Default::default()
        };
        assert_eq!((g.bound(100), g.bound(500), g.bound(2_000)), (350, 500, 900));
        assert_eq!(Guardrails::default().bound(-5), 0, "no guardrails: never below zero");
        assert_eq!(g.refusal(500), None);
        assert_eq!(g.refusal(200), Some((Rule::Map, 350)));
        assert_eq!(g.refusal(1_000), Some((Rule::Ceiling, 900)));
        let ending = Guardrails { ending_cents: Some(99), ..Default::default() };
        assert_eq!(ending.refusal(450), Some((Rule::Ending, 499)));
    }

    #[test]
    fn a_product_without_its_own_guardrails_gets_the_defaults() {
        let own = Guardrails { ceiling_cents: Some(500), ..Default::default() };
        let defaults = Guardrails { ending_cents: Some(99), ..Default::default() };
        let set = GuardrailSet::from_rows([("A".to_string(), own.clone()), (DEFAULTS.to_string(), defaults.clone())]);
        assert_eq!((set.get("A"), set.get("B")), (&own, &defaults));
        assert_eq!(set.get(DEFAULTS), &defaults);
        assert_eq!(GuardrailSet::from_rows([]).get("B"), &Guardrails::default());
    }
}
