//! Runs slow key derivation (Argon2id) on the blocking pool, a bounded number at a time, so that
//! a flood of password attempts queues up instead of starving the async workers that serve `/r`.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct KdfPool {
    permits: Arc<Semaphore>,
}

impl KdfPool {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal())?;
        // The permit moves into the blocking task: a caller that goes away mid-computation does
        // not free its slot before the work really ends.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "key derivation task failed");
            ApiError::internal()
        })
    }
}
