//! A worker thread: its own deque and join frames, and the order in which
//! it looks for work. How it waits is `wait.rs`, and what it may run while
//! it waits, when restricted, `restricted.rs`; its life from start to exit,
//! the shutdown phase included, is `lifecycle.rs`; blocking and the spare
//! workers that take over meanwhile, `blocking.rs`.

mod blocking;
mod fifo;
mod lifecycle;
mod restricted;
mod route;
mod wait;

pub use blocking::block_in_place;

pub(crate) use fifo::ScopeQueues;
pub(crate) use lifecycle::{adopt_current_thread, main_loop, release_current_thread};
pub(crate) use restricted::in_isolation;
pub(crate) use route::{Caller, Lane, into_job_for, place, queue_job};

use crate::job::JobRef;
use crate::metrics::bump;
use crate::publish::{Publication, RecordedJoin};
use crate::queue::{GlobalQueue, LocalQueue, Steal};
use crate::registry::{Registry, WorkerSlot};
use crate::rng::XorShift64Star;
use crate::sync::{Arc, cell_thread_local, hint};
use crate::unwind::{self, Payload};
use std::cell::Cell;
use std::ptr;

cell_thread_local!(static WORKER_THREAD: *const WorkerThread = ptr::null());

/// Every this many looks for work, a worker tries the injector before its
/// own deque. Otherwise a worker that always has local work (a task that
/// keeps spawning its successor) would never take a task submitted from
/// outside, and producers blocked on a full bounded pool would wait for good.
/// The count lives in the loop a worker runs while it waits, not in `join`
/// (its measured cost is in BENCHMARKS.md); a prime keeps the check from
/// falling into step with a regular pattern of spawns.
const INJECTOR_INTERVAL: u32 = 61;

/// The per-thread state of a worker. It lives on the worker's stack for the
/// thread's whole life; a thread-local pointer finds it.
pub(crate) struct WorkerThread {
    deque: LocalQueue<JobRef>,
    /// Join frames and when to publish them (publish.rs).
    publication: Publication,
    index: usize,
    rng: XorShift64Star,
    /// The peer this worker last stole a job from.
    last_victim: Cell<usize>,
    /// Looks for work in `wait_until` since the injector was last tried
    /// first.
    looks: Cell<u32>,
    /// Jobs running on this thread (nested while it waits): a thread
    /// adopted by a pool may wait for the pool's workers only when none is.
    executing: Cell<usize>,
    /// Pushes onto the deque minus this thread's pops of it. Compared with
    /// a mark taken earlier, it tells whether the deque's newest job was
    /// pushed since (restricted.rs).
    net_pushes: Cell<u64>,
    /// `net_pushes` when the running job started (or `isolate` began).
    job_mark: Cell<u64>,
    /// `net_pushes` when the innermost `isolate` on this thread began;
    /// `None` outside every isolated region.
    isolation: Cell<Option<u64>>,
    /// Inside `block_in_place` (or a restricted wait that sleeps): the pool
    /// has been told, and spare workers compensate.
    blocked: Cell<bool>,
    /// An address near the base of this thread's stack, and how far below
    /// it waits may still run other work (restricted.rs).
    stack_origin: usize,
    stack_budget: usize,
    registry: Arc<Registry>,
}

