//! Answering a query: the words (with synonyms and typo tolerance) matched by BM25 over the
//! product fields, filters, a personal and stock-aware re-ranking of the candidates, facets
//! over them, and the reasons of each result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, DisjunctionMaxQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Score, Term};

use crate::index::{key, ProductDoc, SearchIndex};
use crate::personal::{Affinity, Weights};
use crate::text::{analyze, Synonyms};
use crate::SearchError;

/// The longest query read, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Words of a query used at most.
pub const MAX_QUERY_WORDS: usize = 16;
/// Results asked for at most.
pub const MAX_LIMIT: usize = 100;
/// Text matches re-ranked (and counted in facets) at most.
pub const CANDIDATES: usize = 1000;
/// Facet values listed per facet at most.
pub const FACET_VALUES: usize = 20;

/// Narrows the results to products with these facet values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Only this brand (any casing).
    pub brand: Option<String>,
    /// Only this department, category or sub-category (any casing).
    pub category: Option<String>,
    /// Only at or above this price (minor units).
    pub min_price_cents: Option<i64>,
    /// Only at or below this price (minor units).
    pub max_price_cents: Option<i64>,
    /// Only what can be bought where the shopper is.
    pub in_stock: bool,
}

/// A search.
pub struct SearchQuery<'a> {
    /// What the shopper typed.
    pub text: &'a str,
    /// Results wanted, 1–[`MAX_LIMIT`].
    pub limit: usize,
    /// Facet filters.
    pub filters: Filters,
    /// The customer's tastes, only when they granted the personalization consent.
    pub affinity: Option<&'a Affinity>,
    /// Everyone's interest in each product, in [0, 1] (non-personal), if known.
    pub popularity: Option<&'a HashMap<String, f32>>,
    /// Hits of an embedding search (product id, similarity in [0, 1]) to fuse with the words'.
    pub semantic: &'a [(String, f32)],
    /// Whether a product can be bought where the shopper is (the store's stock).
    pub available: &'a dyn Fn(&ProductDoc) -> bool,
    /// How the signals weigh.
    pub weights: Weights,
}

/// Why a product is in the results, for the shopper or an associate to read.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// Stable code: `matched`, `typo`, `synonym`, `semantic`, `bought_before`, `preferred_brand`,
    /// `preferred_category`, `popular`, `out_of_stock`.
    pub code: &'static str,
    /// A sentence to show.
    pub text: String,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// Product id.
    pub product_id: String,
    /// Display title.
    pub title: String,
    /// Brand.
    pub brand: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Sub-category.
    pub subcategory: Option<String>,
    /// Package size.
    pub size: Option<String>,
    /// Catalog price as a decimal string, if known.
    pub price: Option<String>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Whether it can be bought where the shopper is.
    pub available: bool,
    /// The ranking score (higher first; comparable within one answer only).
    pub score: f32,
    /// Why it is here.
    pub reasons: Vec<Reason>,
}

/// A facet value and how many candidates hold it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacetValue {
    /// The value (a brand, a category, a size, a price band like `2.00-5.00`).
    pub value: String,
    /// Matching products with it.
    pub count: u64,
}

/// Counts of the matching products by facet (over the candidates re-ranked, at most
/// [`CANDIDATES`]), to narrow a search with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    /// By brand.
    pub brand: Vec<FacetValue>,
    /// By department.
    pub department: Vec<FacetValue>,
    /// By category.
    pub category: Vec<FacetValue>,
    /// By sub-category.
    pub subcategory: Vec<FacetValue>,
    /// By package size.
    pub size: Vec<FacetValue>,
    /// By price band (in the currency's major unit; the last band is open).
    pub price: Vec<FacetValue>,
    /// `in_stock` and `out_of_stock` where the shopper is.
    pub availability: Vec<FacetValue>,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Products matching the words and filters (before the limit).
    pub total: u64,
    /// The best `limit`, best first.
    pub hits: Vec<Hit>,
    /// Facet counts over the candidates.
    pub facets: Facets,
    /// Whether the customer's tastes changed the order.
    pub personalized: bool,
}

/// How one candidate scored, before it becomes a [`Hit`].
struct Candidate {
    product: Arc<ProductDoc>,
    text: f32,
    semantic: f32,
    score: f32,
    available: bool,
}

/// The query words, each with its alternatives.
struct Words {
    words: Vec<String>,
}

