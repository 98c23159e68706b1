//! The merchandisers' rules as the retailer's team writes them (product, category and brand
//! names), checked when they are set, and turned into the model's [`Rules`] for one request.

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

use crate::model::Model;
use crate::recommend::{Boost, BoostTarget, Rules, Surface};

/// Merchandising rules, set by the retailer's team.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Merchandising {
    /// At most this many items of one category per list.
    pub max_per_category: Option<usize>,
    /// At most this many items of one brand per list.
    pub max_per_brand: Option<usize>,
    /// Score multipliers for items, categories or brands.
    #[serde(default)]
    pub boosts: Vec<BoostRule>,
    /// Products placed first on home, e-mail and associate lists, in order.
    #[serde(default)]
    pub pins: Vec<String>,
    /// Products never recommended.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// What is not merchandise (fuel, coupons, bags, deposits…), as parts of a product's
    /// department, category or sub-category, matched without regard to case; such products are
    /// never recommended. Absent: the defaults of [`crate::nonmerch::DEFAULT_PATTERNS`]; an
    /// empty list turns the filter off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_merchandise: Option<Vec<String>>,
}

/// One boost: exactly one of `productId`, `category`, `brand`, and a factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BoostRule {
    /// A product.
    pub product_id: Option<String>,
    /// A category (as in the catalog).
    pub category: Option<String>,
    /// A brand (as in the catalog).
    pub brand: Option<String>,
    /// Multiplier: above 1 lifts, between 0 and 1 buries.
    pub factor: f32,
}

/// What one request adds to the merchandisers' rules.
#[derive(Debug, Clone, Copy)]
pub struct Filters<'a> {
    /// Where the list is shown (pins apply on home, e-mail and associate lists only).
    pub surface: Surface,
    /// Products the caller does not want shown.
    pub exclude: &'a [String],
    /// Only these categories, when not empty.
    pub categories: &'a [String],
}

