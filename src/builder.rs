//! Configuring and starting a pool.

use crate::bound::FullPolicy;
use crate::pool::ThreadPool;
use crate::registry::{LifecycleHandler, PanicHandler, Registry};
use crate::sleep::MAX_WORKERS;
use std::any::Any;
use std::fmt;
use std::io;

/// The environment variable read for the number of threads when
/// [`ThreadPoolBuilder::num_threads`] is not called.
pub const NUM_THREADS_ENV: &str = "PILFER_NUM_THREADS";

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
    num_threads: Option<usize>,
    thread_name: Option<Box<dyn FnMut(usize) -> String + Send>>,
    stack_size: Option<usize>,
    pin_workers: bool,
    start_handler: Option<LifecycleHandler>,
    exit_handler: Option<LifecycleHandler>,
    panic_handler: Option<PanicHandler>,
    max_pending: Option<usize>,
    when_full: FullPolicy,
}

/// What `Registry::start` needs, resolved and validated.
pub(crate) struct PoolConfig {
    pub(crate) num_threads: usize,
    thread_name: Option<Box<dyn FnMut(usize) -> String + Send>>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) pin_workers: bool,
    pub(crate) start_handler: Option<LifecycleHandler>,
    pub(crate) exit_handler: Option<LifecycleHandler>,
    pub(crate) panic_handler: Option<PanicHandler>,
    pub(crate) max_pending: Option<usize>,
    pub(crate) when_full: FullPolicy,
}

impl PoolConfig {
    pub(crate) fn thread_name(&mut self, index: usize) -> String {
        match &mut self.thread_name {
            Some(name) => name(index),
            None => format!("pilfer-{index}"),
        }
    }
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
            num_threads: None,
            thread_name: None,
            stack_size: None,
            pin_workers: true,
            start_handler: None,
            exit_handler: None,
            panic_handler: None,
            max_pending: None,
            when_full: FullPolicy::Block,
        }
    }

    /// The number of worker threads. Zero is an error at `build`.
    ///
    /// Default: the environment variable `PILFER_NUM_THREADS` if set, else
    /// [`std::thread::available_parallelism`].
    pub fn num_threads(mut self, num_threads: usize) -> Self {
        self.num_threads = Some(num_threads);
        self
    }

    /// Names worker `i` with `name(i)`. Default: `pilfer-{i}`.
    pub fn thread_name<F>(mut self, name: F) -> Self
    where
        F: FnMut(usize) -> String + Send + 'static,
    {
        self.thread_name = Some(Box::new(name));
        self
    }

    /// The stack size of each worker thread, in bytes. Default: the
    /// standard library's default for spawned threads. Zero is an error at
    /// `build`; a size below the platform's minimum is rounded up to it,
    /// and one the OS cannot provide fails the build
    /// ([`BuildError::Spawn`]). A worker that overflows its stack aborts
    /// the process, as any Rust thread does.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
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
        self.pin_workers = pin;
        self
    }

    /// Runs `handler(i)` on worker `i` when it starts, before it takes work.
    pub fn start_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.start_handler = Some(Box::new(handler));
        self
    }

    /// Runs `handler(i)` on worker `i` as it exits, after the last queued
    /// job. Tasks the handler spawns run on that worker after it returns.
    pub fn exit_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.exit_handler = Some(Box::new(handler));
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
        self.panic_handler = Some(Box::new(handler));
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
        self.max_pending = Some(max);
        self
    }

    /// What `spawn` and `submit` do when `max_pending` tasks are pending:
    /// wait for room ([`FullPolicy::Block`], the default) or run the task
    /// on the calling thread ([`FullPolicy::CallerRuns`]).
    pub fn when_full(mut self, policy: FullPolicy) -> Self {
        self.when_full = policy;
        self
    }

    /// Starts the pool.
    ///
    /// ```
    /// let error = pilfer::ThreadPool::builder().num_threads(0).build().unwrap_err();
    /// assert!(error.to_string().contains("at least one thread"));
    /// ```
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let config = self.into_config()?;
        Registry::start(config).map(ThreadPool::from_registry)
    }

    /// Configures the global pool, used by [`join`](crate::join),
    /// [`scope`](crate::scope) and [`spawn`](crate::spawn) outside any pool.
    /// Fails if the global pool already exists (it is built on first use).
    pub fn build_global(self) -> Result<(), BuildError> {
        crate::global::init(self)
    }

    fn into_config(self) -> Result<PoolConfig, BuildError> {
        let num_threads = match self.num_threads {
            Some(0) => return Err(BuildError::ZeroThreads),
            Some(n) => n,
            None => default_num_threads()?,
        };
        if num_threads > MAX_WORKERS {
            return Err(BuildError::TooManyThreads {
                requested: num_threads,
                max: MAX_WORKERS,
            });
        }
        if self.max_pending == Some(0) {
            return Err(BuildError::ZeroMaxPending);
        }
        if self.stack_size == Some(0) {
            return Err(BuildError::ZeroStackSize);
        }
        Ok(PoolConfig {
            num_threads,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
            pin_workers: self.pin_workers,
            start_handler: self.start_handler,
            exit_handler: self.exit_handler,
            panic_handler: self.panic_handler,
            max_pending: self.max_pending,
            when_full: self.when_full,
        })
    }
}

