//! Reads CSV or Parquet files as rows of optional strings, with a header, so every importer maps
//! columns by name the same way whatever the format.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

/// A tabular file opened for reading.
pub struct Table {
    /// Column names, lower-cased.
    pub header: Vec<String>,
    /// Number of data rows, when the format tells it up front (Parquet).
    pub rows_hint: Option<u64>,
    rows: Box<dyn Iterator<Item = Result<Vec<Option<String>>, String>>>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("header", &self.header).finish()
    }
}

fn field_text(f: &Field, nanos: bool) -> Option<String> {
    match f {
        Field::Null => None,
        // Nanosecond timestamps have no converted type, so the record API hands them over as
        // plain longs; the schema's logical type tells them apart.
        Field::Long(ns) if nanos => Some(tailor_core::time::format_millis(ns / 1_000_000)),
        Field::Str(s) => Some(s.clone()),
        Field::TimestampMillis(ms) => Some(tailor_core::time::format_millis(*ms)),
        Field::TimestampMicros(us) => Some(tailor_core::time::format_millis(us / 1000)),
        other => Some(other.to_string().trim_matches('"').to_string()),
    }
}

impl Table {
    /// Opens `path` as Parquet (by the `.parquet` extension) or CSV (anything else; header row
    /// required).
    pub fn open(path: &Path) -> Result<Table, String> {
        let is_parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        if is_parquet {
            let reader = SerializedFileReader::new(file)
                .map_err(|e| format!("{} is not a readable Parquet file: {e}", path.display()))?;
            let meta = reader.metadata().file_metadata();
            let rows_hint = Some(meta.num_rows().max(0) as u64);
            let header: Vec<String> =
                meta.schema_descr().columns().iter().map(|c| c.name().to_ascii_lowercase()).collect();
            let width = header.len();
            let nanos: Vec<bool> = meta
                .schema_descr()
                .columns()
                .iter()
                .map(|c| {
                    matches!(
                        c.logical_type(),
                        Some(parquet::basic::LogicalType::Timestamp { unit: parquet::basic::TimeUnit::NANOS(_), .. })
                    )
                })
                .collect();
            let iter = reader.into_iter().map(move |row| {
                let row = row.map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(width);
                for (i, (_, field)) in row.get_column_iter().enumerate() {
                    out.push(field_text(field, nanos.get(i).copied().unwrap_or(false)));
                }
                Ok(out)
            });
            Ok(Table { header, rows_hint, rows: Box::new(iter) })
        } else {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
            let header: Vec<String> = reader
                .headers()
                .map_err(|e| format!("cannot read the CSV header of {}: {e}", path.display()))?
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect();
            let iter = reader.into_records().map(|rec| {
                let rec = rec.map_err(|e| e.to_string())?;
                Ok(rec.iter().map(|v| if v.is_empty() { None } else { Some(v.to_string()) }).collect())
            });
            Ok(Table { header, rows_hint: None, rows: Box::new(iter) })
        }
    }

    /// The index of the first column whose name is one of `names`.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.header.iter().position(|h| h == n))
    }
}

impl Iterator for Table {
    type Item = Result<Vec<Option<String>>, String>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rows.next()
    }
}

/// A row an import refused, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// 1-based data row number (the header is row 0).
    pub row: u64,
    /// The column at fault, if one is.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Rows read.
    pub rows: u64,
    /// Rows accepted (written, or already there unchanged).
    pub accepted: u64,
    /// Rows refused.
    pub rejected: Vec<Rejected>,
    /// Where the rejects were written, if any were.
    pub rejects_file: Option<PathBuf>,
}

impl ImportReport {
    /// Refuses row `row` because of `column`.
    pub fn reject(&mut self, row: u64, column: &str, reason: impl Into<String>) {
        self.rejected.push(Rejected { row, column: column.to_string(), reason: reason.into() });
    }

    /// Writes the rejected rows as CSV (`row,column,reason`) to `path` when there are any.
    pub fn write_rejects(&mut self, path: &Path) -> std::io::Result<()> {
        if self.rejected.is_empty() {
            return Ok(());
        }
        let mut w = csv::Writer::from_path(path)?;
        w.write_record(["row", "column", "reason"])?;
        for r in &self.rejected {
            w.write_record([r.row.to_string(), r.column.clone(), r.reason.clone()])?;
        }
        w.flush()?;
        std::io::stdout().flush()?;
        self.rejects_file = Some(path.to_path_buf());
        Ok(())
    }
}

/// Which column of a table holds each field an importer knows, by the field's accepted names.
#[derive(Debug, Clone)]
pub struct ColumnMap(Vec<Option<usize>>);

impl ColumnMap {
    /// Maps each `(field, names)` of `spec` to the first column named one of `names`.
    pub fn new(table: &Table, spec: &[(&str, &[&str])]) -> ColumnMap {
        ColumnMap(spec.iter().map(|(_, names)| table.column(names)).collect())
    }

    /// Whether field number `i` of the spec has a column.
    pub fn has(&self, i: usize) -> bool {
        self.0.get(i).copied().flatten().is_some()
    }

    /// The trimmed, non-empty value of field number `i` in `row`.
    pub fn get<'r>(&self, row: &'r [Option<String>], i: usize) -> Option<&'r str> {
        let col = self.0.get(i).copied().flatten()?;
        row.get(col)?.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
}

/// Parses a yes/no cell.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Some(true),
        "false" | "0" | "no" | "n" | "f" => Some(false),
        _ => None,
    }
}
