//! The grounding check: a generated reply may rephrase the template, never add a fact. Every
//! number in a draft (a price, a quantity, a date, a points balance, a SKU's digits, a spelled-out
//! "five") must be one of the turn's facts or already in the template, and no product name the
//! turn did not mention may appear; otherwise the template is sent. Pure: no model involved.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One named value the engine returned for this turn (`price` = `3.49`, `stock` = `12`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// What it is (`price`, `stock`, `points`, `store`, `product`…).
    pub name: String,
    /// Its value as the engine rendered it.
    pub value: String,
}

/// The facts of one turn: the only values a reply may state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    facts: Vec<Fact>,
    /// Names a reply must not mention unless a fact does (the catalog's product names, brands).
    guarded_names: Vec<String>,
}

impl Facts {
    /// No facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named value (builder style): `Facts::new().with("price", "3.49")`.
    pub fn with(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.push(name, value);
        self
    }

    /// Adds a named value.
    pub fn push(&mut self, name: impl Into<String>, value: impl ToString) {
        self.facts.push(Fact { name: name.into(), value: value.to_string() });
    }

    /// Names (product names, brands) a draft may only mention when a fact or the template does.
    pub fn guard_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.guarded_names.extend(names.into_iter().map(Into::into));
        self
    }

    /// The facts, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = &Fact> {
        self.facts.iter()
    }

    /// True when there are no facts.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }
}

/// Why a draft was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Ungrounded {
    /// A number that is neither a fact nor in the template.
    Number {
        /// The number as written in the draft.
        text: String,
    },
    /// A guarded name the turn did not mention.
    Name {
        /// The name.
        name: String,
    },
    /// The draft is empty or only whitespace.
    Empty,
}

impl std::fmt::Display for Ungrounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ungrounded::Number { text } => write!(f, "the number {text} is not among the facts"),
            Ungrounded::Name { name } => write!(f, "the name {name} is not among the facts"),
            Ungrounded::Empty => write!(f, "the draft is empty"),
        }
    }
}

/// A number as written and its canonical value ("1,000" and "1000.00" are both `1000`).
#[derive(Debug, Clone, PartialEq)]
pub struct NumberMention {
    /// The characters of the draft.
    pub text: String,
    /// Canonical decimal form, without grouping or trailing zeros.
    pub value: String,
}

