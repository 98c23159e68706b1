//! `tailor campaigns send-time-eval`: does choosing each household's hour from its own history
//! beat one hour for everyone? On The Complete Journey, each household's baskets before a cut
//! choose its hour; the hour of its next basket after the cut is the truth.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use tailor_targeting::sendtime::{choose_hour, within_an_hour, HourProfile, HOURS};

use tailor_engine::import::Progress;

use crate::progress::Bar;

/// How many engagements a customer's own pattern is worth against the segment's before it
/// dominates: with 5 baskets their history carries half the weight.
const PRIOR_STRENGTH: f64 = 5.0;

/// Runs the evaluation and prints both shares.
pub fn run(shared: &Path, history_share: f64, json: bool) -> Result<()> {
    if !(0.1..=0.95).contains(&history_share) {
        bail!("--history {history_share} is outside 0.1–0.95: it is the share of the data's time span used as history");
    }
    let path = shared.join("data").join("completejourney").join("transactions.parquet");
    if !path.is_file() {
        bail!("{} is missing: pass the shared folder that holds data/completejourney with --shared", path.display());
    }
    let table = tailor_catalog::Table::open(&path).map_err(|e| anyhow!(e))?;
    let col = |n: &str| table.column(&[n]).ok_or_else(|| anyhow!("{} has no {n} column", path.display()));
    let (household, basket, stamp) = (col("household_id")?, col("basket_id")?, col("transaction_timestamp")?);
    let bar = Bar::new();
    bar.stage("reading baskets");
    // household → basket → (time, local hour)
    let mut baskets: BTreeMap<String, BTreeMap<String, (i64, u32)>> = BTreeMap::new();
    for (i, row) in table.enumerate() {
        let row = row.map_err(|e| anyhow!(e))?;
        let get = |c: usize| row.get(c).cloned().flatten();
        let (Some(h), Some(b), Some(t)) = (get(household), get(basket), get(stamp)) else { continue };
        let (Some(ms), Some(hour)) = (tailor_core::time::parse_rfc3339(&t), t.get(11..13).and_then(|s| s.parse().ok()))
        else {
            continue;
        };
        baskets.entry(h).or_default().entry(b).or_insert((ms, hour));
        if i % 65_536 == 0 {
            bar.set(i as u64);
        }
    }
    bar.finish();
    let times: Vec<i64> = baskets.values().flat_map(|b| b.values().map(|v| v.0)).collect();
    let (first, last) = (times.iter().min().copied().unwrap_or(0), times.iter().max().copied().unwrap_or(0));
    let cut = first + ((last - first) as f64 * history_share) as i64;

    let mut segment = HourProfile::default();
    let mut cases: Vec<(HourProfile, u32)> = Vec::new();
    for visits in baskets.values() {
        let mut own = HourProfile::default();
        let mut next: Option<(i64, u32)> = None;
        for &(ms, hour) in visits.values() {
            if ms < cut {
                own.record(hour, 1.0);
            } else if next.is_none_or(|(t, _)| ms < t) {
                next = Some((ms, hour));
            }
        }
        segment.add(&own);
        if let (true, Some((_, hour))) = (own.total() > 0.0, next) {
            cases.push((own, hour));
        }
    }
    if cases.is_empty() {
        bail!("no household has baskets on both sides of the cut");
    }
    let personal = cases
        .iter()
        .filter(|(own, next)| within_an_hour(choose_hour(own, &segment, PRIOR_STRENGTH).hour, *next))
        .count();
    // The best single hour in hindsight: chosen on the very next baskets it is scored on, so the
    // baseline is as strong as one hour for everyone can be.
    let (best_hour, best) = (0..HOURS as u32)
        .map(|h| (h, cases.iter().filter(|(_, next)| within_an_hour(h, *next)).count()))
        .max_by_key(|&(h, n)| (n, std::cmp::Reverse(h)))
        .unwrap_or((0, 0));
    let n = cases.len() as f64;
    let (p, g) = (personal as f64 / n, best as f64 / n);
    if json {
        println!(
            "{{\"households\":{},\"personalShare\":{p:.4},\"bestGlobalHour\":{best_hour},\"globalShare\":{g:.4},\"ratio\":{:.3}}}",
            cases.len(),
            p / g.max(1e-12)
        );
    } else {
        println!("households with baskets before and after the cut: {}", cases.len());
        println!("next basket within ±1 h of the household's own hour:  {:.1}%", 100.0 * p);
        println!("next basket within ±1 h of the best single hour ({best_hour}:00): {:.1}%", 100.0 * g);
        println!("ratio: {:.2}×", p / g.max(1e-12));
    }
    Ok(())
}
