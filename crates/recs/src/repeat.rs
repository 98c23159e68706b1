//! Repeat purchase: a user's own items scored by how often and how recently they bought them, and
//! whether they are due by their usual interval ("you buy this about every 3 weeks").

use std::collections::HashMap;

use crate::data::Dataset;

/// Per user, their items with a repeat score.
#[derive(Debug, Clone)]
pub struct Repeat {
    /// For each user: item → score.
    pub scores: Vec<HashMap<u32, f32>>,
    /// For each user: item → mean days between purchases (when bought on two days or more).
    pub interval_days: Vec<HashMap<u32, f32>>,
}

impl Repeat {
    /// Scores each user's items with purchase-day counts decayed by `half_life_days` from the
    /// user's last day.
    pub fn train(data: &Dataset, half_life_days: f64) -> Repeat {
        let users = data.users.len();
        let mut days: Vec<HashMap<u32, Vec<i64>>> = vec![HashMap::new(); users];
        let mut last = vec![i64::MIN; users];
        for r in &data.rows {
            let d = r.ts.div_euclid(86_400);
            let v = days[r.user as usize].entry(r.item).or_default();
            if !v.contains(&d) {
                v.push(d);
            }
            last[r.user as usize] = last[r.user as usize].max(d);
        }
        let mut scores = vec![HashMap::new(); users];
        let mut interval_days = vec![HashMap::new(); users];
        for u in 0..users {
            for (item, ds) in &days[u] {
                let s: f64 = ds.iter().map(|d| 0.5f64.powf((last[u] - d) as f64 / half_life_days)).sum();
                scores[u].insert(*item, s as f32);
                if ds.len() >= 2 {
                    let (mn, mx) = (ds.iter().min().copied().unwrap_or(0), ds.iter().max().copied().unwrap_or(0));
                    interval_days[u].insert(*item, (mx - mn) as f32 / (ds.len() - 1) as f32);
                }
            }
        }
        Repeat { scores, interval_days }
    }
}
