//! Uplift: how much a message raises each customer's chance to act, learned from a randomized
//! past campaign. Ranking by uplift sends to those the message changes, not to those who would
//! act anyway (who rank first by plain response models).

use serde::{Deserialize, Serialize};

use crate::encode::Encoder;
use crate::logistic::Logistic;
use crate::table::Campaign;
use crate::TargetingError;

/// How an uplift model is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// One response model for the treated (all arms pooled), one for the control.
    TwoModel,
    /// One response model per arm and one for the control: messages that differ (men's and
    /// women's e-mails) change different people.
    PerArm,
    /// One model with each arm's interaction with every feature, penalized together, so arms
    /// borrow strength from the control's baseline.
    Interaction,
}

/// One member of the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The model family.
    pub method: Method,
    /// L2 penalty on standardized weights (1/C in scikit-learn's terms).
    pub l2: f64,
    /// Whether small whole-number columns also get level indicators.
    pub levels: bool,
}

/// The default: one model of each arm's interaction with every feature, lightly penalized. On the
/// Hillstrom bench it ranked at or above the two-model peer on the shared split and on the mean of
/// ten re-splits, where the two-model, per-arm and level-indicator variants (alone or averaged)
/// each lost one of the four (`bench/uplift/compare.py`). Other members stay for trying.
pub const DEFAULT_ENSEMBLE: [Member; 1] = [Member { method: Method::Interaction, l2: 1.0, levels: false }];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fitted {
    encoder: Encoder,
    method: Method,
    /// TwoModel: [control, treated]; PerArm: [control, arm 1, …]; Interaction: [joint].
    models: Vec<Logistic>,
}

/// A fitted uplift model: an average of members' predicted rises in the probability to act.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpliftModel {
    members: Vec<Fitted>,
    /// Share of each message arm among the treated in training: the "any message" uplift is
    /// their weighted mean.
    arm_shares: Vec<f64>,
    arms: Vec<String>,
}

impl UpliftModel {
    /// Fits every member on a randomized campaign.
    pub fn fit(train: &Campaign, members: &[Member]) -> Result<UpliftModel, TargetingError> {
        let arms = train.arms.len();
        let mut counts = vec![0usize; arms + 1];
        for &a in &train.arm {
            counts[a] += 1;
        }
        let treated: usize = counts[1..].iter().sum();
        if counts[0] == 0 || treated == 0 {
            return Err(TargetingError::BadColumn {
                column: "treatment".into(),
                reason: "a training file needs both treated and control rows (randomized)".into(),
            });
        }
        let arm_shares = counts[1..].iter().map(|&c| c as f64 / treated as f64).collect();
        let mut fitted = Vec::new();
        for member in members {
            let encoder = Encoder::fit(&train.features, &train.rows, member.levels);
            let x = encode_all(&encoder, &train.rows)?;
            let subset = |keep: &dyn Fn(usize) -> bool| {
                let rows: Vec<Vec<f64>> = (0..x.len()).filter(|&i| keep(train.arm[i])).map(|i| x[i].clone()).collect();
                let y: Vec<bool> = (0..x.len()).filter(|&i| keep(train.arm[i])).map(|i| train.outcome[i]).collect();
                Logistic::fit(&rows, &y, member.l2)
            };
            let models = match member.method {
                Method::TwoModel => vec![subset(&|a| a == 0), subset(&|a| a > 0)],
                Method::PerArm => (0..=arms).map(|k| subset(&|a| a == k)).collect(),
                Method::Interaction => {
                    let rows: Vec<Vec<f64>> = x.iter().zip(&train.arm).map(|(r, &a)| interact(r, a, arms)).collect();
                    vec![Logistic::fit(&rows, &train.outcome, member.l2)]
                }
            };
            fitted.push(Fitted { encoder, method: member.method, models });
        }
        Ok(UpliftModel { members: fitted, arm_shares, arms: train.arms.clone() })
    }

    /// The message arms the model knows, for reading a scoring file.
    pub fn arms(&self) -> &[String] {
        &self.arms
    }

    /// The predicted rise in the probability to act if sent a message, for one customer's raw
    /// feature values (in the training file's column order).
    pub fn uplift(&self, row: &[String], line: usize) -> Result<f64, TargetingError> {
        let mut total = 0.0;
        for member in &self.members {
            let x = member.encoder.encode(row, line)?;
            let arms = self.arm_shares.len();
            let value = match member.method {
                Method::TwoModel => member.models[1].probability(&x) - member.models[0].probability(&x),
                Method::PerArm => {
                    let control = member.models[0].probability(&x);
                    (1..=arms).map(|k| self.arm_shares[k - 1] * member.models[k].probability(&x)).sum::<f64>() - control
                }
                Method::Interaction => {
                    let model = &member.models[0];
                    let control = model.probability(&interact(&x, 0, arms));
                    (1..=arms).map(|k| self.arm_shares[k - 1] * model.probability(&interact(&x, k, arms))).sum::<f64>()
                        - control
                }
            };
            total += value;
        }
        Ok(total / self.members.len().max(1) as f64)
    }

    /// Scores every row of a campaign (its arm and outcome are ignored).
    pub fn score(&self, campaign: &Campaign) -> Result<Vec<f64>, TargetingError> {
        campaign.rows.iter().enumerate().map(|(i, row)| self.uplift(row, i + 2)).collect()
    }
}

fn encode_all(encoder: &Encoder, rows: &[Vec<String>]) -> Result<Vec<Vec<f64>>, TargetingError> {
    rows.iter().enumerate().map(|(i, r)| encoder.encode(r, i + 2)).collect()
}

/// `[x, x·[arm = 1], …, x·[arm = K], [arm = 1], …, [arm = K]]`.
fn interact(x: &[f64], arm: usize, arms: usize) -> Vec<f64> {
    let d = x.len();
    let mut out = vec![0.0; d * (arms + 1) + arms];
    out[..d].copy_from_slice(x);
    if arm > 0 {
        out[d * arm..d * (arm + 1)].copy_from_slice(x);
        out[d * (arms + 1) + arm - 1] = 1.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A campaign where the message works only on customers with `young = 1`.
    fn campaign(seed: u64, n: usize) -> Campaign {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut c = Campaign {
            features: vec!["young".into(), "noise".into()],
            rows: Vec::new(),
            arm: Vec::new(),
            arms: vec!["1".into()],
            outcome: Vec::new(),
        };
        for _ in 0..n {
            let young = rng.gen_bool(0.5);
            let treated = rng.gen_bool(0.5);
            let p = 0.1 + if young && treated { 0.2 } else { 0.0 };
            c.rows.push(vec![u8::from(young).to_string(), format!("{:.3}", rng.gen::<f64>())]);
            c.arm.push(usize::from(treated));
            c.outcome.push(rng.gen_bool(p));
        }
        c
    }

    #[test]
    fn the_customers_a_message_changes_rank_first() {
        let model = UpliftModel::fit(&campaign(1, 8000), &DEFAULT_ENSEMBLE).unwrap();
        let young = model.uplift(&["1".into(), "0.5".into()], 1).unwrap();
        let old = model.uplift(&["0".into(), "0.5".into()], 1).unwrap();
        assert!((young - 0.2).abs() < 0.06, "young {young}");
        assert!(old.abs() < 0.05, "old {old}");
    }
}
