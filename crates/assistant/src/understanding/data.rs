//! The training file a retailer edits: CSV with a header naming a `text` column and an intent
//! column (`intent` or `category`), entities marked inline as `[oat milk](product)`.
//!
//! ```csv
//! text,intent
//! do you have [oat milk](product) at [436](store),availability
//! ```

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::AssistantError;

/// An entity marked in a training message: its type and the byte span of its value in the plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marked {
    /// Entity type, e.g. `product`, `store`.
    pub entity: String,
    /// Start byte in [`Example::text`].
    pub start: usize,
    /// End byte (exclusive) in [`Example::text`].
    pub end: usize,
}

/// One training message: plain text (markup removed), its intent and its marked entities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The message as a shopper would type it.
    pub text: String,
    /// The intent label.
    pub intent: String,
    /// Entities marked in it.
    pub entities: Vec<Marked>,
}

/// Longest training message accepted, in bytes (a chat message is capped at 2,000 characters).
pub const MAX_TEXT_BYTES: usize = 8_000;

/// Strips `[value](type)` markup, returning the plain text and the marked spans. A bracket that
/// is not followed by `(type)` stays as written.
pub fn parse_markup(src: &str) -> (String, Vec<Marked>) {
    let mut out = String::with_capacity(src.len());
    let mut marks = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let parsed = after.find("](").and_then(|close| {
            let value = &after[..close];
            let tail = &after[close + 2..];
            let end = tail.find(')')?;
            let ty = tail[..end].trim();
            let ok = !value.is_empty()
                && !value.contains('[')
                && !ty.is_empty()
                && ty.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            ok.then(|| (value, ty, close + 2 + end + 1))
        });
        match parsed {
            Some((value, ty, used)) => {
                let start = out.len();
                out.push_str(value);
                marks.push(Marked { entity: ty.to_string(), start, end: out.len() });
                rest = &after[used..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, marks)
}

/// Reads a training CSV: a header with `text` and `intent` (or `category`) columns.
pub fn read_csv(reader: impl Read, origin: &str) -> Result<Vec<Example>, AssistantError> {
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let bad = |line: u64, msg: String| AssistantError::Data { origin: origin.to_string(), line, message: msg };
    let headers = r.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()));
    let text_col = col(&["text"]).ok_or_else(|| bad(1, "no `text` column".into()))?;
    let intent_col =
        col(&["intent", "category", "label"]).ok_or_else(|| bad(1, "no `intent` (or `category`) column".into()))?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let raw = rec.get(text_col).unwrap_or("").trim();
        let intent = rec.get(intent_col).unwrap_or("").trim();
        if raw.is_empty() && intent.is_empty() {
            continue;
        }
        if raw.is_empty() {
            return Err(bad(line, "empty text".into()));
        }
        if intent.is_empty() {
            return Err(bad(line, "empty intent".into()));
        }
        if raw.len() > MAX_TEXT_BYTES {
            return Err(bad(line, format!("text longer than {MAX_TEXT_BYTES} bytes")));
        }
        let (text, entities) = parse_markup(raw);
        out.push(Example { text, intent: intent.to_string(), entities });
    }
    if out.is_empty() {
        return Err(bad(1, "no examples".into()));
    }
    Ok(out)
}

/// Reads a training CSV from a file.
pub fn read_csv_file(path: &std::path::Path) -> Result<Vec<Example>, AssistantError> {
    let f = std::fs::File::open(path).map_err(|e| AssistantError::Io(format!("{}: {e}", path.display())))?;
    read_csv(std::io::BufReader::new(f), &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_plain_text_and_spans() {
        let (t, m) = parse_markup("do you have [oat milk](product) at [436](store)?");
        assert_eq!(t, "do you have oat milk at 436?");
        assert_eq!(&t[m[0].start..m[0].end], "oat milk");
        assert_eq!(m[0].entity, "product");
        assert_eq!(&t[m[1].start..m[1].end], "436");
        assert_eq!(m[1].entity, "store");
    }

    #[test]
    fn brackets_that_are_not_markup_stay() {
        assert_eq!(parse_markup("a [b] c (d) [e](f g) [](x)").0, "a [b] c (d) [e](f g) [](x)");
        assert_eq!(parse_markup("[[x](y)").0, "[x");
    }

    #[test]
    fn csv_reports_the_line_of_a_bad_row() {
        let src = "text,intent\nhello,greet\n,greet\n";
        let err = read_csv(src.as_bytes(), "t.csv").expect_err("empty text");
        assert!(err.to_string().contains("t.csv:3"), "{err}");
        let ok = read_csv("text,category\nhi [x](y),g\n".as_bytes(), "t").expect("ok");
        assert_eq!(ok[0].entities.len(), 1);
    }
}
