//! `block_in_place`: telling the pool that the running task is about to
//! block, so that a spare worker keeps the pool's work going meanwhile.

use crate::worker::WorkerThread;

/// Runs `f`, which blocks (waits on I/O, a lock, a channel, a barrier), on
/// the calling thread, and keeps the pool's other work going meanwhile.
///
/// On a worker, the pool is told first: while `f` runs, an idle spare
/// worker is called back to duty, or a new spare thread is started (up to
/// [`max_spare_workers`](crate::ThreadPoolBuilder::max_spare_workers)), so
/// that the pool still has its number of threads for its other work,
/// this worker's queued jobs included (they stay in its deque, where the
/// spare and the other workers steal them). When `f` returns, the worker
/// goes back to its duty at once, and a surplus spare retires at its next
/// look for work. Outside every pool, `f` is simply called.
///
/// Nested calls compensate once. Calls from inside `join`, `scope` or
/// `install` work as anywhere else. A panic in `f` is re-raised here once
/// the pool is restored.
///
/// Inside `f` the thread is still its pool's worker: `join` and the like
/// work, though such work is better done outside `f`.
///
/// ```
/// use std::sync::{Arc, Barrier};
///
/// // Two workers, both blocked at a barrier whose third party is a task of
/// // the same pool: without compensation, nobody would be left to run it.
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let barrier = Arc::new(Barrier::new(3));
/// pool.scope(|s| {
///     for _ in 0..2 {
///         let barrier = Arc::clone(&barrier);
///         s.spawn(move |_| {
///             pilfer::block_in_place(|| barrier.wait());
///         });
///     }
///     let barrier = Arc::clone(&barrier);
///     s.spawn(move |_| {
///         barrier.wait();
///     });
/// });
/// ```
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    match WorkerThread::current() {
        Some(worker) => worker.blocking(f),
        None => f(),
    }
}
