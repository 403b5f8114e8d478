//! Runs slow key derivation (Argon2id) on a few dedicated threads, so that a flood of password
//! attempts queues up instead of starving the async workers that serve `/r`.
//!
//! Dedicated threads, rather than tokio's blocking pool, also bound memory: each Argon2 run takes
//! ~19 MiB, and the allocator keeps that per thread; a pool that grows to many threads would keep
//! many times that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::metrics::KdfLoad;

/// The key-derivation threads are gone (the server is stopping).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the key-derivation threads are gone")]
pub struct KdfGone;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, Clone)]
pub struct KdfPool {
    jobs: mpsc::Sender<Job>,
    load: Arc<Load>,
}

/// What the pool reports to the metrics.
#[derive(Debug, Default)]
struct Load {
    /// Jobs handed to the threads so far (for metrics and tests).
    started: AtomicU64,
    waiting: AtomicU64,
    running: AtomicU64,
}

/// Counts a call in one of the load's gauges while this lives, so that a job that is never run
/// (its caller went away before it was queued, or the threads are gone) leaves the count too.
struct InGauge {
    load: Arc<Load>,
    running: bool,
}

impl InGauge {
    fn new(load: Arc<Load>, running: bool) -> Self {
        let this = Self { load, running };
        this.gauge().fetch_add(1, Ordering::Relaxed);
        this
    }

    fn gauge(&self) -> &AtomicU64 {
        if self.running {
            &self.load.running
        } else {
            &self.load.waiting
        }
    }
}

impl Drop for InGauge {
    fn drop(&mut self) {
        self.gauge().fetch_sub(1, Ordering::Relaxed);
    }
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
            load: Arc::default(),
        })
    }

    /// Key derivations started so far.
    #[cfg(test)]
    pub fn started(&self) -> u64 {
        self.load.started.load(Ordering::Relaxed)
    }

    pub fn load(&self) -> KdfLoad {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KdfLoad {
            runs: get(&self.load.started),
            waiting: get(&self.load.waiting),
            running: get(&self.load.running),
        }
    }

    pub async fn run<T, F>(&self, work: F) -> Result<T, KdfGone>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let waiting = InGauge::new(self.load.clone(), false);
        let load = self.load.clone();
        let job: Job = Box::new(move || {
            let running = InGauge::new(load, true);
            drop(waiting);
            let value = work();
            drop(running);
            // The caller may have gone away; the work is done either way.
            let _ = done.send(value);
        });
        self.jobs.send(job).await.map_err(|_| KdfGone)?;
        self.load.started.fetch_add(1, Ordering::Relaxed);
        result.await.map_err(|_| {
            tracing::error!("a key derivation job was lost");
            KdfGone
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_load_counts_calls_waiting_and_running() {
        let pool = KdfPool::new(1).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let first = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started_tx.send(());
                    let _ = held.recv();
                })
                .await
            })
        };
        started.await.unwrap();
        let second = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| ()).await })
        };
        // The second call is queued behind the first, which holds the only thread.
        while pool.load().waiting == 0 {
            tokio::task::yield_now().await;
        }
        let load = pool.load();
        assert_eq!((load.waiting, load.running), (1, 1));
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        let load = pool.load();
        assert_eq!((load.waiting, load.running, load.runs), (0, 0, 2));
    }
}
