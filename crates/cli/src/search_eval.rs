//! `tailor search-eval`: personalized search against plain BM25 on a fixed recommendation
//! split. Each test purchase becomes a query made from its category (the sub-category name, as
//! a shopper looking for "that kind of thing" would type it); the purchased product is the one
//! relevant answer, and NDCG@10 says how high each ranking puts it. The customer's tastes come
//! from their train purchases only.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use tailor_search::{Affinity, CatalogStamp, Filters, ProductDoc, SearchIndex, SearchQuery, Synonyms, Weights};

/// Which product field the queries are made from.
#[derive(Clone, Copy, ValueEnum)]
pub enum QueryField {
    /// The sub-category (sub-commodity) name.
    Subcategory,
    /// The category (commodity) name.
    Category,
}

/// The arguments of `tailor search-eval`.
#[derive(Args)]
pub struct SearchEvalArgs {
    /// The catalog (CSV or Parquet, as `tailor import products` reads it).
    #[arg(long)]
    products: PathBuf,
    /// Train CSV (user,item,timestamp,...), optionally .gz: the customers' tastes.
    #[arg(long)]
    train: PathBuf,
    /// Test CSV, optionally .gz: each distinct (user, item) purchase is a case.
    #[arg(long)]
    test: PathBuf,
    /// Which field the query is made from.
    #[arg(long, value_enum, default_value = "subcategory")]
    query_field: QueryField,
    /// Cases evaluated at most (a seeded sample of all of them); 0 = all.
    #[arg(long, default_value_t = 20_000)]
    cases: usize,
    /// Seed of the sample.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Write case,user,item,novel,variant,rank (rank 0: not in the top 10) here.
    #[arg(long)]
    ranks: Option<PathBuf>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Weight of "bought it before" (default: what the server uses).
    #[arg(long)]
    weight_bought: Option<f32>,
    /// Weight of popularity (default: what the server uses).
    #[arg(long)]
    weight_popularity: Option<f32>,
}

/// A test purchase and its query.
struct Case {
    user: String,
    item: String,
    query: String,
    /// The user never bought the item in train.
    novel: bool,
}

/// The rankings compared, in the order printed.
const VARIANTS: [&str; 4] = ["bm25", "bm25_popularity", "personalized", "personalized_popularity"];

fn reader(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let inner: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::new(inner)))
}

/// (user, item, timestamp) rows of a split.
fn read_split(path: &Path) -> Result<Vec<(String, String, i64)>> {
    let mut rows = Vec::new();
    let mut csv = csv::Reader::from_reader(reader(path)?);
    let header = csv.headers()?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| anyhow!("{} has no {name} column", path.display()))
    };
    let (u, i, t) = (col("user")?, col("item")?, col("timestamp")?);
    for rec in csv.records() {
        let rec = rec?;
        let ts = rec.get(t).and_then(|v| v.parse().ok()).unwrap_or(0);
        rows.push((rec.get(u).unwrap_or("").to_string(), rec.get(i).unwrap_or("").to_string(), ts));
    }
    Ok(rows)
}

fn read_catalog(path: &Path) -> Result<Vec<ProductDoc>> {
    let table = tailor_catalog::Table::open(path).map_err(|e| anyhow!(e))?;
    let cols = tailor_catalog::ColumnMap::new(&table, tailor_catalog::PRODUCT_COLUMNS);
    let mut out = Vec::new();
    for row in table {
        let row = row.map_err(|e| anyhow!(e))?;
        let Ok(p) = tailor_catalog::Product::from_row(&cols, &row) else { continue };
        out.push(ProductDoc {
            id: p.id,
            title: p.title,
            brand: p.brand,
            department: p.department,
            category: p.category,
            subcategory: p.subcategory,
            size: p.size,
            price_cents: p.price_cents,
            currency: p.currency,
            available: p.available,
        });
    }
    Ok(out)
}

/// NDCG@10 of one relevant item at 1-based `rank` (0: not in the top 10).
fn gain(rank: usize) -> f64 {
    if rank == 0 {
        0.0
    } else {
        1.0 / ((rank + 1) as f64).log2()
    }
}

