//! Content-based similarity from product attributes and text, so items nobody bought yet (and
//! visitors nobody knows yet) still get sensible neighbours.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What the catalog says about an item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemAttributes {
    /// Display title.
    pub title: String,
    /// Department.
    pub department: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Sub-category or product type.
    pub subcategory: Option<String>,
    /// Brand.
    pub brand: Option<String>,
}

impl ItemAttributes {
    /// Weighted tokens: structured fields count more than loose title words.
    fn tokens(&self) -> Vec<(String, f32)> {
        let mut t = Vec::new();
        let mut field = |prefix: &str, v: &Option<String>, w: f32| {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                t.push((format!("{prefix}:{}", v.to_lowercase()), w));
            }
        };
        field("sub", &self.subcategory, 3.0);
        field("cat", &self.category, 2.0);
        field("brand", &self.brand, 1.0);
        field("dept", &self.department, 0.5);
        for w in words(&self.title) {
            t.push((w, 1.0));
        }
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t.dedup_by(|a, b| a.0 == b.0);
        t
    }
}

/// Lower-case words of three letters or more.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(str::to_lowercase)
}

/// Tokens shared by more items than this are too common to make neighbours (e.g. a department).
const MAX_POSTING: usize = 3000;

/// Per item: its content neighbours and the groups used for diversity and filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Content {
    /// The most similar items by attribute and text cosine, best first.
    pub neighbours: Vec<Vec<(u32, f32)>>,
    /// Category of each item (an index into `categories`; `u32::MAX` when unknown).
    pub category: Vec<u32>,
    /// Category names.
    pub categories: Vec<String>,
    /// Brand of each item (an index into `brands`; `u32::MAX` when unknown).
    pub brand: Vec<u32>,
    /// Brand names.
    pub brands: Vec<String>,
    /// Lower-case searchable text per item (title and categories), for context keywords.
    pub text: Vec<String>,
    /// Lower-case classification per item (department, category, sub-category; no title), to
    /// tell what is not merchandise (see [`crate::nonmerch`]).
    pub kind: Vec<String>,
}

/// Value → dense index, growing as new values appear.
fn intern(map: &mut HashMap<String, u32>, names: &mut Vec<String>, v: Option<&str>) -> u32 {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return u32::MAX };
    *map.entry(v.to_string()).or_insert_with(|| {
        names.push(v.to_string());
        names.len() as u32 - 1
    })
}

impl Content {
    /// Builds neighbours (`k` per item) for `attributes[i]` of item `i`; items without
    /// attributes get none.
    pub fn build(attributes: &[Option<ItemAttributes>], k: usize) -> Content {
        let n = attributes.len();
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut docs: Vec<Vec<(u32, f32)>> = Vec::with_capacity(n);
        for a in attributes {
            let doc = a.as_ref().map(|a| a.tokens()).unwrap_or_default();
            docs.push(
                doc.into_iter()
                    .map(|(t, w)| {
                        let next = vocab.len() as u32;
                        (*vocab.entry(t).or_insert(next), w)
                    })
                    .collect(),
            );
        }
        let mut postings: Vec<Vec<u32>> = vec![Vec::new(); vocab.len()];
        for (i, d) in docs.iter().enumerate() {
            for (t, _) in d {
                postings[*t as usize].push(i as u32);
            }
        }
        // TF-IDF with field weights, L2-normalized.
        let idf: Vec<f32> = postings.iter().map(|p| ((n as f32 + 1.0) / (p.len() as f32 + 1.0)).ln() + 1.0).collect();
        for d in docs.iter_mut() {
            d.iter_mut().for_each(|(t, w)| *w *= idf[*t as usize]);
            let norm = d.iter().map(|(_, w)| w * w).sum::<f32>().sqrt().max(1e-9);
            d.iter_mut().for_each(|(_, w)| *w /= norm);
        }
        let weight_of = |doc: &[(u32, f32)], t: u32| doc.iter().find(|x| x.0 == t).map_or(0.0, |x| x.1);
        let neighbours = (0..n)
            .into_par_iter()
            .map_init(
                || vec![0f32; n],
                |acc, i| {
                    let mut touched = Vec::new();
                    for &(t, w) in &docs[i] {
                        let p = &postings[t as usize];
                        if p.len() > MAX_POSTING {
                            continue;
                        }
                        for &j in p {
                            if j as usize == i {
                                continue;
                            }
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += w * weight_of(&docs[j as usize], t);
                        }
                    }
                    let mut c: Vec<(u32, f32)> = touched.iter().map(|&j| (j, acc[j as usize])).collect();
                    touched.iter().for_each(|&j| acc[j as usize] = 0.0);
                    c.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    c.truncate(k);
                    // Kept for the model's life: drop the room the candidates needed.
                    c.shrink_to_fit();
                    c
                },
            )
            .collect();
        let (mut cat_map, mut categories) = (HashMap::new(), Vec::new());
        let (mut brand_map, mut brands) = (HashMap::new(), Vec::new());
        let mut category = Vec::with_capacity(n);
        let mut brand = Vec::with_capacity(n);
        let mut text = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        for a in attributes {
            let a = a.clone().unwrap_or_default();
            let cat = a.category.as_deref().or(a.subcategory.as_deref());
            category.push(intern(&mut cat_map, &mut categories, cat));
            brand.push(intern(&mut brand_map, &mut brands, a.brand.as_deref()));
            let t = [Some(a.title.as_str()), a.category.as_deref(), a.subcategory.as_deref(), a.department.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            text.push(t);
            let k = [a.department.as_deref(), a.category.as_deref(), a.subcategory.as_deref()];
            kind.push(k.into_iter().flatten().collect::<Vec<_>>().join(" | ").to_lowercase());
        }
        Content { neighbours, category, categories, brand, brands, text, kind }
    }

    /// The category name of an item, if known.
    pub fn category_of(&self, item: u32) -> Option<&str> {
        self.category.get(item as usize).and_then(|&c| self.categories.get(c as usize)).map(String::as_str)
    }

    /// The brand name of an item, if known.
    pub fn brand_of(&self, item: u32) -> Option<&str> {
        self.brand.get(item as usize).and_then(|&c| self.brands.get(c as usize)).map(String::as_str)
    }

    /// Whether content was built (items have attributes).
    pub fn is_empty(&self) -> bool {
        self.neighbours.iter().all(Vec::is_empty)
    }
}
