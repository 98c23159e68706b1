//! The retailer's knowledge base: markdown documents (returns, store hours, delivery, policies)
//! cut into sections at their headings. A question is answered by the best-matching section,
//! quoted with its source (`document#heading`), never paraphrased into new facts. Retrieval is
//! BM25 over folded, lightly stemmed words; a question matching nothing well gets no quote.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Longest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The knowledge base shipped for the demo and used until a retailer stores its own.
pub const SHIPPED: &str = include_str!("../data/knowledge.md");

/// One section of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    /// The document's name.
    pub document: String,
    /// The heading it sits under (the document's name for text before any heading).
    pub heading: String,
    /// The section's text as written, without its heading.
    pub text: String,
}

impl Section {
    /// Where a quote comes from: `document#heading`.
    pub fn source(&self) -> String {
        format!("{}#{}", self.document, slug(&self.heading))
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Cuts a markdown document into sections at headings (`#` to `######`); empty sections are
/// dropped.
pub fn sections(document: &str, markdown: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut heading = document.to_string();
    let mut text = String::new();
    let mut flush = |heading: &str, text: &mut String| {
        let t = text.trim();
        if !t.is_empty() {
            out.push(Section { document: document.to_string(), heading: heading.to_string(), text: t.to_string() });
        }
        text.clear();
    };
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            flush(&heading, &mut text);
            heading = trimmed[level..].trim().to_string();
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(&heading, &mut text);
    out
}

const STOP: &[&str] = &[
    "a", "an", "the", "is", "are", "do", "does", "i", "you", "your", "my", "me", "to", "of", "in", "on", "at", "for",
    "and", "or", "can", "what", "when", "how", "it", "be", "we", "our", "with", "if", "this", "that", "there", "will",
    "please", "tell", "about", "have", "has",
];

fn terms(text: &str) -> Vec<String> {
    crate::dialogue::lexicon::words(text)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// A light stem: plural and common verb endings off, so "returns" finds "return", "opening"
/// finds "open".
fn stem(w: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if w.len() > suffix.len() + 3 {
            if let Some(s) = w.strip_suffix(suffix) {
                return s.to_string();
            }
        }
    }
    w.to_string()
}

/// A searchable knowledge base.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    sections: Vec<Section>,
    docs: Vec<HashMap<String, f32>>,
    lengths: Vec<f32>,
    df: HashMap<String, f32>,
}

/// A quoted answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// The section quoted.
    pub section: Section,
    /// Its BM25 score (higher is better; comparable within one base only).
    pub score: f32,
}

impl KnowledgeBase {
    /// Indexes documents given as (name, markdown).
    pub fn new<'a>(documents: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut kb = KnowledgeBase::default();
        for (name, md) in documents {
            for s in sections(name, md) {
                // the heading counts twice: it says what the section is about
                let t = terms(&format!("{h} {h} {}", s.text, h = s.heading));
                let mut tf: HashMap<String, f32> = HashMap::new();
                for w in &t {
                    *tf.entry(w.clone()).or_default() += 1.0;
                }
                for w in tf.keys() {
                    *kb.df.entry(w.clone()).or_default() += 1.0;
                }
                kb.lengths.push(t.len() as f32);
                kb.docs.push(tf);
                kb.sections.push(s);
            }
        }
        kb
    }

    /// The shipped knowledge base.
    pub fn shipped() -> Self {
        Self::new([("policies.md", SHIPPED)])
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    /// True when it holds no section.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// The best section for a question, when one shares enough with it.
    pub fn answer(&self, question: &str) -> Option<Quote> {
        let q = terms(question);
        if q.is_empty() || self.sections.is_empty() {
            return None;
        }
        let n = self.sections.len() as f32;
        let avg = self.lengths.iter().sum::<f32>() / n;
        let (k1, b) = (1.2f32, 0.75f32);
        let mut best: Option<(usize, f32)> = None;
        for (i, tf) in self.docs.iter().enumerate() {
            let mut score = 0.0;
            for w in &q {
                let Some(&f) = tf.get(w) else { continue };
                let df = self.df.get(w).copied().unwrap_or(0.0);
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                score += idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * self.lengths[i] / avg.max(1.0)));
            }
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        // The flow already decided this is a policy question: any shared word is a match, the
        // best one wins; a question sharing none gets no quote.
        best.filter(|(_, s)| *s > 0.0).map(|(i, score)| Quote { section: self.sections[i].clone(), score })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_find_their_section_with_its_source() {
        let kb = KnowledgeBase::shipped();
        assert!(kb.len() >= 4);
        let q = kb.answer("how do I return something?").expect("returns");
        assert!(q.section.heading.to_lowercase().contains("return"), "{q:?}");
        assert!(q.section.source().starts_with("policies.md#"));
        let q = kb.answer("what are your opening hours").expect("hours");
        assert!(q.section.heading.to_lowercase().contains("hours"), "{q:?}");
        assert!(kb.answer("zebra quantum").is_none());
    }

    #[test]
    fn sections_split_at_headings() {
        let s = sections("d.md", "intro\n# One\nfirst\n## Two\nsecond\n#nothashtag");
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].heading, "One");
        assert_eq!(s[2].text, "second\n#nothashtag");
    }
}
