//! Loyalty: one points account per unified customer. The ledger is append-only: every change is
//! a pair of signed entries moving points between buckets (pending → active → used or expired;
//! owed for reversals of points already spent), so each bucket's balance is the sum of its
//! entries and can be checked as such. Entries keep the profile they were earned by, and an
//! account is read over the customer's merge group, so merges and unmerges of profiles carry
//! the accounts with them without rewriting anything.

mod error;
mod ledger;
mod migrations;
mod orders;
mod rules;

pub use error::LoyaltyError;
pub use ledger::{adjust, balance, history, mature, redeem, Balance, Bucket, Entry, Policy};
pub use migrations::MIGRATIONS;
pub use orders::apply_order_event;
pub use rules::{
    points_for, qualifying_points, rules, set_rules, set_tiers, tier_for, tiers, Rule, Tier, QUALIFYING_WINDOW_MS,
};
