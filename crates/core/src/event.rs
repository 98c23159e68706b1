//! Segment-compatible events: parsing and validation of what SDKs send, and the identifiers an
//! event carries.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::identifier::{Identifier, IdentifierKind};
use crate::time::{self, Millis};
use crate::{Channel, ErrorCode, FieldError};

/// The largest event Segment accepts, and so do we.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// The largest batch Segment accepts, and so do we.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// How far in the future a timestamp may lie before it is refused (clock skew allowance).
pub const MAX_FUTURE_SKEW_MS: i64 = 24 * 3600 * 1000;

/// The Segment call type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An action the customer took.
    Track,
    /// Who the customer is, with traits.
    Identify,
    /// A web page view.
    Page,
    /// An app screen view.
    Screen,
    /// Membership of a group (account, household).
    Group,
    /// Links a previous id to a new one.
    Alias,
}

impl EventKind {
    /// The stored name, as in Segment's `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    /// Parses Segment's `type` field.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "track" => Self::Track,
            "identify" => Self::Identify,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "group" => Self::Group,
            "alias" => Self::Alias,
            _ => return None,
        })
    }
}

/// A validated event, ready for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Segment's `messageId`: the deduplication key.
    pub message_id: String,
    /// The call type.
    pub kind: EventKind,
    /// `event` of a track, `name` of a page or screen.
    pub name: Option<String>,
    /// Segment `userId`.
    pub user_id: Option<String>,
    /// Segment `anonymousId`.
    pub anonymous_id: Option<String>,
    /// Where it happened.
    pub channel: Channel,
    /// When it happened (ms, UTC).
    pub timestamp: Millis,
    /// When Tailor received it (ms, UTC).
    pub received_at: Millis,
    /// The whole event as sent, with `type`, `messageId`, `timestamp` and `receivedAt` filled in.
    pub body: Value,
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > 256 => Err(FieldError::invalid(key, "must be at most 256 characters")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::invalid(key, "must be a string")),
    }
}

fn check_object(obj: &Map<String, Value>, key: &str) -> Result<(), FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(FieldError::invalid(key, "must be an object")),
    }
}

fn opt_time(obj: &Map<String, Value>, key: &str) -> Result<Option<Millis>, FieldError> {
    match opt_string(obj, key)? {
        None => Ok(None),
        Some(s) => time::parse_rfc3339(&s)
            .map(Some)
            .ok_or_else(|| FieldError::invalid(key, "must be an ISO 8601 timestamp, e.g. 2026-11-24T09:30:00Z")),
    }
}

/// The event's name for its kind (`event` of a track, `name` of a page or screen), checking the
/// fields each kind needs.
fn name_of(kind: EventKind, obj: &Map<String, Value>, has_user_id: bool) -> Result<Option<String>, FieldError> {
    Ok(match kind {
        EventKind::Track => Some(opt_string(obj, "event")?.ok_or_else(|| {
            FieldError::invalid("event", "a track call needs the event name, e.g. \"Product Viewed\"")
        })?),
        EventKind::Page | EventKind::Screen => opt_string(obj, "name")?,
        EventKind::Alias => {
            if !has_user_id {
                return Err(FieldError::invalid("userId", "an alias call needs the new userId"));
            }
            opt_string(obj, "previousId")?
                .ok_or_else(|| FieldError::invalid("previousId", "an alias call needs the previousId"))?;
            None
        }
        EventKind::Group => {
            opt_string(obj, "groupId")?
                .ok_or_else(|| FieldError::invalid("groupId", "a group call needs a groupId"))?;
            None
        }
        EventKind::Identify => None,
    })
}

/// When it happened: `timestamp`, else `originalTimestamp`, else now; never far in the future
/// or before 1970.
fn timestamp_of(obj: &Map<String, Value>, now: Millis) -> Result<Millis, FieldError> {
    let timestamp = match opt_time(obj, "timestamp")? {
        Some(t) => t,
        None => opt_time(obj, "originalTimestamp")?.unwrap_or(now),
    };
    opt_time(obj, "sentAt")?;
    if timestamp > now + MAX_FUTURE_SKEW_MS {
        return Err(FieldError::invalid(
            "timestamp",
            "lies more than 24 hours in the future: check the sender's clock",
        ));
    }
    if timestamp < 0 {
        return Err(FieldError::invalid("timestamp", "must not be before 1970"));
    }
    Ok(timestamp)
}

