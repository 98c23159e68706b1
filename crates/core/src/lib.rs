//! Domain types of Tailor: events (Segment spec), identifiers, consent purposes, channels and the
//! error codes every layer shares. No I/O and no HTTP live here.

pub mod bucket;
pub mod channel;
pub mod commerce;
pub mod consent;
pub mod error;
pub mod event;
pub mod identifier;
pub mod money;
pub mod text;
pub mod time;

pub use channel::Channel;
pub use commerce::Commerce;
pub use consent::Purpose;
pub use error::{ErrorCode, FieldError};
pub use event::{Event, EventKind};
pub use identifier::{Identifier, IdentifierKind};
