//! Shrinking the own estimates: products toward their category and categories toward the mean
//! over categories, with τ² by DerSimonian–Laird at both levels (see the
//! [module documentation](super)).

use std::collections::HashMap;

use super::{
    check_config, check_row, fit_product, normal_quantile, CategorySummary, Config, ElasticityError, Estimate,
    GlobalSummary, Observation, OwnFit, OwnStatus, Report,
};

/// A random-effects summary of estimates `b` with sampling variances `v`.
#[derive(Debug, Clone, Copy)]
struct Pooled {
    /// DerSimonian–Laird τ² (≥ 0).
    tau2: f64,
    /// Cochran's Q and its parts, for pooling over groups.
    q: f64,
    df: f64,
    c: f64,
}

/// DerSimonian–Laird moments for one group (needs 2+ estimates for a τ²).
fn dersimonian_laird(b: &[f64], v: &[f64]) -> Option<Pooled> {
    if b.len() < 2 {
        return None;
    }
    let w: Vec<f64> = v.iter().map(|v| 1.0 / v).collect();
    let sw: f64 = w.iter().sum();
    let sw2: f64 = w.iter().map(|w| w * w).sum();
    let fixed = w.iter().zip(b).map(|(w, b)| w * b).sum::<f64>() / sw;
    let q: f64 = w.iter().zip(b).map(|(w, b)| w * (b - fixed).powi(2)).sum();
    let df = (b.len() - 1) as f64;
    let c = sw - sw2 / sw;
    let tau2 = if c > 0.0 { ((q - df) / c).max(0.0) } else { 0.0 };
    Some(Pooled { tau2, q, df, c })
}

/// The random-effects mean and its variance given τ².
fn re_mean(b: &[f64], v: &[f64], tau2: f64) -> (f64, f64) {
    let w: Vec<f64> = v.iter().map(|v| 1.0 / (v + tau2)).collect();
    let sw: f64 = w.iter().sum();
    (w.iter().zip(b).map(|(w, b)| w * b).sum::<f64>() / sw, 1.0 / sw)
}

/// The products being estimated: their weeks (in order of first appearance), own fits, and the
/// products of each category (categories in name order).
struct Products<'a> {
    groups: Vec<Vec<&'a Observation>>,
    fits: Vec<Result<OwnFit, OwnStatus>>,
    by_category: HashMap<&'a str, Vec<usize>>,
    names: Vec<&'a str>,
}

impl<'a> Products<'a> {
    fn new(groups: Vec<Vec<&'a Observation>>, fits: Vec<Result<OwnFit, OwnStatus>>) -> Products<'a> {
        let mut by_category: HashMap<&str, Vec<usize>> = HashMap::new();
        for (g, rows) in groups.iter().enumerate() {
            by_category.entry(rows[0].category.as_str()).or_default().push(g);
        }
        let mut names: Vec<&str> = by_category.keys().copied().collect();
        names.sort_unstable();
        Products { groups, fits, by_category, names }
    }

    /// The own estimates (elasticity, variance) among `members`.
    fn own_of(&self, members: &[usize]) -> (Vec<f64>, Vec<f64>) {
        members.iter().filter_map(|&g| self.fits[g].as_ref().ok()).map(|f| (f.elasticity, f.se * f.se)).unzip()
    }
}

/// One category's between-product τ² (its own pooled with everyone's), its raw random-effects
/// mean (when a product has an own estimate) and its own DerSimonian–Laird τ² (2+ estimates).
struct Category {
    tau2: f64,
    raw: Option<(f64, f64)>,
    dl_tau2: Option<f64>,
}

/// The shrunk mean over categories and its variance, and the between-category τ².
struct Global {
    mean: f64,
    var: f64,
    between_tau2: f64,
}

/// Estimates every product's elasticity from `observations` (see the module documentation).
pub fn estimate(observations: &[Observation], config: &Config) -> Result<Report, ElasticityError> {
    check_config(config)?;
    if observations.is_empty() {
        return Err(ElasticityError::Empty);
    }
    let groups = group_products(observations)?;
    let fits: Vec<Result<OwnFit, OwnStatus>> = groups.iter().map(|g| fit_product(g, config)).collect();
    if fits.iter().all(Result::is_err) {
        return Err(ElasticityError::NoEstimates {
            products: groups.len(),
            min_weeks: config.min_weeks,
            min_log_price_sd: config.min_log_price_sd,
        });
    }
    let products = Products::new(groups, fits);
    let (cats, pooled_tau2) = categories(&products, config.tau_prior_weight);
    // Level 3: category means toward the mean over categories.
    let (cb, cv): (Vec<f64>, Vec<f64>) = products.names.iter().filter_map(|n| cats[n].raw).unzip();
    let between_tau2 = dersimonian_laird(&cb, &cv).map_or(0.0, |p| p.tau2);
    let (mean, var) = re_mean(&cb, &cv, between_tau2);
    let global = Global { mean, var, between_tau2 };
    let z = normal_quantile(0.5 + config.level / 2.0);
    let mut estimates: Vec<Option<Estimate>> = vec![None; products.groups.len()];
    let mut categories = Vec::with_capacity(products.names.len());
    for &name in &products.names {
        let cat = &cats[name];
        let prior = category_prior(cat, &global);
        let members = &products.by_category[name];
        let mut sales_total = 0.0;
        for &g in members {
            let e = product_estimate(&products.groups[g], name, &products.fits[g], cat.tau2, prior, z);
            sales_total += e.sales;
            estimates[g] = Some(e);
        }
        categories.push(CategorySummary {
            category: name.to_string(),
            products: members.len(),
            with_own: members.iter().filter(|&&g| products.fits[g].is_ok()).count(),
            raw_mean: cat.raw.map(|r| r.0),
            mean: prior.0,
            mean_sd: prior.1.max(0.0).sqrt(),
            tau: cat.tau2.sqrt(),
            tau_dl: cat.dl_tau2.map(f64::sqrt),
            sales: sales_total,
        });
    }
    Ok(Report {
        level: config.level,
        estimates: estimates.into_iter().flatten().collect(),
        categories,
        global: GlobalSummary {
            mean: global.mean,
            mean_sd: global.var.sqrt(),
            between_categories_sd: global.between_tau2.sqrt(),
            within_category_tau: pooled_tau2.sqrt(),
        },
    })
}

/// The observations grouped by product, in order of first appearance, each row checked; a
/// product named under two categories is refused.
fn group_products(observations: &[Observation]) -> Result<Vec<Vec<&Observation>>, ElasticityError> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<&Observation>> = Vec::new();
    for (row, o) in observations.iter().enumerate() {
        check_row(row, o)?;
        match index.get(o.product.as_str()) {
            Some(&g) => {
                let earlier = &groups[g][0].category;
                if *earlier != o.category {
                    return Err(ElasticityError::CategoryMismatch {
                        row,
                        product: o.product.clone(),
                        category: o.category.clone(),
                        earlier: earlier.clone(),
                    });
                }
                groups[g].push(o);
            }
            None => {
                index.insert(&o.product, groups.len());
                groups.push(vec![o]);
            }
        }
    }
    Ok(groups)
}

