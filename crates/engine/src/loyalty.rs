//! Loyalty through the engine: an account per unified customer (its merge group), read and
//! changed in one transaction with the account locked, redemptions with idempotency keys, and
//! orders earning and reversing points in the event projection.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use tailor_core::time::now_millis;
use tailor_core::FieldError;
use tailor_loyalty as loyalty;
use tailor_loyalty::{Balance, Entry, LoyaltyError, Policy};

use crate::{Engine, EngineError};

impl From<LoyaltyError> for EngineError {
    fn from(e: LoyaltyError) -> Self {
        match e {
            LoyaltyError::Invalid(f) => EngineError::Invalid(f),
            LoyaltyError::Insufficient(m) => EngineError::Conflict(m),
            LoyaltyError::Db(d) => EngineError::Db(d),
        }
    }
}

/// A customer's loyalty account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyAccount {
    /// The customer (root profile).
    pub profile_id: String,
    /// Points per bucket.
    pub balance: Balance,
    /// The tier reached, if any.
    pub tier: Option<String>,
    /// Points earned in the last year, net of reversals: what tiers count.
    pub qualifying_points: i64,
    /// The next tier and the qualifying points still needed for it.
    pub next_tier: Option<(String, i64)>,
    /// The newest entries.
    pub history: Vec<Entry>,
}

/// A redemption's result.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redemption {
    /// Points spent.
    pub points: i64,
    /// The discount they buy, in cents.
    pub discount_cents: i64,
    /// The balance after it.
    pub balance: Balance,
}

/// The root of `id` and every profile of its group; unknown profiles are refused.
pub(crate) async fn account_of(conn: &mut AnyConnection, id: &str) -> Result<(String, Vec<String>), EngineError> {
    let root = tailor_profiles::root_of(conn, id)
        .await?
        .ok_or_else(|| EngineError::Invalid(FieldError::unknown("profileId", format!("no customer with id '{id}'"))))?;
    let members = tailor_profiles::group_of(conn, &root).await?;
    Ok((root, members))
}

impl Engine {
    /// The program's policy (points per unit, return window, expiry, point value).
    pub fn loyalty_policy(&self) -> Policy {
        Policy::default()
    }

    /// The earning rules in force.
    pub async fn loyalty_rules(&self) -> Result<Vec<loyalty::Rule>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(loyalty::rules(&mut conn).await?)
    }

    /// Replaces the earning rules (orders projected from now on earn by them).
    pub async fn set_loyalty_rules(&self, rules: &[loyalty::Rule]) -> Result<(), EngineError> {
        Ok(loyalty::set_rules(self.db(), rules).await?)
    }

    /// The tiers, lowest first.
    pub async fn loyalty_tiers(&self) -> Result<Vec<loyalty::Tier>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(loyalty::tiers(&mut conn).await?)
    }

    /// Replaces the tiers.
    pub async fn set_loyalty_tiers(&self, tiers: &[loyalty::Tier]) -> Result<(), EngineError> {
        Ok(loyalty::set_tiers(self.db(), tiers).await?)
    }

    /// A customer's account, brought up to now (matured, settled, expired).
    pub async fn loyalty_account(&self, id: &str) -> Result<LoyaltyAccount, EngineError> {
        let mut tx = self.db().writer().begin().await?;
        let (root, members) = account_of(&mut tx, id).await?;
        loyalty::mature(&mut tx, &members, &root, &self.loyalty_policy(), now_millis()).await?;
        let balance = loyalty::balance(&mut tx, &members).await?;
        let history = loyalty::history(&mut tx, &members, 50).await?;
        let tiers = loyalty::tiers(&mut tx).await?;
        let qualifying_points = loyalty::qualifying_points(&mut tx, &members, now_millis()).await?;
        tx.commit().await?;
        let tier = loyalty::tier_for(qualifying_points, &tiers).map(|t| t.name.clone());
        let next_tier = tiers
            .iter()
            .find(|t| t.min_points > qualifying_points)
            .map(|t| (t.name.clone(), t.min_points - qualifying_points));
        Ok(LoyaltyAccount { profile_id: root, balance, tier, qualifying_points, next_tier, history })
    }

    /// Spends points for a discount. With an Idempotency-Key (and the request body), a retry
    /// gets the first answer and a reused key with another body is refused.
    pub async fn redeem_points(
        &self,
        id: &str,
        points: i64,
        idempotency: Option<&str>,
        body: &[u8],
    ) -> Result<Redemption, EngineError> {
        let mut tx = self.db().writer().begin().await?;
        let hash = format!("{:x}", Sha256::digest(body));
        if let Some(key) = idempotency {
            let row = sqlx::query("SELECT request_hash, response FROM loyalty_idempotency WHERE idem_key = $1")
                .bind(key.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(r) = row {
                if r.get::<String, _>(0) != hash {
                    return Err(EngineError::Invalid(FieldError::invalid(
                        "Idempotency-Key",
                        "this key was used with a different body; use a new key for a new request",
                    )));
                }
                let answer: String = r.get(1);
                return serde_json::from_str(&answer).map_err(|e| EngineError::Io(e.to_string()));
            }
        }
        let (root, members) = account_of(&mut tx, id).await?;
        let policy = self.loyalty_policy();
        let now = now_millis();
        let discount_cents = loyalty::redeem(&mut tx, &members, &root, points, &policy, now).await?;
        let balance = loyalty::balance(&mut tx, &members).await?;
        let r = Redemption { points, discount_cents, balance };
        if let Some(key) = idempotency {
            sqlx::query("INSERT INTO loyalty_idempotency (idem_key, request_hash, response, created_at) VALUES ($1, $2, $3, $4)")
                .bind(key.to_string())
                .bind(hash)
                .bind(serde_json::to_string(&r).unwrap_or_default())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r)
    }

    /// An admin's correction with its reason.
    pub async fn adjust_points(&self, id: &str, points: i64, reason: &str) -> Result<LoyaltyAccount, EngineError> {
        let mut tx = self.db().writer().begin().await?;
        let (root, members) = account_of(&mut tx, id).await?;
        loyalty::adjust(&mut tx, &members, &root, points, reason, &self.loyalty_policy(), now_millis()).await?;
        tx.commit().await?;
        self.loyalty_account(&root).await
    }
}

/// Applies an event's loyalty effects in the projection's transaction; `profile` is the profile
/// the event resolved to (its entries stay with it, so an unmerge takes them back).
pub(crate) async fn project(
    conn: &mut AnyConnection,
    body: &serde_json::Value,
    profile: &str,
    earning: (&str, &[loyalty::Rule], &[loyalty::Tier]),
    policy: &Policy,
    at: i64,
) -> Result<(), EngineError> {
    let members = match body.get("event").and_then(serde_json::Value::as_str) {
        // Earning touches only the earner's entries: no need to read the group (the demo
        // projects 156k orders).
        Some("Order Completed") => vec![profile.to_string()],
        Some("Order Refunded" | "Order Cancelled") => account_of(conn, profile).await?.1,
        _ => return Ok(()),
    };
    loyalty::apply_order_event(conn, body, &members, profile, earning, policy, at).await?;
    Ok(())
}
