//! `tailor recommend-batch --protocol cart` and `tailor eval --cases`: completing carts offline,
//! as `shared/bench/recs/cart.py` defines it (one hidden item per basket, HR@10 and NDCG@10).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use tailor_recs::eval::evaluate_carts;
use tailor_recs::{Dataset, Query, Rules, Shopper, Surface};

use crate::recs::{print_metrics, report_speed, train_hybrid, ModelArgs};

/// One cart of a cases file.
struct Case {
    case: String,
    user: String,
    cart: Vec<String>,
    hidden: String,
}

/// Reads `case,user,cart,hidden` (cart: item ids separated by spaces); every column is needed,
/// case ids are unique and carts are not empty.
fn read_cases(path: &Path) -> Result<Vec<Case>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = reader.headers()?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("{}: the header needs a {name} column", path.display()))
    };
    let (cc, cu, ct, ch) = (col("case")?, col("user")?, col("cart")?, col("hidden")?);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.with_context(|| format!("{} line {line}", path.display()))?;
        let get = |c: usize| record.get(c).map(str::trim).unwrap_or("");
        let case = Case {
            case: get(cc).to_string(),
            user: get(cu).to_string(),
            cart: get(ct).split_whitespace().map(str::to_string).collect(),
            hidden: get(ch).to_string(),
        };
        for (field, empty) in
            [("case", case.case.is_empty()), ("cart", case.cart.is_empty()), ("hidden", case.hidden.is_empty())]
        {
            if empty {
                bail!("{} line {line}: {field} is empty", path.display());
            }
        }
        if !seen.insert(case.case.clone()) {
            bail!("{} line {line}: case {} appears twice", path.display(), case.case);
        }
        out.push(case);
    }
    if out.is_empty() {
        bail!("{}: no cases", path.display());
    }
    Ok(out)
}

/// Trains on TRAIN (the cart blend learned on validation carts of its last weeks), completes
/// every cart of CASES, writes `case,item,rank` and prints HR@10 and NDCG@10.
pub fn recommend_carts(train: &Path, cases: &Path, k: usize, out: &Path, model: ModelArgs) -> Result<()> {
    let cases = read_cases(cases)?;
    let train = Dataset::read_csv(train).map_err(|e| anyhow!(e))?;
    println!(
        "train: {} rows, {} users, {} items; carts: {}",
        train.rows.len(),
        train.users.len(),
        train.items.len(),
        cases.len()
    );
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let started = Instant::now();
    let trained = train_hybrid(&train, &model, &|m: &str| bar.set_message(m.to_string()))?;
    bar.finish_and_clear();
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(m) = &trained.cart_validation {
        println!("validation (carts) HR@10 {:.4}  NDCG@10 {:.4}  ({} carts)", m.hr10, m.ndcg10, m.scored_users);
    }
    if let Some((repeats, novel)) = &trained.validation {
        print_metrics("validation (repeats)", repeats);
        print_metrics("validation (novel)", novel);
    }
    println!("cart weights: {:?}", trained.cart_weights);
    let purchases = train.purchases_by_user();
    let started = Instant::now();
    let idx = |id: &str| train.item_index.get(id).copied();
    let lists: Vec<Vec<u32>> = cases
        .par_iter()
        .map(|c| {
            let user = train.user_index.get(&c.user).copied();
            let history = user.map(|u| purchases[u as usize].clone()).unwrap_or_default();
            let now = history.last().map_or(trained.data_until, |p| p.1);
            let shopper = Shopper {
                user,
                purchases: history.into(),
                cart: c.cart.iter().filter_map(|i| idx(i)).collect(),
                personal: true,
                ..Shopper::default()
            };
            let query = Query {
                surface: Surface::Cart,
                anchors: Vec::new(),
                store: None,
                k,
                now,
                utc_offset_secs: 0,
                weather: None,
                novel: false,
                kind: None,
            };
            trained.recommend(&shopper, &query, &Rules::default()).items.into_iter().map(|r| r.item).collect()
        })
        .collect();
    report_speed(started, lists.len());
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?);
    writeln!(w, "case,item,rank")?;
    for (c, items) in cases.iter().zip(&lists) {
        for (rank, i) in items.iter().enumerate() {
            writeln!(w, "{},{},{}", c.case, train.items[*i as usize], rank + 1)?;
        }
    }
    w.flush()?;
    let named: Vec<Vec<String>> =
        lists.iter().map(|l| l.iter().map(|i| train.items[*i as usize].clone()).collect()).collect();
    let scored: Vec<(Vec<String>, String)> = cases.into_iter().map(|c| (c.cart, c.hidden)).collect();
    let m = evaluate_carts(&scored, &named);
    println!("test (carts) HR@10 {:.4}  NDCG@10 {:.4}  ({} carts)", m.hr10, m.ndcg10, m.scored_users);
    println!("wrote {}", out.display());
    Ok(())
}

/// Scores a `case,item,rank` file against CASES as cart.py does.
pub fn eval_carts(cases: &Path, recs: &Path) -> Result<()> {
    let cases = read_cases(cases)?;
    let mut rows: Vec<(String, u64, String)> = Vec::new();
    let mut reader = csv::Reader::from_path(recs).with_context(|| format!("cannot read {}", recs.display()))?;
    let header = reader.headers()?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("{}: the header needs a {name} column", recs.display()))
    };
    let (cc, ci, cr) = (col("case")?, col("item")?, col("rank")?);
    for (n, r) in reader.records().enumerate() {
        let r = r.with_context(|| format!("{} line {}", recs.display(), n + 2))?;
        let rank = r.get(cr).and_then(|v| v.trim().parse().ok());
        let (Some(case), Some(item), Some(rank)) = (r.get(cc), r.get(ci), rank) else {
            bail!("{} line {}: rank must be a whole number", recs.display(), n + 2);
        };
        rows.push((case.to_string(), rank, item.to_string()));
    }
    rows.sort();
    let position: std::collections::HashMap<&str, usize> =
        cases.iter().enumerate().map(|(n, c)| (c.case.as_str(), n)).collect();
    let mut lists = vec![Vec::new(); cases.len()];
    for (case, _, item) in rows {
        if let Some(&n) = position.get(case.as_str()) {
            lists[n].push(item);
        }
    }
    let scored: Vec<(Vec<String>, String)> = cases.into_iter().map(|c| (c.cart, c.hidden)).collect();
    let m = evaluate_carts(&scored, &lists);
    println!("protocol: cart\ncases: {}\nHR@10: {:.4}\nNDCG@10: {:.4}", m.scored_users, m.hr10, m.ndcg10);
    Ok(())
}
