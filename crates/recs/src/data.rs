//! Interaction data: users, items and their purchases, indexed densely for the models.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// One purchase line: who bought what, when, how many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    /// Dense user index.
    pub user: u32,
    /// Dense item index.
    pub item: u32,
    /// Unix seconds.
    pub ts: i64,
    /// Quantity.
    pub quantity: f32,
    /// Store index into [`Dataset::stores`], or [`NO_STORE`].
    pub store: u32,
}

/// The store of an interaction that did not happen in a known store.
pub const NO_STORE: u32 = u32::MAX;

/// A set of interactions with the id maps that index them.
#[derive(Debug, Default, Clone)]
pub struct Dataset {
    /// External user ids by index.
    pub users: Vec<String>,
    /// External item ids by index.
    pub items: Vec<String>,
    /// Index of each external user id.
    pub user_index: HashMap<String, u32>,
    /// Index of each external item id.
    pub item_index: HashMap<String, u32>,
    /// The interactions, in file order.
    pub rows: Vec<Interaction>,
    /// Store ids by index.
    pub stores: Vec<String>,
    /// Index of each store id.
    pub store_index: HashMap<String, u32>,
}

/// A sparse user × item matrix in compressed rows: for user `u`, `indices[indptr[u]..indptr[u+1]]`
/// are the items and `data` the values (sorted by item).
#[derive(Debug, Clone, Default)]
pub struct Csr {
    /// Row starts (len = rows + 1).
    pub indptr: Vec<usize>,
    /// Column of each value.
    pub indices: Vec<u32>,
    /// Values.
    pub data: Vec<f32>,
}

impl Csr {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// The (column, value) pairs of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        self.indices[a..b].iter().copied().zip(self.data[a..b].iter().copied())
    }

    /// Builds a matrix of `rows` rows from (row, column, value) triples, summing duplicates.
    pub fn from_triples(rows: usize, mut triples: Vec<(u32, u32, f32)>) -> Csr {
        triples.sort_unstable_by_key(|t| (t.0, t.1));
        let mut indptr = vec![0usize; rows + 1];
        let mut indices = Vec::with_capacity(triples.len());
        let mut data: Vec<f32> = Vec::with_capacity(triples.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triples {
            if last == Some((r, c)) {
                if let Some(d) = data.last_mut() {
                    *d += v;
                }
                continue;
            }
            last = Some((r, c));
            indices.push(c);
            data.push(v);
            indptr[r as usize + 1] = indices.len();
        }
        for r in 1..=rows {
            indptr[r] = indptr[r].max(indptr[r - 1]);
        }
        Csr { indptr, indices, data }
    }

    /// The transpose (columns become rows).
    pub fn transpose(&self, cols: usize) -> Csr {
        let mut triples = Vec::with_capacity(self.indices.len());
        for r in 0..self.rows() {
            for (c, v) in self.row(r) {
                triples.push((c, r as u32, v));
            }
        }
        Csr::from_triples(cols, triples)
    }
}

impl Dataset {
    /// Reads a CSV (optionally gzip-compressed) with header `user,item,timestamp[,quantity,...]`.
    pub fn read_csv(path: &Path) -> Result<Dataset, String> {
        let mut d = Dataset::default();
        d.extend_from_csv(path, true, true)?;
        Ok(d)
    }

