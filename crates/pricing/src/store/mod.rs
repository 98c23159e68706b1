//! The pricing tables and every query on them: the price book and its recorded decisions,
//! guardrails, promotions (with a short-lived cache), market inputs, issued personal offers,
//! live experiments and the category elasticity estimates they start from. Async functions over a connection the caller holds (so several calls can
//! share one transaction) or over the [`tailor_store::Db`]; the rules they store live in the
//! pure modules of this crate.

mod book;
mod elasticity;
mod experiments;
mod guardrails;
mod market;
mod migrations;
mod offers;
mod promotions;

pub use book::{list_price, list_prices, price_history, set_list_price};
pub use elasticity::{category_elasticity, set_category_elasticity};
pub use experiments::{experiment_of, save_experiment, watched_experiments};
pub use guardrails::{guardrails_for, guardrails_of, set_guardrails};
pub use market::{recent_market, record_market};
pub use migrations::MIGRATIONS;
pub use offers::{forget_offers, issue_offers, lock_offers, offers_issued, offers_of, Issued, IssuedOffer};
pub use promotions::{delete_promotion, promotions, put_promotion, PromotionCache};

/// A stored JSON body read back; a row that no longer parses is skipped by list readers.
fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Option<T> {
    serde_json::from_str(body).ok()
}
