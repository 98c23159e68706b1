//! Popularity: how many distinct users bought each item, optionally decayed by age.

use crate::data::Dataset;

/// Popularity score per item: Σ over purchase lines of 0.5^(age / half_life) (no decay when
/// `half_life_days` is `None`), counting each user at most once per item and day.
pub fn popularity(data: &Dataset, half_life_days: Option<f64>) -> Vec<f32> {
    let now = data.rows.iter().map(|r| r.ts).max().unwrap_or(0);
    let mut seen = std::collections::HashSet::new();
    let mut scores = vec![0f32; data.items.len()];
    for r in &data.rows {
        if !seen.insert((r.user, r.item, r.ts / 86_400)) {
            continue;
        }
        let w = match half_life_days {
            Some(h) => 0.5f64.powf((now - r.ts) as f64 / 86_400.0 / h),
            None => 1.0,
        };
        scores[r.item as usize] += w as f32;
    }
    scores
}
