//! What the calling thread can ask about its pool, or do for it: which
//! worker it is, how many there are, whether it has work queued, and
//! running one pending task (`yield_now`, `yield_local`).

use crate::global;
use crate::sleep::MAX_WORKERS;
use crate::worker::WorkerThread;

/// The index of the current thread in its pool (`0..num_threads`), or
/// `None` outside every pool. The same as [`current_worker_index`]. A spare
/// worker, on duty while a worker is blocked
/// ([`block_in_place`](crate::block_in_place)), has an index from
/// `num_threads` on.
///
/// ```
/// assert_eq!(pilfer::current_thread_index(), None);
/// let pool = pilfer::ThreadPool::builder().num_threads(3).build().unwrap();
/// assert!(pool.install(pilfer::current_thread_index).unwrap() < 3);
/// ```
pub fn current_thread_index() -> Option<usize> {
    WorkerThread::current().map(|worker| worker.index())
}

/// The index of the current thread in its pool (`0..num_threads`, or
/// more on a spare worker), or `None` outside every pool.
///
/// ```
/// assert_eq!(pilfer::current_worker_index(), None);
/// let pool = pilfer::ThreadPool::builder().num_threads(3).build().unwrap();
/// assert!(pool.install(pilfer::current_worker_index).unwrap() < 3);
/// ```
pub fn current_worker_index() -> Option<usize> {
    current_thread_index()
}

/// The number of threads of the current worker's pool, or of the global
/// pool when called outside every pool (building it if needed).
///
/// # Panics
///
/// Outside every pool, if the global pool does not exist yet and cannot be
/// built (for example `PILFER_NUM_THREADS` is not a valid thread count); use
/// [`ThreadPoolBuilder::build_global`](crate::ThreadPoolBuilder::build_global)
/// to get that error as a value instead.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(3).build().unwrap();
/// assert_eq!(pool.install(pilfer::current_num_threads), 3);
/// ```
pub fn current_num_threads() -> usize {
    match WorkerThread::current() {
        Some(worker) => worker.registry().num_threads(),
        None => global::registry().num_threads(),
    }
}

/// Whether the current worker has tasks queued on its own deque (which
/// thieves may be taking from as this returns); `None` outside every pool.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
/// assert_eq!(pilfer::current_thread_has_pending_tasks(), None);
/// pool.install(|| {
///     pilfer::spawn(|| ());
///     assert_eq!(pilfer::current_thread_has_pending_tasks(), Some(true));
/// });
/// ```
pub fn current_thread_has_pending_tasks() -> Option<bool> {
    WorkerThread::current().map(WorkerThread::has_local_work)
}

/// The most threads a pool may have.
///
/// ```
/// assert!(pilfer::max_num_threads() >= 1024);
/// let error = pilfer::ThreadPool::builder()
///     .num_threads(pilfer::max_num_threads() + 1)
///     .build()
///     .unwrap_err();
/// assert!(error.to_string().contains("at most"));
/// ```
pub fn max_num_threads() -> usize {
    MAX_WORKERS
}

/// What [`yield_now`] and [`yield_local`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yield {
    /// Ran one pending task.
    Executed,
    /// Found no task to run.
    Idle,
}

/// From a worker: runs one pending task of its pool, if there is one (from
/// its own queues, the pool's injector, or a peer's deque), and says which;
/// `None` outside every pool. Lets long-running code give its pool a turn.
/// Inside [`isolate`](crate::isolate) (or deep in a worker's stack), only a
/// task that a wait there may run.
///
/// ```
/// use pilfer::Yield;
///
/// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
/// assert_eq!(pilfer::yield_now(), None);
/// pool.install(|| {
///     pilfer::spawn(|| ());
///     assert_eq!(pilfer::yield_now(), Some(Yield::Executed));
///     assert_eq!(pilfer::yield_now(), Some(Yield::Idle));
/// });
/// ```
pub fn yield_now() -> Option<Yield> {
    WorkerThread::current().map(|worker| outcome(worker.yield_one(false)))
}

/// As [`yield_now`], but only a task of the worker's own deque (or one
/// broadcast to it): nothing is taken from the injector or from peers.
pub fn yield_local() -> Option<Yield> {
    WorkerThread::current().map(|worker| outcome(worker.yield_one(true)))
}

fn outcome(executed: bool) -> Yield {
    if executed {
        Yield::Executed
    } else {
        Yield::Idle
    }
}
