//! Broadcasts: a closure run once on every worker of a pool, for per-worker
//! set-up (thread-locals, buffers) or per-worker reports.

use crate::context::BroadcastContext;
use crate::registry::Registry;
use crate::scope::{Scope, in_place_on};
use crate::sync::{self, Arc, Mutex, lock};
use crate::unwind;
use crate::worker::{self, Caller, Lane, WorkerThread};
use crate::{global, install};

/// Runs `op` once on every worker of the current worker's pool (or of the
/// global pool, outside every pool), all at the same time as far as the
/// workers allow, and returns the results indexed by worker. The caller
/// waits: a worker runs other work of its pool meanwhile (its own share of
/// the broadcast included).
///
/// A worker runs its share when it next looks for work; a pool's
/// [`use_current_thread`](crate::ThreadPoolBuilder::use_current_thread)
/// worker only while that thread is inside the pool.
///
/// # Panics
///
/// With the first panic of `op`, once every worker has run it; off the
/// pool, if it is closed.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(3).build().unwrap();
/// let indices = pool.install(|| pilfer::broadcast(|ctx| ctx.index()));
/// assert_eq!(indices, [0, 1, 2]);
/// ```
pub fn broadcast<OP, R>(op: OP) -> Vec<R>
where
    OP: Fn(BroadcastContext<'_>) -> R + Sync,
    R: Send,
{
    broadcast_in(current_registry(), op)
}

/// Runs `op` once on every worker of the current worker's pool (or of the
/// global pool), detached: each run's panic goes to the pool's
/// [`panic_handler`](crate::ThreadPoolBuilder::panic_handler), as a
/// detached task's does. Broadcasts are not counted by the pool's
/// [`max_pending`](crate::ThreadPoolBuilder::max_pending) bound.
///
/// # Panics
///
/// Called from outside a closed pool.
///
/// ```
/// use std::sync::mpsc;
///
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let (sender, receiver) = mpsc::channel();
/// let sender = std::sync::Mutex::new(sender);
/// pool.spawn_broadcast(move |ctx| sender.lock().unwrap().send(ctx.index()).unwrap());
/// let mut seen: Vec<usize> = receiver.iter().take(2).collect();
/// seen.sort();
/// assert_eq!(seen, [0, 1]);
/// ```
pub fn spawn_broadcast<OP>(op: OP)
where
    OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
{
    spawn_broadcast_in(current_registry(), op);
}

/// [`broadcast`] on `registry`'s pool: a scope with one task per worker,
/// each writing its result into its own slot.
pub(crate) fn broadcast_in<OP, R>(registry: &Arc<Registry>, op: OP) -> Vec<R>
where
    OP: Fn(BroadcastContext<'_>) -> R + Sync,
    R: Send,
{
    let results = empty_results(registry.num_threads());
    in_place_on(registry, |scope: &Scope<'_>| {
        scope.spawn_broadcast(|_, ctx| {
            let index = ctx.index();
            store_result(&results[index], index, op(ctx));
        });
    });
    collect_results(results)
}

// The helpers below are kept out of line, so that the frames a broadcast
// keeps on the stack while it waits (and runs the worker's own share)
// stay small: a chain of broadcasts nests one such frame per level.

/// One empty slot per worker.
#[inline(never)]
fn empty_results<R>(threads: usize) -> Vec<Mutex<Option<R>>> {
    (0..threads).map(|_| Mutex::new(None)).collect()
}

/// Worker `index`'s share of a broadcast returned `value`.
#[inline(never)]
fn store_result<R>(slot: &Mutex<Option<R>>, index: usize, value: R) {
    let previous = lock(slot).replace(value);
    assert!(
        previous.is_none(),
        "pilfer: a broadcast ran twice on worker {index}"
    );
}

/// The results of a finished broadcast, by worker.
#[inline(never)]
fn collect_results<R>(results: Vec<Mutex<Option<R>>>) -> Vec<R> {
    results
        .into_iter()
        .map(|slot| sync::into_inner(slot).expect("pilfer: a worker missed a broadcast"))
        .collect()
}

/// [`spawn_broadcast`] on `registry`'s pool.
pub(crate) fn spawn_broadcast_in<OP>(registry: &Arc<Registry>, op: OP)
where
    OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
{
    let caller = Caller::of(registry);
    install::panic_if_refused(caller, registry);
    let op = Arc::new(op);
    let threads = registry.num_threads();
    for index in 0..threads {
        let op = Arc::clone(&op);
        let run = move || {
            let run = || op(BroadcastContext::new(index, threads));
            if let Err(payload) = unwind::halt_unwinding(run) {
                worker::report_detached_panic(payload);
            }
        };
        // SAFETY: `run` is `'static` and does not unwind; every queued job
        // runs once (workers drain their broadcast queues before they exit).
        unsafe { worker::queue_job(registry, caller, Lane::Worker(index), run) };
    }
}

/// The current worker's pool, or the global pool.
fn current_registry() -> &'static Arc<Registry> {
    match WorkerThread::current() {
        Some(worker) => worker.registry(),
        None => global::registry(),
    }
}
