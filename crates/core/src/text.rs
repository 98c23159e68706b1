//! Text every backend can store. PostgreSQL's `text` and `jsonb` cannot hold U+0000, and no id,
//! name, trait or reason means one, so a NUL anywhere in what a client sends (a JSON string or
//! key, a path segment, a query value) is refused at the edge naming the field, on SQLite too,
//! rather than failing as a database error after part of the work (or forever, in the projection).

use serde_json::Value;

use crate::FieldError;

/// The longest id or name that keys a row: PostgreSQL cannot index a key much over 2,700 bytes,
/// and no SKU, store, promotion, competitor or reward name needs more than this.
pub const MAX_ID_BYTES: usize = crate::commerce::MAX_ID_LEN;

/// Refuses an id or name that cannot key a row on every backend (over [`MAX_ID_BYTES`] bytes,
/// or holding U+0000), naming `field`.
pub fn check_id(field: &str, s: &str) -> Result<(), FieldError> {
    check(field, s)?;
    if s.len() > MAX_ID_BYTES {
        return Err(FieldError::invalid(field, format!("must be at most {MAX_ID_BYTES} bytes (got {})", s.len())));
    }
    Ok(())
}

/// What a client is told about a NUL.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Refuses `s` when it holds U+0000, naming `field`.
pub fn check(field: &str, s: &str) -> Result<(), FieldError> {
    if s.contains('\0') {
        Err(FieldError::invalid(field, NUL_MESSAGE))
    } else {
        Ok(())
    }
}

/// Refuses the first string or object key in `v` holding U+0000, naming its path (e.g.
/// `properties.products[2].name`; a key is named by its object's path).
pub fn check_value(v: &Value) -> Result<(), FieldError> {
    match nul_path(v, String::new()) {
        Some(path) => Err(FieldError::invalid(path, NUL_MESSAGE)),
        None => Ok(()),
    }
}

fn nul_path(v: &Value, at: String) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(at),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| nul_path(item, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                return Some(at.clone());
            }
            let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            nul_path(item, path)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_is_named_by_its_path() {
        assert!(check_value(&json!({"a": ["x", {"b": "ok"}], "n": 1})).is_ok());
        let e = check_value(&json!({"properties": {"products": [{}, {}, {"name": "a\u{0}b"}]}})).unwrap_err();
        assert_eq!(e.field, "properties.products[2].name");
        assert_eq!(check_value(&json!({"traits": {"a\u{0}": 1}})).unwrap_err().field, "traits");
        assert_eq!(check_value(&json!("\u{0}")).unwrap_err().field, "");
        assert_eq!(check("sku", "P\u{0}").unwrap_err().field, "sku");
        assert!(check("sku", "P1").is_ok());
        assert_eq!(check_id("sku", &"x".repeat(MAX_ID_BYTES + 1)).unwrap_err().field, "sku");
        assert!(check_id("sku", &"x".repeat(MAX_ID_BYTES)).is_ok());
    }
}
