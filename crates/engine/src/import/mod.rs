//! `tailor import`: products, locations, customers and orders from CSV or Parquet. Catalog rows
//! are upserted; customers and orders become events in the log (identify, Order Completed), so
//! they resolve to profiles like any other event. Every import is idempotent on re-run and
//! reports each rejected row with its reason.

/// The demo: The Complete Journey loaded through the same imports.
pub mod demo;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tailor_catalog::table::ColumnMap;
use tailor_catalog::{ImportReport, Location, Product, Table, LOCATION_COLUMNS, PRODUCT_COLUMNS};
use tailor_core::event::{Event, EventKind};
use tailor_core::money::{cents, format_cents};
use tailor_core::time::{now_millis, parse_rfc3339};
use tailor_core::{Identifier, IdentifierKind};
use tailor_store::Row;

use crate::{Engine, EngineError};

/// Receives progress of long imports (the CLI draws a bar).
pub trait Progress: Send + Sync {
    /// The total amount of work, when known.
    fn total(&self, n: u64);
    /// `n` more units done.
    fn advance(&self, n: u64);
    /// What is being done now.
    fn stage(&self, message: &str);
}

/// Progress that goes nowhere.
#[derive(Debug)]
pub struct Silent;

impl Progress for Silent {
    fn total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn stage(&self, _: &str) {}
}

/// What kind of rows a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// Catalog products.
    Products,
    /// Stores and warehouses.
    Locations,
    /// Customers, as identify events.
    Customers,
    /// Order lines, grouped into Order Completed events.
    Orders,
    /// Stock levels per SKU and location (a count: they replace the current ones).
    Stock,
}

const CHUNK: usize = 2000;

