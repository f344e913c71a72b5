//! Counters: kept per worker without read-modify-write operations, summed
//! on demand by [`ThreadPool::metrics`](crate::ThreadPool::metrics).

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One worker's counters. Each is written only by its worker, with a plain
/// load and store (no read-modify-write), and read by anyone.
pub(crate) struct WorkerCounters {
    pub(crate) executed: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) injector_batches: AtomicU64,
    pub(crate) parks: AtomicU64,
    pinned: AtomicBool,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            executed: AtomicU64::new(0),
            steals: AtomicU64::new(0),
            injector_batches: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            pinned: AtomicBool::new(false),
        }
    }
}

impl WorkerCounters {
    pub(crate) fn set_pinned(&self, pinned: bool) {
        self.pinned.store(pinned, Ordering::Relaxed);
    }
}

/// Adds one to a counter that only the calling worker writes.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    // Relaxed load and store, not `fetch_add`: there is a single writer, and
    // readers only need some recent value.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// A snapshot of a pool's counters.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// pool.install(|| ());
/// let metrics = pool.metrics();
/// assert_eq!(metrics.workers().len(), 2);
/// assert!(metrics.executed() >= 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    workers: Vec<WorkerMetrics>,
    detached_panics: u64,
}

/// One worker's counters in a [`Metrics`] snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index, `0..num_threads`.
    pub index: usize,
    /// Jobs this worker took from a queue and ran: spawned and submitted
    /// tasks, scope tasks, `install` bodies from outside, and the halves of
    /// `join` that it stole or that were published. A `join` half run
    /// inline by its own caller is a function call, not a task, and is not
    /// counted.
    pub executed: u64,
    /// Successful steals from other workers' deques.
    pub steals: u64,
    /// Batches taken from the global injector.
    pub injector_batches: u64,
    /// Times the worker parked (went to sleep for lack of work).
    pub parks: u64,
    /// Whether the worker was pinned to a core. A worker pins itself as it
    /// starts, so right after `build` returns this may still be `false`.
    pub pinned: bool,
}

impl Metrics {
    pub(crate) fn collect<'a>(
        counters: impl Iterator<Item = &'a WorkerCounters>,
        detached_panics: u64,
    ) -> Metrics {
        let workers = counters
            .enumerate()
            .map(|(index, counters)| WorkerMetrics {
                index,
                executed: counters.executed.load(Ordering::Relaxed),
                steals: counters.steals.load(Ordering::Relaxed),
                injector_batches: counters.injector_batches.load(Ordering::Relaxed),
                parks: counters.parks.load(Ordering::Relaxed),
                pinned: counters.pinned.load(Ordering::Relaxed),
            })
            .collect();
        Metrics {
            workers,
            detached_panics,
        }
    }

    /// Jobs run by all workers (see [`WorkerMetrics::executed`]).
    pub fn executed(&self) -> u64 {
        self.workers.iter().map(|worker| worker.executed).sum()
    }

    /// Successful steals by all workers.
    pub fn steals(&self) -> u64 {
        self.workers.iter().map(|worker| worker.steals).sum()
    }

    /// Injector batches taken by all workers.
    pub fn injector_batches(&self) -> u64 {
        self.workers
            .iter()
            .map(|worker| worker.injector_batches)
            .sum()
    }

    /// Times any worker parked.
    pub fn parks(&self) -> u64 {
        self.workers.iter().map(|worker| worker.parks).sum()
    }

    /// How many workers are pinned to a core (of those that have started).
    pub fn pinned_workers(&self) -> usize {
        self.workers.iter().filter(|worker| worker.pinned).count()
    }

    /// Panics of detached tasks (`spawn`), and of start or exit handlers.
    pub fn detached_panics(&self) -> u64 {
        self.detached_panics
    }

    /// Per-worker counters, indexed by worker.
    pub fn workers(&self) -> &[WorkerMetrics] {
        &self.workers
    }
}
