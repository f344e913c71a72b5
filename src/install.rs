//! Getting a closure onto one of a pool's workers and waiting for its
//! result: directly when called on one, through the injector otherwise.
//! Behind `ThreadPool::{install, join, scope}` and the free functions
//! called outside every pool.

use crate::job::StackJob;
use crate::latch::{CrossPoolLatch, ThreadLatch};
use crate::registry::Registry;
use crate::worker::{Caller, WorkerThread};

/// Runs `op` on a worker of `registry`'s pool and returns its result.
///
/// # Panics
///
/// From outside the pool, if it is closed (`ThreadPool::close`).
#[inline]
pub(crate) fn on_worker<OP, R>(registry: &Registry, op: OP) -> R
where
    OP: FnOnce(&WorkerThread) -> R + Send,
    R: Send,
{
    match Caller::of(registry) {
        Caller::Own(worker) => op(worker),
        Caller::OtherPool(worker) => from_other_pool(registry, worker, op),
        Caller::Outside => from_outside(registry, op),
    }
}

/// From a thread outside every pool: inject, then block.
#[cold]
fn from_outside<OP, R>(registry: &Registry, op: OP) -> R
where
    OP: FnOnce(&WorkerThread) -> R + Send,
    R: Send,
{
    panic_if_refused(Caller::Outside, registry);
    let job = StackJob::new(
        || op(WorkerThread::current().expect("pilfer: injected job ran off-pool")),
        ThreadLatch::for_current_thread(),
    );
    // SAFETY: `job` stays in this frame until its latch is set (`wait`
    // below), and its `JobRef` is pushed once.
    registry.inject(unsafe { job.as_job_ref() });
    job.latch.wait_blocking();
    job.into_result()
}

/// From a worker of another pool: inject, then keep running that pool's
/// work while waiting, so neither pool can deadlock on the other.
#[cold]
fn from_other_pool<OP, R>(registry: &Registry, current: &'static WorkerThread, op: OP) -> R
where
    OP: FnOnce(&WorkerThread) -> R + Send,
    R: Send,
{
    panic_if_refused(Caller::OtherPool(current), registry);
    let latch = CrossPoolLatch::new(&current.registry().sleep, current.index());
    let job = StackJob::new(
        || op(WorkerThread::current().expect("pilfer: injected job ran off-pool")),
        latch,
    );
    // SAFETY: as in `from_outside`; `wait_until` returns once the latch is
    // set.
    registry.inject(unsafe { job.as_job_ref() });
    current.wait_until(&job.latch);
    job.into_result()
}

/// What the calls that block their caller for a result (`install`,
/// `join`, `scope` and the broadcasts from outside the pool) do when a
/// closed pool refuses them (worker/route.rs, `Caller::is_refused_by`):
/// there is no task to hand back, so the refusal is a panic.
#[track_caller]
pub(crate) fn panic_if_refused(caller: Caller, registry: &Registry) {
    if caller.is_refused_by(registry) {
        panic!(
            "pilfer: install, join, scope or broadcast on a closed pool (ThreadPool::close or \
             shutdown): it refuses work from outside"
        );
    }
}
