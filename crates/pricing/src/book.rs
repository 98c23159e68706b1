//! The price book's arithmetic: from a product's list price (the same on every channel), the
//! promotions that apply (by product or category, dates, and — only when declared — channel),
//! with priority and stacking rules, to the price to pay and its explanation.

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

/// What a promotion takes off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    /// A percentage off the unit price.
    Percentage {
        /// Percent off (above 0, at most 100).
        percent: f64,
    },
    /// An amount off the unit price, in cents.
    Amount {
        /// Cents off.
        cents: i64,
    },
    /// `quantity` units for `totalCents` (e.g. 3 for $5); applies per complete group.
    MultiBuy {
        /// Units in a group.
        quantity: u32,
        /// What a group costs, in cents.
        #[serde(rename = "totalCents")]
        total_cents: i64,
    },
}

/// A promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Promotion {
    /// Its id (unique).
    pub id: String,
    /// A name shoppers see.
    pub name: String,
    /// What it takes off.
    pub discount: Discount,
    /// Products it covers.
    #[serde(default)]
    pub skus: Vec<String>,
    /// Categories it covers.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Only on these channels (a declared channel promotion); empty: every channel.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Higher goes first.
    #[serde(default)]
    pub priority: i32,
    /// Whether it combines with other stackable promotions.
    #[serde(default)]
    pub stackable: bool,
    /// From when.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<i64>,
    /// Until when (exclusive).
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<i64>,
}

impl Promotion {
    /// Checks the promotion; the error names the field under `at` (e.g. `promotions[2]`).
    pub fn check(&self, at: &str) -> Result<(), FieldError> {
        let bad = |field: &str, why: &str| Err(FieldError::invalid(format!("{at}.{field}"), why));
        if self.id.trim().is_empty() {
            return bad("id", "give the promotion an id");
        }
        if self.name.trim().is_empty() {
            return bad("name", "give the promotion a name shoppers see");
        }
        if self.skus.is_empty() && self.categories.is_empty() {
            return bad("skus", "give the skus or categories it covers");
        }
        match self.discount {
            Discount::Percentage { percent } if !(percent > 0.0 && percent <= 100.0) => {
                return bad("discount.percent", "a percentage above 0, at most 100")
            }
            Discount::Amount { cents } if cents <= 0 => return bad("discount.cents", "cents off, above 0"),
            Discount::MultiBuy { quantity, total_cents } if !(2..=100).contains(&quantity) || total_cents <= 0 => {
                return bad("discount.quantity", "2 to 100 units for a total above 0 cents")
            }
            _ => {}
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at) {
            if e <= s {
                return bad("endsAt", "must be after startsAt");
            }
        }
        Ok(())
    }

    fn applies(&self, sku: &str, category: Option<&str>, channel: &str, now: i64) -> bool {
        (self.skus.iter().any(|s| s == sku) || category.is_some_and(|c| self.categories.iter().any(|x| x == c)))
            && (self.channels.is_empty() || self.channels.iter().any(|c| c == channel))
            && self.starts_at.is_none_or(|s| now >= s)
            && self.ends_at.is_none_or(|e| now < e)
    }

    /// Cents saved on `quantity` units at `unit` cents each.
    fn saving(&self, unit: i64, quantity: u32) -> i64 {
        let q = i64::from(quantity);
        let s = match self.discount {
            Discount::Percentage { percent } => (unit as f64 * percent / 100.0).round() as i64 * q,
            Discount::Amount { cents } => cents.min(unit) * q,
            Discount::MultiBuy { quantity: n, total_cents } => {
                let groups = q / i64::from(n);
                (groups * (unit * i64::from(n) - total_cents)).max(0)
            }
        };
        s.clamp(0, unit * q)
    }
}

/// A promotion applied to a quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The promotion's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Cents it saves on the quantity asked.
    pub saved_cents: i64,
    /// Whether it applies only on this channel.
    pub channel_only: bool,
}

/// The price of `quantity` units after promotions: (price per unit in cents, applied
/// promotions). The best promotion by priority (then by saving) applies; others join it only
/// when it and they are all stackable. The total never goes below zero.
pub fn apply_promotions(
    list_cents: i64,
    sku: &str,
    category: Option<&str>,
    channel: &str,
    quantity: u32,
    promotions: &[Promotion],
    now: i64,
) -> (i64, Vec<Applied>) {
    let quantity = quantity.max(1);
    let mut candidates: Vec<(&Promotion, i64)> = promotions
        .iter()
        .filter(|p| p.applies(sku, category, channel, now))
        .map(|p| (p, p.saving(list_cents, quantity)))
        .filter(|(_, s)| *s > 0)
        .collect();
    candidates.sort_by(|a, b| b.0.priority.cmp(&a.0.priority).then(b.1.cmp(&a.1)).then(a.0.id.cmp(&b.0.id)));
    let mut applied: Vec<Applied> = Vec::new();
    let mut total = list_cents * i64::from(quantity);
    for (i, (p, _)) in candidates.iter().enumerate() {
        if i > 0 && !(p.stackable && candidates[0].0.stackable) {
            continue;
        }
        // Each stacked promotion works on what is left, per unit.
        let unit_now = total / i64::from(quantity);
        let saved = p.saving(unit_now, quantity).min(total);
        if saved == 0 {
            continue;
        }
        total -= saved;
        applied.push(Applied {
            id: p.id.clone(),
            name: p.name.clone(),
            saved_cents: saved,
            channel_only: !p.channels.is_empty(),
        });
    }
    ((total as f64 / f64::from(quantity)).round() as i64, applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promo(id: &str, discount: Discount, priority: i32, stackable: bool, channels: &[&str]) -> Promotion {
        Promotion {
            id: id.into(),
            name: id.into(),
            discount,
            skus: vec!["A".into()],
            categories: vec![],
            channels: channels.iter().map(|c| c.to_string()).collect(),
            priority,
            stackable,
            starts_at: None,
            ends_at: None,
        }
    }

    #[test]
    fn priority_then_stacking_decide_what_applies() {
        let promos = [
            promo("ten", Discount::Percentage { percent: 10.0 }, 1, true, &[]),
            promo("fifty-off", Discount::Amount { cents: 50 }, 2, true, &[]),
            promo("web", Discount::Percentage { percent: 20.0 }, 0, false, &["web"]),
        ];
        let (unit, applied) = apply_promotions(1000, "A", None, "store", 1, &promos, 0);
        assert_eq!((unit, applied.len()), (855, 2), "50 off, then 10% of 950");
        let (unit, applied) = apply_promotions(1000, "A", None, "web", 1, &promos, 0);
        assert_eq!((unit, applied.len()), (855, 2), "the web promotion does not stack");
        let solo = [promo("web", Discount::Percentage { percent: 20.0 }, 0, false, &["web"])];
        assert_eq!(apply_promotions(1000, "A", None, "web", 1, &solo, 0).0, 800);
        assert_eq!(apply_promotions(1000, "A", None, "app", 1, &solo, 0).0, 1000);
    }

    #[test]
    fn multi_buy_applies_per_complete_group() {
        let promos = [promo("3for5", Discount::MultiBuy { quantity: 3, total_cents: 500 }, 0, false, &[])];
        assert_eq!(apply_promotions(200, "A", None, "web", 2, &promos, 0).0, 200);
        let (unit, applied) = apply_promotions(200, "A", None, "web", 4, &promos, 0);
        assert_eq!((unit, applied[0].saved_cents), (175, 100), "3 for 5.00 and one at 2.00");
    }
}
