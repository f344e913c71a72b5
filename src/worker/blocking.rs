//! Blocking (`block_in_place`), and the spare workers that do a blocked
//! worker's duty meanwhile: the worker's side of compensation, from the
//! public entry to a spare thread's start, duty loop and exit. The policy
//! and its state (how many, which one is called, when one retires or
//! exits, the seats, the slots spares run in) are `spares/`, below the
//! registry that holds them.

use super::WorkerThread;
use super::lifecycle::{CountedOut, CurrentWorker};
use crate::job::JobRef;
use crate::pin;
use crate::queue::LocalQueue;
use crate::registry::Registry;
use crate::sleep::{Sleeper, WakeCondition};
use crate::spares::{Call, Compensation, SpareSlot};
use crate::sync::{Arc, thread};

/// Runs `f`, which blocks (waits on I/O, a lock, a channel, a barrier), on
/// the calling thread, and keeps the pool's other work going meanwhile.
///
/// On a worker, the pool is told first: while `f` runs, an idle spare
/// worker is called back to duty, or a new spare thread is started (up to
/// [`max_spare_workers`](crate::ThreadPoolBuilder::max_spare_workers)), so
/// that the pool still has its number of threads for its other work,
/// this worker's queued jobs included (they stay in its deque, where the
/// spare and the other workers steal them). When `f` returns, the worker
/// goes back to its duty at once, and a surplus spare retires at its next
/// look for work. Outside every pool, `f` is simply called.
///
/// Nested calls compensate once. Calls from inside `join`, `scope` or
/// `install` work as anywhere else. A panic in `f` is re-raised here once
/// the pool is restored.
///
/// Inside `f` the thread is still its pool's worker: `join` and the like
/// work, though such work is better done outside `f`.
///
/// ```
/// use std::sync::{Arc, Barrier};
///
/// // Two workers, both blocked at a barrier whose third party is a task of
/// // the same pool: without compensation, nobody would be left to run it.
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let barrier = Arc::new(Barrier::new(3));
/// pool.scope(|s| {
///     for _ in 0..2 {
///         let barrier = Arc::clone(&barrier);
///         s.spawn(move |_| {
///             pilfer::block_in_place(|| barrier.wait());
///         });
///     }
///     let barrier = Arc::clone(&barrier);
///     s.spawn(move |_| {
///         barrier.wait();
///     });
/// });
/// ```
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    match WorkerThread::current() {
        Some(worker) => worker.blocking(f),
        None => f(),
    }
}

impl WorkerThread {
    /// Runs `f`, which blocks this thread, with a spare worker on duty
    /// meanwhile if the pool has one to give (`block_in_place`, and a
    /// restricted wait with nothing it may run). Nested calls compensate
    /// once. The pool is restored also when `f` panics.
    pub(crate) fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.blocked.get() {
            return f();
        }
        // Whatever this worker kept private is up for grabs while it
        // blocks: the spare (or any peer) steals it from the deque, which
        // stays this worker's.
        self.publish_all_frames();
        let registry = &self.registry;
        // A pinned worker leaves its core idle: a spare may take it.
        let core = registry.pinned_core(self.index);
        // `--cfg pilfer_bug="no_compensation"` starts no spare, to show
        // that the loom model of the hand-over catches the deadlock.
        let compensation = registry.spares().begin_block(self.index, core);
        // From here on the block ends however this returns or unwinds.
        self.blocked.set(true);
        let _unblock = Unblock(self);
        if compensation == Compensation::Start && cfg!(not(pilfer_bug = "no_compensation")) {
            start_spare(registry);
        }
        f()
    }
}

/// Ends a worker's block when dropped (also when `f` unwinds).
struct Unblock<'a>(&'a WorkerThread);

impl Drop for Unblock<'_> {
    fn drop(&mut self) {
        let worker = self.0;
        worker.blocked.set(false);
        let registry = &worker.registry;
        // A spare on duty may be surplus now: wake the ones that sleep, so
        // that they notice and retire.
        for index in registry.spares().end_block(worker.index) {
            registry.sleep.wake_worker(index);
        }
    }
}

