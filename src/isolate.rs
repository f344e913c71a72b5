//! `isolate`: waits that run only the work they were created with.

use crate::worker::WorkerThread;

/// Runs `f` so that every wait inside it runs only tasks created inside
/// this call of `f`, directly or transitively.
///
/// A worker that waits (in [`join`](crate::join), a [`scope`](crate::scope),
/// [`Task::join`](crate::Task::join), `install` on another pool) normally
/// runs other work of its pool meanwhile, on top of the waiting frame. Inside
/// `isolate`, it runs only the jobs created inside `f`; tasks from outside
/// stay queued for other workers (or for a spare worker, started as for
/// [`block_in_place`](crate::block_in_place) when the waiting worker has
/// nothing it may run). So code that holds a lock across a `join` cannot
/// find, running on its own stack, an unrelated task that takes the same
/// lock, and a deep recursion is not buried under unrelated ones.
///
/// The tasks created inside `f` carry the isolation: wherever they run,
/// their own waits are isolated in turn. Isolation nests. Outside every
/// pool, `f` is simply called. Inside an isolated region, `spawn_fifo`
/// queues like `spawn` (newest first).
///
/// A waiting worker in an isolated region does not steal: the jobs it may
/// run are those it pushed itself, and the rest of the region's work runs
/// on other workers. The one exception is its share of a
/// [`broadcast`](crate::broadcast): no other thread may run it, and the
/// broadcast could not complete without it, so an isolated wait runs it
/// (keep broadcasts from taking locks that isolated code holds).
///
/// ```
/// use std::sync::Mutex;
///
/// let total = Mutex::new(0);
/// pilfer::scope(|s| {
///     for i in 0..8 {
///         let total = &total;
///         s.spawn(move |_| {
///             let mut total = total.lock().unwrap();
///             // While `join` waits, this worker runs no other task of the
///             // scope (which would try to take the lock it holds).
///             let (a, b) = pilfer::isolate(|| pilfer::join(|| i, || i * 10));
///             *total += a + b;
///         });
///     }
/// });
/// assert_eq!(*total.lock().unwrap(), 11 * 28);
/// ```
pub fn isolate<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    match WorkerThread::current() {
        Some(worker) => worker.isolated(f),
        None => f(),
    }
}
