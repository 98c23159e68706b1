//! SMS length: GSM 03.38 (7-bit) when every character is in its alphabet, else UCS-2; one
//! segment holds 160 septets (GSM-7) or 70 UTF-16 units (UCS-2), a concatenated one 153 or 67.

use serde::Serialize;

/// The encoding an SMS text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsEncoding {
    /// The GSM 03.38 default alphabet.
    Gsm7,
    /// UTF-16 (anything outside it: most accents, emoji).
    Ucs2,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Septets a character takes in GSM-7 (extension characters take two), or `None` outside it.
fn septets(c: char) -> Option<u32> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding, the length in its units, and the number of segments of `text`.
pub fn sms_segments(text: &str) -> (SmsEncoding, u32, u32) {
    let gsm: Option<u32> = text.chars().map(septets).sum();
    let (encoding, units, single, multi) = match gsm {
        Some(n) => (SmsEncoding::Gsm7, n, 160, 153),
        None => (SmsEncoding::Ucs2, text.encode_utf16().count() as u32, 70, 67),
    };
    let segments = if units <= single { 1 } else { units.div_ceil(multi) };
    (encoding, units, segments)
}

/// `text` shortened (at a word, ending in "...") to at most `max_segments`, with its encoding
/// and segment count.
pub fn fit_sms(text: &str, max_segments: u32) -> (String, SmsEncoding, u32) {
    let (encoding, _, segments) = sms_segments(text);
    if segments <= max_segments {
        return (text.to_string(), encoding, segments);
    }
    let mut words: Vec<&str> = text.split(' ').collect();
    while !words.is_empty() {
        words.pop();
        let candidate = format!("{}...", words.join(" "));
        let (enc, _, n) = sms_segments(&candidate);
        if n <= max_segments {
            return (candidate, enc, n);
        }
    }
    let (enc, _, n) = sms_segments("...");
    ("...".to_string(), enc, n)
}
