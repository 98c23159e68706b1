//! The byte-level BPE tokenizer of a GGUF chat model (GPT-2 style, as SmolLM2 ships it in the
//! file's `tokenizer.ggml.*` metadata): digits split one by one, then GPT-2's word/punctuation
//!/space pieces, each piece's bytes merged by rank.

use std::collections::HashMap;

/// Tokenizer tables read from the model file.
#[derive(Debug, Clone)]
pub struct Bpe {
    vocab: HashMap<String, u32>,
    tokens: Vec<String>,
    ranks: HashMap<(String, String), usize>,
    byte_char: [char; 256],
    char_byte: HashMap<char, u8>,
}

/// GPT-2's reversible map of bytes to printable characters.
fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
        out[b as usize] = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('?')
        };
    }
    out
}

/// Pieces of a text in the "smollm" pre-tokenization: each digit alone; contractions; an optional
/// space with a run of letters or of punctuation; whitespace runs (the last space of a run goes
/// with the word after it).
fn pieces(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map(|c| c.0).unwrap_or(text.len());
    let is_punct = |c: char| !c.is_whitespace() && !c.is_alphabetic() && !c.is_numeric();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let start = i;
        if c.is_numeric() {
            i += 1;
        } else if c == '\'' && matches!(at(i + 1), Some('s' | 't' | 'm' | 'd')) {
            i += 2;
        } else if c == '\''
            && matches!(
                (at(i + 1), at(i + 2)),
                (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
            )
        {
            i += 3;
        } else if c.is_whitespace() {
            let mut j = i;
            while at(j).is_some_and(char::is_whitespace) {
                j += 1;
            }
            // "  word": the run minus its last space, which joins the word
            let next_joins = j < chars.len() && at(j - 1) == Some(' ');
            if next_joins && j - i > 1 {
                i = j - 1;
            } else if next_joins {
                i = j;
                let first = at(i).unwrap_or(' ');
                if first.is_alphabetic() {
                    while at(i).is_some_and(char::is_alphabetic) {
                        i += 1;
                    }
                } else if is_punct(first) {
                    while at(i).is_some_and(is_punct) {
                        i += 1;
                    }
                } else {
                    // a digit after the space: the space stays alone
                    i = j;
                    if i == start + 1 {
                        out.push(&text[byte(start)..byte(i)]);
                        continue;
                    }
                }
            } else {
                i = j;
            }
        } else if c.is_alphabetic() {
            while at(i).is_some_and(char::is_alphabetic) {
                i += 1;
            }
        } else {
            while at(i).is_some_and(is_punct) {
                i += 1;
            }
        }
        if i == start {
            i += 1;
        }
        out.push(&text[byte(start)..byte(i)]);
    }
    out
}

impl Bpe {
    /// Tables from the token list and the merge list (`"Ġ t"` = merge `Ġ` and `t`).
    pub fn new(tokens: Vec<String>, merges: &[String]) -> Self {
        let vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let ranks = merges
            .iter()
            .enumerate()
            .filter_map(|(r, m)| m.split_once(' ').map(|(a, b)| ((a.to_string(), b.to_string()), r)))
            .collect();
        let byte_char = byte_chars();
        let char_byte = byte_char.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
        Self { vocab, tokens, ranks, byte_char, char_byte }
    }

    /// The id of a token written exactly (special tokens like `<|im_end|>`).
    pub fn id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// Token ids of plain text (special-token markup in it is treated as text).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for piece in pieces(text) {
            let mut symbols: Vec<String> = piece.bytes().map(|b| self.byte_char[b as usize].to_string()).collect();
            loop {
                let best = symbols
                    .windows(2)
                    .enumerate()
                    .filter_map(|(k, w)| self.ranks.get(&(w[0].clone(), w[1].clone())).map(|r| (*r, k)))
                    .min();
                let Some((_, k)) = best else { break };
                let merged = format!("{}{}", symbols[k], symbols[k + 1]);
                symbols.splice(k..k + 2, [merged]);
            }
            for s in symbols {
                match self.vocab.get(&s) {
                    Some(&id) => out.push(id),
                    // not in the vocabulary: its single-byte tokens (all 256 are)
                    None => out.extend(s.chars().filter_map(|c| self.vocab.get(&c.to_string()).copied())),
                }
            }
        }
        out
    }

    /// Text of token ids (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if let Some(t) = self.tokens.get(id as usize) {
                bytes.extend(t.chars().filter_map(|c| self.char_byte.get(&c).copied()));
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_digits_words_punctuation_and_spaces() {
        assert_eq!(pieces("Oat milk costs $3.49!"), ["Oat", " milk", " costs", " $", "3", ".", "4", "9", "!"]);
        assert_eq!(pieces("it's  here\nnow"), ["it", "'s", " ", " here", "\n", "now"]);
        assert_eq!(pieces("at 5"), ["at", " ", "5"]);
    }

    #[test]
    fn merges_apply_by_rank_and_decode_inverts_encode() {
        let tokens: Vec<String> =
            ["h", "e", "l", "o", "Ġ", "he", "ll", "hell", "hello", "Ġhello"].iter().map(|s| s.to_string()).collect();
        let merges: Vec<String> = ["h e", "l l", "he ll", "hell o", "Ġ hello"].iter().map(|s| s.to_string()).collect();
        let bpe = Bpe::new(tokens, &merges);
        assert_eq!(bpe.encode("hello hello"), vec![8, 9]);
        assert_eq!(bpe.decode(&bpe.encode("hello hello")), "hello hello");
    }
}
