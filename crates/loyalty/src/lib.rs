//! Loyalty: one points account per unified customer. The ledger is append-only: every change is
//! a pair of signed entries moving points between buckets (pending → active → used or expired;
//! owed for reversals of points already spent), so each bucket's balance is the sum of its
//! entries and can be checked as such. Entries keep the profile they were earned by, and an
//! account is read over the customer's merge group, so merges and unmerges of profiles carry
//! the accounts with them without rewriting anything. Rules, rewards and tiers are data; every
//! change journeys care about (earnings, rewards, expiry, tier moves) is an event in the feed.

mod error;
mod events;
mod ledger;
mod migrations;
mod orders;
mod program;
mod rewards;
mod rules;
mod tiers;

pub use error::LoyaltyError;
pub use events::{events_after, lock_feed, LoyaltyEvent, LoyaltyEventKind};
pub use ledger::{
    active_by_profile, adjust, balance, expiring_by, forget, history, mature, redeem, warn_expiring, Balance, Bucket,
    Entry, Policy,
};
pub use migrations::MIGRATIONS;
pub use orders::apply_order_event;
pub use rewards::{grant, grant_once, is_birthday, rewards, set_rewards, Limit, Reward, Trigger};
pub use rules::{order_points, points_for, rules, set_rules, Rule, MAX_MULTIPLIER, MAX_RATE};

/// The most points one ledger entry may carry (an earning, an adjustment, a reward, a
/// redemption). Bounding every entry keeps every sum of a ledger far from overflow.
pub const MAX_POINTS: i64 = 1_000_000_000;
pub use tiers::{
    evaluate, qualifying, set_tiers, standing, tier_reached, tiers, NextTier, Qualifying, Standing, Tier,
    QUALIFYING_WINDOW_MS,
};
