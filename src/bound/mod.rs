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

mod line;

use line::Acquired;
pub(crate) use line::{Bound, Ticket};

use crate::job::JobRef;
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
    /// The pool is closed ([`ThreadPool::close`](crate::ThreadPool::close),
    /// or a shutdown begun) and takes no new work from outside.
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

    /// Whether the task was rejected because the pool was closed.
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
            TrySpawnError::ShutDown(_) => {
                f.write_str("the thread pool is closed and takes no new work from outside")
            }
        }
    }
}

impl<F> std::error::Error for TrySpawnError<F> {}

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
    /// ([`Bound::hand_to_line`]), or the pool was closed. A queued task
    /// holds a slot.
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
/// (Whether a closed pool takes the task at all is the caller's question,
/// asked first: worker/route.rs.) `inject` queues the tasks handed over by
/// producers that this call grants a slot to.
#[inline]
pub(crate) fn admit(
    bound: Option<&Bound>,
    policy: FullPolicy,
    submitter: Submitter,
    wait: Wait,
    inject: impl Fn(JobRef),
) -> Result<Route, Rejected> {
    if submitter == Submitter::OwnWorker {
        return Ok(Route::Local);
    }
    let Some(bound) = bound else {
        return Ok(Route::Inject { counted: false });
    };
    let acquired = match (wait, policy) {
        (Wait::Never, _) => slot_if(bound.try_acquire()),
        (Wait::Until(deadline), _) => bound.acquire(Some(deadline), inject),
        (Wait::Forever, _) | (Wait::Policy, FullPolicy::Block) => match submitter {
            Submitter::OtherPoolWorker if !bound.spin_for_slot() => return Ok(Route::WaitInLine),
            Submitter::OtherPoolWorker => Acquired::Slot,
            _ => bound.acquire(None, inject),
        },
        (Wait::Policy, FullPolicy::CallerRuns) => {
            if !bound.try_acquire() {
                return Ok(Route::CallerRuns);
            }
            Acquired::Slot
        }
    };
    match acquired {
        Acquired::Slot => Ok(Route::Inject { counted: true }),
        Acquired::TimedOut => Err(Rejected::Full),
        Acquired::ShutDown => Err(Rejected::ShutDown),
    }
}

fn slot_if(taken: bool) -> Acquired {
    if taken {
        Acquired::Slot
    } else {
        Acquired::TimedOut
    }
}
