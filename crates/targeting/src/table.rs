//! A past campaign as a table: per customer, the arm they were randomized to (control or one of
//! the messages), whether they acted, and their features as of the send. Read from CSV with every
//! column checked, so a wrong file is refused naming the column instead of training on garbage.

use std::collections::BTreeMap;
use std::io::Read;

use crate::TargetingError;

/// Which columns of a campaign file mean what.
#[derive(Debug, Clone)]
pub struct Columns {
    /// The treatment column: 0/1, or arm names when `control` is set.
    pub treatment: String,
    /// The treatment value that means "held out" (e.g. `No E-Mail`); `None`: the column is 0/1.
    pub control: Option<String>,
    /// The outcome column, 0/1 (acted or not).
    pub outcome: String,
    /// Columns that are neither features nor the above (e.g. other outcomes measured after the send).
    pub exclude: Vec<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns { treatment: "treatment".into(), control: None, outcome: "outcome".into(), exclude: Vec::new() }
    }
}

/// A campaign's rows: arm, outcome and raw feature values.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Feature column names, in file order.
    pub features: Vec<String>,
    /// Per row, its feature values as written.
    pub rows: Vec<Vec<String>>,
    /// Per row, 0 for control, `k` for the `k`-th message arm (`arms[k - 1]`).
    pub arm: Vec<usize>,
    /// Message arm names (`["1"]` for a 0/1 treatment column).
    pub arms: Vec<String>,
    /// Per row, whether the customer acted.
    pub outcome: Vec<bool>,
}

impl Campaign {
    /// Reads a campaign from CSV. `arms`: the message arms to map names to (those of the
    /// training file when reading a test file); `None` to collect them from this file.
    pub fn read(input: impl Read, columns: &Columns, arms: Option<&[String]>) -> Result<Campaign, TargetingError> {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| TargetingError::Csv(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| TargetingError::MissingColumn { column: name.to_owned() })
        };
        let treatment_at = find(&columns.treatment)?;
        let outcome_at = find(&columns.outcome)?;
        for excluded in &columns.exclude {
            find(excluded)?;
        }
        let feature_at: Vec<usize> = (0..header.len())
            .filter(|&i| i != treatment_at && i != outcome_at && !columns.exclude.contains(&header[i]))
            .collect();
        let mut known: Vec<String> = arms.map(<[String]>::to_vec).unwrap_or_default();
        let mut campaign = Campaign {
            features: feature_at.iter().map(|&i| header[i].clone()).collect(),
            rows: Vec::new(),
            arm: Vec::new(),
            arms: Vec::new(),
            outcome: Vec::new(),
        };
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record = record.map_err(|e| TargetingError::Csv(format!("line {line}: {e}")))?;
            let value = |i: usize| record.get(i).unwrap_or("").trim();
            let outcome = match value(outcome_at) {
                "0" => false,
                "1" => true,
                other => return Err(bad(&columns.outcome, line, other, "0 or 1")),
            };
            let treatment = value(treatment_at);
            let arm = match &columns.control {
                None => match treatment {
                    "0" => 0,
                    "1" => {
                        if known.is_empty() {
                            known.push("1".into());
                        }
                        1
                    }
                    other => return Err(bad(&columns.treatment, line, other, "0 or 1")),
                },
                Some(control) if treatment == control => 0,
                Some(_) if treatment.is_empty() => {
                    return Err(bad(&columns.treatment, line, treatment, "an arm name or the control value"))
                }
                Some(_) => match known.iter().position(|a| a == treatment) {
                    Some(k) => k + 1,
                    None if arms.is_none() => {
                        known.push(treatment.to_owned());
                        known.len()
                    }
                    None => return Err(bad(&columns.treatment, line, treatment, "an arm seen in training")),
                },
            };
            campaign.arm.push(arm);
            campaign.outcome.push(outcome);
            campaign.rows.push(feature_at.iter().map(|&i| value(i).to_owned()).collect());
        }
        campaign.arms = known;
        Ok(campaign)
    }

    /// Whether 1 (the first) .. every message arm and the control each hold at least one row.
    pub fn check_arms(&self, column: &str) -> Result<(), TargetingError> {
        let mut counts = BTreeMap::new();
        for &a in &self.arm {
            *counts.entry(a).or_insert(0usize) += 1;
        }
        if !counts.contains_key(&0) || counts.len() < 2 {
            return Err(TargetingError::BadColumn {
                column: column.to_owned(),
                reason: "a training file needs both treated and control rows (randomized)".into(),
            });
        }
        Ok(())
    }
}

fn bad(column: &str, line: usize, value: &str, expected: &str) -> TargetingError {
    let mut shown: String = value.chars().take(40).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    TargetingError::BadColumn { column: column.to_owned(), reason: format!("line {line}: {shown:?} is not {expected}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hillstrom() -> Columns {
        Columns {
            treatment: "segment".into(),
            control: Some("No E-Mail".into()),
            outcome: "visit".into(),
            exclude: vec!["spend".into()],
        }
    }

    #[test]
    fn arms_outcomes_and_features_are_read() {
        let csv = "recency,zip,segment,visit,spend\n3,Rural,No E-Mail,0,0\n5,Urban,Mens E-Mail,1,10\n1,Urban,Womens E-Mail,0,0\n";
        let c = Campaign::read(csv.as_bytes(), &hillstrom(), None).unwrap();
        assert_eq!(c.features, ["recency", "zip"]);
        assert_eq!(c.arm, [0, 1, 2]);
        assert_eq!(c.arms, ["Mens E-Mail", "Womens E-Mail"]);
        assert_eq!(c.outcome, [false, true, false]);
        c.check_arms("segment").unwrap();
    }

    #[test]
    fn a_wrong_file_is_refused_naming_the_column() {
        let missing = Campaign::read("a,treatment\n1,0\n".as_bytes(), &Columns::default(), None).unwrap_err();
        assert_eq!(missing.to_string(), "the file has no column `outcome`");
        let not_binary =
            Campaign::read("a,treatment,outcome\n1,2,0\n".as_bytes(), &Columns::default(), None).unwrap_err();
        assert!(not_binary.to_string().starts_with("column `treatment`: line 2: \"2\" is not 0 or 1"), "{not_binary}");
        let bad_outcome =
            Campaign::read("a,treatment,outcome\n1,1,yes\n".as_bytes(), &Columns::default(), None).unwrap_err();
        assert!(bad_outcome.to_string().starts_with("column `outcome`"), "{bad_outcome}");
        let only_treated =
            Campaign::read("a,treatment,outcome\n1,1,0\n".as_bytes(), &Columns::default(), None).unwrap();
        assert!(only_treated.check_arms("treatment").is_err());
        let unseen = Campaign::read(
            "recency,zip,segment,visit,spend\n3,Rural,Other,0,0\n".as_bytes(),
            &hillstrom(),
            Some(&["Mens E-Mail".to_owned()]),
        )
        .unwrap_err();
        assert!(unseen.to_string().contains("an arm seen in training"), "{unseen}");
    }
}