    /// Reads more rows. Unknown users (items) get new indexes when `grow_users` (`grow_items`)
    /// is set; otherwise rows naming them are skipped (a test split read against a train
    /// vocabulary keeps new users but drops items the models never saw).
    pub fn extend_from_csv(&mut self, path: &Path, grow_users: bool, grow_items: bool) -> Result<usize, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        let mut csv = csv::Reader::from_reader(reader);
        let header = csv.headers().map_err(|e| e.to_string())?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(cu), Some(ci)) = (col("user"), col("item")) else {
            return Err(format!("{}: the header needs user and item columns", path.display()));
        };
        let (ct, cq) = (col("timestamp"), col("quantity"));
        let mut added = 0;
        let mut record = csv::StringRecord::new();
        while csv.read_record(&mut record).map_err(|e| e.to_string())? {
            let (Some(u), Some(i)) = (record.get(cu), record.get(ci)) else { continue };
            let user = match self.user_index.get(u) {
                Some(x) => *x,
                None if grow_users => {
                    self.users.push(u.to_string());
                    self.user_index.insert(u.to_string(), self.users.len() as u32 - 1);
                    self.users.len() as u32 - 1
                }
                None => continue,
            };
            let item = match self.item_index.get(i) {
                Some(x) => *x,
                None if grow_items => {
                    self.items.push(i.to_string());
                    self.item_index.insert(i.to_string(), self.items.len() as u32 - 1);
                    self.items.len() as u32 - 1
                }
                None => continue,
            };
            let ts = ct.and_then(|c| record.get(c)).and_then(|v| v.parse().ok()).unwrap_or(0);
            let quantity = cq.and_then(|c| record.get(c)).and_then(|v| v.parse().ok()).unwrap_or(1.0);
            self.rows.push(Interaction { user, item, ts, quantity, store: NO_STORE });
            added += 1;
        }
        Ok(added)
    }

    /// The index of an item, adding it when new.
    pub fn item(&mut self, id: &str) -> u32 {
        intern(&mut self.items, &mut self.item_index, id)
    }

    /// The index of a user, adding them when new.
    pub fn user(&mut self, id: &str) -> u32 {
        intern(&mut self.users, &mut self.user_index, id)
    }

    /// Adds one interaction.
    pub fn push(&mut self, user: &str, item: &str, ts: i64, quantity: f32, store: Option<&str>) {
        let (user, item) = (self.user(user), self.item(item));
        let store = store.map_or(NO_STORE, |s| intern(&mut self.stores, &mut self.store_index, s));
        self.rows.push(Interaction { user, item, ts, quantity, store });
    }

    /// Each user's purchases as (item, unix seconds), in time order.
    pub fn purchases_by_user(&self) -> Vec<Vec<(u32, i64)>> {
        let mut out = vec![Vec::new(); self.users.len()];
        for r in &self.rows {
            out[r.user as usize].push((r.item, r.ts));
        }
        out.iter_mut().for_each(|v: &mut Vec<(u32, i64)>| v.sort_by_key(|x| x.1));
        out
    }

    /// The user × item matrix of basket-line counts (how many lines bought the item).
    pub fn counts(&self) -> Csr {
        Csr::from_triples(self.users.len(), self.rows.iter().map(|r| (r.user, r.item, 1.0)).collect())
    }

    /// The user × item matrix the factorization learns from: basket lines, each weighted by
    /// 0.5^(age / half-life) from the user's last purchase when `half_life_days` is set, summed,
    /// and log-scaled (2·ln(1 + x)) when `log` is set.
    pub fn confidences(&self, half_life_days: Option<f64>, log: bool) -> Csr {
        let mut last = vec![i64::MIN; self.users.len()];
        for r in &self.rows {
            last[r.user as usize] = last[r.user as usize].max(r.ts);
        }
        let triples = self
            .rows
            .iter()
            .map(|r| {
                let w = half_life_days
                    .map_or(1.0, |h| 0.5f64.powf((last[r.user as usize] - r.ts) as f64 / 86_400.0 / h) as f32);
                (r.user, r.item, w)
            })
            .collect();
        let mut m = Csr::from_triples(self.users.len(), triples);
        if log {
            m.data.iter_mut().for_each(|v| *v = (1.0 + *v).ln() * 2.0);
        }
        m
    }

    /// Rows split by time per user: for each user the rows at or after the time of its row at
    /// position floor((1 - share) * n) go to the second part (a basket is never split).
    pub fn split_last(&self, share: f64) -> (Dataset, Dataset) {
        let mut by_user: Vec<Vec<Interaction>> = vec![Vec::new(); self.users.len()];
        for r in &self.rows {
            by_user[r.user as usize].push(*r);
        }
        let (mut head, mut tail) = (self.clone_empty(), self.clone_empty());
        for rows in by_user.iter_mut() {
            rows.sort_by_key(|r| r.ts);
            if rows.is_empty() {
                continue;
            }
            let cut_at = ((1.0 - share) * rows.len() as f64).floor() as usize;
            let cut_ts = rows[cut_at.min(rows.len() - 1)].ts;
            for r in rows.iter() {
                if r.ts >= cut_ts && cut_at > 0 {
                    tail.rows.push(*r);
                } else {
                    head.rows.push(*r);
                }
            }
        }
        (head, tail)
    }

    /// A dataset with the same id maps and no rows.
    pub fn clone_empty(&self) -> Dataset {
        Dataset {
            users: self.users.clone(),
            items: self.items.clone(),
            user_index: self.user_index.clone(),
            item_index: self.item_index.clone(),
            rows: Vec::new(),
            stores: self.stores.clone(),
            store_index: self.store_index.clone(),
        }
    }
}

fn intern(names: &mut Vec<String>, index: &mut HashMap<String, u32>, id: &str) -> u32 {
    if let Some(i) = index.get(id) {
        return *i;
    }
    names.push(id.to_string());
    index.insert(id.to_string(), names.len() as u32 - 1);
    names.len() as u32 - 1
}