impl SearchIndex {
    /// Answers `q`; an empty query (no word) matches nothing.
    pub fn search(&self, q: &SearchQuery<'_>, synonyms: &Synonyms) -> Result<Results, SearchError> {
        if q.text.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::Invalid { field: "q", reason: format!("at most {MAX_QUERY_CHARS} characters") });
        }
        if !(1..=MAX_LIMIT).contains(&q.limit) {
            return Err(SearchError::Invalid { field: "limit", reason: format!("between 1 and {MAX_LIMIT}") });
        }
        let words = Words { words: analyze(q.text).into_iter().take(MAX_QUERY_WORDS).collect() };
        let empty = Results { total: 0, hits: vec![], facets: Facets::default(), personalized: false };
        if words.words.is_empty() && q.semantic.is_empty() {
            return Ok(empty);
        }
        let searcher = self.searcher();
        let filters = self.filter_clauses(&q.filters);
        let mut total: usize = 0;
        let mut scored: Vec<(Score, DocAddress)> = Vec::new();
        if !words.words.is_empty() {
            let n = words.words.len();
            // Every word of a short query must match; a long one may miss a third of its words.
            // With no match at all, any word will do.
            for at_least in [if n <= 2 { n } else { n - n / 3 }, 1] {
                let query = self.words_query(&words, synonyms, at_least, &filters);
                (scored, total) = searcher.search(&query, &(TopDocs::with_limit(CANDIDATES), Count))?;
                if total > 0 || at_least == 1 {
                    break;
                }
            }
        }
        let catalog = self.catalog();
        let mut seen: HashSet<DocAddress> = scored.iter().map(|(_, a)| *a).collect();
        // The customer's own products that match are candidates even beyond the best
        // CANDIDATES by text (a broad word matches thousands).
        if let Some(a) = q.affinity.filter(|a| !a.is_empty() && total > CANDIDATES) {
            let ids: Vec<Term> =
                a.top_items(CANDIDATES).into_iter().map(|id| Term::from_field_text(self.fields.id, id)).collect();
            let n = words.words.len();
            let mut clauses = filters.iter().map(|c| (Occur::Must, c.box_clone())).collect::<Vec<_>>();
            let at_least = if n <= 2 { n } else { n - n / 3 };
            clauses.push((Occur::Must, Box::new(self.words_query(&words, synonyms, at_least, &[]))));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(ids))));
            let mine: Vec<(Score, DocAddress)> =
                searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(CANDIDATES))?;
            scored.extend(mine.into_iter().filter(|(_, a)| seen.insert(*a)));
        }
        let top = scored.iter().map(|(s, _)| *s).fold(0.0_f32, f32::max);
        let mut candidates: Vec<Candidate> = Vec::with_capacity(scored.len() + q.semantic.len());
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut keys = HashMap::new();
        for (score, addr) in scored {
            let column = match keys.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(searcher.segment_reader(addr.segment_ord).fast_fields().u64("key")?)
                }
            };
            let Some(product) = column.first(addr.doc_id).and_then(|k| catalog.by_key.get(&k)).cloned() else {
                continue;
            };
            by_id.insert(product.id.clone(), candidates.len());
            candidates.push(Candidate {
                product,
                text: if top > 0.0 { score / top } else { 0.0 },
                semantic: 0.0,
                score: 0.0,
                available: true,
            });
        }
        for (id, sim) in q.semantic {
            let sim = if sim.is_finite() { sim.clamp(0.0, 1.0) } else { 0.0 };
            match by_id.get(id) {
                Some(&i) => candidates[i].semantic = sim,
                None => {
                    let Some(product) = catalog.by_id.get(id).map(|(_, p)| p).filter(|p| q.filters.admits(p)).cloned()
                    else {
                        continue;
                    };
                    by_id.insert(id.clone(), candidates.len());
                    candidates.push(Candidate { product, text: 0.0, semantic: sim, score: 0.0, available: true });
                    total += 1;
                }
            }
        }
        for c in &mut candidates {
            c.available = c.product.available && (q.available)(&c.product);
        }
        if q.filters.in_stock {
            let before = candidates.len();
            candidates.retain(|c| c.available);
            total = total.saturating_sub(before - candidates.len());
        }
        let w = &q.weights;
        let personal = q.affinity.filter(|a| !a.is_empty());
        let mut personalized = false;
        for c in &mut candidates {
            let mut s = c.text + w.semantic * c.semantic;
            if let Some(a) = personal {
                let [bought, brand, sub, cat] = a.lifts(&c.product);
                let lift = w.bought * bought + w.brand * brand + w.subcategory * sub + w.category * cat;
                personalized |= lift > 0.0;
                s += lift;
            }
            if let Some(pop) = q.popularity {
                s += w.popularity * pop.get(&c.product.id).copied().unwrap_or(0.0).clamp(0.0, 1.0);
            }
            if !c.available {
                s += w.unavailable;
            }
            c.score = s;
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.product.id.cmp(&b.product.id)));
        let facets = facets(&candidates);
        let hits = candidates.iter().take(q.limit).map(|c| hit(c, &words, synonyms, personal, q.popularity)).collect();
        Ok(Results { total: total as u64, hits, facets, personalized })
    }

    /// The query for the words: each word matches exactly (best field), through a synonym, or
    /// within a typo or two; at least `at_least` words must match, and every filter.
    fn words_query(
        &self,
        words: &Words,
        synonyms: &Synonyms,
        at_least: usize,
        filters: &[Box<dyn Query>],
    ) -> BooleanQuery {
        let mut per_word: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for w in &words.words {
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, self.exact(w))];
            for phrase in synonyms.of(w) {
                let all: Vec<Box<dyn Query>> = phrase.iter().map(|p| self.exact(p)).collect();
                alternatives
                    .push((Occur::Should, Box::new(BoostQuery::new(Box::new(BooleanQuery::intersection(all)), 0.9))));
            }
            if let Some(distance) = typo_distance(w) {
                let fuzzy = FuzzyTermQuery::new(Term::from_field_text(self.fields.all, w), distance, true);
                alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(fuzzy), 0.5))));
            }
            per_word.push((Occur::Should, Box::new(BooleanQuery::new(alternatives))));
        }
        let words = BooleanQuery::with_minimum_required_clauses(per_word, at_least.max(1));
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(words))];
        clauses.extend(filters.iter().map(|f| (Occur::Must, f.box_clone())));
        BooleanQuery::new(clauses)
    }

    /// A word in the field it fits best: the title and the finest category weigh most.
    fn exact(&self, word: &str) -> Box<dyn Query> {
        let f = &self.fields;
        let fields = [
            (f.title, 2.0),
            (f.subcategory, 1.5),
            (f.brand, 1.5),
            (f.category, 1.0),
            (f.department, 0.5),
            (f.size, 0.5),
        ];
        let disjuncts: Vec<Box<dyn Query>> = fields
            .into_iter()
            .map(|(field, boost)| {
                let term = TermQuery::new(Term::from_field_text(field, word), IndexRecordOption::WithFreqs);
                Box::new(BoostQuery::new(Box::new(term), boost)) as Box<dyn Query>
            })
            .collect();
        Box::new(DisjunctionMaxQuery::with_tie_breaker(disjuncts, 0.1))
    }

    fn filter_clauses(&self, f: &Filters) -> Vec<Box<dyn Query>> {
        let mut out: Vec<Box<dyn Query>> = Vec::new();
        let raw = |field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, &key(v)), IndexRecordOption::Basic))
        };
        if let Some(b) = &f.brand {
            out.push(raw(self.fields.brand_key, b));
        }
        if let Some(c) = &f.category {
            out.push(raw(self.fields.category_key, c));
        }
        if f.min_price_cents.is_some() || f.max_price_cents.is_some() {
            let bound = |v: Option<i64>| match v {
                Some(v) => Bound::Included(Term::from_field_i64(self.fields.price, v)),
                None => Bound::Unbounded,
            };
            // Products without a price are stored at -1: a price filter leaves them out.
            let low = bound(Some(f.min_price_cents.unwrap_or(0).max(0)));
            out.push(Box::new(RangeQuery::new(low, bound(f.max_price_cents))));
        }
        out
    }
}

