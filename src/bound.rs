//! Exhaustion control: an optional bound on the tasks submitted from outside
//! the pool and not yet started, with backpressure.
//!
//! Without a bound, a producer faster than the workers queues tasks until
//! memory runs out. With `max_pending(n)`, at most `n` tasks submitted from
//! outside the pool (`spawn`, `submit` and their `try_`/`_timeout` forms,
//! called from a thread that is not one of the pool's workers) are accepted
//! and not yet started. A slot is taken when such a task is accepted and
//! given back when a worker starts it.
//!
//! Not counted: tasks spawned by the pool's own workers (they go to the
//! worker's deque and never wait, since a worker waiting for room that only
//! the workers can make would deadlock the pool), and `install`, `join` and
//! `scope` called from outside (each blocks its caller until done, so every
//! outside thread has at most one of them queued).
//!
//! Producers that must wait queue up in arrival order; each freed slot goes
//! to the longest-waiting producer, so no producer starves while others keep
//! submitting. A thread outside every pool sleeps on a condition variable.
//!
//! A worker of *another* pool (a task of pool B submitting to pool A) waits
//! as it waits for a `join`: it runs its own pool's work meanwhile and sleeps
//! in its own pool's protocol. Blocking it outright could deadlock two pools
//! that submit to each other, each worker waiting for room that only the
//! other pool's blocked workers could make. Such a worker hands its task to
//! the line, and whoever takes a slot for it also queues the task: the
//! worker may be running, deeper in its stack, another task that waits in
//! the same line, and a slot reserved for a producer that cannot queue its
//! task until that inner wait ends could leave every slot reserved and
//! nothing queued to free one.
//!
//! Without a bound none of this exists: the submission path stays free of
//! extra atomic read-modify-writes.

use crate::job::JobRef;
use crate::latch::{Latch, SharedLatch};
use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, hint, lock};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

/// What [`ThreadPool::spawn`](crate::ThreadPool::spawn) and
/// [`submit`](crate::ThreadPool::submit) do when the pool already holds
/// `max_pending` tasks that have not started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Wait until a worker starts one of the pending tasks (backpressure).
    #[default]
    Block,
    /// Run the task on the submitting thread, before returning. This slows
    /// the producer down by exactly the work it tried to queue.
    CallerRuns,
}

/// A task the pool did not accept, handed back to the caller intact.
///
/// ```
/// use pilfer::TrySpawnError;
/// use std::sync::mpsc;
///
/// let pool = pilfer::ThreadPool::builder().num_threads(1).max_pending(1).build().unwrap();
/// let (release, wait) = mpsc::channel::<()>();
/// let (started, is_started) = mpsc::channel();
/// // Occupy the only worker, then fill the single pending slot.
/// pool.spawn(move || {
///     started.send(()).unwrap();
///     wait.recv().unwrap();
/// });
/// is_started.recv().unwrap();
/// pool.try_spawn(|| ()).unwrap();
/// let (sender, receiver) = mpsc::channel();
/// match pool.try_spawn(move || sender.send("ran").unwrap()) {
///     // The same closure comes back: run it here instead.
///     Err(TrySpawnError::Full(task)) => task(),
///     other => panic!("expected Full, got {other:?}"),
/// }
/// assert_eq!(receiver.recv().unwrap(), "ran");
/// release.send(()).unwrap();
/// ```
pub enum TrySpawnError<F> {
    /// The pool holds `max_pending` tasks that have not started.
    Full(F),
    /// The pool is shutting down and takes no new work from outside.
    ///
    /// With today's API a pool only shuts down when its last handle is
    /// dropped, so a caller holding a `&ThreadPool` never sees this; it is
    /// here so that callers handle it should shutdown become reachable
    /// while handles exist.
    ShutDown(F),
}

impl<F> TrySpawnError<F> {
    /// The rejected task.
    pub fn into_inner(self) -> F {
        match self {
            TrySpawnError::Full(task) | TrySpawnError::ShutDown(task) => task,
        }
    }

