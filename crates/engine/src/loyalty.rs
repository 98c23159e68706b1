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
            LoyaltyError::Insufficient(m) => EngineError::InsufficientPoints(m),
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
    /// Active points that expire within the warning window unless spent.
    pub expiring_soon: i64,
    /// The tier held, if any.
    pub tier: Option<String>,
    /// The held tier is lost at this time unless the customer qualifies again.
    #[serde(default, with = "tailor_core::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub tier_grace_until: Option<i64>,
    /// Points and spend of the last year, net of reversals: what tiers count.
    pub qualifying: loyalty::Qualifying,
    /// The next tier up and what it still needs.
    pub next_tier: Option<loyalty::NextTier>,
    /// The newest entries.
    pub history: Vec<Entry>,
}

/// A page of the loyalty event feed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyEventPage {
    /// Events after the cursor, oldest first.
    pub events: Vec<loyalty::LoyaltyEvent>,
    /// The cursor for the next page (the last event's position, or the one given).
    pub next: i64,
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

    /// The reward rules (welcome, birthday, engagement actions).
    pub async fn loyalty_rewards(&self) -> Result<Vec<loyalty::Reward>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(loyalty::rewards(&mut conn).await?)
    }

    /// Replaces the reward rules.
    pub async fn set_loyalty_rewards(&self, rewards: &[loyalty::Reward]) -> Result<(), EngineError> {
        Ok(loyalty::set_rewards(self.db(), rewards).await?)
    }

    /// Loyalty events after position `after` (earnings, rewards, expiry, tier changes).
    pub async fn loyalty_events(&self, after: i64, limit: i64) -> Result<LoyaltyEventPage, EngineError> {
        if !(1..=1000).contains(&limit) {
            return Err(EngineError::Invalid(FieldError::invalid("limit", "must be between 1 and 1000")));
        }
        let mut conn = self.db().reader().acquire().await?;
        let events = loyalty::events_after(&mut conn, after, limit).await?;
        let next = events.last().map_or(after, |e| e.seq);
        Ok(LoyaltyEventPage { events, next })
    }

    /// A customer's account, brought up to now (matured, settled, expired, tier re-evaluated).
    pub async fn loyalty_account(&self, id: &str) -> Result<LoyaltyAccount, EngineError> {
        self.loyalty_account_at(id, now_millis()).await
    }

    /// The account as of `now` (tests and the sweep move time forward).
    pub async fn loyalty_account_at(&self, id: &str, now: i64) -> Result<LoyaltyAccount, EngineError> {
        let policy = self.loyalty_policy();
        let mut tx = self.db().writer().begin().await?;
        let (root, members) = account_of(&mut tx, id).await?;
        let tiers = loyalty::tiers(&mut tx).await?;
        let standing = bring_up_to_date(&mut tx, &members, &root, &tiers, &policy, now).await?;
        let balance = loyalty::balance(&mut tx, &members).await?;
        let expiring_soon = loyalty::expiring_by(&mut tx, &members, &policy, now + policy.expiry_warning_ms).await?;
        let history = loyalty::history(&mut tx, &members, 50).await?;
        tx.commit().await?;
        Ok(LoyaltyAccount {
            profile_id: root,
            balance,
            expiring_soon,
            tier: standing.tier,
            tier_grace_until: standing.grace_until,
            qualifying: standing.qualifying,
            next_tier: standing.next_tier,
            history,
        })
    }

    /// Brings every account up to `now`: matures and expires points, warns of points expiring
    /// soon, moves tiers whose grace ended, and grants birthday rewards due today. Idempotent;
    /// the server runs it hourly. Returns the accounts visited.
    pub async fn sweep_loyalty(&self, now: i64) -> Result<usize, EngineError> {
        let policy = self.loyalty_policy();
        let mut conn = self.db().reader().acquire().await?;
        let tiers = loyalty::tiers(&mut conn).await?;
        let birthday_rewards: Vec<loyalty::Reward> = loyalty::rewards(&mut conn)
            .await?
            .into_iter()
            .filter(|r| r.trigger == loyalty::Trigger::Birthday)
            .collect();
        let mut profiles: Vec<String> =
            sqlx::query("SELECT DISTINCT profile_id FROM loyalty_entries UNION SELECT profile_id FROM loyalty_status")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        let celebrating = if birthday_rewards.is_empty() {
            Vec::new()
        } else {
            tailor_profiles::with_trait(&mut conn, "birthday")
                .await?
                .into_iter()
                .filter(|(_, day)| loyalty::is_birthday(day, now))
                .map(|(id, _)| id)
                .collect()
        };
        profiles.extend(celebrating.iter().cloned());
        drop(conn);
        let mut seen = std::collections::HashSet::new();
        for profile in profiles {
            // One account failing (e.g. a deadlock victim) must not stop the others.
            let swept = async {
                let mut tx = self.db().writer().begin().await?;
                let Some(root) = tailor_profiles::root_of(&mut tx, &profile).await? else { return Ok(()) };
                if !seen.insert(root.clone()) {
                    return Ok(());
                }
                let members = tailor_profiles::group_of(&mut tx, &root).await?;
                bring_up_to_date(&mut tx, &members, &root, &tiers, &policy, now).await?;
                loyalty::warn_expiring(&mut tx, &members, &root, &policy, policy.expiry_warning_ms, now).await?;
                if members.iter().any(|m| celebrating.contains(m)) {
                    for reward in &birthday_rewards {
                        loyalty::grant(&mut tx, &members, &root, reward, now).await?;
                    }
                }
                tx.commit().await?;
                Ok::<(), EngineError>(())
            }
            .await;
            if let Err(e) = swept {
                tracing::warn!(error = %e, "sweeping a loyalty account failed; the next sweep retries it");
            }
        }
        Ok(seen.len())
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
        // The key answers for this customer's redemption with this body only.
        let hash = format!("{:x}", Sha256::digest([id.as_bytes(), b"\x1fredeem\x1f", body].concat()));
        if let Some(key) = idempotency {
            use tailor_store::idempotency::{recorded, Recorded};
            match recorded(&mut tx, "loyalty_idempotency", key, &hash).await? {
                Recorded::Nothing => {}
                Recorded::Answer(answer) => {
                    return serde_json::from_str(&answer).map_err(|e| EngineError::Io(e.to_string()))
                }
                Recorded::OtherRequest => {
                    return Err(EngineError::Invalid(FieldError::invalid(
                        "Idempotency-Key",
                        "this key was used for another request (body or customer); use a new key for a new request",
                    )))
                }
            }
        }
        let (root, members) = account_of(&mut tx, id).await?;
        let policy = self.loyalty_policy();
        let now = now_millis();
        let discount_cents = loyalty::redeem(&mut tx, &members, &root, points, &policy, now).await?;
        let balance = loyalty::balance(&mut tx, &members).await?;
        let r = Redemption { points, discount_cents, balance };
        if let Some(key) = idempotency {
            let answer = serde_json::to_string(&r).unwrap_or_default();
            tailor_store::idempotency::record(&mut tx, "loyalty_idempotency", key, &hash, &answer, now).await?;
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

/// How often the server sweeps loyalty accounts (expiry, warnings, tier grace, birthdays).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Sweeps every account at start and then hourly until the engine closes.
pub(crate) fn sweep_job() -> crate::supervisor::Job {
    crate::supervisor::Job {
        name: "loyalty_sweep",
        first_after: std::time::Duration::ZERO,
        every: SWEEP_EVERY,
        wake: None,
        round: std::sync::Arc::new(|engine: Engine| {
            Box::pin(async move {
                let n = engine.sweep_loyalty(now_millis()).await?;
                tracing::debug!(accounts = n, "loyalty accounts swept");
                Ok(())
            })
        }),
    }
}

/// Matures, settles and expires an account's points and re-evaluates its tier.
async fn bring_up_to_date(
    conn: &mut AnyConnection,
    members: &[String],
    root: &str,
    tiers: &[loyalty::Tier],
    policy: &Policy,
    now: i64,
) -> Result<loyalty::Standing, EngineError> {
    loyalty::mature(conn, members, root, policy, now).await?;
    Ok(loyalty::evaluate(conn, members, root, tiers, now).await?)
}

/// What the projection applies loyalty with: the earning rules, tiers and rewards in force.
pub(crate) struct Program {
    pub(crate) rules: Vec<loyalty::Rule>,
    pub(crate) tiers: Vec<loyalty::Tier>,
    pub(crate) rewards: Vec<loyalty::Reward>,
    pub(crate) policy: Policy,
}

impl Program {
    pub(crate) async fn load(conn: &mut AnyConnection, policy: Policy) -> Result<Program, EngineError> {
        Ok(Program {
            rules: loyalty::rules(conn).await?,
            tiers: loyalty::tiers(conn).await?,
            rewards: loyalty::rewards(conn).await?,
            policy,
        })
    }
}

/// Applies an event's loyalty effects in the projection's transaction; `profile` is the profile
/// the event resolved to (its entries stay with it, so an unmerge takes them back).
pub(crate) async fn project(
    conn: &mut AnyConnection,
    body: &serde_json::Value,
    commerce: Option<&tailor_core::Commerce>,
    profile: &str,
    channel: &str,
    program: &Program,
    at: i64,
) -> Result<(), EngineError> {
    if body.get("type").and_then(serde_json::Value::as_str) != Some("track") {
        return Ok(());
    }
    let event = body.get("event").and_then(serde_json::Value::as_str).unwrap_or("");
    let (root, members) = match event {
        // Without tiers earning touches only the earner's entries: no need to read the group
        // (the demo projects 156k orders).
        "Order Completed" if program.tiers.is_empty() => (profile.to_string(), vec![profile.to_string()]),
        "Order Completed" | "Order Refunded" | "Order Cancelled" => account_of(conn, profile).await?,
        _ if program.rewards.iter().any(|r| r.granted_by(event)) => account_of(conn, profile).await?,
        _ => return Ok(()),
    };
    for reward in program.rewards.iter().filter(|r| r.granted_by(event)) {
        loyalty::grant(conn, &members, &root, reward, at).await?;
    }
    if let Some(c) = commerce {
        let earning = (channel, program.rules.as_slice(), program.tiers.as_slice());
        loyalty::apply_order_event(conn, c, &members, profile, &root, earning, &program.policy, at).await?;
    }
    Ok(())
}
