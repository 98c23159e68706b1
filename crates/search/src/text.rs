//! One analyzer for the catalog and the queries: lower case, words of letters and digits, a
//! light English plural folding ("bananas" → "banana", "berries" → "berry"), and synonyms.
//! The index stores the analyzed words, so what a query asks and what a product says always
//! meet in the same form.

use std::collections::HashMap;

/// Words longer than this are cut (no product word is this long; a query's may be garbage).
pub const MAX_WORD_CHARS: usize = 40;

/// The words of `text`, analyzed.
pub fn analyze(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| fold(&w.chars().take(MAX_WORD_CHARS).flat_map(char::to_lowercase).collect::<String>()))
        .collect()
}

/// Folds an English plural to its singular, conservatively: a wrong fold on both sides still
/// matches, a fold of only one side would not, and the same function runs on both.
fn fold(w: &str) -> String {
    let n = w.chars().count();
    if n <= 3 || w.chars().any(|c| c.is_ascii_digit()) {
        return w.to_string();
    }
    if let Some(stem) = w.strip_suffix("ies").filter(|_| n > 4) {
        return format!("{stem}y");
    }
    for suffix in ["ches", "shes", "sses", "xes", "oes"] {
        if let Some(stem) = w.strip_suffix(suffix) {
            return format!("{stem}{}", &suffix[..suffix.len() - 2]);
        }
    }
    if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    w.to_string()
}

/// Words that mean the same to a shopper: each word maps to the other phrases of its groups
/// (a phrase is one or more analyzed words).
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    by_word: HashMap<String, Vec<Vec<String>>>,
}

/// The groups every catalog starts with (grocery words that differ by region or habit).
pub const DEFAULT_SYNONYMS: &[&[&str]] = &[
    &["soda", "pop", "soft drink", "fizzy drink"],
    &["chips", "crisps"],
    &["yogurt", "yoghurt"],
    &["ketchup", "catsup"],
    &["eggplant", "aubergine"],
    &["zucchini", "courgette"],
    &["cilantro", "coriander"],
    &["diaper", "nappy"],
    &["toilet paper", "toilet tissue", "bath tissue"],
    &["ground beef", "mince", "minced beef"],
    &["cookie", "biscuit"],
    &["candy", "sweets", "confectionery"],
    &["fries", "chips"],
    &["scallion", "green onion", "spring onion"],
    &["shrimp", "prawn"],
    &["bell pepper", "capsicum"],
    &["detergent", "laundry soap"],
    &["tp", "toilet tissue"],
    &["oj", "orange juice"],
    &["pb", "peanut butter"],
    &["pasta", "spaghetti", "noodle"],
    &["vegan", "plant based"],
];

impl Synonyms {
    /// Synonyms from groups of phrases that mean the same.
    pub fn from_groups<S: AsRef<str>, G: AsRef<[S]>>(groups: &[G]) -> Synonyms {
        let mut by_word: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for group in groups {
            let phrases: Vec<Vec<String>> =
                group.as_ref().iter().map(|p| analyze(p.as_ref())).filter(|p| !p.is_empty()).collect();
            for (i, phrase) in phrases.iter().enumerate() {
                // A one-word phrase is looked up; a longer one only ever stands in for others.
                let [word] = phrase.as_slice() else { continue };
                let others = by_word.entry(word.clone()).or_default();
                for (j, other) in phrases.iter().enumerate() {
                    if i != j && !others.contains(other) {
                        others.push(other.clone());
                    }
                }
            }
        }
        Synonyms { by_word }
    }

    /// The built-in groups ([`DEFAULT_SYNONYMS`]).
    pub fn defaults() -> Synonyms {
        Synonyms::from_groups(DEFAULT_SYNONYMS)
    }

    /// Other phrases for an analyzed word.
    pub fn of(&self, word: &str) -> &[Vec<String>] {
        self.by_word.get(word).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_casing_meet_their_singular() {
        assert_eq!(analyze("BANANAS, Berries & Peaches"), ["banana", "berry", "peach"]);
        assert_eq!(analyze("Tomatoes 12oz"), ["tomato", "12oz"]);
        assert_eq!(analyze("glass hummus bus"), ["glass", "hummus", "bus"]);
        assert_eq!(analyze("  --  "), Vec::<String>::new());
    }

    #[test]
    fn a_word_finds_the_other_phrases_of_its_group() {
        let s = Synonyms::defaults();
        assert!(s.of("soda").contains(&vec!["soft".to_string(), "drink".to_string()]));
        assert!(s.of("crisp").contains(&vec!["chip".to_string()]));
        assert!(s.of("unknown").is_empty());
    }
}