impl Filters {
    /// Whether `p` passes the filters the index applies (brand, category, price).
    fn admits(&self, p: &ProductDoc) -> bool {
        let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| key(a) == key(b));
        self.brand.as_deref().is_none_or(|b| eq(&p.brand, b))
            && self
                .category
                .as_deref()
                .is_none_or(|c| eq(&p.department, c) || eq(&p.category, c) || eq(&p.subcategory, c))
            && self.min_price_cents.is_none_or(|m| p.price_cents.is_some_and(|c| c >= m))
            && self.max_price_cents.is_none_or(|m| p.price_cents.is_some_and(|c| c <= m))
    }
}

/// How many typos a word may carry: none in short words (too many other words are near them).
fn typo_distance(word: &str) -> Option<u8> {
    match word.chars().count() {
        0..=3 => None,
        4..=7 => Some(1),
        _ => Some(2),
    }
}

/// Edit distance with adjacent transpositions, stopping early past `max`.
fn within(a: &str, b: &str, max: usize) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()] <= max
}

fn hit(
    c: &Candidate,
    words: &Words,
    synonyms: &Synonyms,
    personal: Option<&Affinity>,
    popularity: Option<&HashMap<String, f32>>,
) -> Hit {
    let p = &c.product;
    let mut reasons = Vec::new();
    let fields: [(&str, Option<&String>); 5] = [
        ("title", Some(&p.title)),
        ("brand", p.brand.as_ref()),
        ("sub-category", p.subcategory.as_ref()),
        ("category", p.category.as_ref()),
        ("department", p.department.as_ref()),
    ];
    let analyzed: Vec<(&str, Vec<String>)> = fields.iter().filter_map(|(n, v)| v.map(|v| (*n, analyze(v)))).collect();
    let mut matched = Vec::new();
    for w in &words.words {
        if let Some((field, _)) = analyzed.iter().find(|(_, ws)| ws.contains(w)) {
            matched.push(format!("'{w}' in the {field}"));
        } else if let Some(phrase) =
            synonyms.of(w).iter().find(|ph| ph.iter().all(|x| analyzed.iter().any(|(_, ws)| ws.contains(x))))
        {
            reasons.push(Reason { code: "synonym", text: format!("'{w}' also means '{}'", phrase.join(" ")) });
        } else if let Some(d) = typo_distance(w) {
            if let Some(near) = analyzed.iter().flat_map(|(_, ws)| ws).find(|x| within(w, x, d as usize)) {
                reasons.push(Reason { code: "typo", text: format!("'{w}' read as '{near}'") });
            }
        }
    }
    if !matched.is_empty() {
        reasons.insert(0, Reason { code: "matched", text: format!("matches {}", matched.join(", ")) });
    }
    if c.semantic > 0.0 {
        reasons.push(Reason { code: "semantic", text: "close in meaning to the query".into() });
    }
    if let Some(a) = personal {
        let [bought, brand, sub, _] = a.lifts(p);
        if bought > 0.0 {
            let n = a.bought(&p.id) as u64;
            let times = if n == 1 { "once".to_string() } else { format!("{n} times") };
            reasons.push(Reason { code: "bought_before", text: format!("you bought it {times}") });
        }
        if brand >= 0.2 {
            if let Some(b) = &p.brand {
                reasons.push(Reason { code: "preferred_brand", text: format!("you often buy {b}") });
            }
        }
        if sub >= 0.5 && bought == 0.0 {
            if let Some(s) = &p.subcategory {
                reasons
                    .push(Reason { code: "preferred_category", text: format!("you often buy {}", s.to_lowercase()) });
            }
        }
    }
    if popularity.and_then(|m| m.get(&p.id)).is_some_and(|v| *v >= 0.5) {
        reasons.push(Reason { code: "popular", text: "popular with shoppers".into() });
    }
    if !c.available {
        reasons.push(Reason { code: "out_of_stock", text: "not available where you shop".into() });
    }
    Hit {
        product_id: p.id.clone(),
        title: p.title.clone(),
        brand: p.brand.clone(),
        department: p.department.clone(),
        category: p.category.clone(),
        subcategory: p.subcategory.clone(),
        size: p.size.clone(),
        price: p.price_cents.map(format_cents),
        currency: p.currency.clone(),
        available: c.available,
        score: if c.score.is_finite() { c.score } else { 0.0 },
        reasons,
    }
}

