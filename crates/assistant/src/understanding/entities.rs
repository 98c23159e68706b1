//! Entity extraction: a gazetteer of the values marked in the training file (plus any the caller
//! adds, e.g. catalog brands), matched on folded words with one typo allowed in longer words, and
//! numbers assigned to the numeric entity whose cue word precedes them ("store 436", "order 1234").

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::data::Example;

/// An entity found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    /// Entity type, e.g. `product`.
    pub entity: String,
    /// The text as the shopper wrote it.
    pub value: String,
    /// The gazetteer value it matched (the canonical spelling), or the number itself.
    pub canonical: String,
    /// Start byte in the message.
    pub start: usize,
    /// End byte (exclusive) in the message.
    pub end: usize,
}

/// A word of a message: folded form and byte span in the original.
#[derive(Debug, Clone)]
struct Word {
    folded: String,
    start: usize,
    end: usize,
}

fn fold_char(c: char, out: &mut String) {
    for d in c.nfkd() {
        if d.is_alphanumeric() {
            out.extend(d.to_lowercase());
        }
    }
}

/// Splits on anything that is not a letter or digit, keeping byte offsets.
fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut cur: Option<Word> = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            let w = cur.get_or_insert_with(|| Word { folded: String::new(), start: i, end: i });
            fold_char(c, &mut w.folded);
            w.end = i + c.len_utf8();
        } else if c == '\'' || c == '’' {
            // an apostrophe joins ("kellogg's")
        } else if let Some(w) = cur.take() {
            if !w.folded.is_empty() {
                out.push(w);
            }
        }
    }
    if let Some(w) = cur.filter(|w| !w.folded.is_empty()) {
        out.push(w);
    }
    out
}

fn fold_phrase(text: &str) -> Vec<String> {
    words(text).into_iter().map(|w| w.folded).collect()
}

/// Damerau-free Levenshtein distance, stopping early above `max`.
fn within_edits(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut best = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            best = best.min(cur[j]);
        }
        if best > max {
            return false;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] <= max
}

/// Words shorter than this must match exactly; longer ones may carry one typo.
const FUZZY_MIN_CHARS: usize = 5;
/// Longest gazetteer phrase, in words.
const MAX_PHRASE_WORDS: usize = 6;

/// The fitted extractor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EntityExtractor {
    /// Folded phrase → (entity type, canonical value).
    phrases: HashMap<Vec<String>, (String, String)>,
    /// Numeric entity types → the folded cue words seen right before their values, with counts.
    numeric: BTreeMap<String, HashMap<String, usize>>,
    /// Folded first words of phrases, for the fuzzy pass.
    by_len: BTreeMap<usize, Vec<Vec<String>>>,
}

impl EntityExtractor {
    /// Learns the gazetteer and the numeric cues from the marked training examples.
    pub fn fit(examples: &[Example]) -> Self {
        let mut x = Self::default();
        for ex in examples {
            for m in &ex.entities {
                let Some(value) = ex.text.get(m.start..m.end) else { continue };
                let digits: String = value.chars().filter(char::is_ascii_digit).collect();
                let is_numeric =
                    !digits.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '#' || c == ' ');
                if is_numeric {
                    let cue = words(&ex.text[..m.start]).pop().map(|w| w.folded).unwrap_or_default();
                    *x.numeric.entry(m.entity.clone()).or_default().entry(cue).or_insert(0) += 1;
                } else {
                    x.add(&m.entity, value);
                }
            }
        }
        x
    }

    /// Adds a value to the gazetteer (e.g. a brand or product name from the catalog).
    pub fn add(&mut self, entity: &str, value: &str) {
        let folded = fold_phrase(value);
        if folded.is_empty() || folded.len() > MAX_PHRASE_WORDS {
            return;
        }
        if !self.phrases.contains_key(&folded) {
            self.by_len.entry(folded.len()).or_default().push(folded.clone());
        }
        self.phrases.insert(folded, (entity.to_string(), value.trim().to_string()));
    }

    /// The entities in a message, left to right, longest match first, never overlapping.
    pub fn extract(&self, text: &str) -> Vec<Entity> {
        let ws = words(text);
        let mut out = Vec::new();
        let mut i = 0;
        while i < ws.len() {
            if let Some((n, ty, canon)) = self.match_at(&ws, i) {
                let (start, end) = (ws[i].start, ws[i + n - 1].end);
                out.push(Entity { entity: ty, value: text[start..end].to_string(), canonical: canon, start, end });
                i += n;
                continue;
            }
            let w = &ws[i];
            if w.folded.chars().all(|c| c.is_ascii_digit()) && !self.numeric.is_empty() {
                let cue = i.checked_sub(1).map(|p| ws[p].folded.as_str()).unwrap_or("");
                if let Some(ty) = self.numeric_type(cue) {
                    out.push(Entity {
                        entity: ty,
                        value: text[w.start..w.end].to_string(),
                        canonical: w.folded.clone(),
                        start: w.start,
                        end: w.end,
                    });
                }
            }
            i += 1;
        }
        out
    }

    /// Longest gazetteer phrase starting at word `i`: exact first, then with one typo per long word.
    fn match_at(&self, ws: &[Word], i: usize) -> Option<(usize, String, String)> {
        let max = MAX_PHRASE_WORDS.min(ws.len() - i);
        for n in (1..=max).rev() {
            let key: Vec<String> = ws[i..i + n].iter().map(|w| w.folded.clone()).collect();
            if let Some((ty, canon)) = self.phrases.get(&key) {
                return Some((n, ty.clone(), canon.clone()));
            }
            for cand in self.by_len.get(&n).into_iter().flatten() {
                let close = cand
                    .iter()
                    .zip(&key)
                    .all(|(c, k)| c == k || (c.chars().count() >= FUZZY_MIN_CHARS && within_edits(c, k, 1)));
                if close {
                    if let Some((ty, canon)) = self.phrases.get(cand) {
                        return Some((n, ty.clone(), canon.clone()));
                    }
                }
            }
        }
        None
    }

    /// The numeric entity a number belongs to: the one whose cue word precedes it; without a known
    /// cue, the only numeric entity if there is just one.
    fn numeric_type(&self, cue: &str) -> Option<String> {
        let by_cue = self
            .numeric
            .iter()
            .filter_map(|(ty, cues)| cues.get(cue).map(|n| (*n, ty)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, ty)| ty.clone());
        by_cue.or_else(|| (self.numeric.len() == 1).then(|| self.numeric.keys().next().cloned()).flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::understanding::data::parse_markup;

    fn ex(src: &str) -> Example {
        let (text, entities) = parse_markup(src);
        Example { text, intent: "x".into(), entities }
    }

    #[test]
    fn gazetteer_and_numbers_with_cues() {
        let x = EntityExtractor::fit(&[
            ex("do you have [oat milk](product) at store [436](store)"),
            ex("where is order [12345](order)"),
            ex("any [bananas](product)?"),
        ]);
        let got = x.extract("Do you have OAT MILK in store 381 or order 99?");
        let kinds: Vec<(&str, &str)> = got.iter().map(|e| (e.entity.as_str(), e.value.as_str())).collect();
        assert_eq!(kinds, vec![("product", "OAT MILK"), ("store", "381"), ("order", "99")]);
        let typo = x.extract("got banannas");
        assert_eq!(typo[0].canonical, "bananas");
    }
}
