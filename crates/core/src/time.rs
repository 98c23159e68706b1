//! Time helpers: Tailor stores UTC milliseconds since the Unix epoch.

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The current time in milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Parses an RFC 3339 / ISO 8601 timestamp into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// Formats milliseconds as an RFC 3339 UTC timestamp with millisecond precision.
pub fn format_millis(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        _ => ms.to_string(),
    }
}

/// The earliest time the API reads or writes: 0001-01-01T00:00:00Z.
pub const MIN_MILLIS: Millis = -62_135_596_800_000;
/// The latest time the API reads or writes: 9999-12-31T23:59:59.999Z.
pub const MAX_MILLIS: Millis = 253_402_300_799_999;

/// Reads a time the API was sent: an RFC 3339 string (the convention), or epoch milliseconds
/// (deprecated, still read so older clients and stored settings keep working).
pub fn parse_api_time(v: &serde_json::Value) -> Option<Millis> {
    match v {
        serde_json::Value::String(s) => parse_rfc3339(s.trim()),
        serde_json::Value::Number(n) => n.as_i64().filter(|ms| (MIN_MILLIS..=MAX_MILLIS).contains(ms)),
        _ => None,
    }
}

/// What a time field takes, for error messages.
pub const TIME_HINT: &str = "an RFC 3339 time such as 2026-03-01T09:00:00Z";

/// Serde for a time kept as epoch milliseconds and written as an RFC 3339 UTC string
/// (`#[serde(with = "tailor_core::time::rfc3339")]`). It reads either form, so JSON stored
/// before the API convention (milliseconds) still loads.
pub mod rfc3339 {
    use super::{format_millis, parse_api_time, Millis, TIME_HINT};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `ms` as an RFC 3339 UTC string.
    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_millis(*ms))
    }

    /// Reads an RFC 3339 string or (deprecated) epoch milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse_api_time(&v).ok_or_else(|| serde::de::Error::custom(format!("expected {TIME_HINT}, got {v}")))
    }
}

/// [`rfc3339`] for an optional time: `null` or absent is `None`.
pub mod rfc3339_opt {
    use super::{format_millis, parse_api_time, Millis, TIME_HINT};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `ms` as an RFC 3339 UTC string, or null.
    pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&format_millis(*ms)),
            None => s.serialize_none(),
        }
    }

    /// Reads null, an RFC 3339 string or (deprecated) epoch milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Ok(None),
            v => parse_api_time(&v)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("expected {TIME_HINT}, got {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "rfc3339")]
        at: Millis,
        #[serde(default, with = "rfc3339_opt")]
        until: Option<Millis>,
    }

    #[test]
    fn times_are_written_as_rfc3339_and_read_in_either_form() {
        let t = T { at: 1_772_355_600_000, until: None };
        let json = serde_json::to_string(&t).expect("json");
        assert_eq!(json, r#"{"at":"2026-03-01T09:00:00.000Z","until":null}"#);
        assert_eq!(serde_json::from_str::<T>(&json).expect("back"), t);
        let old: T = serde_json::from_str(r#"{"at":1772355600000,"until":1772355600001}"#).expect("ms");
        assert_eq!((old.at, old.until), (1_772_355_600_000, Some(1_772_355_600_001)));
        let offset: T = serde_json::from_str(r#"{"at":"2026-03-01T10:00:00+01:00"}"#).expect("offset");
        assert_eq!(offset.at, 1_772_355_600_000);
        assert!(serde_json::from_str::<T>(r#"{"at":"yesterday"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"at":9223372036854775807}"#).is_err());
    }
}