/// Starts a spare thread that `Spares::begin_block` asked for. A failure
/// (the OS refusing a thread) leaves the block uncompensated.
fn start_spare(registry: &Arc<Registry>) {
    let Some(slot) = registry.spares().slots().take(|| registry.add_slot()) else {
        registry.spares().failed_to_start();
        return;
    };
    let SpareSlot {
        index,
        deque,
        name,
        stack_size,
    } = slot;
    registry.expect_exit();
    let spare_registry = Arc::clone(registry);
    // The spare counts itself on duty before it runs anything; `started`
    // must come first, so that its first surplus check sees it.
    registry.spares().started(index);
    match thread::spawn_named(name, stack_size, move || {
        spare_main(spare_registry, index, deque)
    }) {
        Ok(handle) => registry.keep_thread(handle),
        Err(_) => {
            // The deque went down with the closure: this slot is not
            // reused (one less spare fits; only after the OS refused a
            // thread).
            registry.spares().leave(index);
            registry.expect_exit_undone();
        }
    }
}

/// Why a spare stopped serving.
enum Served {
    /// More spares are on duty than workers are blocked: this one is idle.
    Retired,
    /// The pool is shutting down.
    ShuttingDown,
}

/// What a spare on duty sleeps until, besides new work: the pool shutting
/// down, or this spare being surplus. Whoever brings either about wakes it
/// (`Registry::begin_shutdown` wakes every sleeper, `Unblock` the spares
/// on duty).
struct SpareDuty<'a> {
    registry: &'a Registry,
}

impl WakeCondition for SpareDuty<'_> {
    fn is_met(&self) -> bool {
        self.registry.end().is_shutting_down() || self.registry.spares().surplus()
    }

    fn prepare_sleep(&self, _sleeper: &Sleeper<'_>) -> bool {
        !self.is_met()
    }

    fn end_sleep(&self) {}
}

/// The body of a spare thread: on duty until surplus, then idle until
/// called back or its keep-alive runs out, or until the pool shuts down.
fn spare_main(registry: Arc<Registry>, index: usize, deque: LocalQueue<JobRef>) {
    // Moved to its seat, or over every core (it started with its
    // creator's mask, perhaps one core), before it runs anything.
    registry
        .spares()
        .thread_started(index, pin::current_os_thread());
    let worker = WorkerThread::new(registry, index, deque);
    let keep_slot = {
        let _attached = worker.publication.attach();
        let _current = CurrentWorker::set(&worker);
        let registry = &*worker.registry;
        registry.run_start_handler(index);
        let keep_slot = loop {
            // On duty: counted among the workers that may queue work
            // (`WorkerThread::finish`) before it looks for any.
            registry.end().count_in();
            match worker.serve() {
                Served::ShuttingDown => {
                    worker.finish();
                    registry.spares().leave(index);
                    break false;
                }
                Served::Retired => {
                    worker.count_out_idle();
                    match registry.spares().wait_for_call(index) {
                        Call::Duty => continue,
                        Call::Exit => break !registry.end().is_shutting_down(),
                    }
                }
            }
        };
        registry.run_exit_handler(index);
        // The exit handler may have spawned tasks onto this spare's deque.
        // Only those: a spare leaving before shutdown is no longer counted
        // among the running workers, so it must not take the pool's work.
        while let Some(job) = worker.take_local_job() {
            worker.execute(job);
        }
        keep_slot
    };
    let registry = Arc::clone(&worker.registry);
    if keep_slot {
        // Unused for its keep-alive: the slot (with its empty deque) waits
        // for the next spare (whose start drops this thread's handle).
        registry.spares().slots().give_back(index, worker.deque);
    }
    registry.worker_exited();
}

impl WorkerThread {
    /// A spare's duty: run the pool's work like any worker until it is
    /// surplus (then it finishes its own deque first) or the pool shuts
    /// down.
    fn serve(&self) -> Served {
        let registry = &*self.registry;
        let duty = SpareDuty { registry };
        loop {
            if registry.end().is_shutting_down() {
                return Served::ShuttingDown;
            }
            if registry.spares().surplus() {
                if let Some(job) = self.take_local_job() {
                    self.execute(job);
                    continue;
                }
                if registry.spares().try_retire(self.index) {
                    return Served::Retired;
                }
            }
            if let Some(job) = self.find_work_fairly().or_else(|| self.search(&duty)) {
                self.execute(job);
            }
        }
    }

    /// A retired spare counts itself out of the running workers, and may
    /// be the last one out (lifecycle.rs, `count_out`): with work left, it
    /// takes part in the shutdown phase. (None left otherwise is not the
    /// end: a thread adopted by `use_current_thread` is not counted.)
    fn count_out_idle(&self) {
        if let CountedOut::WorkLeft = self.count_out() {
            self.finish();
        }
    }
}
