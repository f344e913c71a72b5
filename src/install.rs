//! Getting a closure onto one of a pool's workers and waiting for its
//! result: directly when called on one, through the injector otherwise.
//! Behind `ThreadPool::{install, join, scope}` and the free functions
//! called outside every pool.

use crate::job::StackJob;
use crate::latch::{CrossPoolLatch, ThreadLatch};
use crate::registry::Registry;
use crate::worker::WorkerThread;
use std::ptr;

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
    match WorkerThread::current() {
        Some(worker) if ptr::eq(&**worker.registry(), registry) => op(worker),
        Some(worker) => from_other_pool(registry, worker, op),
        None => from_outside(registry, op),
    }
}

/// From a thread outside every pool: inject, then block.
#[cold]
fn from_outside<OP, R>(registry: &Registry, op: OP) -> R
where
    OP: FnOnce(&WorkerThread) -> R + Send,
    R: Send,
{
    refuse_if_closed(registry);
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
fn from_other_pool<OP, R>(registry: &Registry, current: &WorkerThread, op: OP) -> R
where
    OP: FnOnce(&WorkerThread) -> R + Send,
    R: Send,
{
    refuse_if_closed(registry);
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

/// Work from outside a closed pool is refused; these calls block their
/// caller for a result, so the refusal is a panic.
#[track_caller]
pub(crate) fn refuse_if_closed(registry: &Registry) {
    if registry.is_closed() {
        panic!(
            "pilfer: install, join or scope on a closed pool (ThreadPool::close or \
             shutdown): it refuses work from outside"
        );
    }
}
