//! `tailor recommend-batch` and `tailor eval`: offline evaluation on a fixed train/test split,
//! with the definitions of shared/bench/recs/score.py.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use tailor_recs::als::Als;
use tailor_recs::content::ItemAttributes;
use tailor_recs::eval::{evaluate, Metrics, Protocol};
use tailor_recs::learn::{offline_request, train_with_learned_weights};
use tailor_recs::topk::top_k;
use tailor_recs::{Dataset, ModelConfig, Rules, TrainingSet};

/// The evaluation protocol, as score.py names it.
#[derive(Clone, Copy, ValueEnum)]
pub enum ProtocolArg {
    /// Only items the user never bought count; bought items are filtered out.
    Novel,
    /// Every test item counts, repeat purchases included.
    Repeats,
    /// Complete the basket: one hidden item per cart of a cases file (cart.py's protocol).
    Cart,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Novel | ProtocolArg::Cart => Protocol::Novel,
            ProtocolArg::Repeats => Protocol::Repeats,
        }
    }
}

pub(crate) fn load(train: &Path, test: &Path) -> Result<(Dataset, Dataset)> {
    let train = Dataset::read_csv(train).map_err(|e| anyhow!(e))?;
    let mut test_set = train.clone_empty();
    test_set.extend_from_csv(test, true, false).map_err(|e| anyhow!(e))?;
    Ok((train, test_set))
}

pub(crate) fn print_metrics(label: &str, m: &Metrics) {
    println!(
        "{label:<12} HR@10 {:.4}  NDCG@10 {:.4}  Recall@20 {:.4}  Coverage@10 {:.4}  ({} users scored)",
        m.hr10, m.ndcg10, m.recall20, m.coverage10, m.scored_users
    );
}

/// Which model writes the lists.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModelKind {
    /// Every source, blended with weights learned on a validation split.
    Hybrid,
    /// Matrix factorization alone (for comparing with implicit's ALS).
    Als,
}

/// Model settings that can be changed from the command line.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Product attributes (CSV or Parquet, e.g. completejourney/products.parquet) for the content
    /// and category sources.
    #[arg(long)]
    pub products: Option<PathBuf>,
    /// The model: the full hybrid, or ALS alone.
    #[arg(long, value_enum, default_value = "hybrid")]
    pub model: ModelKind,
    /// Fixed blend weights instead of learned ones, as JSON naming the sources that count,
    /// e.g. '{"ease": 1, "catching_on": 0.5}' (the others count 0).
    #[arg(long)]
    pub weights: Option<String>,
    /// ALS latent factors.
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// ALS sweeps.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// ALS regularization.
    #[arg(long, default_value_t = 0.01)]
    pub reg: f32,
    /// ALS confidence scale.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f32,
    /// Half-life (days) of a purchase's weight in ALS; 0 weighs all the same.
    #[arg(long, default_value_t = 0.0)]
    pub als_half_life: f64,
    /// Log-scale ALS confidences.
    #[arg(long)]
    pub als_log: bool,
    /// Neighbours per item.
    #[arg(long, default_value_t = 100)]
    pub knn_k: usize,
    /// EASE regularization.
    #[arg(long, default_value_t = 1000.0)]
    pub ease_lambda: f64,
    /// Buyers an item needs to take part in EASE.
    #[arg(long, default_value_t = 20)]
    pub ease_min_buyers: usize,
    /// Repeat-score half-life (days).
    #[arg(long, default_value_t = 180.0)]
    pub repeat_half_life: f64,
    /// Popularity half-life (days).
    #[arg(long, default_value_t = 30.0)]
    pub popularity_half_life: f64,
}

impl ModelArgs {
    pub(crate) fn config(&self) -> ModelConfig {
        let mut c = ModelConfig::default();
        c.als.factors = self.factors;
        c.als.iterations = self.iterations;
        c.als.regularization = self.reg;
        c.als.alpha = self.alpha;
        c.knn_k = self.knn_k;
        c.ease.lambda = self.ease_lambda;
        c.ease.min_buyers = self.ease_min_buyers;
        c.als_half_life = self.als_half_life;
        c.als_log = self.als_log;
        c.repeat_half_life = self.repeat_half_life;
        c.popularity_half_life = self.popularity_half_life;
        c
    }
}

