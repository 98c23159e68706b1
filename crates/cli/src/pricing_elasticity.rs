//! `tailor pricing elasticity`: weekly sales per product from The Complete Journey, estimated
//! with `tailor_pricing::elasticity`.
//!
//! What goes in, per product and week (summed over the panel's stores and households):
//! - **price**: what a loyalty-card holder paid per unit before coupons, i.e. the shelf price
//!   less the retailer's card discount: `Σ (sales_value + coupon_match_disc) / Σ quantity`. In
//!   this version of the data the discounts are positive amounts and `sales_value` still counts
//!   manufacturer coupons, so the shelf price is `sales_value + retail_disc + coupon_match_disc`.
//!   Coupons are left out because they are targeted at individual households, not faced by all.
//! - **quantity**: units sold. Only weeks with sales are observed (a week without sales has no
//!   price), so zero weeks are missing rather than zero; to limit that selection a product needs
//!   sales in [`MIN_WEEKS`] of the weeks.
//! - **display / mailer**: the share of the promotion file's stores that had the product on
//!   display (`display_location` ≠ 0) or in the mailer (`mailer_location` ≠ 0) that week.
//! - **category**: `product_category` (the department when it is missing). Fuel, coupons and
//!   miscellaneous items are left out; so are partial weeks (fewer than half the median week's
//!   rows: week 1 here).
//!
//! The big files are read column by column with the Parquet column readers (the promotions file
//! has 21 million rows, too many to turn into strings row by row).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{ByteArray, DataType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use tailor_engine::import::Progress;
use tailor_pricing::elasticity::{self, Config, Estimate, Observation, OwnStatus, Report};

use crate::progress::Bar;

/// Fewest weeks with sales for a product to be modelled.
pub const MIN_WEEKS: usize = 20;
/// Departments whose "units" are not comparable items.
const EXCLUDED_DEPARTMENTS: &[&str] = &["FUEL", "KIOSK-GAS", "MISCELLANEOUS", "COUPON", "MISC SALES TRAN"];
/// Products simulated for the recovery check, and its seeds.
const RECOVERY_PRODUCTS: usize = 200;
const RECOVERY_SEEDS: [u64; 3] = [1, 2, 3];

/// One batch of one column, nulls as `None`.
enum Col {
    Int(Vec<Option<i64>>),
    Num(Vec<Option<f64>>),
    Text(Vec<Option<ByteArray>>),
}

impl Col {
    fn len(&self) -> usize {
        match self {
            Col::Int(v) => v.len(),
            Col::Num(v) => v.len(),
            Col::Text(v) => v.len(),
        }
    }
    fn int(&self, r: usize) -> Option<i64> {
        match self {
            Col::Int(v) => v.get(r).copied().flatten(),
            Col::Num(v) => v.get(r).copied().flatten().map(|x| x as i64),
            Col::Text(v) => v.get(r)?.as_ref()?.as_utf8().ok()?.trim().parse().ok(),
        }
    }
    fn num(&self, r: usize) -> Option<f64> {
        match self {
            Col::Int(v) => v.get(r).copied().flatten().map(|x| x as f64),
            Col::Num(v) => v.get(r).copied().flatten(),
            Col::Text(v) => v.get(r)?.as_ref()?.as_utf8().ok()?.trim().parse().ok(),
        }
    }
    fn text(&self, r: usize) -> Option<&[u8]> {
        match self {
            Col::Text(v) => v.get(r)?.as_ref().map(|b| b.data()),
            _ => None,
        }
    }
}

fn read_typed<T: DataType>(r: &mut ColumnReaderImpl<T>, n: usize, max_def: i16) -> Result<Vec<Option<T::T>>> {
    let mut defs = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let (records, _, levels) = r.read_records(n, Some(&mut defs), None, &mut values)?;
    if max_def == 0 {
        values.truncate(records);
        return Ok(values.into_iter().map(Some).collect());
    }
    let mut it = values.into_iter();
    Ok(defs.iter().take(levels).map(|&d| if d == max_def { it.next() } else { None }).collect())
}

