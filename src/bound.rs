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
//! Producers that must wait queue up in arrival order and sleep on a
//! condition variable; each freed slot goes to the longest-waiting producer,
//! so no producer starves while others keep submitting. Without a bound none
//! of this exists: the submission path stays free of extra atomic
//! read-modify-writes.

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
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
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
}

struct Waiter {
    /// Signalled when this producer is granted a slot (or may take one).
    condvar: Condvar,
    /// Set, under the `waiters` lock, when a releaser took a slot for it.
    granted: AtomicBool,
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
    pub(crate) fn try_acquire(&self) -> bool {
        // SeqCst, like the increment in `wait_for_slot`: a producer that
        // sees nobody waiting may take a free slot directly.
        self.waiting.load(Ordering::SeqCst) == 0 && self.take_slot()
    }

    /// Takes a slot, waiting in line until `deadline` (forever if `None`).
    /// Returns whether a slot was taken.
    ///
    /// Spins briefly first: when workers start tasks every few microseconds
    /// a slot frees up almost at once, and taking it then costs neither this
    /// thread nor the releasing worker a system call.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> bool {
        for round in 0..SPIN_ROUNDS {
            if self.try_acquire() {
                return true;
            }
            for _ in 0..1 << round {
                hint::spin_loop();
            }
        }
        self.try_acquire() || self.wait_for_slot(deadline)
    }

    /// Gives back the slot of a task that a worker is starting, handing it
    /// to the longest-waiting producer if there is one.
    pub(crate) fn release(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the fence in `wait_for_slot`: either this load sees the
        // waiter, or the waiter's re-check sees the slot this freed.
        fence(Ordering::SeqCst);
        // `--cfg pilfer_bug="no_grant"` drops the hand-over, to show that the
        // loom models catch a producer left waiting (loom/README.md).
        if self.waiting.load(Ordering::Relaxed) != 0 && cfg!(not(pilfer_bug = "no_grant")) {
            self.grant_to_first_waiter();
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
    fn wait_for_slot(&self, deadline: Option<Instant>) -> bool {
        let me = Arc::new(Waiter {
            condvar: Condvar::new(),
            granted: AtomicBool::new(false),
        });
        let mut waiters = lock(&self.waiters);
        waiters.push_back(Arc::clone(&me));
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (see there).
        fence(Ordering::SeqCst);
        loop {
            if me.granted.load(Ordering::Relaxed) {
                return true;
            }
            // First in line: a slot freed while nobody was seen waiting is
            // this producer's to take.
            if waiters.front().is_some_and(|first| Arc::ptr_eq(first, &me)) && self.take_slot() {
                waiters.pop_front();
                self.leave_line(&mut waiters);
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
                        if me.granted.load(Ordering::Relaxed) {
                            return true;
                        }
                        waiters.retain(|waiter| !Arc::ptr_eq(waiter, &me));
                        self.leave_line(&mut waiters);
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

    /// Bookkeeping after a producer left the line (served or timed out):
    /// the new first in line re-checks for a free slot.
    fn leave_line(&self, waiters: &mut MutexGuard<'_, VecDeque<Arc<Waiter>>>) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if let Some(first) = waiters.front() {
            first.condvar.notify_one();
        }
    }

    #[cold]
    fn grant_to_first_waiter(&self) {
        let mut waiters = lock(&self.waiters);
        if waiters.is_empty() || !self.take_slot() {
            // Nobody left in line, or the freed slot is already taken again.
            return;
        }
        let first = waiters.pop_front().expect("checked above");
        first.granted.store(true, Ordering::Relaxed);
        first.condvar.notify_one();
        self.leave_line(&mut waiters);
    }
}
