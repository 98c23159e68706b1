//! The product index: a tantivy index of the catalog (on disk in the data directory, or in
//! memory), the catalog's products kept beside it for facets and personalization, and the
//! catalog stamp it was built from, so a caller knows when to bring it up to date.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::text::analyze;
use crate::SearchError;

/// Bumped when the schema or the analyzer changes: an index of another format is rebuilt.
pub const FORMAT: u32 = 2;
/// The analyzer the text fields are indexed with (words are analyzed before tantivy sees them).
const TOKENIZER: &str = "tailor_words";
/// Memory the writer may use before it flushes a segment.
const WRITER_BYTES: usize = 40_000_000;

/// A product as search sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDoc {
    /// The retailer's product id (SKU).
    pub id: String,
    /// Display title.
    pub title: String,
    /// Brand.
    pub brand: Option<String>,
    /// Department (top of the category tree).
    pub department: Option<String>,
    /// Category (commodity).
    pub category: Option<String>,
    /// Sub-category (sub-commodity).
    pub subcategory: Option<String>,
    /// Package size.
    pub size: Option<String>,
    /// List price in minor units, if known.
    pub price_cents: Option<i64>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Whether the catalog sells it at all.
    pub available: bool,
}

/// What the index was built from: the catalog's product count and its latest change (ms). The
/// same stamp in the catalog means nothing changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CatalogStamp {
    /// Products in the catalog.
    pub count: i64,
    /// The latest `updated_at` among them (ms).
    pub updated_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    format: u32,
    stamp: CatalogStamp,
}

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub id: Field,
    pub title: Field,
    pub brand: Field,
    pub department: Field,
    pub category: Field,
    pub subcategory: Field,
    pub size: Field,
    pub all: Field,
    pub brand_key: Field,
    pub category_key: Field,
    pub price: Field,
    pub key: Field,
    pub doc: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING),
        title: b.add_text_field("title", words.clone()),
        brand: b.add_text_field("brand", words.clone()),
        department: b.add_text_field("department", words.clone()),
        category: b.add_text_field("category", words.clone()),
        subcategory: b.add_text_field("subcategory", words.clone()),
        size: b.add_text_field("size", words.clone()),
        all: b.add_text_field("all", words),
        brand_key: b.add_text_field("brand_key", STRING),
        category_key: b.add_text_field("category_key", STRING),
        price: b.add_i64_field("price", INDEXED | FAST),
        key: b.add_u64_field("key", FAST | STORED),
        doc: b.add_text_field("doc", STORED),
    };
    (b.build(), fields)
}

/// The key a facet filter matches: the value, trimmed and lower-cased.
pub(crate) fn key(v: &str) -> String {
    v.trim().to_lowercase()
}

/// The indexed products, by id and by the key each indexed version carries (a fast field, so
/// a hit finds its product without reading the stored document).
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    pub by_id: HashMap<String, (u64, Arc<ProductDoc>)>,
    pub by_key: HashMap<u64, Arc<ProductDoc>>,
    next_key: u64,
}

impl Catalog {
    fn insert(&mut self, key: u64, p: Arc<ProductDoc>) {
        if let Some((old, _)) = self.by_id.insert(p.id.clone(), (key, p.clone())) {
            self.by_key.remove(&old);
        }
        self.by_key.insert(key, p);
        self.next_key = self.next_key.max(key.saturating_add(1));
    }
}

/// The product index. Cheap to share: searches run on a reader, updates take a writer in turn.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    pub(crate) fields: Fields,
    catalog: RwLock<Arc<Catalog>>,
    stamp: RwLock<Option<CatalogStamp>>,
    writing: Mutex<()>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("products", &self.len()).field("stamp", &self.stamp()).finish()
    }
}

impl SearchIndex {
    /// An empty index in memory (tests, evaluation, a store without a data directory).
    pub fn in_ram() -> Result<SearchIndex, SearchError> {
        let (schema, fields) = schema();
        SearchIndex::wrap(Index::create_in_ram(schema), fields)
    }