fn format_cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// Price bands (minor units, lower bound inclusive).
const PRICE_BANDS: [i64; 6] = [0, 100, 200, 500, 1000, 2000];

fn facets(candidates: &[Candidate]) -> Facets {
    let count = |get: &dyn Fn(&ProductDoc) -> Option<String>| -> Vec<FacetValue> {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for c in candidates {
            if let Some(v) = get(&c.product) {
                *m.entry(v).or_default() += 1;
            }
        }
        let mut v: Vec<FacetValue> = m.into_iter().map(|(value, count)| FacetValue { value, count }).collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(FACET_VALUES);
        v
    };
    let band = |p: &ProductDoc| {
        let c = p.price_cents.filter(|c| *c >= 0)?;
        let i = PRICE_BANDS.iter().rposition(|b| c >= *b)?;
        Some(match PRICE_BANDS.get(i + 1) {
            Some(hi) => format!("{}-{}", format_cents(PRICE_BANDS[i]), format_cents(*hi)),
            None => format!("{}+", format_cents(PRICE_BANDS[i])),
        })
    };
    let mut price = count(&band);
    price.sort_by_key(|f| PRICE_BANDS.iter().position(|b| f.value.starts_with(&format_cents(*b))));
    let in_stock = candidates.iter().filter(|c| c.available).count() as u64;
    let availability = [("in_stock", in_stock), ("out_of_stock", candidates.len() as u64 - in_stock)]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(v, count)| FacetValue { value: v.into(), count })
        .collect();
    Facets {
        brand: count(&|p| p.brand.clone()),
        department: count(&|p| p.department.clone()),
        category: count(&|p| p.category.clone()),
        subcategory: count(&|p| p.subcategory.clone()),
        size: count(&|p| p.size.clone()),
        price,
        availability,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_counted_with_transpositions() {
        assert!(within("avalable", "available", 1));
        assert!(within("mlik", "milk", 1));
        assert!(!within("milk", "silky", 1));
    }

    #[test]
    fn cents_read_as_decimals() {
        assert_eq!(format_cents(1999), "19.99");
        assert_eq!(format_cents(5), "0.05");
    }
}