/// Runs the evaluation and prints NDCG@10 and HR@10 of every variant.
pub fn run(a: SearchEvalArgs) -> Result<()> {
    let started = Instant::now();
    let catalog = read_catalog(&a.products)?;
    let index = SearchIndex::in_ram()?;
    index.replace_all(&catalog, CatalogStamp { count: catalog.len() as i64, updated_at: 0 })?;
    let products = index.products();
    eprintln!("indexed {} products in {:.1}s", index.len(), started.elapsed().as_secs_f64());

    let train = read_split(&a.train)?;
    let test = read_split(&a.test)?;
    // Newest first, as the engine reads a customer's purchases.
    let mut by_user: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    let mut buyers: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (u, i, t) in &train {
        by_user.entry(u.clone()).or_default().push((*t, i.clone()));
        buyers.entry(i.as_str()).or_default().insert(u.as_str());
    }
    for v in by_user.values_mut() {
        v.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    }
    // Popularity (non-personal): distinct train buyers, log-scaled to [0, 1].
    let top = buyers.values().map(BTreeSet::len).max().unwrap_or(1).max(1) as f32;
    let popularity: HashMap<String, f32> =
        buyers.iter().map(|(i, b)| (i.to_string(), (1.0 + b.len() as f32).ln() / (1.0 + top).ln())).collect();
    let affinities: HashMap<&str, Affinity> = by_user
        .iter()
        .map(|(u, ps)| {
            (u.as_str(), Affinity::from_purchases(ps.iter().map(|(_, i)| i.as_str()), |id| products.get(id).cloned()))
        })
        .collect();

    let mut seen = BTreeSet::new();
    let mut cases = Vec::new();
    for (u, i, _) in &test {
        if !seen.insert((u.as_str(), i.as_str())) || !by_user.contains_key(u) {
            continue;
        }
        let Some(p) = products.get(i) else { continue };
        let field = match a.query_field {
            QueryField::Subcategory => &p.subcategory,
            QueryField::Category => &p.category,
        };
        let Some(query) = field.as_ref().map(|q| q.trim()).filter(|q| !q.is_empty()) else { continue };
        let novel = affinities.get(u.as_str()).is_none_or(|a| a.bought(i) == 0.0);
        cases.push(Case { user: u.clone(), item: i.clone(), query: query.to_string(), novel });
    }
    let all = cases.len();
    if a.cases > 0 && cases.len() > a.cases {
        cases.shuffle(&mut rand::rngs::StdRng::seed_from_u64(a.seed));
        cases.truncate(a.cases);
    }
    if cases.is_empty() {
        bail!("no test purchase of a known customer has a product with a {} in the catalog", field_name(a.query_field));
    }
    eprintln!("{} cases (of {all}); searching…", cases.len());

    let synonyms = Synonyms::defaults();
    let defaults = Weights::default();
    let weights = Weights {
        bought: a.weight_bought.unwrap_or(defaults.bought),
        popularity: a.weight_popularity.unwrap_or(defaults.popularity),
        ..defaults
    };
    let searched = Instant::now();
    let ranks: Vec<Result<[usize; 4]>> = cases
        .par_iter()
        .map(|c| {
            let affinity = affinities.get(c.user.as_str());
            let mut out = [0; 4];
            for (v, slot) in out.iter_mut().enumerate() {
                let q = SearchQuery {
                    text: &c.query,
                    limit: 10,
                    filters: Filters::default(),
                    affinity: if v >= 2 { affinity } else { None },
                    popularity: if v % 2 == 1 { Some(&popularity) } else { None },
                    semantic: &[],
                    available: &|_| true,
                    weights,
                };
                let r = index.search(&q, &synonyms)?;
                *slot = r.hits.iter().position(|h| h.product_id == c.item).map_or(0, |p| p + 1);
            }
            Ok(out)
        })
        .collect();
    let ranks: Vec<[usize; 4]> = ranks.into_iter().collect::<Result<_>>()?;
    let per_search_ms = searched.elapsed().as_secs_f64() * 1000.0 / (ranks.len() * VARIANTS.len()) as f64;

    if let Some(path) = &a.ranks {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(w, "case,user,item,novel,variant,rank")?;
        for (n, (c, r)) in cases.iter().zip(&ranks).enumerate() {
            for (v, rank) in VARIANTS.iter().zip(r) {
                writeln!(w, "{n},{},{},{},{v},{rank}", c.user, c.item, u8::from(c.novel))?;
            }
        }
    }

    let figures = |keep: &dyn Fn(&Case) -> bool| -> (usize, Vec<(f64, f64)>) {
        let chosen: Vec<&[usize; 4]> = cases.iter().zip(&ranks).filter(|(c, _)| keep(c)).map(|(_, r)| r).collect();
        let n = chosen.len().max(1) as f64;
        let per = (0..VARIANTS.len())
            .map(|v| {
                let ndcg = chosen.iter().map(|r| gain(r[v])).sum::<f64>() / n;
                let hr = chosen.iter().filter(|r| r[v] > 0).count() as f64 / n;
                (ndcg, hr)
            })
            .collect();
        (chosen.len(), per)
    };
    let (n_all, f_all) = figures(&|_| true);
    let (n_novel, f_novel) = figures(&|c| c.novel);
    let ratio = |f: &[(f64, f64)]| if f[0].0 > 0.0 { f[2].0 / f[0].0 } else { f64::INFINITY };
    if a.json {
        let variants = |f: &[(f64, f64)]| -> serde_json::Value {
            VARIANTS
                .iter()
                .zip(f)
                .map(|(v, (n, h))| (v.to_string(), serde_json::json!({"ndcg10": n, "hr10": h})))
                .collect()
        };
        println!(
            "{}",
            serde_json::json!({
                "queryField": field_name(a.query_field), "cases": n_all, "novelCases": n_novel,
                "all": variants(&f_all), "novel": variants(&f_novel),
                "ratio": ratio(&f_all), "ratioNovel": ratio(&f_novel), "msPerSearch": per_search_ms,
            })
        );
    } else {
        for (label, n, f) in [("all test purchases", n_all, &f_all), ("novel purchases only", n_novel, &f_novel)] {
            println!("{label} ({n} cases, query = {}):", field_name(a.query_field));
            for (v, (ndcg, hr)) in VARIANTS.iter().zip(f.iter()) {
                println!("  {v:<24} NDCG@10 {ndcg:.4}  HR@10 {hr:.4}");
            }
            println!("  personalized / bm25      {:.2}x", ratio(f));
        }
        println!("{per_search_ms:.2} ms per search (rayon threads)");
    }
    Ok(())
}

fn field_name(f: QueryField) -> &'static str {
    match f {
        QueryField::Subcategory => "subcategory",
        QueryField::Category => "category",
    }
}