    /// The index in `dir`, created when absent. One of another format (or unreadable) is
    /// wiped and comes back empty, with no stamp: the caller rebuilds it from the catalog.
    pub fn open_in_dir(dir: &Path) -> Result<SearchIndex, SearchError> {
        match SearchIndex::try_open(dir) {
            Ok(index) if index.stamp().is_some() || index.is_empty() => Ok(index),
            Ok(_) | Err(_) => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| SearchError::Io(format!("{}: {e}", dir.display())))?;
                }
                SearchIndex::try_open(dir)
            }
        }
    }

    fn try_open(dir: &Path) -> Result<SearchIndex, SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::Io(format!("{}: {e}", dir.display())))?;
        let directory = MmapDirectory::open(dir).map_err(|e| SearchError::Io(e.to_string()))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(directory, schema)?;
        let index = SearchIndex::wrap(index, fields)?;
        index.load_products()?;
        Ok(index)
    }

    fn wrap(index: Index, fields: Fields) -> Result<SearchIndex, SearchError> {
        index.tokenizers().register(TOKENIZER, TextAnalyzer::builder(WhitespaceTokenizer::default()).build());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let stamp = match index.load_metas()?.payload {
            Some(p) => serde_json::from_str::<Payload>(&p).ok().filter(|p| p.format == FORMAT).map(|p| p.stamp),
            None => None,
        };
        Ok(SearchIndex {
            index,
            reader,
            fields,
            catalog: Default::default(),
            stamp: RwLock::new(stamp),
            writing: Mutex::new(()),
        })
    }

    /// Reads the products stored in the index (at open).
    fn load_products(&self) -> Result<(), SearchError> {
        let searcher = self.reader.searcher();
        let mut catalog = Catalog::default();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(64).map_err(|e| SearchError::Io(e.to_string()))?;
            for doc_id in segment.doc_ids_alive() {
                let doc: TantivyDocument = store.get(doc_id)?;
                let key = doc.get_first(self.fields.key).and_then(|v| v.as_u64());
                if let (Some(key), Some(p)) = (key, self.decode(&doc)) {
                    catalog.insert(key, Arc::new(p));
                }
            }
        }
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
        Ok(())
    }

    fn decode(&self, doc: &TantivyDocument) -> Option<ProductDoc> {
        let json = doc.get_first(self.fields.doc)?.as_str()?;
        serde_json::from_str(json).ok()
    }

    pub(crate) fn searcher(&self) -> tantivy::Searcher {
        self.reader.searcher()
    }

    /// The stamp of the catalog the index holds, if it was ever built.
    pub fn stamp(&self) -> Option<CatalogStamp> {
        *self.stamp.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Products indexed.
    pub fn len(&self) -> usize {
        self.products().len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every indexed product by id.
    pub fn products(&self) -> Products {
        Products(self.catalog())
    }

    /// One indexed product.
    pub fn product(&self, id: &str) -> Option<Arc<ProductDoc>> {
        self.catalog().by_id.get(id).map(|(_, p)| p.clone())
    }

    /// Adds or replaces `docs` (by id) and records `stamp`; searches see them when it returns.
    pub fn upsert(&self, docs: &[ProductDoc], stamp: CatalogStamp) -> Result<(), SearchError> {
        self.write(docs, stamp, false)
    }

    /// Replaces everything with `docs` and records `stamp`.
    pub fn replace_all(&self, docs: &[ProductDoc], stamp: CatalogStamp) -> Result<(), SearchError> {
        self.write(docs, stamp, true)
    }

    fn write(&self, docs: &[ProductDoc], stamp: CatalogStamp, replace: bool) -> Result<(), SearchError> {
        let _one_writer = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut writer: IndexWriter<TantivyDocument> = self.index.writer_with_num_threads(1, WRITER_BYTES)?;
        if replace {
            writer.delete_all_documents()?;
        }
        let mut catalog = if replace { Catalog::default() } else { (*self.catalog()).clone() };
        let mut keyed = Vec::with_capacity(docs.len());
        for p in docs {
            let key = catalog.next_key;
            catalog.next_key = catalog.next_key.saturating_add(1);
            writer.delete_term(Term::from_field_text(self.fields.id, &p.id));
            writer.add_document(self.document(p, key)?)?;
            keyed.push(key);
        }
        let payload = serde_json::to_string(&Payload { format: FORMAT, stamp })
            .map_err(|e| SearchError::Io(format!("cannot write the index payload: {e}")))?;
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&payload);
        commit.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        for (p, key) in docs.iter().zip(keyed) {
            catalog.insert(key, Arc::new(p.clone()));
        }
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
        *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = Some(stamp);
        Ok(())
    }

    fn document(&self, p: &ProductDoc, doc_key: u64) -> Result<TantivyDocument, SearchError> {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &p.id);
        let mut all = Vec::new();
        for (field, value) in [
            (f.title, Some(&p.title)),
            (f.brand, p.brand.as_ref()),
            (f.department, p.department.as_ref()),
            (f.category, p.category.as_ref()),
            (f.subcategory, p.subcategory.as_ref()),
            (f.size, p.size.as_ref()),
        ] {
            if let Some(v) = value {
                let words = analyze(v);
                doc.add_text(field, words.join(" "));
                all.extend(words);
            }
        }
        doc.add_text(f.all, all.join(" "));
        if let Some(b) = &p.brand {
            doc.add_text(f.brand_key, key(b));
        }
        for c in [&p.department, &p.category, &p.subcategory].into_iter().flatten() {
            doc.add_text(f.category_key, key(c));
        }
        doc.add_i64(f.price, p.price_cents.unwrap_or(-1));
        doc.add_u64(f.key, doc_key);
        let json =
            serde_json::to_string(p).map_err(|e| SearchError::Io(format!("cannot store product {}: {e}", p.id)))?;
        doc.add_text(f.doc, json);
        Ok(doc)
    }
}

