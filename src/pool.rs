//! `ThreadPool`: the handle users hold.

use crate::bound::TrySpawnError;
use crate::broadcast::{broadcast_in, spawn_broadcast_in};
use crate::context::BroadcastContext;
use crate::current::Yield;
use crate::install;
use crate::join::join_on;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::scope::{Scope, ScopeFifo, in_place_on, scope_fifo_on, scope_on};
use crate::spawn::{Wait, spawn_in, submit_in, try_spawn_in, try_submit_in};
use crate::sync::Arc;
use crate::task::Task;
use crate::worker::{Lane, WorkerThread};
use std::fmt;
use std::time::{Duration, Instant};

/// A pool of worker threads that steal work from each other.
///
/// Dropping the pool (or calling [`shutdown`](ThreadPool::shutdown)) stops
/// it taking new work, runs every task already accepted, and joins the
/// workers. Dropped on a worker thread (of this pool or another), it returns
/// without waiting, since the pool's workers could be waiting on that very
/// thread; they still run every accepted task, then exit.
/// [`close`](ThreadPool::close), [`shutdown_timeout`](ThreadPool::shutdown_timeout)
/// and [`shutdown_now`](ThreadPool::shutdown_now) end its life in other
/// ways.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let (a, b) = pool.join(|| 1 + 1, || 2 + 2);
/// assert_eq!((a, b), (2, 4));
/// ```
pub struct ThreadPool {
    pub(crate) registry: Arc<Registry>,
}

impl ThreadPool {
    pub(crate) fn from_registry(registry: Arc<Registry>) -> ThreadPool {
        ThreadPool { registry }
    }

    /// Queues `func` to run on the pool, detached.
    ///
    /// From outside the pool the task enters the global injector; from one
    /// of the pool's own workers it goes onto that worker's deque. A panic
    /// goes to the [`panic_handler`](crate::ThreadPoolBuilder::panic_handler).
    /// A closure that captures at most one word (one `Arc`, one reference,
    /// or nothing) is queued as it is; a larger one is boxed first.
    ///
    /// If the pool has a [`max_pending`](crate::ThreadPoolBuilder::max_pending)
    /// bound and that many tasks from outside are waiting to start, this
    /// waits for room or runs `func` on the calling thread, as the pool's
    /// [`FullPolicy`](crate::FullPolicy) says. A worker of another pool
    /// that waits for room keeps running its own pool's work meanwhile, so
    /// pools that submit to each other do not deadlock.
    ///
    /// # Panics
    ///
    /// Called from outside the pool once it is closed
    /// ([`close`](ThreadPool::close), or a shutdown begun), including while
    /// waiting here for room: use [`try_spawn`](ThreadPool::try_spawn) or
    /// [`spawn_timeout`](ThreadPool::spawn_timeout) to get the closure back
    /// instead.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let (sender, receiver) = mpsc::channel();
    /// for i in 0..4 {
    ///     let sender = sender.clone();
    ///     pool.spawn(move || sender.send(i).unwrap());
    /// }
    /// drop(sender);
    /// let mut got: Vec<i32> = receiver.iter().collect();
    /// got.sort();
    /// assert_eq!(got, [0, 1, 2, 3]);
    /// ```
    pub fn spawn<F>(&self, func: F)
    where
        F: FnOnce() + Send + 'static,
    {
        spawn_in(&self.registry, Lane::Lifo, func);
    }

    /// As [`spawn`](ThreadPool::spawn), but the tasks spawned with
    /// `spawn_fifo` from one of the pool's workers start in the order they
    /// were spawned; see [`spawn_fifo`](crate::spawn_fifo).
    ///
    /// # Panics
    ///
    /// As [`spawn`](ThreadPool::spawn).
    pub fn spawn_fifo<F>(&self, func: F)
    where
        F: FnOnce() + Send + 'static,
    {
        spawn_in(&self.registry, Lane::Fifo(None), func);
    }

