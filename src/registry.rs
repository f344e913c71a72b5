//! The state a pool's workers share: the queues, the sleep protocol, the
//! per-worker slots, the shutdown phases, and the handlers. Only state and
//! the operations on it: starting workers is `start.rs`, what a worker does
//! is `worker/`.

use crate::bound::{self, Bound, FullPolicy, Rejected, Route, Submitter, Ticket, Wait};
use crate::config::{self, LifecycleHandler, PanicHandler, PoolConfig, ThreadNamer};
use crate::end::PoolEnd;
use crate::job::JobRef;
use crate::metrics::{Metrics, WorkerCounters};
use crate::pin::{CoreId, CorePlan, Placement};
use crate::publish::PublishRequest;
use crate::queue::{FifoQueue, GlobalQueue, LocalQueue, StealQueue};
use crate::sleep::Sleep;
use crate::spares::{SpareNamer, SpareSlots, Spares};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::counter::AtomicU64;
use crate::sync::{self, Arc, Condvar, Mutex, Waited, lock, thread};
use crate::table::GrowTable;
use crate::unwind::{self, Payload};
use crossbeam_utils::CachePadded;
use std::time::Instant;

pub(crate) struct Registry {
    /// The workers' slots, then the spares' (added as spares start).
    slots: GrowTable<WorkerSlot>,
    injector: GlobalQueue<JobRef>,
    /// Shared with latches that wake this pool's workers (latch/).
    pub(crate) sleep: Arc<Sleep>,
    /// Open, closed, shutting down, drained (end.rs).
    end: PoolEnd,
    /// Tasks cancelled (`Task::abort`) or discarded (`shutdown_now`).
    cancelled: AtomicU64,
    /// Tasks discarded by `shutdown_now`.
    discarded: AtomicU64,
    /// How many workers have left their thread's main function, for
    /// whoever waits for them (with `exits`), and how many will: those the
    /// pool started (not a thread adopted by `use_current_thread`).
    exited: Mutex<usize>,
    exits: Condvar,
    exit_target: AtomicUsize,
    start_handler: Option<LifecycleHandler>,
    exit_handler: Option<LifecycleHandler>,
    panic_handler: Option<PanicHandler>,
    /// Panics of detached tasks (`spawn`).
    detached_panics: AtomicU64,
    /// The bound on pending tasks from outside, if any (bound/).
    bound: Option<Bound>,
    full_policy: FullPolicy,
    /// The handles of the threads the pool started (workers, spares).
    threads: ThreadHandles,
    /// Where the workers run; holds their cores until the last worker
    /// exits.
    cores: CorePlan,
    /// Compensation for blocked workers (spares/).
    spares: Spares,
    /// How deep into its stack a worker's waits may run other work
    /// (worker/restricted.rs).
    wait_stack_budget: usize,
}

/// What the pool shares about worker `i`.
pub(crate) struct WorkerSlot {
    /// The thieves' end of the worker's deque.
    pub(crate) stealer: StealQueue<JobRef>,
    /// Raised by thieves that found this worker's deque empty (publish.rs).
    /// On its own cache line: thieves write it while the owner reads it
    /// per join.
    pub(crate) publish_request: CachePadded<PublishRequest>,
    /// Written only by the owner, read by `metrics()`.
    pub(crate) counters: CachePadded<WorkerCounters>,
    /// The jobs of the worker's detached FIFO spawns (`spawn_fifo`), each
    /// pushed with a stand-in on the worker's deque (worker/fifo.rs).
    pub(crate) fifo: FifoQueue<JobRef>,
    /// Jobs for this worker only (`broadcast`): nobody steals them.
    pub(crate) broadcasts: GlobalQueue<JobRef>,
}

impl WorkerSlot {
    /// The slot of worker `index`, whose deque `stealer` steals from.
    fn new(index: usize, stealer: StealQueue<JobRef>) -> WorkerSlot {
        WorkerSlot {
            stealer,
            publish_request: CachePadded::new(PublishRequest::new()),
            counters: CachePadded::new(WorkerCounters::default()),
            fifo: FifoQueue::new(index),
            broadcasts: GlobalQueue::new(),
        }
    }

    /// Asks the owner to publish work (publish.rs).
    #[inline]
    pub(crate) fn request_publication(&self) {
        self.publish_request.raise();
    }
}

