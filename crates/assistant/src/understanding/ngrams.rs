//! Word (1–2) and character (2–5, within word boundaries) n-gram features weighted by TF-IDF, the
//! part of understanding that needs no model weights. Character grams are what make a typo
//! ("avalable") land near the word it misspells; casing and accents are folded away first.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// A sparse feature vector: (feature index, value), indices ascending, L2-normalised.
pub type Sparse = Vec<(u32, f32)>;

/// Lowercases, strips accents and keeps letters and digits; everything else separates words.
pub fn normalize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in text.nfkd() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if is_mark(c) {
            // an accent after NFKD: dropped
        } else if c == '\'' || c == '’' {
            // "don't" → "dont": apostrophes join
        } else if !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Longest word that yields character grams (longer tokens are ids or noise; they keep their word gram).
const MAX_GRAM_WORD: usize = 40;

/// Calls `f` with every raw n-gram of a normalised message, tagged by kind so that a word and a
/// character gram never collide.
fn for_each_gram(words: &[String], mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    for (i, w) in words.iter().enumerate() {
        buf.clear();
        buf.push_str("w:");
        buf.push_str(w);
        f(&buf);
        if let Some(next) = words.get(i + 1) {
            buf.clear();
            buf.push_str("b:");
            buf.push_str(w);
            buf.push(' ');
            buf.push_str(next);
            f(&buf);
        }
        let chars: Vec<char> = std::iter::once(' ').chain(w.chars()).chain(std::iter::once(' ')).collect();
        if chars.len() > MAX_GRAM_WORD + 2 {
            continue;
        }
        for n in 2..=5 {
            for win in chars.windows(n) {
                buf.clear();
                buf.push_str("c:");
                buf.extend(win);
                f(&buf);
            }
        }
    }
}

/// The n-gram vocabulary with its inverse document frequencies, fitted on the training messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NgramVectorizer {
    index: HashMap<String, u32>,
    idf: Vec<f32>,
}

impl NgramVectorizer {
    /// Fits the vocabulary: grams seen in at least `min_df` messages, idf = ln((1+n)/(1+df)) + 1.
    pub fn fit<'a>(texts: impl IntoIterator<Item = &'a str>, min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        let mut n = 0usize;
        let mut seen = std::collections::HashSet::new();
        for t in texts {
            n += 1;
            seen.clear();
            for_each_gram(&normalize(t), |g| {
                if !seen.contains(g) {
                    seen.insert(g.to_string());
                }
            });
            for g in seen.drain() {
                *df.entry(g).or_insert(0) += 1;
            }
        }
        let mut grams: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= min_df.max(1)).collect();
        grams.sort_unstable();
        let mut index = HashMap::with_capacity(grams.len());
        let mut idf = Vec::with_capacity(grams.len());
        for (i, (g, d)) in grams.into_iter().enumerate() {
            index.insert(g, u32::try_from(i).unwrap_or(u32::MAX));
            idf.push((((1 + n) as f64 / (1 + d) as f64).ln() + 1.0) as f32);
        }
        Self { index, idf }
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.idf.len()
    }

    /// True when nothing was fitted.
    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// The TF-IDF vector of a message (sublinear tf; the word and character parts are each
    /// L2-normalised and weighted 1/√2 so that the whole has unit length).
    pub fn transform(&self, text: &str) -> Sparse {
        let mut counts: HashMap<u32, (f32, bool)> = HashMap::new();
        for_each_gram(&normalize(text), |g| {
            if let Some(&i) = self.index.get(g) {
                let e = counts.entry(i).or_insert((0.0, g.starts_with("c:")));
                e.0 += 1.0;
            }
        });
        let mut v: Vec<(u32, f32, bool)> =
            counts.into_iter().map(|(i, (c, is_char))| (i, (1.0 + c.ln()) * self.idf[i as usize], is_char)).collect();
        v.sort_unstable_by_key(|x| x.0);
        let norm = |is_char: bool| v.iter().filter(|x| x.2 == is_char).map(|x| x.1 * x.1).sum::<f32>().sqrt();
        let (nw, nc) = (norm(false), norm(true));
        let half = std::f32::consts::FRAC_1_SQRT_2;
        v.into_iter()
            .map(|(i, x, is_char)| {
                let n = if is_char { nc } else { nw };
                (i, if n > 0.0 { x / n * half } else { 0.0 })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_case_accents_and_punctuation() {
        assert_eq!(
            normalize("Do you have CRÈME fraîche? It's #436!"),
            vec!["do", "you", "have", "creme", "fraiche", "its", "436"]
        );
    }

    #[test]
    fn a_typo_shares_most_character_grams_with_the_word() {
        let v = NgramVectorizer::fit(["is it available", "where is my order"], 1);
        let a = v.transform("available");
        let typo = v.transform("avalable");
        let dot: f32 = a.iter().filter_map(|(i, x)| typo.iter().find(|(j, _)| j == i).map(|(_, y)| x * y)).sum();
        assert!(dot > 0.3, "cosine {dot}");
        let n: f32 = a.iter().map(|x| x.1 * x.1).sum();
        assert!((n - 1.0).abs() < 1e-4);
    }
}
