//! Where recommendations keep their state: versioned model artifacts with a summary of each
//! training, the merchandisers' rules and the weather each store reports. The tables and their
//! migrations live here; the compute lives in `tailor-recs` (pure, no I/O) and the engine
//! composes the two.

mod context;
mod error;
mod migrations;
mod models;

pub use context::{merchandising, set_merchandising, set_weather, weather_at, weather_report, WEATHER_MILLIS};
pub use error::RecsStoreError;
pub use migrations::MIGRATIONS;
pub use models::{
    artifact, delete_version, newest_artifact, replace_artifact, save_model, summaries, versions, TrainSummary,
    KEEP_VERSIONS,
};
