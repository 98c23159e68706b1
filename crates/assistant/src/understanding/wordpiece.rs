//! The BERT uncased WordPiece tokenizer (the one all-MiniLM-L6-v2 was trained with), read from the
//! model's `vocab.txt`. Written here rather than pulled from `tokenizers` because the uncased BERT
//! scheme is small and the crate would bring regex engines and a download client we do not use.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

/// Token ids of one sentence, `[CLS] … [SEP]`, at most `max_len` long.
pub type TokenIds = Vec<u32>;

/// WordPiece vocabulary and the special ids the encoder needs.
#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    max_len: usize,
}

/// Longest word (in characters) WordPiece splits; longer words become `[UNK]` (as in BERT).
const MAX_WORD_CHARS: usize = 100;

impl WordPiece {
    /// Builds the tokenizer from the text of a `vocab.txt` (one token a line, the line number is its id).
    pub fn from_vocab(text: &str, max_len: usize) -> Result<Self, String> {
        let mut vocab = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let id = u32::try_from(i).map_err(|_| "vocabulary too large".to_string())?;
            vocab.entry(line.trim_end_matches('\r').to_string()).or_insert(id);
        }
        let get = |t: &str| vocab.get(t).copied().ok_or_else(|| format!("vocabulary lacks {t}"));
        Ok(Self { unk: get("[UNK]")?, cls: get("[CLS]")?, sep: get("[SEP]")?, vocab, max_len: max_len.max(2) })
    }

    /// Number of entries in the vocabulary (every id is below it).
    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    /// True when the vocabulary is empty (never for a loaded model).
    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    /// Encodes a sentence to `[CLS] pieces… [SEP]`, truncated to the maximum length.
    pub fn encode(&self, text: &str) -> TokenIds {
        let mut ids = vec![self.cls];
        let room = self.max_len - 1;
        'words: for word in basic_tokens(text) {
            for id in self.word_pieces(&word) {
                if ids.len() >= room {
                    break 'words;
                }
                ids.push(id);
            }
        }
        ids.push(self.sep);
        ids
    }

    /// Greedy longest-match-first split of one word into vocabulary pieces.
    fn word_pieces(&self, word: &str) -> Vec<u32> {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            return vec![self.unk];
        }
        let mut out = Vec::new();
        let mut start = 0;
        let mut piece = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.extend(&chars[start..end]);
                if let Some(&id) = self.vocab.get(piece.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => return vec![self.unk],
            }
        }
        out
    }
}

/// BERT's basic tokenizer: drops control characters, lowercases, strips accents, splits on
/// whitespace and punctuation (each punctuation mark is a word) and around CJK ideographs.
pub fn basic_tokens(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, words: &mut Vec<String>| {
        if !cur.is_empty() {
            words.push(std::mem::take(cur));
        }
    };
    for c in text.nfd() {
        if is_combining_mark(c) || c == '\u{0}' || c == '\u{fffd}' {
            continue;
        }
        if c.is_whitespace() {
            flush(&mut cur, &mut words);
            continue;
        }
        if c.is_control() {
            continue;
        }
        if is_punctuation(c) || is_cjk(c) {
            flush(&mut cur, &mut words);
            words.push(c.to_string());
            continue;
        }
        cur.extend(c.to_lowercase());
    }
    flush(&mut cur, &mut words);
    words
}

/// Combining marks (Unicode category Mn) that accent stripping removes after NFD.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// ASCII symbols count as punctuation in BERT, as does anything else that is neither a letter,
/// a digit nor a mark.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_punctuation();
    }
    !c.is_alphanumeric() && !is_combining_mark(c)
}

/// The CJK ideograph blocks BERT splits character by character.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_tokens_split_punctuation_lowercase_and_strip_accents() {
        assert_eq!(basic_tokens("Café, déjà-vu!"), vec!["cafe", ",", "deja", "-", "vu", "!"]);
        assert_eq!(basic_tokens("  BANANAS\t\n"), vec!["bananas"]);
    }

    #[test]
    fn word_pieces_take_the_longest_match_and_unknowns_become_unk() {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##avail\n##able\navailable\n";
        let wp = WordPiece::from_vocab(vocab, 16).expect("vocab");
        assert_eq!(wp.encode("unavailable"), vec![2, 4, 5, 6, 3]);
        assert_eq!(wp.encode("Available zzz"), vec![2, 7, 1, 3]);
        assert_eq!(wp.encode(&"available ".repeat(40)).len(), 16);
    }
}
