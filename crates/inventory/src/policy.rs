//! How each channel uses stock: not at all, tracking sales only, holding units as soon as
//! they are in a cart, or holding them at checkout (the default).

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use tailor_core::FieldError;
use tailor_store::Db;

use crate::error::InventoryError;

/// A channel's stock policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Stock is not checked nor moved for this channel; reservations are refused.
    None,
    /// Sales take stock off the shelf; nothing is held; reservations are refused.
    TrackOnly,
    /// A Product Added event holds the units for the cart's time to live; Product Removed
    /// gives them back; Order Completed sells them.
    ReserveOnCart,
    /// Units are held by a reservation at checkout (`POST /v1/reservations`).
    ReserveOnOrder,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::TrackOnly => "track_only",
            Policy::ReserveOnCart => "reserve_on_cart",
            Policy::ReserveOnOrder => "reserve_on_order",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Policy> {
        [Policy::None, Policy::TrackOnly, Policy::ReserveOnCart, Policy::ReserveOnOrder]
            .into_iter()
            .find(|p| p.name() == s)
    }

    /// Whether reservations may hold stock for this channel.
    pub fn holds(self) -> bool {
        matches!(self, Policy::ReserveOnCart | Policy::ReserveOnOrder)
    }
}

/// A channel's policy with the cart time to live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPolicy {
    /// The channel (web, app, store, …).
    pub channel: String,
    /// none, track_only, reserve_on_cart or reserve_on_order.
    pub policy: Policy,
    /// How long a cart hold lasts, for reserve_on_cart (whole seconds in the API).
    #[serde(rename = "cartTtlSeconds", with = "ms_as_seconds")]
    #[schema(value_type = i64)]
    pub cart_ttl_ms: i64,
}

/// A duration kept in milliseconds and shown in whole seconds, as the API takes it.
mod ms_as_seconds {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(ms / 1000)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        i64::deserialize(d)?.checked_mul(1000).ok_or_else(|| serde::de::Error::custom("too long a time to live"))
    }
}

/// Cart holds last this long unless set otherwise.
pub const DEFAULT_CART_TTL_MS: i64 = 30 * 60 * 1000;

/// The policy of `channel` (reserve_on_order when none was set).
pub async fn policy_of(conn: &mut AnyConnection, channel: &str) -> Result<ChannelPolicy, InventoryError> {
    let row = sqlx::query("SELECT policy, cart_ttl_ms FROM inventory_policies WHERE channel = $1")
        .bind(channel.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => ChannelPolicy {
            channel: channel.to_string(),
            policy: Policy::parse(&r.get::<String, _>(0)).unwrap_or(Policy::ReserveOnOrder),
            cart_ttl_ms: r.get(1),
        },
        None => ChannelPolicy {
            channel: channel.to_string(),
            policy: Policy::ReserveOnOrder,
            cart_ttl_ms: DEFAULT_CART_TTL_MS,
        },
    })
}

/// Sets a channel's policy.
pub async fn set_policy(db: &Db, p: &ChannelPolicy, now: i64) -> Result<(), InventoryError> {
    if tailor_core::Channel::parse(&p.channel).map(|c| c.as_str()) != Some(p.channel.as_str()) {
        return Err(InventoryError::Invalid(FieldError::invalid(
            "channel",
            "must be one of web, app, store, support, chat, email, server",
        )));
    }
    if p.cart_ttl_ms < 1000 {
        return Err(InventoryError::Invalid(FieldError::invalid("cartTtlSeconds", "at least 1 second")));
    }
    sqlx::query(
        "INSERT INTO inventory_policies (channel, policy, cart_ttl_ms, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (channel) DO UPDATE SET policy = excluded.policy, cart_ttl_ms = excluded.cart_ttl_ms, updated_at = excluded.updated_at",
    )
    .bind(p.channel.clone())
    .bind(p.policy.name())
    .bind(p.cart_ttl_ms)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Every channel with a policy set.
pub async fn policies(db: &Db) -> Result<Vec<ChannelPolicy>, InventoryError> {
    Ok(sqlx::query("SELECT channel, policy, cart_ttl_ms FROM inventory_policies ORDER BY channel")
        .fetch_all(db.reader())
        .await?
        .iter()
        .map(|r| ChannelPolicy {
            channel: r.get(0),
            policy: Policy::parse(&r.get::<String, _>(1)).unwrap_or(Policy::ReserveOnOrder),
            cart_ttl_ms: r.get(2),
        })
        .collect())
}