/// Identifier traits (e-mail, phone, loyalty card, POS id) must normalize, wherever they stand.
fn check_trait_identifiers(raw: &Value) -> Result<(), FieldError> {
    for (pointer, path) in TRAIT_PLACES {
        for (kind, names) in TRAIT_IDENTIFIERS {
            for name in names {
                match raw.pointer(pointer).and_then(|t| t.get(*name)) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => {
                        Identifier::parse(kind, s, &format!("{path}.{name}"))?;
                    }
                    Some(_) => return Err(FieldError::invalid(format!("{path}.{name}"), "must be a string")),
                }
            }
        }
    }
    Ok(())
}

/// Where identifier traits may stand in an event, with the JSON path used in errors.
const TRAIT_PLACES: [(&str, &str); 2] = [("/traits", "traits"), ("/context/traits", "context.traits")];

/// The trait names that carry identifiers, per kind (snake_case and camelCase as sent by SDKs).
const TRAIT_IDENTIFIERS: [(IdentifierKind, &[&str]); 4] = [
    (IdentifierKind::Email, &["email"]),
    (IdentifierKind::Phone, &["phone"]),
    (IdentifierKind::LoyaltyCard, &["loyalty_card", "loyaltyCard"]),
    (IdentifierKind::PosCustomerId, &["pos_customer_id", "posCustomerId"]),
];

impl Event {
    /// Validates one event as received. `kind` is the call type given by the route (`/v1/track`)
    /// or `None` inside a batch, where the event's `type` field says it. Field paths in errors are
    /// relative to the event.
    pub fn parse(raw: Value, kind: Option<EventKind>, now: Millis) -> Result<Event, FieldError> {
        Self::parse_with(raw, kind, now, true)
    }

    /// Like [`Event::parse`] for trusted sources (file imports, POS feeds) that identify the
    /// customer only by identifier traits in `context.traits` (a loyalty card, an e-mail): they
    /// need no `userId` or `anonymousId` as long as they carry some identifier.
    pub fn parse_trusted(raw: Value, kind: Option<EventKind>, now: Millis) -> Result<Event, FieldError> {
        let event = Self::parse_with(raw, kind, now, false)?;
        if Self::identifiers(&event.body).is_empty() {
            return Err(FieldError {
                code: ErrorCode::MissingIdentity,
                field: "context.traits".into(),
                message: "the event carries no identifier (userId, anonymousId, email, phone, loyalty card, ...)"
                    .into(),
            });
        }
        Ok(event)
    }

    fn parse_with(
        raw: Value,
        kind: Option<EventKind>,
        now: Millis,
        segment_identity: bool,
    ) -> Result<Event, FieldError> {
        // Every string of the event reaches the log and the projections as text.
        crate::text::check_value(&raw)?;
        let Value::Object(mut obj) = raw else {
            return Err(FieldError::invalid("", "an event must be a JSON object"));
        };
        let kind = match kind {
            Some(k) => k,
            None => match obj.get("type") {
                Some(Value::String(t)) => EventKind::parse(t).ok_or_else(|| {
                    FieldError::invalid("type", "must be one of track, identify, page, screen, group, alias")
                })?,
                Some(_) => return Err(FieldError::invalid("type", "must be a string")),
                None => return Err(FieldError::invalid("type", "is required in a batch")),
            },
        };
        let user_id = opt_string(&obj, "userId")?;
        let anonymous_id = opt_string(&obj, "anonymousId")?;
        if segment_identity && user_id.is_none() && anonymous_id.is_none() {
            return Err(FieldError {
                code: ErrorCode::MissingIdentity,
                field: "userId".into(),
                message: "every event needs a userId or an anonymousId".into(),
            });
        }
        for key in ["properties", "traits", "context", "integrations"] {
            check_object(&obj, key)?;
        }
        if let Some(Value::Object(ctx)) = obj.get("context") {
            if let Some(t) = ctx.get("traits") {
                if !t.is_object() && !t.is_null() {
                    return Err(FieldError::invalid("context.traits", "must be an object"));
                }
            }
        }
        let name = name_of(kind, &obj, user_id.is_some())?;
        let timestamp = timestamp_of(&obj, now)?;
        let message_id = match opt_string(&obj, "messageId")? {
            Some(m) => m,
            None => format!("tailor-{}", uuid::Uuid::new_v4()),
        };
        obj.insert("type".into(), Value::String(kind.as_str().into()));
        obj.insert("messageId".into(), Value::String(message_id.clone()));
        obj.insert("timestamp".into(), Value::String(time::format_millis(timestamp)));
        obj.insert("receivedAt".into(), Value::String(time::format_millis(now)));
        let raw = Value::Object(obj);
        check_trait_identifiers(&raw)?;
        // Orders, refunds and carts are checked here, so the projections never meet one that
        // cannot be meant (an amount beyond range, a fractional count).
        crate::Commerce::from_event(&raw)?;
        let channel = Channel::infer(&raw, kind.as_str());
        Ok(Event { message_id, kind, name, user_id, anonymous_id, channel, timestamp, received_at: now, body: raw })
    }