fn read_batch(reader: &mut ColumnReader, n: usize, max_def: i16) -> Result<Col> {
    Ok(match reader {
        ColumnReader::Int64ColumnReader(r) => Col::Int(read_typed(r, n, max_def)?),
        ColumnReader::Int32ColumnReader(r) => {
            Col::Int(read_typed(r, n, max_def)?.into_iter().map(|x| x.map(i64::from)).collect())
        }
        ColumnReader::DoubleColumnReader(r) => Col::Num(read_typed(r, n, max_def)?),
        ColumnReader::FloatColumnReader(r) => {
            Col::Num(read_typed(r, n, max_def)?.into_iter().map(|x| x.map(f64::from)).collect())
        }
        ColumnReader::ByteArrayColumnReader(r) => Col::Text(read_typed(r, n, max_def)?),
        _ => bail!("unsupported column type"),
    })
}

/// Reads the named columns of a Parquet file in batches, calling `f` with each batch (columns in
/// the order of `names`) and advancing `bar`.
fn scan(path: &Path, names: &[&str], bar: &Bar, mut f: impl FnMut(&[Col]) -> Result<()>) -> Result<u64> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = SerializedFileReader::new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let mut indices = Vec::with_capacity(names.len());
    for name in names {
        let i = (0..schema.num_columns())
            .find(|&i| schema.column(i).name().eq_ignore_ascii_case(name))
            .ok_or_else(|| anyhow!("{} has no column {name:?}", path.display()))?;
        indices.push((i, schema.column(i).max_def_level()));
    }
    bar.total(meta.file_metadata().num_rows().max(0) as u64);
    let mut done = 0u64;
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g)?;
        let mut readers: Vec<(ColumnReader, i16)> =
            indices.iter().map(|&(i, d)| Ok((group.get_column_reader(i)?, d))).collect::<Result<_>>()?;
        let rows = group.metadata().num_rows().max(0) as u64;
        let mut left = rows;
        while left > 0 {
            let n = left.min(1 << 16) as usize;
            let cols: Vec<Col> = readers.iter_mut().map(|(r, d)| read_batch(r, n, *d)).collect::<Result<_>>()?;
            let got = cols.first().map_or(0, Col::len);
            if got == 0 || cols.iter().any(|c| c.len() != got) {
                bail!("{}: columns of row group {g} end unevenly", path.display());
            }
            f(&cols)?;
            left = left.saturating_sub(got as u64);
            done += got as u64;
            bar.set(done);
        }
    }
    Ok(done)
}

/// A product's catalogue entry.
struct Product {
    department: String,
    category: String,
    kind: String,
}

fn read_products(path: &Path) -> Result<HashMap<i64, Product>> {
    let table = tailor_catalog::Table::open(path).map_err(|e| anyhow!(e))?;
    let col =
        |names: &[&str]| table.column(names).ok_or_else(|| anyhow!("{} has no {} column", path.display(), names[0]));
    let (id, dept, cat, kind) =
        (col(&["product_id"])?, col(&["department"])?, col(&["product_category"])?, col(&["product_type"])?);
    let mut out = HashMap::new();
    for row in table {
        let row = row.map_err(|e| anyhow!(e))?;
        let get = |i: usize| row.get(i).cloned().flatten().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let Some(pid) = get(id).and_then(|s| s.parse::<i64>().ok()) else { continue };
        let department = get(dept).unwrap_or_default();
        let category = get(cat).unwrap_or_else(|| department.clone());
        out.insert(pid, Product { department, category, kind: get(kind).unwrap_or_default() });
    }
    Ok(out)
}

/// Sales of a product in a week.
#[derive(Default, Clone, Copy)]
struct Week {
    units: f64,
    paid: f64,
}