/// The indexed products, by id: a snapshot, unchanged by later updates.
#[derive(Debug, Clone)]
pub struct Products(Arc<Catalog>);

impl Products {
    /// One product.
    pub fn get(&self, id: &str) -> Option<&Arc<ProductDoc>> {
        self.0.by_id.get(id).map(|(_, p)| p)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn product(id: &str, title: &str) -> ProductDoc {
        ProductDoc {
            id: id.into(),
            title: title.into(),
            brand: None,
            department: None,
            category: None,
            subcategory: None,
            size: None,
            price_cents: Some(199),
            currency: "USD".into(),
            available: true,
        }
    }

    #[test]
    fn an_index_on_disk_comes_back_with_its_products_and_stamp() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("search");
        let stamp = CatalogStamp { count: 2, updated_at: 42 };
        {
            let index = SearchIndex::open_in_dir(&path).expect("open");
            assert_eq!(index.stamp(), None);
            index.upsert(&[product("1", "Oat Milk"), product("2", "Bananas")], stamp).expect("upsert");
            index.upsert(&[product("2", "Ripe Bananas")], stamp).expect("replace one");
        }
        let index = SearchIndex::open_in_dir(&path).expect("reopen");
        assert_eq!(index.stamp(), Some(stamp));
        assert_eq!(index.len(), 2);
        assert_eq!(index.product("2").map(|p| p.title.clone()).as_deref(), Some("Ripe Bananas"));
        assert_eq!(index.searcher().num_docs(), 2, "the replaced version is deleted");
    }

    #[test]
    fn an_index_of_another_format_is_wiped_for_a_rebuild() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("search");
        std::fs::create_dir_all(&path).expect("mkdir");
        std::fs::write(path.join("meta.json"), "not an index").expect("write");
        let index = SearchIndex::open_in_dir(&path).expect("open");
        assert_eq!((index.stamp(), index.len()), (None, 0));
    }
}