fn open(path: &Path) -> Result<Table, EngineError> {
    Table::open(path).map_err(EngineError::Io)
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Identifier columns shared by customer and order files.
const IDENTIFIER_COLUMNS: &[(IdentifierKind, &[&str])] = &[
    (IdentifierKind::UserId, &["user_id", "userid", "customer_id"]),
    (IdentifierKind::Email, &["email"]),
    (IdentifierKind::Phone, &["phone", "phone_number"]),
    (IdentifierKind::LoyaltyCard, &["loyalty_card", "card", "household_id"]),
    (IdentifierKind::PosCustomerId, &["pos_customer_id"]),
];

/// Reads the identifier cells of a row into `context.traits`-style entries and `userId`.
fn identifiers(
    table_cols: &[(IdentifierKind, Option<usize>)],
    row: &[Option<String>],
) -> Result<Vec<Identifier>, (String, String)> {
    let mut out = Vec::new();
    for (kind, col) in table_cols {
        if let Some(v) =
            col.and_then(|c| row.get(c)).and_then(|v| v.as_deref()).map(str::trim).filter(|v| !v.is_empty())
        {
            let id = Identifier::parse(*kind, v, kind.as_str()).map_err(|e| (e.field, e.message))?;
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err((
            "customer".into(),
            "the row has no identifier (user_id, email, phone, loyalty_card, pos_customer_id)".into(),
        ));
    }
    Ok(out)
}

fn identity_json(ids: &[Identifier]) -> (Option<String>, Map<String, Value>) {
    let mut traits = Map::new();
    let mut user_id = None;
    for id in ids {
        if id.kind == IdentifierKind::UserId {
            user_id = Some(id.value.clone());
        } else {
            traits.insert(id.kind.as_str().into(), Value::String(id.value.clone()));
        }
    }
    (user_id, traits)
}

impl Engine {
    /// Imports `path` as `kind`, reporting progress; rejected rows are listed in the report.
    pub async fn import(
        &self,
        kind: ImportKind,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<ImportReport, EngineError> {
        let report = match kind {
            ImportKind::Products => self.import_catalog(path, progress, true).await,
            ImportKind::Locations => self.import_catalog(path, progress, false).await,
            ImportKind::Customers => self.import_customers(path, progress).await,
            ImportKind::Orders => self.import_orders(path, progress, 0).await,
            ImportKind::Stock => self.import_stock(path, progress).await,
        };
        // Customers and orders change what recommendations read about shoppers.
        self.shoppers_changed_everywhere().await?;
        report
    }

    async fn import_stock(&self, path: &Path, progress: &dyn Progress) -> Result<ImportReport, EngineError> {
        use tailor_inventory::{LevelRow, STOCK_COLUMNS};
        let table = open(path)?;
        progress.total(table.rows_hint.unwrap_or(0));
        let cols = ColumnMap::new(&table, STOCK_COLUMNS);
        if !cols.has(0) || !cols.has(1) {
            return Err(EngineError::Io(format!(
                "{}: a stock file needs sku and location_id columns (or product_id, store_id)",
                path.display()
            )));
        }
        let present: [bool; 5] = std::array::from_fn(|i| cols.has(i + 2));
        // Known SKUs and locations, to name a row's unknown one instead of storing it.
        let known = |sql: &'static str| async move {
            Ok::<_, EngineError>(
                sqlx::query(sql)
                    .fetch_all(self.db().reader())
                    .await?
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect::<std::collections::HashSet<String>>(),
            )
        };
        let (skus, locations) = (known("SELECT id FROM products").await?, known("SELECT id FROM locations").await?);
        let mut report = ImportReport::default();
        let mut rows: Vec<LevelRow> = Vec::new();
        let flush = |rows: &mut Vec<LevelRow>| {
            let batch = std::mem::take(rows);
            async move { tailor_inventory::set_levels(self.db(), &batch, present, now_millis()).await.map(|()| batch.len()) }
        };
        for row in table {
            report.rows += 1;
            let n = report.rows;
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    report.reject(n, "", e);
                    continue;
                }
            };
            let (sku, location) = (cols.get(&row, 0).unwrap_or("").trim(), cols.get(&row, 1).unwrap_or("").trim());
            if !skus.contains(sku) {
                report.reject(n, "sku", format!("no product with id '{sku}'"));
                continue;
            }
            if !locations.contains(location) {
                report.reject(n, "location_id", format!("no location with id '{location}'"));
                continue;
            }
            let mut values = [None; 5];
            let mut bad = None;
            for (i, v) in values.iter_mut().enumerate() {
                let Some(cell) = cols.get(&row, i + 2).map(str::trim).filter(|c| !c.is_empty()) else { continue };
                match cell.parse::<i64>() {
                    Ok(x) if x >= 0 => *v = Some(x),
                    _ => bad = Some((STOCK_COLUMNS[i + 2].0, format!("'{cell}' is not a whole number of 0 or more"))),
                }
            }
            if let Some((col, reason)) = bad {
                report.reject(n, col, reason);
                continue;
            }
            rows.push(LevelRow { sku: sku.to_string(), location_id: location.to_string(), values });
            report.accepted += 1;
            if rows.len() >= CHUNK {
                let done = flush(&mut rows).await?;
                progress.advance(done as u64);
            }
        }
        let done = flush(&mut rows).await?;
        progress.advance(done as u64);
        self.reload_unavailable().await?;
        Ok(report)
    }

    async fn import_catalog(
        &self,
        path: &Path,
        progress: &dyn Progress,
        products: bool,
    ) -> Result<ImportReport, EngineError> {
        let table = open(path)?;
        progress.total(table.rows_hint.unwrap_or(0));
        let cols = ColumnMap::new(&table, if products { PRODUCT_COLUMNS } else { LOCATION_COLUMNS });
        if !cols.has(0) {
            return Err(EngineError::Io(format!(
                "{}: no id column (expected one of id, product_id, sku, location_id, store_id)",
                path.display()
            )));
        }
        let mut report = ImportReport::default();
        let (mut ps, mut ls) = (Vec::new(), Vec::new());
        for row in table {
            report.rows += 1;
            let n = report.rows;
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    report.reject(n, "", e);
                    continue;
                }
            };
            let parsed = if products {
                Product::from_row(&cols, &row).map(|p| ps.push(p))
            } else {
                Location::from_row(&cols, &row).map(|l| ls.push(l))
            };
            match parsed {
                Ok(()) => report.accepted += 1,
                Err((col, reason)) => report.reject(n, &col, reason),
            }
            if ps.len() >= CHUNK || ls.len() >= CHUNK {
                self.flush_catalog(&mut ps, &mut ls).await?;
                progress.advance(CHUNK as u64);
            }
        }
        let rest = (ps.len() + ls.len()) as u64;
        self.flush_catalog(&mut ps, &mut ls).await?;
        progress.advance(rest);
        Ok(report)
    }

    async fn flush_catalog(&self, ps: &mut Vec<Product>, ls: &mut Vec<Location>) -> Result<(), EngineError> {
        let now = now_millis();
        if !ps.is_empty() {
            tailor_catalog::upsert_products(self.db(), ps, now).await?;
            self.catalog_changed();
            ps.clear();
        }
        if !ls.is_empty() {
            tailor_catalog::upsert_locations(self.db(), ls, now).await?;
            ls.clear();
        }
        Ok(())
    }

    async fn import_customers(&self, path: &Path, progress: &dyn Progress) -> Result<ImportReport, EngineError> {
        let table = open(path)?;
        progress.total(table.rows_hint.unwrap_or(0));
        let id_cols: Vec<_> = IDENTIFIER_COLUMNS.iter().map(|(k, names)| (*k, table.column(names))).collect();
        let id_col_set: Vec<usize> = id_cols.iter().filter_map(|(_, c)| *c).collect();
        let header = table.header.clone();
        let now = now_millis();
        let mut report = ImportReport::default();
        let mut events = Vec::new();
        for row in table {
            report.rows += 1;
            let n = report.rows;
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    report.reject(n, "", e);
                    continue;
                }
            };
            let ids = match identifiers(&id_cols, &row) {
                Ok(ids) => ids,
                Err((col, reason)) => {
                    report.reject(n, &col, reason);
                    continue;
                }
            };
            let (user_id, id_traits) = identity_json(&ids);
            let mut traits = id_traits.clone();
            for (i, h) in header.iter().enumerate() {
                if !id_col_set.contains(&i) {
                    if let Some(Some(v)) = row.get(i) {
                        traits.insert(h.clone(), Value::String(v.clone()));
                    }
                }
            }
            let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("")).collect();
            let raw = json!({
                "type": "identify",
                "messageId": format!("import-customer-{}", digest(&cells)),
                "userId": user_id,
                "traits": traits,
                "context": {"channel": "server", "traits": id_traits},
            });
            match Event::parse_trusted(raw, Some(EventKind::Identify), now) {
                Ok(e) => {
                    events.push(e);
                    report.accepted += 1;
                }
                Err(e) => report.reject(n, &e.field, e.message),
            }
            if events.len() >= CHUNK {
                self.ingest(&events).await?;
                progress.advance(events.len() as u64);
                events.clear();
            }
        }
        self.ingest(&events).await?;
        progress.advance(events.len() as u64);
        Ok(report)
    }

    /// Imports order lines with their times moved by `shift_ms` (the demo brings old data up to
    /// today; a plain import keeps the file's times).
    /// Long on purpose: one streaming pass (read, group lines into orders, reject rows, emit events) whose steps share the grouping state.
    pub(crate) async fn import_orders(
        &self,
        path: &Path,
        progress: &dyn Progress,
        shift_ms: i64,
    ) -> Result<ImportReport, EngineError> {
        const ORDER_COLUMNS: &[(&str, &[&str])] = &[
            ("order_id", &["order_id", "basket_id"]),
            ("product_id", &["product_id", "sku"]),
            ("quantity", &["quantity", "qty"]),
            ("price", &["price", "unit_price"]),
            ("line_total", &["line_total", "sales_value"]),
            ("timestamp", &["timestamp", "transaction_timestamp", "ordered_at"]),
            ("store_id", &["store_id", "location_id"]),
            ("channel", &["channel"]),
            ("currency", &["currency"]),
            ("discount", &["discount", "retail_disc"]),
        ];
        let table = open(path)?;
        progress.stage("reading order lines");
        progress.total(table.rows_hint.unwrap_or(0));
        let cols = ColumnMap::new(&table, ORDER_COLUMNS);
        for (i, (name, _)) in ORDER_COLUMNS.iter().enumerate().take(3) {
            if !cols.has(i) {
                return Err(EngineError::Io(format!("{}: no {name} column", path.display())));
            }
        }
        let id_cols: Vec<_> = IDENTIFIER_COLUMNS.iter().map(|(k, names)| (*k, table.column(names))).collect();
        let categories = self.product_categories().await?;
        let mut report = ImportReport::default();
        let mut orders: BTreeMap<String, OrderDraft> = BTreeMap::new();
        let mut done = 0u64;
        for row in table {
            report.rows += 1;
            let n = report.rows;
            done += 1;
            if done.is_multiple_of(20_000) {
                progress.advance(20_000);
            }
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    report.reject(n, "", e);
                    continue;
                }
            };
            match order_line(&cols, &id_cols, &row) {
                Ok((order_id, line, head)) => {
                    let draft = orders.entry(order_id).or_insert_with(|| OrderDraft {
                        head: head.clone(),
                        lines: Vec::new(),
                        rows: Vec::new(),
                    });
                    if draft.head.ids != head.ids {
                        report.reject(n, "customer", "this order's other lines name a different customer");
                        continue;
                    }
                    draft.head.ts = draft.head.ts.min(head.ts);
                    draft.lines.push(line);
                    draft.rows.push(n);
                    report.accepted += 1;
                }
                Err((col, reason)) => report.reject(n, &col, reason),
            }
        }
        progress.advance(done % 20_000);
        progress.stage("logging orders");
        progress.total(orders.len() as u64);
        let now = now_millis();
        let mut drafts: Vec<(String, OrderDraft)> = orders.into_iter().collect();
        drafts.sort_by(|a, b| (a.1.head.ts, &a.0).cmp(&(b.1.head.ts, &b.0)));
        let mut events = Vec::with_capacity(CHUNK);
        for (order_id, d) in drafts {
            let total: i64 = d.lines.iter().map(|l| l.total_cents).sum();
            let products: Vec<Value> = d
                .lines
                .iter()
                .map(|l| {
                    let mut p = json!({
                        "product_id": l.product_id,
                        "quantity": l.quantity,
                        "price": format_cents(l.total_cents / l.quantity.max(1)),
                    });
                    if let Some(c) = categories.get(&l.product_id) {
                        p["category"] = Value::String(c.clone());
                    }
                    p
                })
                .collect();
            let (user_id, traits) = identity_json(&d.head.ids);
            let mut props = json!({
                "order_id": order_id,
                "total": format_cents(total),
                "currency": d.head.currency,
                "products": products,
            });
            if let Some(s) = &d.head.store_id {
                props["store_id"] = Value::String(s.clone());
            }
            let raw = json!({
                "type": "track",
                "event": "Order Completed",
                "messageId": format!("import-order-{}", digest(&[&order_id])),
                "userId": user_id,
                "timestamp": tailor_core::time::format_millis(d.head.ts + shift_ms),
                "properties": props,
                "context": {"channel": d.head.channel, "traits": traits},
            });
            match Event::parse_trusted(raw, Some(EventKind::Track), now) {
                Ok(e) => events.push(e),
                Err(e) => {
                    for r in &d.rows {
                        report.reject(*r, &e.field, e.message.clone());
                    }
                    report.accepted -= d.rows.len() as u64;
                }
            }
            if events.len() >= CHUNK {
                self.ingest(&events).await?;
                progress.advance(events.len() as u64);
                events.clear();
            }
        }
        self.ingest(&events).await?;
        progress.advance(events.len() as u64);
        Ok(report)
    }

    async fn product_categories(&self) -> Result<HashMap<String, String>, EngineError> {
        let rows = sqlx::query("SELECT id, category FROM products WHERE category IS NOT NULL")
            .fetch_all(self.db().reader())
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

#[derive(Debug, Clone, PartialEq)]
struct OrderHead {
    ids: Vec<Identifier>,
    ts: i64,
    store_id: Option<String>,
    channel: String,
    currency: String,
}

#[derive(Debug)]
struct OrderLine {
    product_id: String,
    quantity: i64,
    total_cents: i64,
}

#[derive(Debug)]
struct OrderDraft {
    head: OrderHead,
    lines: Vec<OrderLine>,
    rows: Vec<u64>,
}

type LineResult = Result<(String, OrderLine, OrderHead), (String, String)>;

fn order_line(cols: &ColumnMap, id_cols: &[(IdentifierKind, Option<usize>)], row: &[Option<String>]) -> LineResult {
    let err = |c: &str, m: String| Err((c.to_string(), m));
    let Some(order_id) = cols.get(row, 0) else {
        return err("order_id", "missing".into());
    };
    let Some(product_id) = cols.get(row, 1) else {
        return err("product_id", "missing".into());
    };
    let quantity = match cols.get(row, 2).map(|q| q.parse::<i64>()) {
        Some(Ok(q)) if q > 0 => q,
        Some(Ok(q)) => return err("quantity", format!("{q} is not a positive quantity")),
        _ => return err("quantity", "must be a whole number".into()),
    };
    let total_cents = match (cols.get(row, 4), cols.get(row, 3)) {
        (Some(t), _) => {
            cents(&Value::String(t.into())).ok_or(("line_total".to_string(), format!("'{t}' is not an amount")))?
        }
        (None, Some(p)) => {
            cents(&Value::String(p.into())).ok_or(("price".to_string(), format!("'{p}' is not an amount")))? * quantity
        }
        (None, None) => return err("price", "a line needs a price or a line_total".into()),
    };
    if total_cents < 0 {
        return err("price", "must not be negative".into());
    }
    let ts = match cols.get(row, 5) {
        None => now_millis(),
        Some(t) => parse_rfc3339(t)
            .or_else(|| {
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                    .ok()
                    .map(|d| d.and_utc().timestamp_millis())
            })
            .ok_or(("timestamp".to_string(), format!("'{t}' is not an ISO 8601 timestamp")))?,
    };
    let ids = identifiers(id_cols, row)?;
    let store_id = cols.get(row, 6).map(str::to_string);
    let channel = cols.get(row, 7).map(str::to_string).unwrap_or_else(|| {
        if store_id.is_some() {
            "store".into()
        } else {
            "web".into()
        }
    });
    let currency = cols.get(row, 8).unwrap_or("USD").to_ascii_uppercase();
    Ok((
        order_id.to_string(),
        OrderLine { product_id: product_id.to_string(), quantity, total_cents },
        OrderHead { ids, ts, store_id, channel, currency },
    ))
}
