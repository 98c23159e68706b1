//! Recommendation compute for Tailor: interaction data, candidate sources (popularity, item-kNN,
//! implicit ALS, repeat purchase), blending, and offline evaluation with the reference
//! definitions. Pure and synchronous: no I/O beyond reading split files, no tokio.

pub mod als;
pub mod blend;
pub mod data;
pub mod eval;
pub mod knn;
pub mod popularity;
pub mod repeat;
pub mod topk;

pub use data::{Dataset, Interaction};
