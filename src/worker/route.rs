//! Who is calling, as one pool sees it, and where a job queued on that pool
//! goes. Every entry point asks these two questions here, and only here:
//! `spawn`, `spawn_fifo` and `submit` (spawn.rs), a scope's tasks and
//! broadcast shares (scope.rs), `spawn_broadcast` (broadcast.rs) and the
//! calls that wait for their result (install.rs, scope.rs, task.rs).
//!
//! Two paths queue their jobs elsewhere, each for one reason: a `join`'s
//! second half is recorded as a frame, not pushed (publish.rs), and a
//! producer waiting for room in a bounded pool hands its job to the
//! bound's line, whose grants inject it (bound/). A `join` applies the
//! same isolation rule as [`into_job_for`].

use super::{WorkerThread, in_isolation};
use crate::job::{self, JobRef};
use crate::registry::Registry;
use std::ptr;

use super::fifo::ScopeQueues;

/// The calling thread, as the pool of a given registry sees it.
#[derive(Clone, Copy)]
pub(crate) enum Caller {
    /// A worker of the pool itself (a spare standing in for one included):
    /// it queues on its own deque, and waits by running the pool's work.
    Own(&'static WorkerThread),
    /// A worker of another pool: it queues through the injector, and waits
    /// by running its own pool's work (blocking it could deadlock two pools
    /// that wait on each other).
    OtherPool(&'static WorkerThread),
    /// A thread outside every pool: it queues through the injector, and
    /// blocks to wait.
    Outside,
}

impl Caller {
    /// Who the calling thread is, for `registry`'s pool.
    #[inline]
    pub(crate) fn of(registry: &Registry) -> Caller {
        match WorkerThread::current() {
            Some(worker) if ptr::eq(&**worker.registry(), registry) => Caller::Own(worker),
            Some(worker) => Caller::OtherPool(worker),
            None => Caller::Outside,
        }
    }

    /// The calling worker, if it is one of the pool's own.
    #[inline]
    pub(crate) fn own(self) -> Option<&'static WorkerThread> {
        match self {
            Caller::Own(worker) => Some(worker),
            Caller::OtherPool(_) | Caller::Outside => None,
        }
    }

    /// **The closed-pool rule**: a closed pool (`ThreadPool::close`, or a
    /// shutdown begun) refuses work from outside, that is from anyone but
    /// its own workers. What they queue is part of work already accepted,
    /// which the shutdown runs to the end. Each entry point turns a refusal
    /// into its own answer: an error handed back (`try_spawn`), or a panic
    /// where there is nothing to hand back (`spawn`, `install`, `scope`).
    #[inline]
    pub(crate) fn is_refused_by(self, registry: &Registry) -> bool {
        !matches!(self, Caller::Own(_)) && registry.is_closed()
    }
}

/// Which of the pool's queues a job is meant for.
#[derive(Clone, Copy)]
pub(crate) enum Lane<'a> {
    /// The spawning worker's deque, newest first (`spawn`, `Scope::spawn`).
    Lifo,
    /// Oldest first: the spawning worker's detached FIFO queue
    /// (`spawn_fifo`), or its queue in a FIFO scope (`ScopeFifo::spawn_fifo`).
    /// worker/fifo.rs explains the queues and their stand-ins.
    Fifo(Option<&'a ScopeQueues>),
    /// Worker `i`'s broadcast queue: only that worker runs it.
    Worker(usize),
}

/// Queues `job` on `registry`'s pool, for `lane`, from `caller`:
/// [`into_job_for`], then [`place`].
///
/// # Safety
///
/// As for [`into_job_for`] and [`place`].
#[inline]
pub(crate) unsafe fn queue_job<F>(registry: &Registry, caller: Caller, lane: Lane<'_>, job: F)
where
    F: FnOnce() + Send,
{
    // SAFETY: forwarded from the caller.
    unsafe { place(registry, caller, lane, into_job_for(caller, lane, job)) }
}

/// Turns `job` into a `JobRef` to be queued by `caller` for `lane`. **The
/// isolation rule**: a job queued on a worker of the pool inside an
/// isolated region carries the isolation with it, wherever it runs
/// (isolate.rs); a broadcast share does not, since it is not part of the
/// region it was queued from.
///
/// # Safety
///
/// What `job` borrows outlives its execution (it is `'static`, or the
/// scope it belongs to waits for it), the `JobRef` is queued once, and
/// `job` does not unwind (user code inside it runs under
/// `halt_unwinding`).
#[inline]
pub(crate) unsafe fn into_job_for<F>(caller: Caller, lane: Lane<'_>, job: F) -> JobRef
where
    F: FnOnce() + Send,
{
    match (caller, lane) {
        (Caller::Own(worker), Lane::Lifo | Lane::Fifo(_)) if worker.is_isolated() => {
            // SAFETY: the caller's promise; the wrapper borrows nothing
            // more and does not unwind either.
            unsafe { job::detached_job(move || in_isolation(job)) }
        }
        // SAFETY: the caller's promise.
        _ => unsafe { job::detached_job(job) },
    }
}

/// Queues `job`, made by [`into_job_for`] for the same `caller` and `lane`,
/// on `registry`'s pool. **The placement rule**:
///
/// - a broadcast share goes to its worker's broadcast queue, from anyone;
/// - from outside the pool (a thread outside every pool, or a worker of
///   another), everything else goes through the injector;
/// - on a worker of the pool inside an isolated region, onto its deque,
///   newest first, FIFO or not (a FIFO queue would let a stand-in run the
///   job outside the region: isolate.rs);
/// - otherwise a FIFO job goes to the worker's FIFO queue for the lane,
///   with a stand-in on the deque, and a LIFO job onto the deque.
///
/// # Safety
///
/// For `Lane::Fifo(Some(queues))`, `queues` lives until every job queued
/// on it has run (its scope waits for them).
// Always inlined: left to itself the compiler kept it out of line, which
// cost an external `spawn` about 30 instructions more (callgrind).
#[inline(always)]
pub(crate) unsafe fn place(registry: &Registry, caller: Caller, lane: Lane<'_>, job: JobRef) {
    match (lane, caller) {
        (Lane::Worker(index), _) => registry.push_broadcast(index, job),
        (Lane::Lifo | Lane::Fifo(_), Caller::OtherPool(_) | Caller::Outside) => {
            registry.inject(job)
        }
        (Lane::Lifo | Lane::Fifo(_), Caller::Own(worker)) if worker.is_isolated() => {
            worker.push(job)
        }
        (Lane::Fifo(None), Caller::Own(worker)) => worker.push_detached_fifo(job),
        // SAFETY: the caller's promise for `queues`.
        (Lane::Fifo(Some(queues)), Caller::Own(worker)) => unsafe {
            worker.push_fifo(queues.of(worker), job)
        },
        (Lane::Lifo, Caller::Own(worker)) => worker.push(job),
    }
}
