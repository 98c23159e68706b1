//! Intent-classification figures: accuracy, macro-F1 and, with an out-of-scope label, in-scope
//! accuracy and out-of-scope recall (the definitions of the CLINC150 out-of-scope benchmark).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The figures of one evaluation.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Test messages.
    pub n: usize,
    /// Share predicted exactly (an out-of-scope message is right when predicted out of scope).
    pub accuracy: f64,
    /// Unweighted mean of per-label F1 over the labels of the test set.
    #[serde(rename = "macroF1")]
    pub macro_f1: f64,
    /// Among in-scope test messages, the share given their intent (out of scope counts as wrong).
    pub in_scope_accuracy: Option<f64>,
    /// Among out-of-scope test messages, the share predicted out of scope.
    pub oos_recall: Option<f64>,
    /// In-scope and out-of-scope test messages.
    pub in_scope_n: usize,
    /// Out-of-scope test messages.
    pub oos_n: usize,
    /// In-scope accuracy of the same model with out-of-scope detection switched off (its best
    /// in-scope intent always taken): the baseline of the detection's loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_scope_accuracy_without_detection: Option<f64>,
}

/// Scores predictions against gold labels; `oos` is the label both use for out of scope.
pub fn score(gold: &[String], predicted: &[String], oos: Option<&str>) -> Report {
    let n = gold.len().min(predicted.len());
    let mut tp: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fp: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fneg: BTreeMap<&str, usize> = BTreeMap::new();
    let labels: BTreeSet<&str> = gold[..n].iter().map(String::as_str).collect();
    let (mut right, mut in_n, mut in_right, mut oos_n, mut oos_right) = (0, 0, 0, 0, 0);
    for (g, p) in gold[..n].iter().zip(&predicted[..n]) {
        let ok = g == p;
        right += usize::from(ok);
        if ok {
            *tp.entry(g).or_default() += 1;
        } else {
            *fp.entry(p).or_default() += 1;
            *fneg.entry(g).or_default() += 1;
        }
        if Some(g.as_str()) == oos {
            oos_n += 1;
            oos_right += usize::from(ok);
        } else {
            in_n += 1;
            in_right += usize::from(ok);
        }
    }
    let f1s: Vec<f64> = labels
        .iter()
        .map(|l| {
            let t = *tp.get(l).unwrap_or(&0) as f64;
            let denom = 2.0 * t + *fp.get(l).unwrap_or(&0) as f64 + *fneg.get(l).unwrap_or(&0) as f64;
            if denom > 0.0 {
                2.0 * t / denom
            } else {
                0.0
            }
        })
        .collect();
    let ratio = |a: usize, b: usize| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    Report {
        n,
        accuracy: ratio(right, n),
        macro_f1: if f1s.is_empty() { 0.0 } else { f1s.iter().sum::<f64>() / f1s.len() as f64 },
        in_scope_accuracy: oos.map(|_| ratio(in_right, in_n)),
        oos_recall: oos.map(|_| ratio(oos_right, oos_n)),
        in_scope_n: in_n,
        oos_n,
        in_scope_accuracy_without_detection: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn figures_on_a_small_case() {
        let r = score(&s(&["a", "a", "b", "oos"]), &s(&["a", "b", "b", "oos"]), Some("oos"));
        assert_eq!(r.accuracy, 0.75);
        assert_eq!(r.in_scope_accuracy, Some(2.0 / 3.0));
        assert_eq!(r.oos_recall, Some(1.0));
        // F1: a = 2/3, b = 2/3, oos = 1
        assert!((r.macro_f1 - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-9);
    }
}

/// The figures of [`train_and_score`] with its timings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The figures.
    #[serde(flatten)]
    pub report: Report,
    /// Wall time of training, seconds.
    pub train_seconds: f64,
    /// Wall time of understanding every test message one at a time, seconds.
    pub predict_seconds: f64,
    /// The encoder used ("all-MiniLM-L6-v2" or "none").
    pub encoder: String,
}

/// Trains on `train`, understands every `test` message one by one and scores the intents
/// (a message understood as out of scope counts as `oos_label`).
pub fn train_and_score(
    train: &[crate::understanding::Example],
    test: &[crate::understanding::Example],
    encoder: Option<std::sync::Arc<crate::understanding::minilm::MiniLm>>,
    config: &crate::understanding::UnderstandingConfig,
    oos: Option<&str>,
    stage: &mut dyn FnMut(&str),
) -> Result<Outcome, crate::AssistantError> {
    use crate::understanding::{Understanding, UnderstandingModel, OUT_OF_SCOPE};
    let start = std::time::Instant::now();
    let model = UnderstandingModel::train_with(train, encoder.as_deref(), config, stage)?;
    let train_seconds = start.elapsed().as_secs_f64();
    let uses_encoder = model.uses_encoder();
    let u = Understanding::new(model, encoder);
    stage("understanding the test messages");
    let start = std::time::Instant::now();
    let label = oos.unwrap_or(OUT_OF_SCOPE);
    let understood: Vec<_> = test.iter().map(|e| u.understand(&e.text)).collect();
    let predict_seconds = start.elapsed().as_secs_f64();
    // Without an out-of-scope label the test has no out-of-scope messages: detection is not
    // scored and the closest intent is the prediction.
    let predicted: Vec<String> = understood
        .iter()
        .map(|x| match oos {
            Some(_) => x.intent.clone().unwrap_or_else(|| label.to_string()),
            None => x.closest.clone(),
        })
        .collect();
    let gold: Vec<String> = test.iter().map(|e| e.intent.clone()).collect();
    let mut report = score(&gold, &predicted, oos);
    if let Some(label) = oos {
        let (right, n) = gold
            .iter()
            .zip(&understood)
            .filter(|(g, _)| g.as_str() != label)
            .fold((0usize, 0usize), |(r, n), (g, x)| (r + usize::from(*g == x.closest), n + 1));
        report.in_scope_accuracy_without_detection = Some(if n > 0 { right as f64 / n as f64 } else { 0.0 });
    }
    Ok(Outcome {
        report,
        train_seconds,
        predict_seconds,
        encoder: if uses_encoder { "all-MiniLM-L6-v2" } else { "none" }.to_string(),
    })
}