/// Trains on TRAIN, writes `user,item,rank` for every user of TEST, and prints the metrics.
/// Long on purpose: the offline protocol step by step (read, split, train, rank, write), as the evaluation docs describe it.
pub fn recommend_batch(
    train: &Path,
    test: &Path,
    k: usize,
    protocol: ProtocolArg,
    out: &Path,
    model: ModelArgs,
) -> Result<()> {
    let protocol: Protocol = protocol.into();
    let (train, test) = load(train, test)?;
    println!(
        "train: {} rows, {} users, {} items; test users: {}",
        train.rows.len(),
        train.users.len(),
        train.items.len(),
        test.users.len()
    );
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let say = |m: &str| bar.set_message(m.to_string());
    let cfg = model.config();
    let started = Instant::now();
    let users: Vec<usize> = {
        let mut u: Vec<usize> = test.rows.iter().map(|r| r.user as usize).collect();
        u.sort_unstable();
        u.dedup();
        u
    };
    let purchases = train.purchases_by_user();
    let novel = protocol == Protocol::Novel;
    let lists: Vec<(usize, Vec<u32>)> = if model.model == ModelKind::Als {
        let half_life = (cfg.als_half_life > 0.0).then_some(cfg.als_half_life);
        let counts = train.confidences(half_life, cfg.als_log);
        // Timed like implicit's fit: from the built matrix to the factors.
        let started = Instant::now();
        let als = Als::train(&counts, train.items.len(), &cfg.als, &|it| bar.set_message(format!("als sweep {it}")));
        bar.finish_and_clear();
        println!("als trained in {:.2} s", started.elapsed().as_secs_f64());
        let started = Instant::now();
        let lists: Vec<(usize, Vec<u32>)> = users
            .par_iter()
            .map(|&u| {
                if !als.knows_user(u) {
                    return (u, Vec::new());
                }
                let mut scores = vec![0f32; train.items.len()];
                als.scores(u, &mut scores);
                let bought: HashSet<u32> =
                    if novel { purchases[u].iter().map(|p| p.0).collect() } else { HashSet::new() };
                (u, top_k(&scores, k, |i| bought.contains(&(i as u32))).into_iter().map(|x| x.0).collect())
            })
            .collect();
        report_speed(started, lists.len());
        lists
    } else {
        let trained = train_hybrid(&train, &model, &say)?;
        bar.finish_and_clear();
        println!("trained in {:.1} s", started.elapsed().as_secs_f64());
        if let Some((repeats, novel)) = &trained.validation {
            print_metrics("validation (repeats)", repeats);
            print_metrics("validation (novel)", novel);
        }
        println!("blend weights (repeats): {:?}", trained.weights);
        println!("blend weights (novel): {:?}", trained.novel_weights);
        let started = Instant::now();
        let no_purchases = Vec::new();
        let lists: Vec<(usize, Vec<u32>)> = users
            .par_iter()
            .map(|&u| {
                let history = purchases.get(u).unwrap_or(&no_purchases);
                let (shopper, query) = offline_request(u, history, u < train.users.len(), k, novel);
                let answer = trained.recommend(&shopper, &query, &Rules::default());
                (u, answer.items.into_iter().map(|r| r.item).collect())
            })
            .collect();
        report_speed(started, lists.len());
        lists
    };
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?);
    writeln!(w, "user,item,rank")?;
    let mut full = vec![Vec::new(); test.users.len()];
    for (u, items) in &lists {
        for (rank, i) in items.iter().enumerate() {
            writeln!(w, "{},{},{}", test.users[*u], train.items[*i as usize], rank + 1)?;
        }
        full[*u] = items.clone();
    }
    w.flush()?;
    print_metrics("test", &evaluate(&train, &test, &full, protocol));
    println!("wrote {}", out.display());
    Ok(())
}