    /// Every identifier this event carries, normalized, highest priority first. Values that do not
    /// normalize are skipped (intake already refused them).
    pub fn identifiers(body: &Value) -> Vec<Identifier> {
        let mut out = Vec::new();
        let mut push = |kind: IdentifierKind, v: Option<&Value>| {
            if let Some(s) = v.and_then(Value::as_str) {
                if let Ok(value) = kind.normalize(s) {
                    let id = Identifier { kind, value };
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
        };
        push(IdentifierKind::UserId, body.get("userId"));
        push(IdentifierKind::AnonymousId, body.get("anonymousId"));
        for (pointer, _) in TRAIT_PLACES {
            if let Some(traits) = body.pointer(pointer) {
                for (kind, names) in TRAIT_IDENTIFIERS {
                    for name in names {
                        push(kind, traits.get(*name));
                    }
                }
            }
        }
        push(IdentifierKind::DeviceId, body.pointer("/context/device/id"));
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Millis = 1_795_000_000_000;

    #[test]
    fn a_track_needs_an_event_name_and_an_identity() {
        let e =
            Event::parse(json!({"anonymousId": "a1", "event": "Product Viewed"}), Some(EventKind::Track), NOW).unwrap();
        assert_eq!(e.name.as_deref(), Some("Product Viewed"));
        assert_eq!(e.timestamp, NOW);
        let err = Event::parse(json!({"anonymousId": "a1"}), Some(EventKind::Track), NOW).unwrap_err();
        assert_eq!(err.field, "event");
        let err = Event::parse(json!({"event": "x"}), Some(EventKind::Track), NOW).unwrap_err();
        assert_eq!(err.code, ErrorCode::MissingIdentity);
    }

    #[test]
    fn wrong_types_and_bad_identifiers_name_the_field() {
        let cases = [
            (json!({"userId": 5}), "userId"),
            (json!({"userId": "u", "traits": []}), "traits"),
            (json!({"userId": "u", "traits": {"email": "nope"}}), "traits.email"),
            (json!({"userId": "u", "context": {"traits": {"phone": "12"}}}), "context.traits.phone"),
            (json!({"userId": "u", "timestamp": "yesterday"}), "timestamp"),
            (json!({"userId": "u", "timestamp": "2999-01-01T00:00:00Z"}), "timestamp"),
        ];
        for (raw, field) in cases {
            let err = Event::parse(raw, Some(EventKind::Identify), NOW).unwrap_err();
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn identifiers_are_collected_and_normalized() {
        let body = json!({"userId": "u1", "anonymousId": "a1",
            "traits": {"email": "A@X.com", "loyaltyCard": "LC1"},
            "context": {"traits": {"phone": "+1 415 555 0123"}, "device": {"id": "d1"}}});
        let ids = Event::identifiers(&body);
        let kinds: Vec<_> = ids.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                IdentifierKind::UserId,
                IdentifierKind::Email,
                IdentifierKind::LoyaltyCard,
                IdentifierKind::Phone,
                IdentifierKind::DeviceId,
                IdentifierKind::AnonymousId
            ]
        );
        assert_eq!(ids[1].value, "a@x.com");
        assert_eq!(ids[3].value, "+14155550123");
    }
}