/// Level 2: each category's τ² and raw mean, and the pooled within-category τ²
/// (DerSimonian–Laird with each category's own mean), which a category's own τ² is pooled
/// with at `tau_prior_weight` products.
fn categories<'a>(p: &Products<'a>, tau_prior_weight: f64) -> (HashMap<&'a str, Category>, f64) {
    let mut per_category_dl: HashMap<&str, Pooled> = HashMap::new();
    let (mut q, mut df, mut c) = (0.0, 0.0, 0.0);
    for &name in &p.names {
        let (b, v) = p.own_of(&p.by_category[name]);
        if let Some(d) = dersimonian_laird(&b, &v) {
            q += d.q;
            df += d.df;
            c += d.c;
            per_category_dl.insert(name, d);
        }
    }
    let pooled_tau2 = if c > 0.0 {
        ((q - df) / c).max(0.0)
    } else {
        // No category has two estimates: the spread over all products stands in.
        let (b, v): (Vec<f64>, Vec<f64>) =
            p.fits.iter().filter_map(|f| f.as_ref().ok()).map(|f| (f.elasticity, f.se * f.se)).unzip();
        dersimonian_laird(&b, &v).map_or(0.0, |d| d.tau2)
    };
    let mut cats: HashMap<&str, Category> = HashMap::new();
    for &name in &p.names {
        let (b, v) = p.own_of(&p.by_category[name]);
        let dl = per_category_dl.get(name);
        let tau2 = match dl {
            Some(d) => (d.df * d.tau2 + tau_prior_weight * pooled_tau2) / (d.df + tau_prior_weight),
            None => pooled_tau2,
        };
        let tau2 = if tau2.is_finite() { tau2 } else { pooled_tau2 };
        let raw = (!b.is_empty()).then(|| re_mean(&b, &v, tau2));
        cats.insert(name, Category { tau2, raw, dl_tau2: dl.map(|d| d.tau2) });
    }
    (cats, pooled_tau2)
}

/// A category's mean shrunk toward the mean over categories, and its variance (Morris); a
/// category without own estimates takes the global mean.
fn category_prior(cat: &Category, g: &Global) -> (f64, f64) {
    match cat.raw {
        Some((m, v)) => {
            let denom = v + g.between_tau2;
            let shrink = if denom > 0.0 { v / denom } else { 0.0 };
            (shrink * g.mean + (1.0 - shrink) * m, (1.0 - shrink) * v + shrink * shrink * g.var)
        }
        None => (g.mean, g.between_tau2 + g.var),
    }
}

/// One product's estimate: its own fit shrunk toward the category `prior` (mean, variance) by
/// `B = v / (v + τ²)`, or the prior alone without an own fit, with an interval at `z`.
fn product_estimate(
    rows: &[&Observation],
    category: &str,
    fit: &Result<OwnFit, OwnStatus>,
    tau2: f64,
    (prior_mean, prior_var): (f64, f64),
    z: f64,
) -> Estimate {
    let units: f64 = rows.iter().map(|o| o.quantity).sum();
    let sales: f64 = rows.iter().map(|o| o.quantity * o.price).sum();
    let (mean, var, own, own_se, status, shrinkage) = match fit {
        Ok(f) => {
            let v = f.se * f.se;
            let denom = v + tau2;
            let b = if denom > 0.0 { v / denom } else { 1.0 };
            (
                b * prior_mean + (1.0 - b) * f.elasticity,
                (1.0 - b) * v + b * b * prior_var,
                Some(f.elasticity),
                Some(f.se),
                OwnStatus::Estimated,
                b,
            )
        }
        Err(status) => (prior_mean, tau2 + prior_var, None, None, *status, 1.0),
    };
    let sd = var.max(0.0).sqrt();
    Estimate {
        product: rows[0].product.clone(),
        category: category.to_string(),
        elasticity: mean,
        sd,
        lower: mean - z * sd,
        upper: mean + z * sd,
        own,
        own_se,
        status,
        shrinkage,
        weeks: rows.len(),
        units,
        sales,
    }
}
