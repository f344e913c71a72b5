//! Ending a pool's life: refusing outside work (`close`), then shutting
//! down: draining every accepted task (`shutdown`, `Drop`), for at most a
//! while (`shutdown_timeout`), or dropping what has not started
//! (`shutdown_now`).

use crate::pool::ThreadPool;
use crate::registry::Registry;
use crate::sync::Arc;
use crate::worker;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

impl ThreadPool {
    /// Stops taking work from outside the pool; work already accepted, and
    /// work that running tasks spawn, still runs.
    ///
    /// After `close`, `try_spawn`, `try_submit`, `spawn_timeout` and
    /// `submit_timeout` called from outside the pool (a thread outside
    /// every pool, or a worker of another pool) return
    /// [`TrySpawnError::ShutDown`](crate::TrySpawnError::ShutDown) with the
    /// closure handed back; `spawn`, `submit`, `install`, `join` and `scope`
    /// called from outside panic (see their `# Panics`). Producers blocked
    /// waiting for room in a bounded pool are woken and refused the same
    /// way. Calls from the pool's own workers are not affected.
    ///
    /// ```
    /// use pilfer::TrySpawnError;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// let task = pool.submit(|| 1);
    /// pool.close();
    /// assert!(pool.is_closed());
    /// assert!(matches!(pool.try_spawn(|| ()), Err(TrySpawnError::ShutDown(_))));
    /// assert_eq!(task.join().unwrap(), 1); // accepted before: still runs
    /// ```
    pub fn close(&self) {
        self.registry.close();
    }

    /// Whether the pool refuses work from outside ([`close`](ThreadPool::close),
    /// or a shutdown begun).
    pub fn is_closed(&self) -> bool {
        self.registry.is_closed()
    }

    /// Stops taking work, runs every task already accepted, and joins the
    /// workers; dropping the pool does the same. Called on a worker thread,
    /// it does not wait (see [`ThreadPool`]).
    pub fn shutdown(self) {
        drop(self);
    }

    /// Closes the pool, then waits up to `timeout` for every accepted task
    /// to finish and the workers to exit. Returns `true` if they did;
    /// `false` if not, in which case the workers finish the remaining work
    /// in the background and exit on their own, and this call returns
    /// without waiting longer (a task that never ends keeps its worker).
    ///
    /// Called on a worker thread (of this pool or another) it does not wait
    /// (see [`ThreadPool`]): it returns whether the workers had already
    /// exited.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
    /// pool.spawn(|| std::thread::sleep(Duration::from_millis(10)));
    /// assert!(pool.shutdown_timeout(Duration::from_secs(60)));
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) -> bool {
        let registry = self.into_registry();
        let may_wait = may_wait_here(&registry);
        registry.begin_shutdown();
        if !may_wait {
            return registry.wait_for_exits(Some(Instant::now()));
        }
        // A timeout too large to represent waits as long as it takes.
        let exited = Instant::now()
            .checked_add(timeout)
            .is_none_or(|deadline| registry.wait_for_exits(Some(deadline)));
        // Otherwise the handles stay with the registry, whose last owner
        // (the last worker to exit) joins them (registry.rs,
        // `ThreadHandles`).
        if exited {
            registry.join_threads();
        }
        exited
    }

    /// Closes the pool, discards every task accepted from outside that has
    /// not started, waits for the tasks that are running (and what they
    /// spawn), and joins the workers. Returns how many tasks it discarded.
    ///
    /// A discarded task's closure is dropped (exactly once, on a worker; a
    /// panic in its destructor goes to the
    /// [`panic_handler`](crate::ThreadPoolBuilder::panic_handler)), its slot
    /// of the bound is given back, and its [`Task`](crate::Task), if it was
    /// submitted, reports [`is_cancelled`](crate::TaskError::is_cancelled).
    /// Work spawned by the pool's own tasks is not discarded (it is part of
    /// work already running), nor are `install`, `join` or `scope` calls
    /// from outside, whose callers are waiting for them. Called on a worker
    /// thread it does not wait (see [`ThreadPool`]) and returns the tasks
    /// discarded so far.
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
    /// let (release, blocked) = mpsc::channel::<()>();
    /// let (started, is_started) = mpsc::channel();
    /// pool.spawn(move || {
    ///     started.send(()).unwrap();
    ///     blocked.recv().unwrap();
    /// });
    /// is_started.recv().unwrap(); // the only worker is busy
    /// let tasks: Vec<_> = (0..3).map(|i| pool.submit(move || i)).collect();
    /// // Released at some point: the tasks the worker reaches before the
    /// // shutdown begins run, the others are discarded.
    /// std::thread::spawn(move || release.send(()).unwrap());
    /// let discarded = pool.shutdown_now();
    /// let mut cancelled = 0;
    /// for (i, task) in tasks.into_iter().enumerate() {
    ///     match task.join() {
    ///         Ok(value) => assert_eq!(value, i),
    ///         Err(error) => {
    ///             assert!(error.is_cancelled());
    ///             cancelled += 1;
    ///         }
    ///     }
    /// }
    /// assert_eq!(cancelled, discarded);
    /// ```
    pub fn shutdown_now(self) -> usize {
        let registry = self.into_registry();
        let may_wait = may_wait_here(&registry);
        registry.end().start_discarding();
        registry.begin_shutdown();
        if may_wait {
            registry.join_threads();
        }
        registry.discarded()
    }

    /// The pool's shared state, without the shutdown that dropping the
    /// pool would do.
    fn into_registry(self) -> Arc<Registry> {
        let this = ManuallyDrop::new(self);
        // SAFETY: the registry is moved out of `this` once, and `this` is
        // neither used nor dropped afterwards (`ManuallyDrop`), so the
        // `Arc` is not dropped twice. (A clone would leave `this`'s count
        // behind for ever, and the registry with it.)
        unsafe { std::ptr::read(&this.registry) }
    }
}

/// Whether the calling thread may wait for `registry`'s workers to exit,
/// after letting it go if the pool adopted it (`use_current_thread`).
///
/// A worker (of this pool or any other) may not: one of the pool's workers
/// may be blocked on a job this thread is running (a peer waiting for a
/// stolen `join` half, or an `install` into another pool whose worker is
/// dropping this one). Nor may an adopted thread running one of the pool's
/// jobs. The workers still run every queued task, then exit on their own.
fn may_wait_here(registry: &Registry) -> bool {
    worker::release_current_thread(registry) && !worker::is_worker_thread()
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let may_wait = may_wait_here(&self.registry);
        self.registry.begin_shutdown();
        if may_wait {
            self.registry.join_threads();
        }
    }
}