/// Prints the report (and writes every estimate to `out` when given).
/// Long on purpose: it reads the data, fits and reports in the order the report prints.
/// Reads the data, estimates, prints the report (and the CSV with `out`) and returns the estimates.
pub fn run(shared: &Path, top: usize, out: Option<&Path>) -> Result<Report> {
    let started = Instant::now();
    let data = shared.join("data").join("completejourney");
    let files = ["transactions.parquet", "products.parquet", "promotions.parquet"].map(|f| data.join(f));
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        bail!(
            "The Complete Journey is not where I looked: {} is missing. Pass the shared folder that holds \
             data/completejourney with --shared (now {}).",
            missing.display(),
            shared.display()
        );
    }
    let products = read_products(&files[1])?;

    // Transactions → product × week.
    let bar = Bar::new();
    bar.stage("reading transactions");
    let mut weeks: HashMap<(i64, i64), Week> = HashMap::new();
    let mut rows_per_week: HashMap<i64, u64> = HashMap::new();
    let mut skipped = 0u64;
    let transactions =
        scan(&files[0], &["product_id", "week", "quantity", "sales_value", "coupon_match_disc"], &bar, |c| {
            for r in 0..c[0].len() {
                let (Some(product), Some(week), Some(q), Some(sales), match_disc) =
                    (c[0].int(r), c[1].int(r), c[2].num(r), c[3].num(r), c[4].num(r).unwrap_or(0.0))
                else {
                    skipped += 1;
                    continue;
                };
                *rows_per_week.entry(week).or_default() += 1;
                let paid = sales + match_disc.abs();
                if !(q > 0.0 && paid > 0.0 && q.is_finite() && paid.is_finite()) {
                    skipped += 1;
                    continue;
                }
                let w = weeks.entry((product, week)).or_default();
                w.units += q;
                w.paid += paid;
            }
            Ok(())
        })?;
    bar.finish();

    // Partial weeks out.
    let mut counts: Vec<u64> = rows_per_week.values().copied().collect();
    counts.sort_unstable();
    let median = counts.get(counts.len() / 2).copied().unwrap_or(0);
    let mut partial: Vec<i64> = rows_per_week.iter().filter(|(_, &n)| n * 2 < median).map(|(&w, _)| w).collect();
    partial.sort_unstable();
    let partial_set: HashSet<i64> = partial.iter().copied().collect();
    let mut all_weeks: Vec<i64> = rows_per_week.keys().copied().filter(|w| !partial_set.contains(w)).collect();
    all_weeks.sort_unstable();

    // Products with enough weeks.
    let mut weeks_of: HashMap<i64, usize> = HashMap::new();
    for &(p, w) in weeks.keys() {
        if !partial_set.contains(&w) {
            *weeks_of.entry(p).or_default() += 1;
        }
    }
    let mut excluded_products = 0usize;
    let candidates: HashSet<i64> = weeks_of
        .iter()
        .filter(|(_, &n)| n >= MIN_WEEKS)
        .map(|(&p, _)| p)
        .filter(|p| {
            let keep = products.get(p).is_some_and(|info| {
                !EXCLUDED_DEPARTMENTS.contains(&info.department.as_str()) && !info.category.contains("COUPON")
            });
            if !keep {
                excluded_products += 1;
            }
            keep
        })
        .collect();

    // Promotions → share of stores per product × week.
    let bar = Bar::new();
    bar.stage("reading promotions");
    let mut promo: HashMap<(i64, i64), (u32, u32)> = HashMap::new();
    let mut stores: HashMap<i64, HashSet<i64>> = HashMap::new();
    let promo_rows =
        scan(&files[2], &["product_id", "store_id", "week", "display_location", "mailer_location"], &bar, |c| {
            for r in 0..c[0].len() {
                let (Some(product), Some(store), Some(week)) = (c[0].int(r), c[1].int(r), c[2].int(r)) else {
                    continue;
                };
                stores.entry(week).or_default().insert(store);
                if !candidates.contains(&product) {
                    continue;
                }
                let on = |b: Option<&[u8]>| b.is_some_and(|s| !s.is_empty() && s != b"0");
                let (display, mailer) = (on(c[3].text(r)), on(c[4].text(r)));
                if display || mailer {
                    let e = promo.entry((product, week)).or_default();
                    e.0 += u32::from(display);
                    e.1 += u32::from(mailer);
                }
            }
            Ok(())
        })?;
    bar.finish();

    // Observations, product by product.
    let mut keys: Vec<(i64, i64)> =
        weeks.keys().copied().filter(|(p, w)| candidates.contains(p) && !partial_set.contains(w)).collect();
    keys.sort_unstable();
    let mut observations = Vec::with_capacity(keys.len());
    let mut ids: HashMap<String, i64> = HashMap::new();
    for (p, w) in keys {
        let Some(info) = products.get(&p) else { continue };
        let sales = weeks[&(p, w)];
        let n_stores = stores.get(&w).map_or(0, HashSet::len).max(1) as f64;
        let (d, m) = promo.get(&(p, w)).copied().unwrap_or((0, 0));
        let product = p.to_string();
        ids.entry(product.clone()).or_insert(p);
        observations.push(Observation {
            product,
            category: info.category.clone(),
            price: sales.paid / sales.units,
            quantity: sales.units,
            display: (f64::from(d) / n_stores).min(1.0),
            mailer: (f64::from(m) / n_stores).min(1.0),
        });
    }
    let config = Config::default();
    let report = elasticity::estimate(&observations, &config).context("estimating elasticities")?;
    let recovery: Vec<elasticity::Recovery> = RECOVERY_SEEDS
        .iter()
        .map(|&s| elasticity::recovery_check(s, RECOVERY_PRODUCTS))
        .collect::<Result<_, _>>()
        .context("the recovery check")?;

    print_report(&ReportInput {
        report: &report,
        products: &products,
        ids: &ids,
        transactions,
        skipped,
        promo_rows,
        weeks: all_weeks.len(),
        partial: &partial,
        catalogue: products.len(),
        with_sales: weeks_of.len(),
        excluded_products,
        observations: observations.len(),
        top,
        recovery: &recovery,
    });
    if let Some(path) = out {
        write_csv(path, &report, &products, &ids)?;
        println!("\nWrote {} estimates to {}", report.estimates.len(), path.display());
    }
    println!("\nEstimated in {:.1} s", started.elapsed().as_secs_f64());
    Ok(report)
}