impl Registry {
    /// The shared state of a pool described by `config` (its handlers are
    /// moved out), whose workers' deques have these `stealers`.
    pub(crate) fn new(config: &mut PoolConfig, stealers: Vec<StealQueue<JobRef>>) -> Arc<Registry> {
        let num_threads = stealers.len();
        let spare_capacity = config.max_spare_workers;
        let slots = stealers
            .into_iter()
            .enumerate()
            .map(|(index, stealer)| WorkerSlot::new(index, stealer))
            .collect();
        let cores = CorePlan::new(config.pin_workers, num_threads);
        let spares = Spares::new(
            spare_capacity,
            config.spare_keep_alive,
            cores.cores().to_vec(),
            SpareSlots::new(spare_namer(config.thread_name.take()), config.stack_size),
        );
        Arc::new(Registry {
            slots: GrowTable::new(slots, spare_capacity),
            injector: GlobalQueue::new(),
            sleep: Arc::new(Sleep::new(num_threads, spare_capacity)),
            end: PoolEnd::new(num_threads),
            cancelled: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            exited: Mutex::new(0),
            exits: Condvar::new(),
            exit_target: AtomicUsize::new(num_threads),
            start_handler: config.start_handler.take(),
            exit_handler: config.exit_handler.take(),
            panic_handler: config.panic_handler.take(),
            detached_panics: AtomicU64::new(0),
            bound: config.max_pending.map(Bound::new),
            full_policy: config.when_full,
            threads: ThreadHandles::default(),
            cores,
            spares,
            wait_stack_budget: config.wait_stack_budget(),
        })
    }

    /// Where worker `index` runs (`None`: nothing to do).
    pub(crate) fn placement(&self, index: usize) -> Option<Placement> {
        self.cores.placement(index)
    }

    /// Keeps the started workers' handles, to join them at shutdown.
    pub(crate) fn set_threads(&self, handles: Vec<thread::JoinHandle<()>>) {
        *lock(&self.threads.0) = handles;
    }

    /// The pool's workers (spares not included).
    #[inline]
    pub(crate) fn num_threads(&self) -> usize {
        self.slots.fixed().len()
    }

    /// The slots of the workers, then of the spares started so far.
    #[inline]
    pub(crate) fn slots(&self) -> &GrowTable<WorkerSlot> {
        &self.slots
    }

    /// How many workers the pool can have at once, spares included: every
    /// worker index is below it.
    pub(crate) fn max_workers(&self) -> usize {
        self.slots.capacity()
    }

    #[inline]
    pub(crate) fn wait_stack_budget(&self) -> usize {
        self.wait_stack_budget
    }

    #[inline]
    pub(crate) fn injector(&self) -> &GlobalQueue<JobRef> {
        &self.injector
    }

    /// Admission of a task from `submitter` (bound/, `admit`), under this
    /// pool's bound and policy. The bound's grants queue the tasks of the
    /// producers they hand a slot to through the injector, here and in the
    /// two calls below: a waiting producer's task may go to any worker.
    #[inline]
    pub(crate) fn admit(&self, submitter: Submitter, wait: Wait) -> Result<Route, Rejected> {
        bound::admit(
            self.bound.as_ref(),
            self.full_policy,
            submitter,
            wait,
            |job| self.inject(job),
        )
    }

    /// A counted task started or was cancelled: its slot of the bound goes
    /// back (to the first producer in line, if any). Nothing without a
    /// bound.
    pub(crate) fn release_slot(&self) {
        if let Some(bound) = &self.bound {
            bound.release(|job| self.inject(job));
        }
    }

    /// A worker of another pool hands the task `make_job` builds to the
    /// bound's line (bound/, `Bound::hand_to_line`).
    ///
    /// # Panics
    ///
    /// Without a bound: only admission to a bounded pool sends a task there.
    #[cold]
    pub(crate) fn hand_to_line(&self, make_job: impl FnOnce(Ticket) -> JobRef) -> Ticket {
        self.bound
            .as_ref()
            .expect("pilfer: waiting in line for a bound that does not exist")
            .hand_to_line(make_job, |job| self.inject(job))
    }

    /// Tasks from outside not yet started: exact with a bound; without one,
    /// those still in the injector (a worker's batch is not counted).
    pub(crate) fn pending(&self) -> usize {
        match &self.bound {
            Some(bound) => bound.pending(),
            None => self.injector.len(),
        }
    }

    /// Pushes a job onto the injector, where any worker finds it: from a
    /// thread outside this pool, or from one of its workers handing on work
    /// that must not stay on its own deque (a waiting producer's job, the
    /// leftovers of an isolated wait).
    #[inline]
    pub(crate) fn inject(&self, job: JobRef) {
        self.injector.push(job);
        self.sleep.notify_new_work();
    }