fn default_num_threads() -> Result<usize, BuildError> {
    match std::env::var(NUM_THREADS_ENV) {
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(BuildError::InvalidEnvironment { value }),
        },
        Err(std::env::VarError::NotUnicode(value)) => Err(BuildError::InvalidEnvironment {
            value: value.to_string_lossy().into_owned(),
        }),
        Err(std::env::VarError::NotPresent) => {
            Ok(std::thread::available_parallelism().map_or(1, |n| n.get()))
        }
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("num_threads", &self.num_threads)
            .field("thread_name", &self.thread_name.is_some())
            .field("stack_size", &self.stack_size)
            .field("pin_workers", &self.pin_workers)
            .field("start_handler", &self.start_handler.is_some())
            .field("exit_handler", &self.exit_handler.is_some())
            .field("panic_handler", &self.panic_handler.is_some())
            .field("max_pending", &self.max_pending)
            .field("when_full", &self.when_full)
            .finish()
    }
}

/// Why a pool could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// `num_threads(0)`.
    ZeroThreads,
    /// More threads than a pool supports.
    TooManyThreads {
        /// The number asked for.
        requested: usize,
        /// The most a pool may have.
        max: usize,
    },
    /// `PILFER_NUM_THREADS` is set but is not a positive integer.
    InvalidEnvironment {
        /// The variable's value.
        value: String,
    },
    /// The OS refused to start worker `index` (too many threads, a stack
    /// size it cannot provide, ...). No thread of the pool is left running.
    Spawn {
        /// The worker that could not be started.
        index: usize,
        /// The OS's error.
        error: io::Error,
    },
    /// [`ThreadPoolBuilder::build_global`] was called after the global pool
    /// had been built (explicitly, or by first use).
    GlobalPoolExists,
    /// `max_pending(0)`: no task could ever be submitted.
    ZeroMaxPending,
    /// The name chosen for worker `index` contains a NUL byte, which thread
    /// names cannot hold.
    InvalidThreadName {
        /// The worker whose name was rejected.
        index: usize,
    },
    /// `stack_size(0)`: most likely a mistake; the platform's minimum is
    /// what a tiny size gets anyway.
    ZeroStackSize,
}

impl BuildError {
    pub(crate) fn spawn(index: usize, error: io::Error) -> BuildError {
        BuildError::Spawn { index, error }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroThreads => {
                f.write_str("a thread pool needs at least one thread; num_threads(0) was given")
            }
            BuildError::TooManyThreads { requested, max } => {
                write!(
                    f,
                    "{requested} threads requested; a pool supports at most {max}"
                )
            }
            BuildError::InvalidEnvironment { value } => {
                write!(f, "{NUM_THREADS_ENV}={value:?} is not a positive integer")
            }
            BuildError::Spawn { index, error } => {
                write!(f, "could not start worker thread {index}: {error}")
            }
            BuildError::GlobalPoolExists => {
                f.write_str("the global thread pool has already been built")
            }
            BuildError::InvalidThreadName { index } => {
                write!(f, "the name of worker thread {index} contains a NUL byte")
            }
            BuildError::ZeroMaxPending => {
                f.write_str("max_pending(0) would reject every task; the bound must be at least 1")
            }
            BuildError::ZeroStackSize => {
                f.write_str("stack_size(0) was given; a worker's stack needs a positive size")
            }
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn { error, .. } => Some(error),
            _ => None,
        }
    }
}
