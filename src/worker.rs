//! A worker thread: its own deque and join frames, the order in which it
//! looks for work, and how it waits.

use crate::job::JobRef;
use crate::latch::Latch;
use crate::metrics::bump;
use crate::publish::{Publication, RecordedJoin};
use crate::queue::{LocalQueue, Steal};
use crate::registry::{Registry, WorkerSlot};
use crate::rng::XorShift64Star;
use crate::sleep::Sleep;
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, cell_thread_local, hint, thread};
use crate::unwind::{self, Payload};
use std::cell::Cell;
use std::ptr;
use std::time::Instant;

cell_thread_local!(static WORKER_THREAD: *const WorkerThread = ptr::null());

/// How long an idle worker spins before it sleeps: rounds of exponential
/// busy-waiting, then rounds of `yield_now`, each round followed by one more
/// look for work. About 20-60 µs in all on current machines.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 7;
#[cfg(not(loom))]
const YIELD_ROUNDS: u32 = 16;
// Under loom, sleep at once: spinning only multiplies the interleavings.
#[cfg(loom)]
const SPIN_ROUNDS: u32 = 0;
#[cfg(loom)]
const YIELD_ROUNDS: u32 = 0;

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
    /// Looks for work in `wait_until` since the injector was last tried
    /// first.
    looks: Cell<u32>,
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
        WorkerThread::current().filter(|worker| ptr::eq(&*worker.registry, registry))
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
        &self.registry.slots()[self.index]
    }

    /// Pushes a job onto this worker's deque, where thieves can see it.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
        self.registry.sleep.notify_new_work();
    }

    /// Pops the most recently pushed job of this worker's deque.
    #[inline]
    pub(crate) fn take_local_job(&self) -> Option<JobRef> {
        self.deque.pop()
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
        self.publication.take_back(join)
    }

    /// Publishes every private frame, oldest first.
    fn publish_all_frames(&self) {
        let mut any = false;
        for job in self.publication.publish_all() {
            self.deque.push(job);
            any = true;
        }
        if any {
            self.registry.sleep.notify_new_work();
        }
    }

    /// The shutdown phase: runs queued jobs until no worker runs a job and
    /// no queue holds one. A worker may not leave as soon as *it* finds
    /// nothing: a job still running elsewhere may queue more work and wait
    /// for it.
    ///
    /// `registry.running` counts the workers not idle in this phase; a
    /// worker counts itself back in *before* it looks for work. The worker
    /// that counts itself out last checks the queues: nothing can be queued
    /// unseen, since every push came from a worker that was counted then,
    /// and the AcqRel read-modify-writes on `running` carry each push to
    /// that last check. Empty queues there mean the pool is done.
    fn finish(&self) {
        let registry = &*self.registry;
        let sleep = &registry.sleep;
        loop {
            // Counted as running here.
            self.drain();
            let mut last = registry.running.fetch_sub(1, Ordering::AcqRel) == 1;
            loop {
                if last && !registry.has_work() {
                    registry.release_workers();
                    return;
                }
                if registry.drained.probe() {
                    return;
                }
                registry.running.fetch_add(1, Ordering::AcqRel);
                if let Some(job) = self.find_work() {
                    self.execute(job);
                    break;
                }
                last = registry.running.fetch_sub(1, Ordering::AcqRel) == 1;
                if !last {
                    // Others still run: sleep until one of them queues
                    // work, or the last one closes the pool.
                    sleep.start_searching();
                    Sleep::sleep(
                        sleep,
                        self.index,
                        &registry.drained,
                        || registry.has_work(),
                        || bump(&self.slot().counters.parks),
                    );
                    sleep.stop_searching(|| registry.has_work());
                }
            }
        }
    }

    /// Runs jobs until no queue has any for this worker.
    fn drain(&self) {
        while let Some(job) = self.find_work() {
            self.execute(job);
        }
    }

    /// Runs one job taken from a queue, in a frame window of its own above
    /// the frames already open (publish.rs).
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        bump(&self.slot().counters.executed);
        let outer = self.publication.enter();
        // SAFETY: `job` was just popped or stolen from a queue, which hands
        // each item out once; whoever pushed it keeps its data alive until
        // it has run (job.rs).
        unsafe { job.execute() }
        // Jobs do not unwind (job.rs), so this always runs; the job's own
        // frames are all popped by now.
        self.publication.leave(outer);
    }

    /// Looks for work: own deque, then a batch from the injector, then one
    /// job from a peer's deque (starting at a random victim), raising the
    /// publish request of every peer found empty. (Stealing batches from
    /// peers was measured and dropped: on scope-chunks it made the thief
    /// walk memory in a worse order, costing ~1.5x at 2 threads.)
    #[inline]
    pub(crate) fn find_work(&self) -> Option<JobRef> {
        self.take_local_job()
            .or_else(|| self.steal_from_injector())
            .or_else(|| self.steal_from_peers())
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
            if let Some(job) = self.steal_from_injector() {
                return Some(job);
            }
        }
        self.find_work()
    }

    fn steal_from_injector(&self) -> Option<JobRef> {
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
                    let slot = &slots[victim];
                    match slot.stealer.steal() {
                        Steal::Success(job) => {
                            bump(&self.slot().counters.steals);
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

    /// Asks every peer to publish a frame, so that a busy peer wakes this
    /// worker (through `notify_new_work`) once it has work to share.
    fn request_publication_everywhere(&self) {
        for (index, slot) in self.registry.slots().iter().enumerate() {
            if index != self.index {
                slot.request_publication();
            }
        }
    }

    /// Runs other work until `latch` is set.
    #[inline]
    pub(crate) fn wait_until<L: Latch>(&self, latch: &L) {
        if !latch.probe() {
            self.wait_until_cold(latch);
        }
    }

    #[cold]
    fn wait_until_cold<L: Latch>(&self, latch: &L) {
        // While this worker waits, what it kept private is up for grabs.
        self.publish_all_frames();
        while !latch.probe() {
            if let Some(job) = self.find_work_fairly().or_else(|| self.search(latch)) {
                self.execute(job);
            }
        }
    }

    /// Searches for work until it finds some (`Some`) or `latch` is set
    /// (`None`), spinning first, then sleeping (sleep.rs).
    fn search<L: Latch>(&self, latch: &L) -> Option<JobRef> {
        let started = Instant::now();
        let sleep = &self.registry.sleep;
        sleep.start_searching();
        let mut round = 0;
        let found = loop {
            if latch.probe() {
                break None;
            }
            if let Some(job) = self.find_work() {
                break Some(job);
            }
            if round < SPIN_ROUNDS {
                for _ in 0..(1 << round) {
                    hint::spin_loop();
                }
            } else if round < SPIN_ROUNDS + YIELD_ROUNDS {
                thread::yield_now();
            } else {
                self.request_publication_everywhere();
                Sleep::sleep(
                    sleep,
                    self.index,
                    latch,
                    || self.registry.has_work(),
                    || bump(&self.slot().counters.parks),
                );
                round = 0;
                continue;
            }
            round += 1;
        };
        sleep.stop_searching(|| self.registry.has_work());
        self.slot().counters.record_search(started.elapsed());
        found
    }
}

/// The body of a worker thread.
pub(crate) fn main_loop(
    registry: Arc<Registry>,
    index: usize,
    deque: LocalQueue<JobRef>,
    placement: Option<crate::pin::Placement>,
) {
    let pinned = placement.is_some_and(|placement| placement.apply());
    registry.slots()[index].counters.set_pinned(pinned);

    let alone = registry.num_threads() == 1;
    let worker = WorkerThread {
        deque,
        publication: Publication::new(&registry.slots()[index].publish_request, alone),
        index,
        rng: XorShift64Star::new(index as u64),
        looks: Cell::new(0),
        registry,
    };
    let _attached = worker.publication.attach();
    let _current = CurrentWorker::set(&worker);
    worker.registry.run_start_handler(index);

    worker.wait_until(&worker.registry.shutting_down);
    worker.finish();
    worker.registry.run_exit_handler(index);
    // The exit handler may have spawned tasks onto this worker's deque.
    worker.drain();
}

/// Makes a worker the thread's current one until dropped: also when the
/// worker unwinds (an internal bug), so that no pointer to its freed state
/// is left in the thread-local.
struct CurrentWorker(());

impl CurrentWorker {
    fn set(worker: &WorkerThread) -> CurrentWorker {
        WORKER_THREAD.with(|cell| cell.set(worker));
        CurrentWorker(())
    }
}

impl Drop for CurrentWorker {
    fn drop(&mut self) {
        WORKER_THREAD.with(|cell| cell.set(ptr::null()));
    }
}

/// Pushes a job from any thread: onto the caller's own deque when it is a
/// worker of `registry`'s pool, else into the pool's injector.
pub(crate) fn push_from_anywhere(registry: &Registry, job: JobRef) {
    match WorkerThread::current_in(registry) {
        Some(worker) => worker.push(job),
        None => registry.inject(job),
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