impl Merchandising {
    /// Refuses rules that cannot be meant, naming the field: a boost with no target or two, a
    /// negative or infinite factor, a per-list maximum of 0.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (i, b) in self.boosts.iter().enumerate() {
            let targets = [&b.product_id, &b.category, &b.brand].iter().filter(|t| t.is_some()).count();
            if targets != 1 {
                return Err(FieldError::invalid(
                    format!("boosts[{i}]"),
                    "give exactly one of productId, category, brand",
                ));
            }
            if !(b.factor.is_finite() && b.factor >= 0.0) {
                return Err(FieldError::invalid(
                    format!("boosts[{i}].factor"),
                    "a factor is a number ≥ 0 (above 1 lifts, below 1 buries)",
                ));
            }
        }
        if let Some(patterns) = &self.non_merchandise {
            if patterns.len() > crate::nonmerch::MAX_PATTERNS {
                let most = crate::nonmerch::MAX_PATTERNS;
                return Err(FieldError::invalid("nonMerchandise", format!("at most {most} patterns")));
            }
            for (i, p) in patterns.iter().enumerate() {
                let chars = p.trim().chars().count();
                if chars == 0 || chars > crate::nonmerch::MAX_PATTERN_CHARS {
                    let most = crate::nonmerch::MAX_PATTERN_CHARS;
                    return Err(FieldError::invalid(format!("nonMerchandise[{i}]"), format!("1 to {most} characters")));
                }
            }
        }
        for (name, v) in [("maxPerCategory", self.max_per_category), ("maxPerBrand", self.max_per_brand)] {
            if v == Some(0) {
                return Err(FieldError::invalid(name, "at least 1, or leave it out"));
            }
        }
        Ok(())
    }

    /// These rules and the request's filters in the model's terms. Names the model does not
    /// know are left out (a product bought after training), except a category filter, which is
    /// refused so that the caller learns of the typo.
    pub fn rules<'a>(
        &self,
        model: &Model,
        filters: &Filters<'_>,
        available: &'a (dyn Fn(u32) -> bool + Sync),
    ) -> Result<Rules<'a>, FieldError> {
        let idx = |id: &str| model.item_index.get(id).copied();
        let category_idx = |name: &str| model.content.categories.iter().position(|c| c == name).map(|c| c as u32);
        let brand_idx = |name: &str| model.content.brands.iter().position(|c| c == name).map(|c| c as u32);
        let mut categories = None;
        if !filters.categories.is_empty() {
            let mut set = rustc_hash::FxHashSet::default();
            for c in filters.categories {
                set.insert(
                    category_idx(c)
                        .ok_or_else(|| FieldError::unknown("category", format!("no category named '{c}'")))?,
                );
            }
            categories = Some(set);
        }
        let boosts = self
            .boosts
            .iter()
            .filter_map(|b| {
                let target = match (&b.product_id, &b.category, &b.brand) {
                    (Some(p), _, _) => BoostTarget::Item(idx(p)?),
                    (_, Some(c), _) => BoostTarget::Category(category_idx(c)?),
                    (_, _, Some(b)) => BoostTarget::Brand(brand_idx(b)?),
                    _ => return None,
                };
                Some(Boost { target, factor: b.factor })
            })
            .collect();
        let pins = match filters.surface {
            Surface::Home | Surface::Email | Surface::Associate => self.pins.iter().filter_map(|p| idx(p)).collect(),
            Surface::Item | Surface::Cart => Vec::new(),
        };
        Ok(Rules {
            exclude: filters.exclude.iter().chain(&self.exclude).filter_map(|p| idx(p)).collect(),
            categories,
            max_per_category: self.max_per_category,
            max_per_brand: self.max_per_brand,
            boosts,
            pins,
            non_merchandise: crate::nonmerch::patterns(self.non_merchandise.as_deref()),
            available,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::small_model;

    fn boost(product: Option<&str>, category: Option<&str>, brand: Option<&str>, factor: f32) -> BoostRule {
        BoostRule {
            product_id: product.map(str::to_string),
            category: category.map(str::to_string),
            brand: brand.map(str::to_string),
            factor,
        }
    }

    #[test]
    fn rules_that_cannot_be_meant_are_refused_naming_the_field() {
        let field = |m: Merchandising| m.validate().err().map(|e| e.field);
        assert_eq!(field(Merchandising::default()), None);
        let two_targets = Merchandising { boosts: vec![boost(Some("a"), Some("b"), None, 2.0)], ..Default::default() };
        assert_eq!(field(two_targets), Some("boosts[0]".into()));
        let none = Merchandising {
            boosts: vec![boost(Some("a"), None, None, 1.0), boost(None, None, None, 1.0)],
            ..Default::default()
        };
        assert_eq!(field(none), Some("boosts[1]".into()));
        let negative = Merchandising { boosts: vec![boost(None, None, Some("x"), -1.0)], ..Default::default() };
        assert_eq!(field(negative), Some("boosts[0].factor".into()));
        let nan = Merchandising { boosts: vec![boost(None, None, Some("x"), f32::NAN)], ..Default::default() };
        assert_eq!(field(nan), Some("boosts[0].factor".into()));
        assert_eq!(field(Merchandising { max_per_brand: Some(0), ..Default::default() }), Some("maxPerBrand".into()));
        let blank = Merchandising { non_merchandise: Some(vec!["fuel".into(), " ".into()]), ..Default::default() };
        assert_eq!(field(blank), Some("nonMerchandise[1]".into()));
        let many = Merchandising { non_merchandise: Some(vec!["x".into(); 101]), ..Default::default() };
        assert_eq!(field(many), Some("nonMerchandise".into()));
        assert_eq!(
            field(Merchandising { max_per_category: Some(0), ..Default::default() }),
            Some("maxPerCategory".into())
        );
    }

    #[test]
    fn names_become_model_indexes_and_unknown_ones_are_left_out() {
        let model = small_model();
        let idx = |id: &str| model.item_index[id];
        let m = Merchandising {
            max_per_category: Some(2),
            max_per_brand: None,
            boosts: vec![
                boost(Some("milk"), None, None, 2.0),
                boost(Some("not-in-model"), None, None, 2.0),
                boost(None, Some("SOUP"), None, 0.5),
                boost(None, None, Some("Acme"), 1.5),
                boost(None, None, Some("Nobody"), 1.5),
            ],
            pins: vec!["jam".into(), "not-in-model".into()],
            exclude: vec!["bread".into()],
            non_merchandise: None,
        };
        let always = |_: u32| true;
        let filters = Filters { surface: Surface::Home, exclude: &["eggs".to_string()], categories: &[] };
        let rules = m.rules(&model, &filters, &always).expect("rules");
        let soup = model.content.categories.iter().position(|c| c == "SOUP").expect("soup") as u32;
        let acme = model.content.brands.iter().position(|b| b == "Acme").expect("acme") as u32;
        assert_eq!(
            rules.boosts,
            vec![
                Boost { target: BoostTarget::Item(idx("milk")), factor: 2.0 },
                Boost { target: BoostTarget::Category(soup), factor: 0.5 },
                Boost { target: BoostTarget::Brand(acme), factor: 1.5 },
            ]
        );
        assert_eq!(rules.pins, vec![idx("jam")]);
        assert_eq!(rules.exclude, [idx("eggs"), idx("bread")].into_iter().collect());
        assert_eq!((rules.max_per_category, rules.max_per_brand, rules.categories), (Some(2), None, None));
    }

    #[test]
    fn pins_apply_to_home_email_and_associate_lists_only() {
        let model = small_model();
        let m = Merchandising { pins: vec!["jam".into()], ..Default::default() };
        let always = |_: u32| true;
        for (surface, pinned) in [
            (Surface::Home, true),
            (Surface::Email, true),
            (Surface::Associate, true),
            (Surface::Item, false),
            (Surface::Cart, false),
        ] {
            let rules = m.rules(&model, &Filters { surface, exclude: &[], categories: &[] }, &always).expect("rules");
            assert_eq!(!rules.pins.is_empty(), pinned, "{surface:?}");
        }
    }

    #[test]
    fn a_category_filter_naming_an_unknown_category_is_refused() {
        let model = small_model();
        let always = |_: u32| true;
        let known = ["SOUP".to_string()];
        let filters = Filters { surface: Surface::Home, exclude: &[], categories: &known };
        let rules = Merchandising::default().rules(&model, &filters, &always).expect("rules");
        assert_eq!(rules.categories.map(|c| c.len()), Some(1));
        let typo = ["SOPU".to_string()];
        let filters = Filters { surface: Surface::Home, exclude: &[], categories: &typo };
        let err = Merchandising::default().rules(&model, &filters, &always).err().expect("refused");
        assert_eq!((err.code, err.field.as_str()), (tailor_core::ErrorCode::NotFound, "category"));
    }
}