    /// Whether any queue holds a job; the re-check of the sleep protocol.
    pub(crate) fn has_work(&self) -> bool {
        self.has_shared_work() || self.slots.iter().any(|slot| !slot.broadcasts.is_empty())
    }

    /// Whether a queue that any worker may take from holds a job: the
    /// injector or a deque (not a broadcast queue, which only its own
    /// worker takes from).
    fn has_shared_work(&self) -> bool {
        !self.injector.is_empty() || self.slots.iter().any(|slot| !slot.stealer.is_empty())
    }

    /// Whether worker `index` could find a job: shared work, or a job
    /// broadcast to it. The re-check of a worker falling asleep: another
    /// worker's broadcast is not work for it (that worker is woken for it).
    pub(crate) fn has_work_for(&self, index: usize) -> bool {
        self.has_shared_work() || !self.slots.get(index).broadcasts.is_empty()
    }

    /// Queues `job` for worker `index` only, and wakes it if it sleeps.
    pub(crate) fn push_broadcast(&self, index: usize, job: JobRef) {
        self.slots.get(index).broadcasts.push(job);
        self.sleep.notify_worker(index);
    }

    /// Refuses work from outside from now on; producers waiting for room
    /// are woken and refused too (bound/).
    pub(crate) fn close(&self) {
        self.end.close();
        if let Some(bound) = &self.bound {
            bound.close();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.end.is_closed()
    }

    /// Compensation for blocked workers (spares/).
    #[inline]
    pub(crate) fn spares(&self) -> &Spares {
        &self.spares
    }

    /// The pool's phases (end.rs).
    #[inline]
    pub(crate) fn end(&self) -> &PoolEnd {
        &self.end
    }

    /// A task was cancelled; `discarded` if by `shutdown_now`.
    pub(crate) fn count_cancelled(&self, discarded: bool) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
        if discarded {
            self.discarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tasks discarded by `shutdown_now` so far.
    pub(crate) fn discarded(&self) -> usize {
        self.discarded.load(Ordering::Relaxed) as usize
    }

    /// Starts shutting down (closing the pool first): workers finish every
    /// queued job, then exit.
    pub(crate) fn begin_shutdown(&self) {
        self.close();
        // Before the spares are told: an idle spare that exits sees the
        // shutdown (its slot and handle stay for it).
        self.end.begin_shutdown();
        self.spares.close();
        self.sleep.wake_all();
    }

    /// The pool runs `workers` threads of its own (the others being a
    /// thread adopted by `use_current_thread`): they take part in the
    /// shutdown count and the exits. Set before they start, or once some
    /// failed to.
    pub(crate) fn set_started_workers(&self, workers: usize) {
        self.end.set_running(workers);
        // Relaxed: read by waiters under `exited`, written before the
        // workers it counts start (or after those that failed to).
        self.exit_target.store(workers, Ordering::Relaxed);
    }

    /// A new slot past the others, for a spare, with the owner's end of
    /// its deque: in the slots and in the sleep protocol. `None` if the
    /// pool has no room left (`max_workers`). Called under the spares'
    /// slot lock (spares/slots.rs), so one at a time.
    pub(crate) fn add_slot(&self) -> Option<(usize, LocalQueue<JobRef>)> {
        let deque = LocalQueue::new();
        let index = self.sleep.add_worker()?;
        let added = self.slots.push(WorkerSlot::new(index, deque.stealer()));
        debug_assert_eq!(added.ok(), Some(index), "the sleep state and slots agree");
        Some((index, deque))
    }

    /// The core that worker `index` is pinned to, if it is (a spare may
    /// take it while the worker blocks: spares/, "Seats").
    pub(crate) fn pinned_core(&self, index: usize) -> Option<CoreId> {
        if index >= self.num_threads() || !self.slots().get(index).counters.is_pinned() {
            return None;
        }
        match self.cores.placement(index)? {
            Placement::Pin(core) => Some(core),
            Placement::Spread(_) => None,
        }
    }

    /// A spare thread is starting: shutdown waits for its exit too. Called
    /// by a worker that runs a job, so before the pool can have drained.
    pub(crate) fn expect_exit(&self) {
        let _exited = lock(&self.exited);
        self.exit_target.fetch_add(1, Ordering::Relaxed);
    }

    /// A spare thread that `expect_exit` announced did not start after all.
    pub(crate) fn expect_exit_undone(&self) {
        let exited = lock(&self.exited);
        let target = self.exit_target.fetch_sub(1, Ordering::Relaxed) - 1;
        if *exited == target {
            self.exits.notify_all();
        }
    }

    /// Keeps the handle of a spare thread, to join it at shutdown; joins
    /// those of threads that have finished (spares that exited for lack of
    /// work), so that handles do not pile up.
    pub(crate) fn keep_thread(&self, handle: thread::JoinHandle<()>) {
        let finished = {
            let mut threads = lock(&self.threads.0);
            // (loom's and shuttle's handles cannot tell; their models start
            // few threads.)
            #[cfg(not(any(loom, shuttle)))]
            let finished = {
                let (finished, running) = std::mem::take(&mut *threads)
                    .into_iter()
                    .partition(|handle| handle.is_finished());
                *threads = running;
                finished
            };
            #[cfg(any(loom, shuttle))]
            let finished = Vec::new();
            threads.push(handle);
            finished
        };
        // Not under the lock: a finished thread may still be running its
        // thread-local destructors.
        join_all(finished);
    }

    /// A worker is leaving its thread's main function: the last one gives
    /// the pool's cores back and tells whoever waits for the exits.
    pub(crate) fn worker_exited(&self) {
        let mut exited = lock(&self.exited);
        *exited += 1;
        if *exited == self.exit_target.load(Ordering::Relaxed) {
            self.cores.release();
            self.exits.notify_all();
        }
    }

    /// Waits until every worker the pool started has exited, at most until
    /// `deadline` (forever if `None`); returns whether they all have.
    pub(crate) fn wait_for_exits(&self, deadline: Option<Instant>) -> bool {
        let mut exited = lock(&self.exited);
        while *exited < self.exit_target.load(Ordering::Relaxed) {
            exited = match sync::wait_before(&self.exits, exited, deadline) {
                Waited::Woken(exited) => exited,
                Waited::Expired(_) => return false,
            };
        }
        true
    }

    /// Shutting down, every worker is idle and nothing is queued: let them
    /// all exit (worker/lifecycle.rs, `finish`).
    pub(crate) fn release_workers(&self) {
        self.end.set_drained();
        self.sleep.wake_all();
    }

    /// Joins the worker threads, except the calling one if it is a worker.
    /// Also waits for the workers started by a spawn handler, of which it
    /// has no handles.
    pub(crate) fn join_threads(&self) {
        let handles = std::mem::take(&mut *lock(&self.threads.0));
        if join_all(handles) {
            self.wait_for_exits(None);
        }
    }

    pub(crate) fn run_start_handler(&self, index: usize) {
        self.run_lifecycle_handler(&self.start_handler, index);
    }

    pub(crate) fn run_exit_handler(&self, index: usize) {
        self.run_lifecycle_handler(&self.exit_handler, index);
    }

    /// Runs a start or exit handler; its panic counts as a detached one.
    fn run_lifecycle_handler(&self, handler: &Option<LifecycleHandler>, index: usize) {
        let Some(handler) = handler else { return };
        if let Err(payload) = unwind::halt_unwinding(|| handler(index)) {
            self.handle_detached_panic(payload);
        }
    }

    /// A detached task panicked: count it and hand the payload to the panic
    /// handler, if any. The standard panic hook has already printed it.
    pub(crate) fn handle_detached_panic(&self, payload: Payload) {
        self.detached_panics.fetch_add(1, Ordering::Relaxed);
        match &self.panic_handler {
            // A panicking handler must not take the worker down either; its
            // own payload is dropped (it was printed by the hook).
            Some(handler) => {
                if let Err(second) = unwind::halt_unwinding(|| handler(payload)) {
                    unwind::drop_payload(second);
                }
            }
            // Even dropping a payload runs user code (its `Drop`).
            None => unwind::drop_payload(payload),
        }
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let num_threads = self.num_threads();
        Metrics::collect(
            self.slots.iter().map(|slot| &*slot.counters),
            num_threads,
            self.detached_panics.load(Ordering::Relaxed),
            self.cancelled.load(Ordering::Relaxed),
            self.spares.started_count(),
            self.spares.blocked_now(),
        )
    }
}

/// Names spares' threads as the pool's workers are named.
fn spare_namer(mut namer: Option<ThreadNamer>) -> SpareNamer {
    Box::new(move |index| config::name_thread(&mut namer, index))
}

/// The handles of a pool's threads, and the rule for letting go of them:
/// **a handle is joined, never dropped, unless it is the calling thread's
/// own.**
///
/// Dropping a `JoinHandle` detaches its thread (`pthread_detach`), and
/// glibc (2.36 at least) marks the thread detached and then reads its
/// descriptor again, which sits at the top of the thread's stack. A thread
/// that is exiting at that moment sees itself detached and frees its stack;
/// a large one (above glibc's stack cache, 40 MiB) is unmapped at once, and
/// the detaching thread's second read faults. That was the torture test's
/// SIGSEGV (RELIABILITY.md): a worker dropping the last reference to its
/// pool dropped the handle of another worker that was exiting. Joining
/// never races with the exit, and every handle let go of here belongs to a
/// thread that has left pilfer's code or is about to (the pool is gone, or
/// the thread's closure returned), so a join waits only for its teardown.
/// Detaching the calling thread is safe: it is not exiting.
#[derive(Default)]
struct ThreadHandles(Mutex<Vec<thread::JoinHandle<()>>>);

impl Drop for ThreadHandles {
    fn drop(&mut self) {
        let handles = std::mem::take(&mut *lock(&self.0));
        join_all(handles);
    }
}

/// Joins every thread of `handles` but the calling one (whose handle is
/// dropped: see [`ThreadHandles`]); returns whether it joined them all.
fn join_all(handles: Vec<thread::JoinHandle<()>>) -> bool {
    // Nothing to join asks nothing of the thread: an adopted thread drops
    // its pool's state (by then without handles) in a thread-local's
    // destructor, where loom's `thread::current` is out of reach.
    if handles.is_empty() {
        return true;
    }
    let me = thread::current().id();
    let mut joined_all = true;
    for handle in handles {
        if handle.thread().id() == me {
            joined_all = false;
        } else {
            // A worker never unwinds out of its thread (its panics are
            // contained), so the result says nothing.
            let _ = handle.join();
        }
    }
    joined_all
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::ThreadHandles;
    use crate::sync::lock;
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::Duration;

    /// A thread-local whose destructor runs as its thread exits (after the
    /// thread's closure returned): it reports, waits to be released, then
    /// marks the teardown finished.
    struct SlowTeardown {
        started: mpsc::Sender<()>,
        release: mpsc::Receiver<()>,
        finished: Arc<AtomicBool>,
    }

    impl Drop for SlowTeardown {
        fn drop(&mut self) {
            self.started.send(()).unwrap();
            self.release.recv().unwrap();
            self.finished.store(true, Ordering::SeqCst);
        }
    }

    thread_local!(static TEARDOWN: RefCell<Option<SlowTeardown>> = const { RefCell::new(None) });

    #[test]
    fn letting_go_of_an_exiting_threads_handle_waits_for_its_exit() {
        let (started, teardown_started) = mpsc::channel();
        let (release, released) = mpsc::channel();
        let finished = Arc::new(AtomicBool::new(false));
        let teardown = SlowTeardown {
            started,
            release: released,
            finished: Arc::clone(&finished),
        };
        let exiting =
            thread::spawn(move || TEARDOWN.with(|slot| *slot.borrow_mut() = Some(teardown)));
        let handles = ThreadHandles::default();
        lock(&handles.0).push(exiting);
        // The thread's closure has returned: it is exiting now.
        teardown_started.recv().unwrap();
        let (report, reported) = mpsc::channel();
        thread::spawn(move || {
            drop(handles);
            report.send(finished.load(Ordering::SeqCst)).unwrap();
        });
        // A drop that detached the exiting thread (the glibc race:
        // `ThreadHandles`) would report at once, with the teardown still
        // going on; give it the chance, then let the teardown end. A drop
        // that joins reports only after it, whatever the timing.
        let early = reported.recv_timeout(Duration::from_millis(100)).ok();
        release.send(()).unwrap();
        let teardown_finished = early.unwrap_or_else(|| reported.recv().unwrap());
        assert!(
            teardown_finished,
            "the handle of an exiting thread was dropped (detached), not joined"
        );
    }

    #[test]
    fn the_calling_threads_own_handle_is_let_go_without_a_join() {
        let (handle_in, handle_out) = mpsc::channel::<thread::JoinHandle<()>>();
        let (done, is_done) = mpsc::channel();
        let me = thread::spawn(move || {
            let handles = ThreadHandles::default();
            lock(&handles.0).push(handle_out.recv().unwrap());
            // Its own handle: a join would never return.
            drop(handles);
            done.send(()).unwrap();
        });
        handle_in.send(me).unwrap();
        is_done.recv().unwrap();
    }
}
