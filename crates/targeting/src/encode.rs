//! Turns raw feature values into numbers, learned from the training rows only: numeric columns are
//! standardized, text columns become one indicator per level seen in training (an unseen level
//! is all zeros), and small whole-number columns (e.g. months since last purchase) also get
//! indicators, since their effect is rarely a straight line.

use std::collections::BTreeSet;

use crate::TargetingError;

/// At most this many distinct whole numbers make a column also categorical.
const SMALL_LEVELS: usize = 12;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Column {
    Numeric { mean: f64, sd: f64, levels: Vec<i64> },
    Categorical { levels: Vec<String> },
}

/// The learned encoding of a campaign's feature columns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Encoder {
    names: Vec<String>,
    columns: Vec<Column>,
    /// Whether small whole-number columns also get level indicators.
    levels_for_small_numbers: bool,
}

impl Encoder {
    /// Learns the encoding from training rows.
    pub fn fit(names: &[String], rows: &[Vec<String>], levels_for_small_numbers: bool) -> Encoder {
        let columns = (0..names.len())
            .map(|c| {
                let values: Vec<&str> = rows.iter().map(|r| r[c].as_str()).filter(|v| !v.is_empty()).collect();
                let numbers: Option<Vec<f64>> =
                    values.iter().map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite())).collect();
                match numbers {
                    Some(xs) if !xs.is_empty() => {
                        let n = xs.len() as f64;
                        let mean = xs.iter().sum::<f64>() / n;
                        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                        let whole: Option<BTreeSet<i64>> =
                            xs.iter().map(|&x| (x.fract() == 0.0 && x.abs() < 1e9).then_some(x as i64)).collect();
                        let levels = match whole {
                            Some(set) if levels_for_small_numbers && set.len() > 2 && set.len() <= SMALL_LEVELS => {
                                set.into_iter().collect()
                            }
                            _ => Vec::new(),
                        };
                        Column::Numeric { mean, sd: if sd > 0.0 { sd } else { 1.0 }, levels }
                    }
                    _ => {
                        let levels: BTreeSet<String> = values.iter().map(|v| (*v).to_owned()).collect();
                        Column::Categorical { levels: levels.into_iter().collect() }
                    }
                }
            })
            .collect();
        Encoder { names: names.to_vec(), columns, levels_for_small_numbers }
    }

    /// How many numbers a row becomes.
    pub fn width(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Numeric { levels, .. } => 1 + levels.len(),
                Column::Categorical { levels } => levels.len(),
            })
            .sum()
    }

    /// Encodes one row (values in the training file's column order); `line` names the row in errors.
    pub fn encode(&self, row: &[String], line: usize) -> Result<Vec<f64>, TargetingError> {
        let mut out = Vec::with_capacity(self.width());
        for ((column, value), name) in self.columns.iter().zip(row).zip(&self.names) {
            let value = value.trim();
            match column {
                Column::Numeric { mean, sd, levels } => {
                    let x = if value.is_empty() {
                        *mean
                    } else {
                        value.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
                            TargetingError::BadColumn {
                                column: name.clone(),
                                reason: format!(
                                    "line {line}: {:?} is not a number",
                                    value.chars().take(40).collect::<String>()
                                ),
                            }
                        })?
                    };
                    out.push((x - mean) / sd);
                    out.extend(levels.iter().map(|&l| f64::from(u8::from(x == l as f64))));
                }
                Column::Categorical { levels } => {
                    out.extend(levels.iter().map(|l| f64::from(u8::from(l == value))));
                }
            }
        }
        Ok(out)
    }

    /// Whether small whole-number columns got level indicators.
    pub fn levels_for_small_numbers(&self) -> bool {
        self.levels_for_small_numbers
    }

    /// The feature columns this encoder expects, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_standardized_and_text_becomes_indicators() {
        let names = vec!["months".to_owned(), "zip".to_owned()];
        let rows: Vec<Vec<String>> = [("1", "Rural"), ("2", "Urban"), ("3", "Urban"), ("2", "Rural")]
            .iter()
            .map(|(a, b)| vec![(*a).to_owned(), (*b).to_owned()])
            .collect();
        let plain = Encoder::fit(&names, &rows, false);
        assert_eq!(plain.width(), 3);
        let row = plain.encode(&["2".into(), "Suburban".into()], 2).unwrap();
        assert_eq!(row, [0.0, 0.0, 0.0]);
        let levels = Encoder::fit(&names, &rows, true);
        assert_eq!(levels.width(), 6);
        assert_eq!(levels.encode(&["3".into(), "Urban".into()], 2).unwrap()[1..4], [0.0, 0.0, 1.0]);
        let err = plain.encode(&["x".into(), "Urban".into()], 7).unwrap_err();
        assert_eq!(err.to_string(), "column `months`: line 7: \"x\" is not a number");
    }
}
