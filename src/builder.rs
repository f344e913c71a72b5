//! Configuring and starting a pool.

use crate::bound::FullPolicy;
use crate::config::{BuildError, PoolOptions};
use crate::pool::ThreadPool;
use crate::{global, start};
use std::any::Any;
use std::fmt;

/// Configures a [`ThreadPool`].
///
/// ```
/// let pool = pilfer::ThreadPool::builder()
///     .num_threads(2)
///     .thread_name(|i| format!("compute-{i}"))
///     .pin_workers(false)
///     .build()
///     .unwrap();
/// assert_eq!(pool.num_threads(), 2);
/// ```
pub struct ThreadPoolBuilder {
    options: PoolOptions,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder::new()
    }
}

impl ThreadPoolBuilder {
    /// A builder with the defaults: one thread per available core (or
    /// `PILFER_NUM_THREADS`), threads named `pilfer-{i}`, workers pinned.
    pub fn new() -> Self {
        ThreadPoolBuilder {
            options: PoolOptions::default(),
        }
    }

    /// The number of worker threads. Zero is an error at `build`.
    ///
    /// Default: the environment variable `PILFER_NUM_THREADS` if set, else
    /// [`std::thread::available_parallelism`].
    pub fn num_threads(mut self, num_threads: usize) -> Self {
        self.options.num_threads = Some(num_threads);
        self
    }

    /// Names worker `i` with `name(i)`. Default: `pilfer-{i}`.
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: FnMut(usize) -> String + Send + 'static,
    {
        self.options.thread_name = Some(Box::new(name));
        self
    }

    /// The stack size of each worker thread, in bytes. Default: the
    /// standard library's default for spawned threads. Zero is an error at
    /// `build`; a size below the platform's minimum is rounded up to it,
    /// and one the OS cannot provide fails the build
    /// ([`BuildError::Spawn`]). A worker that overflows its stack aborts
    /// the process, as any Rust thread does.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.options.stack_size = Some(bytes);
        self
    }

    /// Whether to pin each worker to a core of its own. Default: `true`.
    ///
    /// The workers take the first cores the process may run on that no
    /// pinned worker of another live pool holds, and hold them until the
    /// pool is gone. A pool that cannot get one free core per worker (more
    /// workers than the process has cores, or cores held by other pools, the
    /// global pool included) is left unpinned: workers sharing a core should
    /// be free to move. A pin the OS refuses leaves that worker unpinned
    /// (its core stays held by the pool);
    /// [`Metrics`](crate::Metrics) reports which workers are pinned.
    ///
    /// Whether a pool is pinned is decided when it is built. A pool dropped
    /// outside its workers gives its cores back before the drop returns;
    /// one dropped on a worker thread (which does not wait for its workers)
    /// gives them back when its last worker exits, shortly after.
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.options.pin_workers = pin;
        self
    }

    /// Runs `handler(i)` on worker `i` when it starts, before it takes work.
    pub fn start_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.options.start_handler = Some(Box::new(handler));
        self
    }

    /// Runs `handler(i)` on worker `i` as it exits, after the last queued
    /// job. Tasks the handler spawns run on that worker after it returns.
    pub fn exit_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.options.exit_handler = Some(Box::new(handler));
        self
    }

    /// Receives the panic of any detached task ([`ThreadPool::spawn`]).
    ///
    /// Every such panic is counted
    /// ([`Metrics::detached_panics`](crate::Metrics::detached_panics)) and
    /// printed by the standard panic hook, then its payload goes to this
    /// handler (without one, it is dropped). Either way the worker keeps
    /// running and the process does not abort.
    pub fn panic_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    {
        self.options.panic_handler = Some(Box::new(handler));
        self
    }

    /// Bounds the tasks submitted from outside the pool and not yet started
    /// (see [`ThreadPool::pending`]). Zero is an error at `build`. Default:
    /// unbounded.
    ///
    /// Tasks spawned by the pool's own workers are not counted and never
    /// wait: a worker waiting for room that only the workers can make would
    /// deadlock the pool. A worker of another pool is counted like any
    /// outside thread; while it waits for room it keeps running its own
    /// pool's work.
    ///
    /// ```
    /// use pilfer::FullPolicy;
    ///
    /// let pool = pilfer::ThreadPool::builder()
    ///     .num_threads(2)
    ///     .max_pending(1024)
    ///     .when_full(FullPolicy::CallerRuns)
    ///     .build()
    ///     .unwrap();
    /// pool.spawn(|| ());
    /// ```
    pub fn max_pending(mut self, max: usize) -> Self {
        self.options.max_pending = Some(max);
        self
    }

    /// What `spawn` and `submit` do when `max_pending` tasks are pending:
    /// wait for room ([`FullPolicy::Block`], the default) or run the task
    /// on the calling thread ([`FullPolicy::CallerRuns`]).
    pub fn when_full(mut self, policy: FullPolicy) -> Self {
        self.options.when_full = policy;
        self
    }

    /// Starts the pool.
    ///
    /// ```
    /// let error = pilfer::ThreadPool::builder().num_threads(0).build().unwrap_err();
    /// assert!(error.to_string().contains("at least one thread"));
    /// ```
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let config = self.options.validate()?;
        start::start(config).map(ThreadPool::from_registry)
    }

    /// Configures the global pool, used by [`join`](crate::join),
    /// [`scope`](crate::scope) and [`spawn`](crate::spawn) outside any pool.
    /// Fails if the global pool already exists (it is built on first use).
    pub fn build_global(self) -> Result<(), BuildError> {
        global::init(self.options.validate()?)
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.options.fmt(f)
    }
}

impl ThreadPool {
    /// A builder to configure a pool; same as [`ThreadPoolBuilder::new`].
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }
}
