//! Model versions: each training's artifact (the bytes `tailor_recs::Model` writes) and its
//! summary, the newest [`KEEP_VERSIONS`] kept.

use serde::{Deserialize, Serialize};
use tailor_store::{Db, Row};

use crate::RecsStoreError;

/// Model versions kept in the store.
pub const KEEP_VERSIONS: i64 = 3;

/// What one training did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainSummary {
    /// The new version.
    pub version: i64,
    /// Purchase lines used.
    pub interactions: usize,
    /// Customers.
    pub customers: usize,
    /// Products (catalog and bought).
    pub products: usize,
    /// Seconds it took.
    pub seconds: f64,
    /// Validation NDCG@10 of repeat lists and discovery lists.
    #[serde(alias = "validation_ndcg")]
    pub validation_ndcg: Option<(f64, f64)>,
    /// When it was trained.
    #[serde(alias = "trained_at", with = "tailor_core::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub trained_at: i64,
}

/// The newest version and its artifact, if any model was stored.
pub async fn newest_artifact(db: &Db) -> Result<Option<(i64, Vec<u8>)>, RecsStoreError> {
    let row = sqlx::query("SELECT version, artifact FROM models ORDER BY version DESC LIMIT 1")
        .fetch_optional(db.reader())
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Every stored version.
pub async fn versions(db: &Db) -> Result<Vec<i64>, RecsStoreError> {
    let rows = sqlx::query("SELECT version FROM models").fetch_all(db.reader()).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The artifact of `version`, if it is still stored.
pub async fn artifact(db: &Db, version: i64) -> Result<Option<Vec<u8>>, RecsStoreError> {
    let row =
        sqlx::query("SELECT artifact FROM models WHERE version = $1").bind(version).fetch_optional(db.reader()).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Replaces the artifact of `version` (e.g. with erased customers forgotten).
pub async fn replace_artifact(db: &Db, version: i64, bytes: Vec<u8>) -> Result<(), RecsStoreError> {
    sqlx::query("UPDATE models SET artifact = $1 WHERE version = $2")
        .bind(bytes)
        .bind(version)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Deletes `version` (an artifact no one can read any more).
pub async fn delete_version(db: &Db, version: i64) -> Result<(), RecsStoreError> {
    sqlx::query("DELETE FROM models WHERE version = $1").bind(version).execute(db.writer()).await?;
    Ok(())
}

/// Stores a trained model as the next version and drops versions beyond [`KEEP_VERSIONS`], in
/// one transaction; returns the summary with its version set.
pub async fn save_model(db: &Db, mut summary: TrainSummary, artifact: Vec<u8>) -> Result<TrainSummary, RecsStoreError> {
    let mut tx = db.writer().begin().await?;
    summary.version = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM models").fetch_one(&mut *tx).await?.get(0);
    let body =
        serde_json::to_string(&summary).map_err(|source| RecsStoreError::Encode { what: "the summary", source })?;
    sqlx::query("INSERT INTO models (version, created_at, summary, artifact) VALUES ($1, $2, $3, $4)")
        .bind(summary.version)
        .bind(summary.trained_at)
        .bind(body)
        .bind(artifact)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM models WHERE version <= $1")
        .bind(summary.version - KEEP_VERSIONS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(summary)
}

/// The summaries of the stored versions, newest first (unreadable ones left out).
pub async fn summaries(db: &Db) -> Result<Vec<TrainSummary>, RecsStoreError> {
    let rows = sqlx::query("SELECT summary FROM models ORDER BY version DESC").fetch_all(db.reader()).await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()).collect())
}