    /// Whether the task was rejected because the pool was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySpawnError::Full(_))
    }

    /// Whether the task was rejected because the pool was shutting down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, TrySpawnError::ShutDown(_))
    }
}

impl<F> fmt::Debug for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => f.write_str("Full(..)"),
            TrySpawnError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

impl<F> fmt::Display for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => {
                f.write_str("the thread pool already holds its maximum of pending tasks")
            }
            TrySpawnError::ShutDown(_) => f.write_str("the thread pool is shutting down"),
        }
    }
}

impl<F> std::error::Error for TrySpawnError<F> {}

/// Rounds of exponential busy-waiting (2^0 .. 2^(n-1) spin hints, a few
/// microseconds in all) before a producer queues up and sleeps. None under
/// loom, where spinning only multiplies the interleavings.
const SPIN_ROUNDS: u32 = if cfg!(loom) { 0 } else { 6 };

/// The bound: a count of pending tasks and a queue of waiting producers.
pub(crate) struct Bound {
    max: usize,
    /// Tasks accepted from outside and not yet started.
    pending: CachePadded<AtomicUsize>,
    /// How many producers are in `waiters`; lets `release` skip the lock.
    waiting: AtomicUsize,
    /// Producers waiting for a slot, oldest first.
    waiters: Mutex<VecDeque<Place>>,
}

/// A producer's place in line.
struct Place {
    waiter: Arc<Waiter>,
    /// The task a worker of another pool handed over (`hand_to_line`),
    /// queued by whoever takes a slot for it.
    task: Option<JobRef>,
}

/// Tasks whose producers were granted a slot under the lock, to queue (and
/// then tell their producers) once it is released.
type HandedOver = Vec<(Arc<Waiter>, JobRef)>;

struct Waiter {
    /// Set once a slot was taken for this producer: under the `waiters`
    /// lock for one that waits by itself, after its task was queued for one
    /// that handed its task over (a worker of another pool, which waits on
    /// it in its pool's way).
    granted: SharedLatch,
    /// Signalled with `granted`, for a producer outside every pool (or one
    /// waiting with a deadline), which sleeps here under the `waiters` lock.
    condvar: Condvar,
}

impl Waiter {
    fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            granted: SharedLatch::new(),
            condvar: Condvar::new(),
        })
    }

    /// Hands this producer the slot just taken for it. Called under the
    /// `waiters` lock, after it was taken out of the line.
    fn grant(&self) {
        self.granted.set();
        self.condvar.notify_one();
    }
}