    /// Queues `func` and returns a [`Task`] to wait for its result. A full
    /// bounded pool is handled as in [`spawn`](ThreadPool::spawn); under
    /// `CallerRuns` the returned task is already finished.
    ///
    /// # Panics
    ///
    /// As [`spawn`](ThreadPool::spawn): called from outside a closed pool.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let tasks: Vec<_> = (0..4u64).map(|i| pool.submit(move || i * i)).collect();
    /// let squares: Vec<u64> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// ```
    pub fn submit<F, T>(&self, func: F) -> Task<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit_in(&self.registry, func)
    }

    /// Queues `func` if the pool has room for it, never waiting; hands it
    /// back in [`TrySpawnError::Full`] otherwise. Without a bound, and from
    /// the pool's own workers, there is always room.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).max_pending(8).build().unwrap();
    /// match pool.try_spawn(|| println!("ran")) {
    ///     Ok(()) => {}
    ///     Err(rejected) => (rejected.into_inner())(), // run it here instead
    /// }
    /// ```
    pub fn try_spawn<F>(&self, func: F) -> Result<(), TrySpawnError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        try_spawn_in(&self.registry, func, Wait::Never)
    }

    /// [`submit`](ThreadPool::submit) if the pool has room, never waiting;
    /// hands `func` back in [`TrySpawnError::Full`] otherwise.
    pub fn try_submit<F, T>(&self, func: F) -> Result<Task<T>, TrySpawnError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        try_submit_in(&self.registry, func, Wait::Never)
    }

    /// Queues `func`, waiting up to `timeout` for room in a full bounded
    /// pool; hands it back in [`TrySpawnError::Full`] if none appeared.
    ///
    /// It waits whatever the pool's [`FullPolicy`](crate::FullPolicy), and
    /// the calling thread only waits: a worker of another pool runs none of
    /// its pool's work meanwhile (unlike in [`spawn`](ThreadPool::spawn)),
    /// for at most `timeout`. A `timeout` too large to represent as an
    /// instant waits as long as it takes, as `spawn` under `Block` does
    /// (a worker of another pool then runs its pool's work meanwhile, and,
    /// like `spawn`, panics if the pool is closed while it waits).
    pub fn spawn_timeout<F>(&self, func: F, timeout: Duration) -> Result<(), TrySpawnError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        try_spawn_in(&self.registry, func, wait_for(timeout))
    }

    /// [`submit`](ThreadPool::submit), waiting up to `timeout` for room in a
    /// full bounded pool as [`spawn_timeout`](ThreadPool::spawn_timeout)
    /// does; hands `func` back in [`TrySpawnError::Full`] if none appeared.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(1).max_pending(4).build().unwrap();
    /// match pool.submit_timeout(|| 6 * 7, Duration::from_millis(10)) {
    ///     Ok(task) => assert_eq!(task.join().unwrap(), 42),
    ///     Err(rejected) => assert_eq!((rejected.into_inner())(), 42),
    /// }
    /// ```
    pub fn submit_timeout<F, T>(
        &self,
        func: F,
        timeout: Duration,
    ) -> Result<Task<T>, TrySpawnError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        try_submit_in(&self.registry, func, wait_for(timeout))
    }

    /// Tasks submitted from outside the pool and not yet started.
    ///
    /// Exact when the pool has a [`max_pending`](crate::ThreadPoolBuilder::max_pending)
    /// bound (it never exceeds it). Without a bound nothing is counted on
    /// the submission path; the figure is then the tasks still in the global
    /// injector, leaving out those a worker has already taken into its own
    /// deque.
    pub fn pending(&self) -> usize {
        self.registry.pending()
    }

    /// Runs `op` on a worker of this pool and returns its result; a panic in
    /// `op` is re-raised here. Inside `op`, [`join`](crate::join),
    /// [`scope`](crate::scope) and [`spawn`](crate::spawn) use this pool.
    ///
    /// Called from a worker of another pool, that worker keeps running its
    /// own pool's work while it waits, so pools may nest without deadlock.
    ///
    /// # Panics
    ///
    /// Called from outside the pool once it is closed
    /// ([`close`](ThreadPool::close)); and, after `op` ran, with `op`'s
    /// panic. The same holds for [`join`](ThreadPool::join) and
    /// [`scope`](ThreadPool::scope).
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let index = pool.install(|| pilfer::current_worker_index());
    /// assert!(index.unwrap() < 2);
    /// ```
    pub fn install<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        install::on_worker(&self.registry, |_| op())
    }

    /// Runs `a` and `b` on this pool, potentially in parallel; see
    /// [`join`](crate::join).
    ///
    /// # Panics
    ///
    /// As [`install`](ThreadPool::install): from outside a closed pool, and
    /// with a panic of `a` or `b`.
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        install::on_worker(&self.registry, |worker| join_on(worker, a, b))
    }

    /// Runs `op` on a worker of this pool with a [`Scope`] whose tasks may
    /// borrow from the caller's stack; returns once every task spawned in it
    /// (transitively) has finished. A panic in the body or a task is
    /// re-raised after that.
    ///
    /// # Panics
    ///
    /// As [`install`](ThreadPool::install): from outside a closed pool, and
    /// with a panic of the body or a task.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let mut chunks = vec![[0u8; 4]; 8];
    /// pool.scope(|s| {
    ///     for (i, chunk) in chunks.iter_mut().enumerate() {
    ///         s.spawn(move |_| chunk.fill(i as u8));
    ///     }
    /// });
    /// assert_eq!(chunks[7], [7; 4]);
    /// ```
    pub fn scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R + Send,
        R: Send,
    {
        install::on_worker(&self.registry, |worker| scope_on(worker, op))
    }

    /// As [`scope`](ThreadPool::scope), with a scope whose tasks, spawned
    /// from one worker, start in the order they were spawned; see
    /// [`scope_fifo`](crate::scope_fifo).
    ///
    /// # Panics
    ///
    /// As [`scope`](ThreadPool::scope).
    pub fn scope_fifo<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&ScopeFifo<'scope>) -> R + Send,
        R: Send,
    {
        install::on_worker(&self.registry, |worker| scope_fifo_on(worker, op))
    }

    /// A scope whose body runs on the calling thread and whose tasks go to
    /// this pool; see [`in_place_scope`](crate::in_place_scope).
    ///
    /// # Panics
    ///
    /// With the first panic of the body or a task; called from outside the
    /// pool once it is closed.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let mut sums = [0u64; 2];
    /// let (left, right) = sums.split_at_mut(1);
    /// pool.in_place_scope(|s| {
    ///     s.spawn(|_| left[0] = (0..10).sum());
    ///     s.spawn(|_| right[0] = (10..20).sum());
    /// });
    /// assert_eq!(sums, [45, 145]);
    /// ```
    pub fn in_place_scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R,
    {
        in_place_on(&self.registry, op)
    }

    /// As [`in_place_scope`](ThreadPool::in_place_scope), with a FIFO scope.
    ///
    /// # Panics
    ///
    /// As [`in_place_scope`](ThreadPool::in_place_scope).
    pub fn in_place_scope_fifo<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&ScopeFifo<'scope>) -> R,
    {
        in_place_on(&self.registry, op)
    }

    /// Runs `op` once on every worker of this pool and returns the results
    /// indexed by worker; see [`broadcast`](crate::broadcast).
    ///
    /// # Panics
    ///
    /// With the first panic of `op`; called from outside the pool once it
    /// is closed.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let names = pool.broadcast(|_| std::thread::current().name().map(str::to_owned));
    /// assert_eq!(names, [Some("pilfer-0".to_owned()), Some("pilfer-1".to_owned())]);
    /// ```
    pub fn broadcast<OP, R>(&self, op: OP) -> Vec<R>
    where
        OP: Fn(BroadcastContext<'_>) -> R + Sync,
        R: Send,
    {
        broadcast_in(&self.registry, op)
    }

    /// Runs `op` once on every worker of this pool, detached; see
    /// [`spawn_broadcast`](crate::spawn_broadcast).
    ///
    /// # Panics
    ///
    /// Called from outside the pool once it is closed.
    pub fn spawn_broadcast<OP>(&self, op: OP)
    where
        OP: Fn(BroadcastContext<'_>) + Send + Sync + 'static,
    {
        spawn_broadcast_in(&self.registry, op);
    }

    /// [`yield_now`](crate::yield_now) if the calling thread is a worker of
    /// this pool; `None` otherwise.
    pub fn yield_now(&self) -> Option<Yield> {
        self.current_worker().and(crate::yield_now())
    }

    /// [`yield_local`](crate::yield_local) if the calling thread is a
    /// worker of this pool; `None` otherwise.
    pub fn yield_local(&self) -> Option<Yield> {
        self.current_worker().and(crate::yield_local())
    }

    /// The number of worker threads; the same as
    /// [`num_threads`](ThreadPool::num_threads), under rayon's name.
    pub fn current_num_threads(&self) -> usize {
        self.num_threads()
    }

    /// The index of the calling thread in this pool, if it is one of its
    /// workers.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// assert_eq!(pool.current_thread_index(), None);
    /// assert!(pool.install(|| pool.current_thread_index()).is_some());
    /// ```
    pub fn current_thread_index(&self) -> Option<usize> {
        self.current_worker().map(WorkerThread::index)
    }

    /// Whether the calling worker of this pool has tasks queued on its own
    /// deque; `None` if the calling thread is not one of its workers.
    pub fn current_thread_has_pending_tasks(&self) -> Option<bool> {
        self.current_worker().map(WorkerThread::has_local_work)
    }

    fn current_worker(&self) -> Option<&'static WorkerThread> {
        WorkerThread::current_in(&self.registry)
    }

    /// The number of worker threads.
    pub fn num_threads(&self) -> usize {
        self.registry.num_threads()
    }

    /// A snapshot of the pool's counters.
    pub fn metrics(&self) -> Metrics {
        self.registry.metrics()
    }
}

/// A wait of `timeout` from now; one too large to represent as an instant
/// has no deadline.
fn wait_for(timeout: Duration) -> Wait {
    match Instant::now().checked_add(timeout) {
        Some(deadline) => Wait::Until(deadline),
        None => Wait::Forever,
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.num_threads())
            .finish_non_exhaustive()
    }
}