/// Stores each category's estimate (shrunk mean, its sd, the spread τ between its products) as
/// the prior live experiments on the category's products start from; a category whose estimate
/// is not a usable prior (a mean of 0 or above) is left out and counted. Returns (stored, left out).
pub async fn store_categories(engine: &tailor_engine::Engine, report: &Report) -> Result<(usize, usize)> {
    let (mut stored, mut skipped) = (0, 0);
    for c in &report.categories {
        let estimate = tailor_pricing::live::CategoryElasticity {
            mean: c.mean,
            mean_sd: c.mean_sd,
            tau: c.tau,
            products: u32::try_from(c.products).unwrap_or(u32::MAX),
        };
        if estimate.check().is_err() {
            skipped += 1;
            continue;
        }
        engine
            .set_category_elasticity(&c.category, &estimate)
            .await
            .with_context(|| format!("storing the estimate of category {}", c.category))?;
        stored += 1;
    }
    Ok((stored, skipped))
}

struct ReportInput<'a> {
    report: &'a Report,
    products: &'a HashMap<i64, Product>,
    ids: &'a HashMap<String, i64>,
    transactions: u64,
    skipped: u64,
    promo_rows: u64,
    weeks: usize,
    partial: &'a [i64],
    catalogue: usize,
    with_sales: usize,
    excluded_products: usize,
    observations: usize,
    top: usize,
    recovery: &'a [elasticity::Recovery],
}

fn dist_line(label: &str, values: &[f64]) -> String {
    match elasticity::distribution(values) {
        Some(d) => format!(
            "  {label:<22} n={:<6} p10 {:>6.2}  p25 {:>6.2}  p50 {:>6.2}  p75 {:>6.2}  p90 {:>6.2}  mean {:>6.2}  share < -1: {:>4.0} %",
            d.count,
            d.p10,
            d.p25,
            d.p50,
            d.p75,
            d.p90,
            d.mean,
            d.share_elastic * 100.0
        ),
        None => format!("  {label:<22} none"),
    }
}

