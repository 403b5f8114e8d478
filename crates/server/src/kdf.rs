//! Runs slow key derivation (Argon2id) on a few dedicated threads, so that a flood of password
//! attempts queues up instead of starving the async workers that serve `/r`.
//!
//! Dedicated threads, rather than tokio's blocking pool, also bound memory: each Argon2 run takes
//! ~19 MiB, and the allocator keeps that per thread; a pool that grows to many threads would keep
//! many times that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc, oneshot};

/// The key-derivation threads are gone (the server is stopping).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the key-derivation threads are gone")]
pub struct KdfGone;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, Clone)]
pub struct KdfPool {
    jobs: mpsc::Sender<Job>,
    /// Jobs handed to the threads so far (for metrics and tests).
    started: Arc<AtomicU64>,
}

/// Work waiting for a thread; past this, callers wait to enqueue.
const QUEUE: usize = 1024;

/// Argon2 runs at the lowest priority (nice 19) below the threads serving requests: when they
/// share a core, a burst of unlocks then waits, not the reads.
#[cfg(unix)]
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let value = ThreadPriorityValue::MIN;
    let lowered = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
    );
    if let Err(e) = lowered {
        tracing::debug!(error = ?e, "could not lower the key-derivation thread's priority");
    }
}

#[cfg(not(unix))]
fn lower_priority() {}

impl KdfPool {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("brine-kdf-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only to take a job, never while running one.
                        let job = queue.blocking_lock().blocking_recv();
                        match job {
                            Some(job) => job(),
                            // Every sender is gone: the server stopped.
                            None => break,
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs,
            started: Arc::default(),
        })
    }

    /// Key derivations started so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    pub async fn run<T, F>(&self, work: F) -> Result<T, KdfGone>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone away; the work is done either way.
            let _ = done.send(work());
        });
        self.jobs.send(job).await.map_err(|_| KdfGone)?;
        self.started.fetch_add(1, Ordering::Relaxed);
        result.await.map_err(|_| {
            tracing::error!("a key derivation job was lost");
            KdfGone
        })
    }
}
