//! A worker thread: its own deque and join frames, the order in which it
//! looks for work, and how it waits.

use crate::frames::FrameStack;
use crate::job::JobRef;
use crate::latch::{Latch, SleepLatch};
use crate::metrics::bump;
use crate::queue::{LocalQueue, Steal};
use crate::registry::{Registry, WorkerSlot};
use crate::rng::XorShift64Star;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, hint, pointer_thread_local, thread};
use std::cell::Cell;
use std::ptr;

pointer_thread_local!(static WORKER_THREAD: WorkerThread);

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

/// The first this many frames of a job's window (see `OPEN_FRAME_LIMIT`) are
/// published at once: they are the job's largest pieces of work, and a thief
/// should not have to wait for the owner's next `join` to get one.
const EAGER_DEPTH: usize = 4;

/// A job records join frames only for its oldest this-many pending joins
/// (joins whose `b` has not been taken back: its *window*), or, past them,
/// when a thief has asked for work; otherwise a `join` calls both halves in
/// order. The window's first `EAGER_DEPTH` frames are published at once;
/// the rest stay private and answer requests, oldest first. Past the
/// window, a request is answered at the next `join`, which records its own
/// frame and publishes the oldest private one — its own, once the window's
/// are all out. The trade: recording every join costs a few nanoseconds
/// each, while a thief that has used up a window gets smaller pieces (the
/// current join's `b` rather than an older one's). With 8, fib(30) at 2
/// threads records about one join in twelve; limits of 4-8 measured alike
/// there, 12 and more slower (BENCHMARKS.md).
const OPEN_FRAME_LIMIT: usize = 8;

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
    frames: FrameStack,
    index: usize,
    rng: XorShift64Star,
    /// This worker's `publish_request` flag in `registry` (read per join).
    publish_request: *const AtomicBool,
    /// `OPEN_FRAME_LIMIT`, or 0 for its pool's only worker (which no thief
    /// can ask, so it records nothing).
    open_frame_limit: usize,
    /// Where the running job's window starts: the frames open when it
    /// started belong to the jobs it runs on top of (a worker that waits
    /// runs other jobs), so each job gets a window of its own.
    window_base: Cell<usize>,
    /// `window_base + open_frame_limit`: joins record while fewer frames
    /// are open (read per join).
    window_end: Cell<usize>,
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
        // this thread's stack (it resets the pointer before returning).
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

    /// Whether a `join` here should record a frame for its second half:
    /// while the running job's window has room, or when a thief asked for
    /// work (see `OPEN_FRAME_LIMIT`). Otherwise the join runs both halves
    /// in order.
    #[inline]
    pub(crate) fn wants_frame(&self) -> bool {
        self.frames.open() < self.window_end.get() || self.publication_requested()
    }

    /// Whether a thief asked this worker to publish a frame.
    #[inline]
    fn publication_requested(&self) -> bool {
        // SAFETY: points into `self.registry`, which `self` keeps alive.
        let publish_request = unsafe { &*self.publish_request };
        // Relaxed: see `WorkerSlot::request_publication`.
        publish_request.load(Ordering::Relaxed)
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

    /// Records a join frame. Publishes the oldest private frame if a thief
    /// asked, and always within the first `EAGER_DEPTH` frames of the
    /// running job's window.
    #[inline]
    pub(crate) fn push_frame(&self, job: JobRef) -> usize {
        let index = self.frames.push(job);
        if index < self.window_base.get() + EAGER_DEPTH {
            self.publish_oldest_frame();
        } else {
            self.publish_if_requested();
        }
        index
    }

    /// Publishes the oldest private frame if a thief asked for work.
    #[inline]
    fn publish_if_requested(&self) {
        if self.publication_requested() {
            self.publish_oldest_frame();
        }
    }

    /// Pops the frame at `index`; `true` if it is still private.
    #[inline]
    pub(crate) fn pop_frame(&self, index: usize) -> bool {
        self.frames.pop(index)
    }

    /// Publishes the oldest private frame, clearing any request.
    #[inline(never)]
    fn publish_oldest_frame(&self) {
        let publish_request = &self.slot().publish_request;
        if publish_request.load(Ordering::Relaxed) {
            publish_request.store(false, Ordering::Relaxed);
        }
        if let Some(job) = self.frames.publish_oldest() {
            self.push(job);
        }
    }

    /// Publishes every private frame, oldest first.
    fn publish_all_frames(&self) {
        let mut any = false;
        while let Some(job) = self.frames.publish_oldest() {
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
                    registry.close();
                    return;
                }
                if registry.exit.probe() {
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
                    sleep.sleep(
                        self.index,
                        &registry.exit,
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
    /// the frames already open (see `OPEN_FRAME_LIMIT`).
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        bump(&self.slot().counters.executed);
        let base = self.frames.open();
        let outer_base = self.window_base.replace(base);
        let outer_end = self.window_end.replace(base + self.open_frame_limit);
        // SAFETY: `job` was just popped or stolen from a queue, which hands
        // each item out once; whoever pushed it keeps its data alive until
        // it has run (job.rs).
        unsafe { job.execute() }
        // Jobs do not unwind (job.rs), so this always runs; the job's own
        // frames are all popped by now.
        self.window_base.set(outer_base);
        self.window_end.set(outer_end);
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
    pub(crate) fn wait_until<L: SleepLatch>(&self, latch: &L) {
        if !latch.probe() {
            self.wait_until_cold(latch);
        }
    }

    #[cold]
    fn wait_until_cold<L: SleepLatch>(&self, latch: &L) {
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
    fn search<L: SleepLatch>(&self, latch: &L) -> Option<JobRef> {
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
                sleep.sleep(
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

    let open_frame_limit = if registry.num_threads() == 1 {
        0
    } else {
        OPEN_FRAME_LIMIT
    };
    let worker = WorkerThread {
        deque,
        frames: FrameStack::new(),
        index,
        rng: XorShift64Star::new(index as u64),
        publish_request: &*registry.slots()[index].publish_request,
        open_frame_limit,
        window_base: Cell::new(0),
        window_end: Cell::new(open_frame_limit),
        looks: Cell::new(0),
        registry,
    };
    WORKER_THREAD.with(|cell| cell.set(&worker));
    worker.registry.run_start_handler(index);

    worker.wait_until(&worker.registry.shutdown);
    worker.finish();
    worker.registry.run_exit_handler(index);
    // The exit handler may have spawned tasks onto this worker's deque.
    worker.drain();
    WORKER_THREAD.with(|cell| cell.set(ptr::null()));
}