impl Bound {
    pub(crate) fn new(max: usize) -> Bound {
        debug_assert!(max > 0);
        Bound {
            max,
            pending: CachePadded::new(AtomicUsize::new(0)),
            waiting: AtomicUsize::new(0),
            waiters: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes a slot if one is free and no producer is waiting for one
    /// (waiting producers are served first).
    fn try_acquire(&self) -> bool {
        // SeqCst, like the increment in `wait_for_slot`: a producer that
        // sees nobody waiting may take a free slot directly.
        self.waiting.load(Ordering::SeqCst) == 0 && self.take_slot()
    }

    /// Busy-waits briefly for a slot: when workers start tasks every few
    /// microseconds one frees up almost at once, and taking it then costs
    /// neither this thread nor the releasing worker a system call.
    fn spin_for_slot(&self) -> bool {
        for round in 0..SPIN_ROUNDS {
            if self.try_acquire() {
                return true;
            }
            for _ in 0..1 << round {
                hint::spin_loop();
            }
        }
        self.try_acquire()
    }

    /// Takes a slot, waiting in line until `deadline` (forever if `None`)
    /// with the calling thread blocked. Returns whether a slot was taken.
    /// `inject` queues the tasks handed over by producers this call grants
    /// a slot to.
    fn acquire(&self, deadline: Option<Instant>, inject: impl Fn(JobRef)) -> bool {
        self.spin_for_slot() || self.wait_for_slot(deadline, inject)
    }

    /// For a worker of another pool: hands `task` to the line. Whoever
    /// takes a slot for it (this call, or a releaser) queues it with
    /// `inject`, then sets the returned latch; the caller waits on that
    /// latch in its own pool's way (running its pool's work meanwhile).
    ///
    /// Nothing here checks for shutdown: the caller borrows the pool, which
    /// therefore cannot be shutting down (it shuts down when dropped), so
    /// every task in line is queued into a live pool, and the line is empty
    /// when the `Bound` drops.
    #[cold]
    pub(crate) fn hand_to_line(&self, task: JobRef, inject: impl Fn(JobRef)) -> Granted {
        let me = Waiter::new();
        let mut waiters = lock(&self.waiters);
        waiters.push_back(Place {
            waiter: Arc::clone(&me),
            task: Some(task),
        });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (see there).
        fence(Ordering::SeqCst);
        // Slots freed while nobody was seen waiting: for those first in line.
        let handed_over = self.grant_while_free(&mut waiters);
        drop(waiters);
        queue_handed_over(handed_over, &inject);
        Granted(me)
    }

    /// Gives back the slot of a task that a worker is starting, handing it
    /// to the longest-waiting producer if there is one (`inject` queues
    /// that producer's task if it handed one over).
    pub(crate) fn release(&self, inject: impl Fn(JobRef)) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the fence in `wait_for_slot` and `wait_in_line_with`:
        // either this load sees the waiter, or the waiter's own grant, after
        // its fence, sees the slot this freed.
        fence(Ordering::SeqCst);
        // `--cfg pilfer_bug="no_grant"` drops the hand-over, to show that the
        // loom models catch a producer left waiting (loom/README.md).
        if self.waiting.load(Ordering::Relaxed) != 0 && cfg!(not(pilfer_bug = "no_grant")) {
            self.grant_to_first_waiter(inject);
        }
    }

    /// Increments `pending` if it is below the bound.
    fn take_slot(&self) -> bool {
        self.pending
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |pending| {
                (pending < self.max).then_some(pending + 1)
            })
            .is_ok()
    }

    #[cold]
    fn wait_for_slot(&self, deadline: Option<Instant>, inject: impl Fn(JobRef)) -> bool {
        let me = Waiter::new();
        let mut waiters = lock(&self.waiters);
        waiters.push_back(Place {
            waiter: Arc::clone(&me),
            task: None,
        });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (see there).
        fence(Ordering::SeqCst);
        // Slots freed while nobody was seen waiting: for those first in line,
        // perhaps this producer.
        let handed_over = self.grant_while_free(&mut waiters);
        if !handed_over.is_empty() {
            drop(waiters);
            queue_handed_over(handed_over, &inject);
            waiters = lock(&self.waiters);
        }
        loop {
            // Granted or not is settled under the lock.
            if me.granted.probe() {
                return true;
            }
            waiters = match deadline {
                None => me
                    .condvar
                    .wait(waiters)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        waiters.retain(|in_line| !Arc::ptr_eq(&in_line.waiter, &me));
                        self.waiting.fetch_sub(1, Ordering::SeqCst);
                        // A slot it was about to miss goes to the next ones.
                        let handed_over = self.grant_while_free(&mut waiters);
                        drop(waiters);
                        queue_handed_over(handed_over, &inject);
                        return false;
                    }
                    let (guard, _) = me
                        .condvar
                        .wait_timeout(waiters, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    guard
                }
            };
        }
    }

    #[cold]
    fn grant_to_first_waiter(&self, inject: impl Fn(JobRef)) {
        let handed_over = self.grant_while_free(&mut lock(&self.waiters));
        queue_handed_over(handed_over, &inject);
    }

    /// Takes a free slot for each producer in line, oldest first, until the
    /// line or the free slots run out. A producer that waits by itself is
    /// told at once; the tasks handed over by the others are returned, to be
    /// queued after the lock is released.
    fn grant_while_free(&self, waiters: &mut MutexGuard<'_, VecDeque<Place>>) -> HandedOver {
        let mut handed_over = Vec::new();
        while !waiters.is_empty() && self.take_slot() {
            let first = waiters.pop_front().expect("checked above");
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            match first.task {
                Some(task) => handed_over.push((first.waiter, task)),
                None => first.waiter.grant(),
            }
        }
        handed_over
    }
}

