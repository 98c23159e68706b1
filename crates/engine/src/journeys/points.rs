//! What a message says about loyalty: the points the cart would earn at the prices the message
//! shows (the earning rules, the tier multiplier and the arithmetic an order's earning uses,
//! `tailor_loyalty::order_points`), the customer's spendable balance and their tier. Read once
//! per batch, only for the customers whose message shows points; nothing is written.

use std::collections::HashMap;

use serde_json::{json, Value};
use tailor_loyalty as loyalty;
use tailor_profiles::Contact;

use crate::{Engine, EngineError};

/// The channel an order placed from a message is expected on (messages are priced for it too).
const CHANNEL: &str = "web";

/// One customer's account as a message shows it.
struct Account {
    /// Spendable (active) points.
    balance: i64,
    /// The tier held, if any.
    tier: Option<String>,
    /// The tier's earning multiplier (None: the program has no tiers).
    multiplier: Option<f64>,
}

/// The program and the accounts of a batch's customers.
#[derive(Default)]
pub(super) struct Points {
    rules: Vec<loyalty::Rule>,
    policy: loyalty::Policy,
    accounts: HashMap<String, Account>,
}

impl Points {
    /// Reads the program and the accounts of `customers` as of `now`.
    pub(super) async fn load(engine: &Engine, customers: &[&Contact], now: i64) -> Result<Points, EngineError> {
        if customers.is_empty() {
            return Ok(Points::default());
        }
        let mut conn = engine.db().reader().acquire().await?;
        let rules = loyalty::rules(&mut conn).await?;
        let tiers = loyalty::tiers(&mut conn).await?;
        let mut accounts = HashMap::with_capacity(customers.len());
        for c in customers {
            if c.members.is_empty() {
                continue;
            }
            let balance = loyalty::balance(&mut conn, &c.members).await?.active;
            let (tier, multiplier) = if tiers.is_empty() {
                (None, None)
            } else {
                let s = loyalty::standing(&mut conn, &c.members, &c.id, &tiers, now).await?;
                (s.tier, Some(s.multiplier))
            };
            accounts.insert(c.id.clone(), Account { balance, tier, multiplier });
        }
        Ok(Points { rules, policy: engine.loyalty_policy(), accounts })
    }

    /// The `points` a message shows `customer`: `earn` (what an order of `lines` — amount in
    /// cents and category — would earn at `now`), `balance` and, when they hold one, `tier`.
    /// None when the customer's account was not read or the arithmetic is out of range.
    pub(super) fn show(
        &self,
        customer: &str,
        lines: &[(i64, Option<String>)],
        now: i64,
        explanation: &mut Vec<String>,
    ) -> Option<Value> {
        let account = self.accounts.get(customer)?;
        let earn = match loyalty::order_points(lines, CHANNEL, now, &self.rules, &self.policy, account.multiplier) {
            Ok(p) => p,
            Err(e) => {
                explanation.push(format!("points left out: {e}"));
                return None;
            }
        };
        let mut why = format!("the cart would earn {earn} points");
        if let (Some(t), Some(m)) = (&account.tier, account.multiplier) {
            why.push_str(&format!(" ({t}: {m}x)"));
        }
        explanation.push(why);
        let mut out = json!({"earn": earn, "balance": account.balance});
        if let Some(t) = &account.tier {
            out["tier"] = json!(t);
        }
        Some(out)
    }
}