/// The hybrid model on `train`: every source, with the blend weights `--weights` fixes or, by
/// default, learned on a validation split of `train` (per surface: home lists and carts).
pub(crate) fn train_hybrid(train: &Dataset, model: &ModelArgs, say: &dyn Fn(&str)) -> Result<tailor_recs::Model> {
    let cfg = model.config();
    let attributes = match &model.products {
        Some(path) => read_attributes(path, train)?,
        None => vec![None; train.items.len()],
    };
    let set = TrainingSet { data: train, attributes, store_region: HashMap::new() };
    Ok(match &model.weights {
        Some(json) => {
            let mut value = serde_json::to_value(tailor_recs::Weights::zero())?;
            let given: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(json).context("--weights takes a JSON object of source weights")?;
            for (name, w) in given {
                anyhow::ensure!(value.get(&name).is_some(), "--weights: unknown source {name:?}");
                value[&name] = w;
            }
            let weights: tailor_recs::Weights = serde_json::from_value(value).context("--weights")?;
            let mut m = tailor_recs::Model::train(&set, &cfg, say);
            (m.weights, m.novel_weights) = (weights, weights);
            m
        }
        None => train_with_learned_weights(&set, &cfg, say),
    })
}

/// Catalog attributes for every item of `data` (None for items the file does not list).
pub(crate) fn read_attributes(path: &Path, data: &Dataset) -> Result<Vec<Option<ItemAttributes>>> {
    let table = tailor_catalog::Table::open(path).map_err(|e| anyhow!(e))?;
    let cols = tailor_catalog::ColumnMap::new(&table, tailor_catalog::PRODUCT_COLUMNS);
    let mut out = vec![None; data.items.len()];
    for row in table {
        let row = row.map_err(|e| anyhow!(e))?;
        let Ok(p) = tailor_catalog::Product::from_row(&cols, &row) else { continue };
        if let Some(&i) = data.item_index.get(&p.id) {
            out[i as usize] = Some(ItemAttributes {
                title: p.title,
                department: p.department,
                category: p.category,
                subcategory: p.subcategory,
                brand: p.brand,
            });
        }
    }
    println!("catalog attributes for {} of {} items", out.iter().filter(|a| a.is_some()).count(), out.len());
    Ok(out)
}

pub(crate) fn report_speed(started: Instant, users: usize) {
    println!(
        "recommended for {users} users in {:.2} ms/user",
        started.elapsed().as_secs_f64() * 1000.0 / users.max(1) as f64
    );
}

/// Scores a RECS file like score.py does.
pub fn eval(train: &Path, test: &Path, recs: &PathBuf, repeats: bool) -> Result<()> {
    let (mut train, test) = load(train, test)?;
    let vocab = train.items.len();
    let mut rows: Vec<(String, String, u32)> = Vec::new();
    let mut reader = csv::Reader::from_path(recs).with_context(|| format!("cannot read {}", recs.display()))?;
    for r in reader.records() {
        let r = r?;
        let (Some(u), Some(i), Some(k)) = (r.get(0), r.get(1), r.get(2).and_then(|k| k.parse().ok())) else { continue };
        rows.push((u.to_string(), i.to_string(), k));
    }
    rows.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
    let mut lists = vec![Vec::new(); test.users.len()];
    for (u, i, _) in rows {
        let Some(&ui) = test.user_index.get(&u) else { continue };
        // Items outside the train vocabulary still take a place in the list (as misses).
        let ii = match train.item_index.get(&i) {
            Some(x) => *x,
            None => {
                train.items.push(i.clone());
                train.item_index.insert(i, train.items.len() as u32 - 1);
                train.items.len() as u32 - 1
            }
        };
        lists[ui as usize].push(ii);
    }
    train.items.truncate(vocab);
    let protocol = if repeats { Protocol::Repeats } else { Protocol::Novel };
    let m = evaluate(&train, &test, &lists, protocol);
    println!("protocol: {}", if repeats { "repeats" } else { "novel" });
    println!("scored_users: {}", m.scored_users);
    println!("users_with_fewer_than_20: {}", m.short_lists);
    println!(
        "HR@10: {:.4}\nNDCG@10: {:.4}\nRecall@20: {:.4}\nCoverage@10: {:.4}",
        m.hr10, m.ndcg10, m.recall20, m.coverage10
    );
    Ok(())
}