/// Queues the tasks of producers granted a slot, then lets each producer
/// return: once it does, its task is in the pool. Runs no user code: setting
/// the latch wakes the producer and drops at most a handle on its pool's
/// sleep state.
fn queue_handed_over(handed_over: HandedOver, inject: &impl Fn(JobRef)) {
    for (waiter, task) in handed_over {
        inject(task);
        waiter.granted.set();
    }
}

/// The latch a worker of another pool waits on after handing its task to
/// the line (`Bound::hand_to_line`): set once its task is queued.
pub(crate) struct Granted(Arc<Waiter>);

impl Granted {
    pub(crate) fn latch(&self) -> &SharedLatch {
        &self.0.granted
    }
}

/// Who submits a task.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Submitter {
    /// A worker of the pool itself.
    OwnWorker,
    /// A worker of another pool.
    OtherPoolWorker,
    /// A thread outside every pool.
    Outside,
}

/// How long a producer outside the pool may wait for room.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// As the pool's `FullPolicy` says (`spawn`, `submit`).
    Policy,
    /// Not at all (`try_spawn`, `try_submit`).
    Never,
    /// As long as it takes (`spawn_timeout` with a timeout too large to
    /// represent).
    Forever,
    /// Until this instant (`spawn_timeout`, `submit_timeout`).
    Until(Instant),
}

/// Where an admitted task goes.
pub(crate) enum Route {
    /// Onto the submitting worker's own deque: never counted, never waits.
    Local,
    /// Into the injector; `counted` when it holds a slot of the bound.
    Inject { counted: bool },
    /// Handed to the line by a worker of another pool, which runs its own
    /// pool's work until a slot was taken for the task and the task queued
    /// ([`Bound::hand_to_line`]). The task holds a slot.
    WaitInLine,
    /// Run right here by the submitting thread (`FullPolicy::CallerRuns`).
    CallerRuns,
}

/// Why a task was not admitted.
pub(crate) enum Rejected {
    Full,
    ShutDown,
}

impl Rejected {
    pub(crate) fn with<F>(self, task: F) -> TrySpawnError<F> {
        match self {
            Rejected::Full => TrySpawnError::Full(task),
            Rejected::ShutDown => TrySpawnError::ShutDown(task),
        }
    }
}

/// Admission: decides where a task submitted by `submitter` goes, taking a
/// slot of `bound` (waiting as `wait` and `policy` allow) when it must.
/// `closed` pools refuse work from outside. `inject` queues the tasks
/// handed over by producers that this call grants a slot to.
pub(crate) fn admit(
    bound: Option<&Bound>,
    policy: FullPolicy,
    closed: bool,
    submitter: Submitter,
    wait: Wait,
    inject: impl Fn(JobRef),
) -> Result<Route, Rejected> {
    if submitter == Submitter::OwnWorker {
        return Ok(Route::Local);
    }
    if closed {
        return Err(Rejected::ShutDown);
    }
    let Some(bound) = bound else {
        return Ok(Route::Inject { counted: false });
    };
    let admitted = match (wait, policy) {
        (Wait::Never, _) => bound.try_acquire(),
        (Wait::Until(deadline), _) => bound.acquire(Some(deadline), inject),
        (Wait::Forever, _) | (Wait::Policy, FullPolicy::Block) => match submitter {
            Submitter::OtherPoolWorker if !bound.spin_for_slot() => return Ok(Route::WaitInLine),
            Submitter::OtherPoolWorker => true,
            _ => bound.acquire(None, inject),
        },
        (Wait::Policy, FullPolicy::CallerRuns) => {
            if !bound.try_acquire() {
                return Ok(Route::CallerRuns);
            }
            true
        }
    };
    if admitted {
        Ok(Route::Inject { counted: true })
    } else {
        Err(Rejected::Full)
    }
}
