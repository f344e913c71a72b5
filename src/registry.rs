//! The state a pool's workers share: the queues, the sleep protocol, the
//! per-worker slots, and the handlers. Also the three ways of getting a
//! closure onto one of the pool's workers (`in_worker`).

use crate::bound::{Bound, FullPolicy};
use crate::builder::{BuildError, PoolConfig};
use crate::job::{JobRef, StackJob};
use crate::latch::{CrossLatch, Latch, ShutdownLatch, ThreadLatch};
use crate::metrics::{Metrics, WorkerCounters};
use crate::pin::CorePlan;
use crate::publish::PublishRequest;
use crate::queue::{GlobalQueue, LocalQueue, StealQueue};
use crate::sleep::Sleep;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::counter::AtomicU64;
use crate::sync::{Arc, Mutex, lock, thread};
use crate::unwind::{self, Payload};
use crate::worker::{self, WorkerThread};
use crossbeam_utils::CachePadded;
use std::ptr;

/// A closure run on each worker as it starts or exits, with its index.
pub(crate) type LifecycleHandler = Box<dyn Fn(usize) + Send + Sync>;
/// A closure that receives the panics of detached tasks.
pub(crate) type PanicHandler = Box<dyn Fn(Payload) + Send + Sync>;

pub(crate) struct Registry {
    slots: Box<[WorkerSlot]>,
    injector: GlobalQueue<JobRef>,
    pub(crate) sleep: Sleep,
    /// Set when the pool starts shutting down.
    pub(crate) shutdown: ShutdownLatch,
    /// Set when the pool has shut down: no job runs or is queued.
    pub(crate) exit: ShutdownLatch,
    /// Workers not (yet) idle in the shutdown phase (worker.rs, `finish`).
    pub(crate) running: AtomicUsize,
    start_handler: Option<LifecycleHandler>,
    exit_handler: Option<LifecycleHandler>,
    panic_handler: Option<PanicHandler>,
    /// Panics of detached tasks (`spawn`).
    detached_panics: AtomicU64,
    /// The bound on pending tasks from outside, if any (bound.rs).
    bound: Option<Bound>,
    full_policy: FullPolicy,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    /// Where the workers run; holds their cores until the pool is gone.
    cores: CorePlan,
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
}

impl WorkerSlot {
    /// Asks the owner to publish work (publish.rs).
    #[inline]
    pub(crate) fn request_publication(&self) {
        self.publish_request.raise();
    }
}

impl Registry {
    /// Creates the registry and starts its workers. On failure, the workers
    /// already started are stopped and joined before the error returns.
    pub(crate) fn start(mut config: PoolConfig) -> Result<Arc<Registry>, BuildError> {
        let num_threads = config.num_threads;
        let deques: Vec<LocalQueue<JobRef>> = (0..num_threads).map(|_| LocalQueue::new()).collect();
        let slots = deques
            .iter()
            .map(|deque| WorkerSlot {
                stealer: deque.stealer(),
                publish_request: CachePadded::new(PublishRequest::new()),
                counters: CachePadded::new(WorkerCounters::default()),
            })
            .collect();
        let registry = Arc::new(Registry {
            slots,
            injector: GlobalQueue::new(),
            sleep: Sleep::new(num_threads),
            shutdown: ShutdownLatch::new(),
            exit: ShutdownLatch::new(),
            running: AtomicUsize::new(num_threads),
            start_handler: config.start_handler.take(),
            exit_handler: config.exit_handler.take(),
            panic_handler: config.panic_handler.take(),
            detached_panics: AtomicU64::new(0),
            bound: config.max_pending.map(Bound::new),
            full_policy: config.when_full,
            threads: Mutex::new(Vec::with_capacity(num_threads)),
            cores: CorePlan::new(config.pin_workers, num_threads),
        });

        // Names first: a name the OS cannot take must fail the build before
        // any worker has started.
        let names = (0..num_threads)
            .map(|index| config.thread_name(index))
            .collect::<Vec<_>>();
        if let Some(index) = names.iter().position(|name| name.contains('\0')) {
            return Err(BuildError::InvalidThreadName { index });
        }
        let mut handles = Vec::with_capacity(num_threads);
        for ((index, deque), name) in deques.into_iter().enumerate().zip(names) {
            let mut builder = thread::Builder::new().name(name);
            if let Some(size) = config.stack_size {
                builder = builder.stack_size(size);
            }
            let placement = registry.cores.placement(index);
            let worker_registry = Arc::clone(&registry);
            let spawned = unwind::halt_unwinding(move || {
                builder.spawn(move || worker::main_loop(worker_registry, index, deque, placement))
            });
            match spawned {
                Ok(Ok(handle)) => handles.push(handle),
                failed => {
                    // Stop the workers already started before reporting.
                    // Only they take part in the shutdown count; the store
                    // is published to them by the shutdown latch's Release.
                    registry.running.store(handles.len(), Ordering::Relaxed);
                    registry.terminate();
                    for handle in handles {
                        let _ = handle.join();
                    }
                    match failed {
                        Ok(Err(error)) => return Err(BuildError::spawn(index, error)),
                        Err(payload) => unwind::resume_unwinding(payload),
                        Ok(Ok(_)) => unreachable!(),
                    }
                }
            }
        }
        *lock(&registry.threads) = handles;
        Ok(registry)
    }

