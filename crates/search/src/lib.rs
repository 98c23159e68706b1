//! Product search: a tantivy index of the catalog (brand, department/category/sub-category,
//! size, price and availability facets), synonyms and typo tolerance, and a re-ranking by the
//! customer's tastes when they allow it. Pure compute over the index: the engine feeds it the
//! catalog, the customer's purchases (with consent) and where stock is.
//!
//! ```no_run
//! use tailor_search::{SearchIndex, SearchQuery, Synonyms, Filters, Weights};
//! let index = SearchIndex::in_ram()?;
//! let results = index.search(
//!     &SearchQuery { text: "oat milk", limit: 10, filters: Filters::default(), affinity: None,
//!         popularity: None, semantic: &[], available: &|_| true, weights: Weights::default() },
//!     &Synonyms::defaults(),
//! )?;
//! # Ok::<(), tailor_search::SearchError>(())
//! ```

mod embed;
mod index;
mod personal;
mod search;
mod text;

pub use embed::{fuse_semantic, Embedder};
pub use index::{CatalogStamp, ProductDoc, Products, SearchIndex, FORMAT};
pub use personal::{Affinity, Weights, MAX_PURCHASES};
pub use search::{
    FacetValue, Facets, Filters, Hit, Reason, Results, SearchQuery, CANDIDATES, MAX_LIMIT, MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
};
pub use text::{analyze, Synonyms, DEFAULT_SYNONYMS};

/// What can go wrong in search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is wrong; `field` names the part at fault.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending input (`q`, `limit`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The index failed.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be read or written.
    #[error("search index: {0}")]
    Io(String),
}