impl WorkerThread {
    /// The worker running on this thread, if any.
    ///
    /// The `'static` is the thread's view: the `WorkerThread` lives in
    /// `main_loop`, which every other frame of this thread is nested in, and
    /// the reference cannot leave the thread (`WorkerThread` is `!Sync`).
    #[inline]
    pub(crate) fn current() -> Option<&'static WorkerThread> {
        let pointer = WORKER_THREAD.with(|cell| cell.get());
        // SAFETY: non-null only while `main_loop` holds the pointee alive on
        // this thread's stack: its `CurrentWorker` guard, declared after the
        // worker, resets the pointer as it drops, also when unwinding.
        unsafe { pointer.as_ref() }
    }

    /// The worker running on this thread, if it belongs to `registry`.
    #[inline]
    pub(crate) fn current_in(registry: &Registry) -> Option<&'static WorkerThread> {
        Caller::of(registry).own()
    }

    #[inline]
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Whether a `join` here records a frame for its second half
    /// (publish.rs).
    #[inline]
    pub(crate) fn wants_frame(&self) -> bool {
        self.publication.wants_frame()
    }

    #[inline]
    fn slot(&self) -> &WorkerSlot {
        self.registry.slots().get(self.index)
    }

    /// Pushes a job onto this worker's deque, where thieves can see it.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.push_quietly(job);
        self.registry.sleep.notify_new_work();
    }

    /// Pushes a job onto this worker's deque without waking anyone.
    #[inline]
    fn push_quietly(&self, job: JobRef) {
        self.deque.push(job);
        self.net_pushes.set(self.net_pushes.get().wrapping_add(1));
    }

    /// Whether this worker's own deque holds jobs.
    pub(crate) fn has_local_work(&self) -> bool {
        !self.slot().stealer.is_empty()
    }

    /// Pops the most recently pushed job of this worker's deque.
    #[inline]
    pub(crate) fn take_local_job(&self) -> Option<JobRef> {
        let job = self.deque.pop();
        if job.is_some() {
            let net = self.net_pushes.get().wrapping_sub(1);
            self.net_pushes.set(net);
            // Popped below the running job's mark (in one of its waits that
            // were not restricted): what the job pushes next lands where
            // those jobs were, and is its own (restricted.rs).
            self.restore_job_mark(self.job_mark.get());
        }
        job
    }

    /// Sets the job mark to `mark`, or lower if the deque has been popped
    /// below it since.
    #[inline]
    fn restore_job_mark(&self, mark: u64) {
        let net = self.net_pushes.get();
        let below = (net.wrapping_sub(mark) as i64) < 0;
        self.job_mark.set(if below { net } else { mark });
    }

    /// Records a join frame, publishing the oldest private one if the
    /// policy says so (publish.rs); the join is in progress until the
    /// returned value drops.
    #[inline]
    pub(crate) fn push_frame(&self, job: JobRef) -> RecordedJoin<'_> {
        let (join, publish) = self.publication.record(job);
        if let Some(job) = publish {
            self.push(job);
        }
        join
    }

    /// Pops `join`'s frame; `true` if it is still private.
    #[inline]
    pub(crate) fn pop_frame(&self, join: &RecordedJoin<'_>) -> bool {
        self.publication.pop_frame(join)
    }

    /// Publishes every private frame, oldest first.
    fn publish_all_frames(&self) {
        let mut any = false;
        for job in self.publication.publish_all() {
            self.push_quietly(job);
            any = true;
        }
        if any {
            self.registry.sleep.notify_new_work();
        }
    }

    /// Runs one job taken from a queue, in a frame window of its own above
    /// the frames already open (publish.rs).
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        bump(&self.slot().counters.executed);
        self.executing.set(self.executing.get() + 1);
        let outer = self.publication.enter();
        let outer_mark = self.job_mark.replace(self.net_pushes.get());
        // SAFETY: `job` was just popped or stolen from a queue, which hands
        // each item out once; whoever pushed it keeps its data alive until
        // it has run (job.rs).
        unsafe { job.execute() }
        // Jobs do not unwind (job.rs), so this always runs; the job's own
        // frames are all popped by now.
        self.restore_job_mark(outer_mark);
        self.publication.leave(outer);
        self.executing.set(self.executing.get() - 1);
    }

    /// Looks for work: own deque, then the jobs broadcast to this worker,
    /// then a batch from the injector, then one job from a peer's deque
    /// (starting at a random victim), raising the publish request of every
    /// peer found empty. (Stealing batches from peers was measured and
    /// dropped: BENCHMARKS.md.)
    #[inline]
    pub(crate) fn find_work(&self) -> Option<JobRef> {
        self.take_local_job()
            .or_else(|| self.take_broadcast())
            .or_else(|| self.steal_from_injector())
            .or_else(|| self.steal_from_peers())
    }

    /// Whether the queues a search just took a job from hold more: this
    /// worker's deque (where a batch taken from the injector lands), the
    /// injector, and the peer it last stole from. A constant number of
    /// reads, so that handing the search on (sleep.rs) never reads every
    /// worker's deque.
    fn more_where_found(&self) -> bool {
        self.has_local_work()
            || !self.registry.injector().is_empty()
            || !self
                .registry
                .slots()
                .get(self.last_victim.get())
                .stealer
                .is_empty()
    }

    /// A job broadcast to this worker (only it takes from that queue).
    pub(crate) fn take_broadcast(&self) -> Option<JobRef> {
        take_from(&self.slot().broadcasts)
    }

    /// `find_work` for a worker's run loop (`wait_until`), which also runs
    /// the injector's tasks when the worker's own deque never empties:
    /// every `INJECTOR_INTERVAL`-th look tries the injector first.
    #[inline]
    fn find_work_fairly(&self) -> Option<JobRef> {
        let looks = self.looks.get() + 1;
        if looks < INJECTOR_INTERVAL {
            self.looks.set(looks);
        } else {
            self.looks.set(0);
            if let Some(job) = self.take_broadcast().or_else(|| self.steal_from_injector()) {
                return Some(job);
            }
        }
        self.find_work()
    }

    fn steal_from_injector(&self) -> Option<JobRef> {
        if self.executing.get() > 0 {
            // In a wait inside a job, one job only: a batch would land on
            // the deque uncounted, above the running job's mark
            // (restricted.rs).
            return take_from(self.registry.injector()).inspect(|_| {
                bump(&self.slot().counters.injector_batches);
            });
        }
        loop {
            match self.registry.injector().steal_batch_and_pop(&self.deque) {
                Steal::Success(job) => {
                    bump(&self.slot().counters.injector_batches);
                    return Some(job);
                }
                Steal::Empty => return None,
                Steal::Retry => hint::spin_loop(),
            }
        }
    }

    fn steal_from_peers(&self) -> Option<JobRef> {
        let slots = self.registry.slots();
        let count = slots.len();
        if count <= 1 {
            return None;
        }
        loop {
            let mut retry = false;
            let mut victim = self.rng.next_below(count);
            for _ in 0..count {
                if victim != self.index {
                    let slot = slots.get(victim);
                    // A look before the attempt: most deques a search
                    // visits are empty, and the look costs a fraction of a
                    // steal attempt (queue.rs).
                    let steal = if slot.stealer.looks_empty() {
                        Steal::Empty
                    } else {
                        slot.stealer.steal()
                    };
                    match steal {
                        Steal::Success(job) => {
                            bump(&self.slot().counters.steals);
                            self.last_victim.set(victim);
                            return Some(job);
                        }
                        Steal::Retry => retry = true,
                        Steal::Empty => slot.request_publication(),
                    }
                }
                victim += 1;
                if victim == count {
                    victim = 0;
                }
            }
            if !retry {
                return None;
            }
        }
    }
}