/// Canonical decimal form of digits with an optional fraction: leading zeros and trailing
/// fractional zeros dropped.
fn canonical(int: &str, frac: &str) -> String {
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// Spelled-out numbers a small model writes instead of digits.
const NUMBER_WORDS: [(&str, u32); 32] = [
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
    ("hundred", 100),
    ("thousand", 1000),
    ("million", 1_000_000),
    ("dozen", 12),
];

/// Every number in a text: digit runs (with `,` grouping and a `.` fraction between digits,
/// so "1,299.50" is one number and a date "2026-12-01" three) and spelled-out number words.
/// "one" is read as a number only before a noun-like word is too fuzzy to tell, so it is counted
/// like the others: a rephrasing that says "one" where the facts say 1 passes.
pub fn numbers(text: &str) -> Vec<NumberMention> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_ascii_digit() {
            let mut int = String::new();
            let mut frac = String::new();
            let mut j = i;
            let mut in_frac = false;
            while j < chars.len() {
                let ch = chars[j].1;
                let next_digit = chars.get(j + 1).is_some_and(|(_, n)| n.is_ascii_digit());
                if ch.is_ascii_digit() {
                    if in_frac {
                        frac.push(ch);
                    } else {
                        int.push(ch);
                    }
                } else if ch == ',' && !in_frac && next_digit && group_follows(&chars, j + 1) {
                    // thousands grouping: "1,000"
                } else if ch == '.' && !in_frac && next_digit {
                    in_frac = true;
                } else {
                    break;
                }
                j += 1;
            }
            let end = chars.get(j).map(|(b, _)| *b).unwrap_or(text.len());
            out.push(NumberMention { text: text[start..end].to_string(), value: canonical(&int, &frac) });
            i = j;
        } else if c.is_alphabetic() {
            let mut j = i;
            while j < chars.len() && chars[j].1.is_alphanumeric() {
                j += 1;
            }
            let end = chars.get(j).map(|(b, _)| *b).unwrap_or(text.len());
            let word = text[start..end].to_lowercase();
            if let Some((_, v)) = NUMBER_WORDS.iter().find(|(w, _)| *w == word) {
                out.push(NumberMention { text: text[start..end].to_string(), value: v.to_string() });
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// True when exactly three digits follow position `k` (a thousands group).
fn group_follows(chars: &[(usize, char)], k: usize) -> bool {
    let digits = chars[k..].iter().take_while(|(_, c)| c.is_ascii_digit()).count();
    digits == 3
}

/// Lowercase words of a text, for name matching on word boundaries.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn contains_words(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Checks a draft against the turn's facts and the template it rephrases; `Ok` when every
/// number and guarded name in it is grounded.
pub fn check(draft: &str, template: &str, facts: &Facts) -> Result<(), Ungrounded> {
    if draft.trim().is_empty() {
        return Err(Ungrounded::Empty);
    }
    let mut allowed: BTreeSet<String> = numbers(template).into_iter().map(|n| n.value).collect();
    for f in facts.iter() {
        allowed.extend(numbers(&f.value).into_iter().map(|n| n.value));
    }
    if let Some(n) = numbers(draft).into_iter().find(|n| !allowed.contains(&n.value)) {
        return Err(Ungrounded::Number { text: n.text });
    }
    let draft_words = words(draft);
    let mut mentioned = words(template);
    for f in facts.iter() {
        mentioned.push(String::new()); // no match across two facts
        mentioned.extend(words(&f.value));
    }
    for name in &facts.guarded_names {
        let w = words(name);
        if contains_words(&draft_words, &w) && !contains_words(&mentioned, &w) {
            return Err(Ungrounded::Name { name: name.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        numbers(text).into_iter().map(|n| n.value).collect()
    }

    #[test]
    fn numbers_are_read_as_written_and_compared_canonically() {
        assert_eq!(values("Oat milk is $3.49, 1,299 left; order #00417."), ["3.49", "1299", "417"]);
        assert_eq!(values("3.50 and 3.5 and 1000.00"), ["3.5", "3.5", "1000"]);
        assert_eq!(values("Pickup on 2026-12-01 at 5pm."), ["2026", "12", "1", "5"]);
        assert_eq!(values("Five left, a dozen eggs"), ["5", "12"]);
        assert_eq!(values("a list: 1,2,3"), ["1", "2", "3"]);
        assert_eq!(values("End of sentence 42."), ["42"]);
        assert!(values("no numbers here").is_empty());
    }

    #[test]
    fn a_rephrasing_with_the_facts_passes() {
        let facts = Facts::new().with("price", "3.49").with("stock", 12).with("store", "436");
        let template = "Oat milk costs $3.49 at store 436; 12 are in stock.";
        assert_eq!(check("Good news: store 436 has 12 oat milks, at $3.49 each.", template, &facts), Ok(()));
        assert_eq!(check("It's $3.490 and there are twelve of them.", template, &facts), Ok(()));
    }

    #[test]
    fn an_invented_number_is_refused() {
        let facts = Facts::new().with("points", "1250");
        let template = "You have 1,250 points.";
        assert_eq!(
            check("You have 1,250 points, only 250 to Gold!", template, &facts),
            Err(Ungrounded::Number { text: "250".into() })
        );
        assert_eq!(
            check("You have 1,250 points and ten days left.", template, &facts),
            Err(Ungrounded::Number { text: "ten".into() })
        );
        assert_eq!(check("  ", template, &facts), Err(Ungrounded::Empty));
    }

    #[test]
    fn a_product_the_turn_did_not_mention_is_refused() {
        let facts = Facts::new().with("product", "Oatly Oat Milk").guard_names(["Oatly Oat Milk", "Almond Breeze"]);
        let template = "Oatly Oat Milk is in stock.";
        assert_eq!(check("Yes! Oatly Oat Milk is on the shelf.", template, &facts), Ok(()));
        assert_eq!(
            check("Try almond breeze instead.", template, &facts),
            Err(Ungrounded::Name { name: "Almond Breeze".into() })
        );
    }
}
