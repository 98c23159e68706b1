//! Recommendation compute for Tailor: interaction data, candidate sources (matrix
//! factorization, item neighbours, content, replenishment, popularity, trending, time and
//! weather), a blend learned on a time-based split, business rules, explanations, and offline
//! evaluation with the reference definitions. Pure and synchronous: no I/O beyond reading split
//! files, no tokio.

pub mod als;
pub mod ann;
pub mod cart;
pub mod content;
pub mod data;
pub mod ease;
pub mod eval;
pub mod explain;
pub mod knn;
pub mod learn;
pub mod merchandising;
pub mod model;
pub mod nonmerch;
pub mod pool;
pub mod recommend;
pub mod replenish;
pub mod serve;
pub mod situation;
pub mod topk;

#[cfg(test)]
mod testing;

pub use data::{Dataset, Interaction};
pub use explain::{ReasonView, RecommendedItem};
pub use merchandising::{BoostRule, Merchandising};
pub use model::{artifact_format, ArtifactError, Model, ModelConfig, TrainingSet, Weights, FORMAT_VERSION};
pub use recommend::{
    Action, Answer, Boost, BoostTarget, ItemKind, Query, Reason, Recommendation, Rules, Shopper, Source, Surface,
};
