//! How a pool ends: its phases, and the count that finds the last worker
//! out.
//!
//! # Phases
//!
//! Each is entered once, in this order, and never left:
//!
//! 1. **Open**: the pool takes work from anyone.
//! 2. **Closed** (`ThreadPool::close`, or the start of a shutdown): it
//!    refuses work from outside (worker/route.rs says who is outside);
//!    its workers carry on.
//! 3. **Shutting down**: the workers run everything queued, and what that
//!    queues in turn, then stay idle in the shutdown phase
//!    (worker/lifecycle.rs, `finish`).
//! 4. **Drained**: no job runs and no queue holds one; the workers exit.
//!
//! Beside them, **discarding** (`shutdown_now`, set before the shutdown
//! begins): workers drop the tasks from outside that have not started
//! instead of running them.
//!
//! # The last one out
//!
//! `running` counts the workers not idle in the shutdown phase. A worker
//! counts itself back in *before* it looks for work, and out once it found
//! none. The one that counts itself out last while the pool shuts down
//! checks the queues: nothing can be queued unseen, since every push came
//! from a worker that was counted then, and the AcqRel read-modify-writes
//! on `running` carry each push to that last check. Empty queues there
//! mean the pool is drained; otherwise that worker counts itself back in
//! and runs what it found (worker/lifecycle.rs, `count_out`).

use crate::latch::{Latch, PoolLatch};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The phases of a pool's end, and the running count of its shutdown.
pub(crate) struct PoolEnd {
    closed: AtomicBool,
    discarding: AtomicBool,
    /// Waited on by idle workers until the shutdown begins.
    shutting_down: PoolLatch,
    /// Waited on by workers idle in the shutdown phase until nothing is
    /// left to run.
    drained: PoolLatch,
    /// Workers not idle in the shutdown phase (module docs).
    running: AtomicUsize,
}

impl PoolEnd {
    /// An open pool whose `workers` are all running.
    pub(crate) fn new(workers: usize) -> PoolEnd {
        PoolEnd {
            closed: AtomicBool::new(false),
            discarding: AtomicBool::new(false),
            shutting_down: PoolLatch::new(),
            drained: PoolLatch::new(),
            running: AtomicUsize::new(workers),
        }
    }

    /// The pool runs `workers` threads of its own, each counted as running.
    /// Set before they start, or once some failed to.
    pub(crate) fn set_running(&self, workers: usize) {
        // Relaxed: published to the workers by their thread's start or by
        // the shutdown latch's Release.
        self.running.store(workers, Ordering::Relaxed);
    }

    /// Enters the closed phase.
    pub(crate) fn close(&self) {
        // Release: pairs with the Acquire in `is_closed`.
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// From now on, workers drop the tasks from outside that have not
    /// started.
    pub(crate) fn start_discarding(&self) {
        // Release: pairs with the Acquire in `is_discarding`.
        self.discarding.store(true, Ordering::Release);
    }

    pub(crate) fn is_discarding(&self) -> bool {
        self.discarding.load(Ordering::Acquire)
    }

    /// Enters the shutdown phase (closed first); the caller then wakes the
    /// sleepers.
    pub(crate) fn begin_shutdown(&self) {
        self.close();
        self.shutting_down.set();
    }

    /// What idle workers wait on until the shutdown begins.
    pub(crate) fn shutting_down(&self) -> &PoolLatch {
        &self.shutting_down
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.probe()
    }

    /// What workers idle in the shutdown phase wait on.
    pub(crate) fn drained(&self) -> &PoolLatch {
        &self.drained
    }

    pub(crate) fn is_drained(&self) -> bool {
        self.drained.probe()
    }

    /// Enters the drained phase; the caller then wakes the sleepers.
    pub(crate) fn set_drained(&self) {
        self.drained.set();
    }

    /// Counts a worker in as running, before it looks for work.
    pub(crate) fn count_in(&self) {
        // AcqRel: see the module docs.
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a worker out of the running ones; `true` if it was the last
    /// one and the pool shuts down: then the end of the phase is its to
    /// check (module docs).
    pub(crate) fn count_out(&self) -> bool {
        // AcqRel: see the module docs.
        self.running.fetch_sub(1, Ordering::AcqRel) == 1 && self.is_shutting_down()
    }
}
