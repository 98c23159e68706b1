//! One supervisor for background work: each job (the projection, reservation expiry, the
//! loyalty sweep, price experiment steps, retraining, and later journeys and indexing) is a
//! round run on a schedule. The supervisor keeps every handle, runs each round as its own task
//! so a panic is caught and counted like an error, retries a failing job with a growing backoff
//! and says why, records each job's last success for the readiness view, and on close waits for
//! rounds in flight before the store closes.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tailor_core::time::{format_millis, now_millis};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{Engine, EngineError};

/// One round of a job.
pub(crate) type Round =
    Arc<dyn Fn(Engine) -> Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send>> + Send + Sync>;

/// A background job.
pub(crate) struct Job {
    /// Its name in logs, metrics and the readiness view.
    pub name: &'static str,
    /// The wait before its first round.
    pub first_after: Duration,
    /// The wait between rounds.
    pub every: Duration,
    /// Wakes it before `every` has passed (the projection, on each append).
    pub wake: Option<Arc<Notify>>,
    /// What a round does.
    pub round: Round,
}

/// How a job is doing, as the readiness view shows it.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// The end of its last successful round (RFC 3339), if any.
    pub last_success: Option<String>,
    /// Rounds that failed in a row (0 when the last one succeeded). Why they failed is in the
    /// log, not here: `/healthz` is public and error text can name internals.
    pub failing_for: u32,
    /// Rounds that failed since the engine started.
    pub failures: u64,
}

/// The running jobs and their status.
#[derive(Default)]
pub(crate) struct Supervisor {
    handles: Mutex<Vec<JoinHandle<()>>>,
    status: Arc<Mutex<BTreeMap<&'static str, JobStatus>>>,
}

/// The longest wait before retrying a failing job.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Supervisor {
    /// Each job's status, by name.
    pub(crate) fn status(&self) -> BTreeMap<&'static str, JobStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts `job` under supervision.
    pub(crate) fn start(&self, engine: &Engine, job: Job) {
        let status = self.status.clone();
        if let Ok(mut s) = status.lock() {
            s.insert(job.name, JobStatus::default());
        }
        let engine = engine.clone();
        let handle = tokio::spawn(async move {
            let mut shutdown = engine.shutdown_signal();
            let mut wait = job.first_after;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = async { match &job.wake { Some(w) => w.notified().await, None => std::future::pending().await } } => {}
                    _ = shutdown.changed() => return,
                }
                if *shutdown.borrow() {
                    return;
                }
                // Its own task, so that a panic is an error of this round, not the end of the job.
                let outcome = match tokio::spawn((job.round)(engine.clone())).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the round panicked: {e}")),
                };
                let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                let entry = s.entry(job.name).or_default();
                match outcome {
                    Ok(()) => {
                        entry.last_success = Some(format_millis(now_millis()));
                        entry.failing_for = 0;
                        wait = job.every;
                    }
                    Err(why) => {
                        entry.failing_for = entry.failing_for.saturating_add(1);
                        entry.failures += 1;
                        let backoff = Duration::from_secs(1u64 << entry.failing_for.min(9)).min(MAX_BACKOFF);
                        tracing::warn!(job = job.name, error = %why, retry_in = ?backoff, "a background job failed");
                        metrics::counter!("tailor_job_failures_total", "job" => job.name).increment(1);
                        wait = backoff;
                    }
                }
            }
        });
        if let Ok(mut h) = self.handles.lock() {
            h.push(handle);
        }
    }

    /// Waits up to `within` for every job to finish its round in flight and stop (the engine's
    /// shutdown signal must be sent first); jobs still running then are aborted.
    pub(crate) async fn stop(&self, within: Duration) {
        let handles: Vec<JoinHandle<()>> = self.handles.lock().map(|mut h| h.drain(..).collect()).unwrap_or_default();
        let aborts: Vec<_> = handles.iter().map(JoinHandle::abort_handle).collect();
        let deadline = tokio::time::Instant::now() + within;
        for handle in handles {
            if tokio::time::timeout_at(deadline, handle).await.is_err() {
                tracing::warn!("background jobs did not stop in time; aborting them");
                aborts.iter().for_each(|a| a.abort());
                return;
            }
        }
    }
}