/// Long on purpose: one report printed top to bottom, section by section.
fn print_report(x: &ReportInput<'_>) {
    let r = x.report;
    let pct = (r.level * 100.0).round();
    println!("Price elasticity on The Complete Journey");
    println!(
        "  read {} transactions ({} without units or price left out) and {} promotion rows",
        x.transactions, x.skipped, x.promo_rows
    );
    println!(
        "  {} weeks used{}; price = (sales_value + coupon_match_disc) / quantity: shelf price less the card discount, before coupons",
        x.weeks,
        if x.partial.is_empty() { String::new() } else { format!(" (partial week(s) {:?} left out)", x.partial) }
    );
    println!(
        "  {} of {} catalogue products sold; {} sold in {MIN_WEEKS}+ weeks ({} of them fuel/coupon/misc left out) -> {} products, {} product-weeks",
        x.with_sales,
        x.catalogue,
        r.estimates.len() + x.excluded_products,
        x.excluded_products,
        r.estimates.len(),
        x.observations
    );
    let mut by_status: Vec<(OwnStatus, usize)> = Vec::new();
    for e in &r.estimates {
        match by_status.iter_mut().find(|(s, _)| *s == e.status) {
            Some((_, n)) => *n += 1,
            None => by_status.push((e.status, 1)),
        }
    }
    by_status.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    println!(
        "  own estimates: {}",
        by_status.iter().map(|(s, n)| format!("{n} {}", s.label())).collect::<Vec<_>>().join(", ")
    );

    println!("\nDistribution of elasticities");
    let shrunk: Vec<f64> = r.estimates.iter().map(|e| e.elasticity).collect();
    let with_own: Vec<f64> = r.estimates.iter().filter(|e| e.own.is_some()).map(|e| e.elasticity).collect();
    let own: Vec<f64> = r.estimates.iter().filter_map(|e| e.own).collect();
    println!("{}", dist_line("shrunk, all products", &shrunk));
    println!("{}", dist_line("shrunk, with own", &with_own));
    println!("{}", dist_line("own (unshrunk)", &own));
    // By department (meat, produce and deli sell many random-weight items, whose price per
    // "unit" moves with the pack's weight, which pulls their estimates toward zero).
    let mut departments: HashMap<&str, (f64, Vec<f64>)> = HashMap::new();
    for e in &r.estimates {
        let dept = x.ids.get(&e.product).and_then(|id| x.products.get(id)).map_or("?", |p| p.department.as_str());
        let entry = departments.entry(dept).or_default();
        entry.0 += e.sales;
        entry.1.push(e.elasticity);
    }
    let mut departments: Vec<(&str, (f64, Vec<f64>))> = departments.into_iter().collect();
    departments.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    for (dept, (_, values)) in departments.iter().take(8) {
        println!("{}", dist_line(&format!("  {}", truncate(dept, 20)), values));
    }
    let se: Vec<f64> = r.estimates.iter().filter_map(|e| e.own_se).collect();
    if let Some(d) = elasticity::distribution(&se) {
        println!("  own standard errors: median {:.2}, p90 {:.2}", d.p50, d.p90);
    }
    let sig = r.estimates.iter().filter(|e| e.upper < 0.0).count();
    let elastic = r.estimates.iter().filter(|e| e.upper < -1.0).count();
    println!(
        "  {pct:.0} % interval below 0 for {sig} products ({:.0} %), below -1 for {elastic} ({:.0} %)",
        100.0 * sig as f64 / r.estimates.len().max(1) as f64,
        100.0 * elastic as f64 / r.estimates.len().max(1) as f64
    );

    println!(
        "\nCategories: mean over categories {:.2} ± {:.2}; between-category sd {:.2}; pooled within-category tau {:.2}",
        r.global.mean, r.global.mean_sd, r.global.between_categories_sd, r.global.within_category_tau
    );
    let big: Vec<f64> = r.categories.iter().filter(|c| c.with_own >= 5).map(|c| c.mean).collect();
    println!("{}", dist_line("category means (5+ own)", &big));
    let taus: Vec<f64> = r.categories.iter().filter_map(|c| c.tau_dl).collect();
    if let Some(d) = elasticity::distribution(&taus) {
        println!("  per-category DerSimonian-Laird tau: p25 {:.2}, median {:.2}, p75 {:.2}", d.p25, d.p50, d.p75);
    }
    let mut cats: Vec<&elasticity::CategorySummary> = r.categories.iter().collect();
    cats.sort_by(|a, b| b.sales.total_cmp(&a.sales));
    println!(
        "\n  {:<28} {:>9} {:>8} {:>5} {:>8} {:>15} {:>6} {:>7}",
        "category (top by sales)", "sales $", "products", "own", "raw", "prior mean ± sd", "tau", "DL tau"
    );
    for c in cats.iter().take(10) {
        println!(
            "  {:<28} {:>9.0} {:>8} {:>5} {:>8} {:>8.2} ± {:<4.2} {:>6.2} {:>7}",
            truncate(&c.category, 28),
            c.sales,
            c.products,
            c.with_own,
            c.raw_mean.map_or("-".into(), |m| format!("{m:.2}")),
            c.mean,
            c.mean_sd,
            c.tau,
            c.tau_dl.map_or("-".into(), |t| format!("{t:.2}"))
        );
    }

    let mut tops: Vec<&Estimate> = r.estimates.iter().collect();
    tops.sort_by(|a, b| b.sales.total_cmp(&a.sales));
    println!(
        "\n  {:<9} {:<24} {:<24} {:>5} {:>8} {:>13} {:>7} {:>16}",
        "product",
        "category",
        "type",
        "weeks",
        "sales $",
        "own ± se",
        "shrunk",
        format!("{pct:.0} % interval")
    );
    for e in tops.iter().take(x.top) {
        let kind = x.ids.get(&e.product).and_then(|id| x.products.get(id)).map_or("", |p| p.kind.as_str());
        let own = match (e.own, e.own_se) {
            (Some(o), Some(s)) => format!("{o:.2} ± {s:.2}"),
            _ => e.status.label().to_string(),
        };
        println!(
            "  {:<9} {:<24} {:<24} {:>5} {:>8.0} {:>13} {:>7.2} {:>16}",
            e.product,
            truncate(&e.category, 24),
            truncate(kind, 24),
            e.weeks,
            e.sales,
            truncate(&own, 13),
            e.elasticity,
            format!("[{:.2}, {:.2}]", e.lower, e.upper)
        );
    }

    println!(
        "\nRecovery check (simulated constant-elasticity demand with Poisson sales, known truth, {} products x {} weeks):",
        x.recovery.first().map_or(0, |r| r.products),
        x.recovery.first().map_or(0, |r| r.weeks)
    );
    for (seed, rc) in RECOVERY_SEEDS.iter().zip(x.recovery) {
        println!(
            "  seed {seed}: MAE shrunk {:.3} vs own {:.3} (same {} products; {:.3} over all {}); coverage of {:.0} % intervals: shrunk {:.1} %, own {:.1} %",
            rc.mae_with_own,
            rc.own_mae,
            rc.with_own,
            rc.mae,
            rc.products,
            rc.nominal * 100.0,
            rc.coverage * 100.0,
            rc.own_coverage * 100.0
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

fn write_csv(path: &Path, report: &Report, products: &HashMap<i64, Product>, ids: &HashMap<String, i64>) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record([
        "product",
        "category",
        "department",
        "product_type",
        "weeks",
        "units",
        "sales",
        "own",
        "own_se",
        "elasticity",
        "sd",
        "lower",
        "upper",
        "shrinkage",
        "status",
    ])?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for e in &report.estimates {
        let info = ids.get(&e.product).and_then(|id| products.get(id));
        w.write_record([
            e.product.clone(),
            e.category.clone(),
            info.map_or(String::new(), |p| p.department.clone()),
            info.map_or(String::new(), |p| p.kind.clone()),
            e.weeks.to_string(),
            format!("{}", e.units),
            format!("{:.2}", e.sales),
            opt(e.own),
            opt(e.own_se),
            format!("{:.4}", e.elasticity),
            format!("{:.4}", e.sd),
            format!("{:.4}", e.lower),
            format!("{:.4}", e.upper),
            format!("{:.3}", e.shrinkage),
            e.status.label().to_string(),
        ])?;
    }
    w.flush()?;
    let mut inner = w.into_inner().map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    inner.flush()?;
    Ok(())
}