/// Takes the oldest job of `queue`, retrying lost races.
fn take_from(queue: &GlobalQueue<JobRef>) -> Option<JobRef> {
    take_from_queue(|| queue.steal())
}

/// Repeats `attempt` (taking an item from a shared queue) until it takes
/// one or finds the queue empty.
fn take_from_queue(mut attempt: impl FnMut() -> Steal<JobRef>) -> Option<JobRef> {
    loop {
        match attempt() {
            Steal::Success(job) => return Some(job),
            Steal::Empty => return None,
            Steal::Retry => hint::spin_loop(),
        }
    }
}

/// Whether the calling thread is a worker of any pool.
pub(crate) fn is_worker_thread() -> bool {
    WorkerThread::current().is_some()
}

/// Whether a task from outside, about to start on this thread, is to be
/// dropped instead (`shutdown_now`); counted as discarded if so.
pub(crate) fn discard_outside_task() -> bool {
    match WorkerThread::current() {
        Some(worker) if worker.registry().end().is_discarding() => {
            worker.registry().count_cancelled(true);
            true
        }
        _ => false,
    }
}

/// Drops `value` (a closure that will never run), sending a panic of its
/// destructor where a detached task's panic goes.
pub(crate) fn drop_reporting<T>(value: T) {
    if let Err(payload) = unwind::halt_unwinding(move || drop(value)) {
        report_detached_panic(payload);
    }
}

/// A panic from no task in particular (a `Drop` run by the scheduler on a
/// task's behalf, a detached task): goes to the current worker's pool, or
/// is dropped (safely) off-pool.
pub(crate) fn report_detached_panic(payload: Payload) {
    match WorkerThread::current() {
        Some(worker) => worker.registry().handle_detached_panic(payload),
        None => unwind::drop_payload(payload),
    }
}