    #[inline]
    pub(crate) fn num_threads(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn slots(&self) -> &[WorkerSlot] {
        &self.slots
    }

    #[inline]
    pub(crate) fn injector(&self) -> &GlobalQueue<JobRef> {
        &self.injector
    }

    #[inline]
    pub(crate) fn bound(&self) -> Option<&Bound> {
        self.bound.as_ref()
    }

    pub(crate) fn full_policy(&self) -> FullPolicy {
        self.full_policy
    }

    /// Tasks from outside not yet started: exact with a bound; without one,
    /// those still in the injector (a worker's batch is not counted).
    pub(crate) fn pending(&self) -> usize {
        match &self.bound {
            Some(bound) => bound.pending(),
            None => self.injector.len(),
        }
    }

    /// Pushes a job from a thread outside this pool.
    #[inline]
    pub(crate) fn inject(&self, job: JobRef) {
        self.injector.push(job);
        self.sleep.notify_new_work();
    }

    /// Pushes a job from any thread: onto the caller's own deque when it is
    /// a worker of this pool, else into the injector.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) {
        match WorkerThread::current_in(self) {
            Some(worker) => worker.push(job),
            None => self.inject(job),
        }
    }

    /// Whether any queue holds a job; the re-check of the sleep protocol.
    pub(crate) fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.slots.iter().any(|slot| !slot.stealer.is_empty())
    }

    /// Starts shutting down: workers finish every queued job, then exit.
    pub(crate) fn terminate(&self) {
        self.shutdown.set();
        self.sleep.wake_all();
    }

    /// Every worker is idle with nothing queued: let them all exit.
    pub(crate) fn close(&self) {
        self.exit.set();
        self.sleep.wake_all();
    }

    pub(crate) fn is_terminating(&self) -> bool {
        self.shutdown.probe()
    }

    /// Joins the worker threads, except the calling one if it is a worker.
    pub(crate) fn join_threads(&self) {
        let handles = std::mem::take(&mut *lock(&self.threads));
        let me = thread::current().id();
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
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
        Metrics::collect(
            self.slots.iter().map(|slot| &*slot.counters),
            self.detached_panics.load(Ordering::Relaxed),
        )
    }

    /// Runs `op` on a worker of this pool and returns its result: directly
    /// when called on one, else through the injector.
    #[inline]
    pub(crate) fn in_worker<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&WorkerThread) -> R + Send,
        R: Send,
    {
        match WorkerThread::current() {
            Some(worker) if ptr::eq(&**worker.registry(), self) => op(worker),
            Some(worker) => self.in_worker_cross(worker, op),
            None => self.in_worker_cold(op),
        }
    }

    /// From a thread outside every pool: inject, then block.
    #[cold]
    fn in_worker_cold<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&WorkerThread) -> R + Send,
        R: Send,
    {
        let job = StackJob::new(
            || op(WorkerThread::current().expect("pilfer: injected job ran off-pool")),
            ThreadLatch::for_current_thread(),
        );
        // SAFETY: `job` stays in this frame until its latch is set (`wait`
        // below), and its `JobRef` is pushed once.
        self.inject(unsafe { job.as_job_ref() });
        job.latch.wait();
        job.into_result()
    }

    /// From a worker of another pool: inject, then keep running that pool's
    /// work while waiting, so neither pool can deadlock on the other.
    #[cold]
    fn in_worker_cross<OP, R>(&self, current: &WorkerThread, op: OP) -> R
    where
        OP: FnOnce(&WorkerThread) -> R + Send,
        R: Send,
    {
        let latch = CrossLatch::new(current.registry(), current.index());
        let job = StackJob::new(
            || op(WorkerThread::current().expect("pilfer: injected job ran off-pool")),
            latch,
        );
        // SAFETY: as in `in_worker_cold`; `wait_until` returns once the latch
        // is set.
        self.inject(unsafe { job.as_job_ref() });
        current.wait_until(&job.latch);
        job.into_result()
    }
}
