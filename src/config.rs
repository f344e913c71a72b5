//! What a pool is built from: the options a
//! [`ThreadPoolBuilder`](crate::ThreadPoolBuilder) collects, their
//! validation into a [`PoolConfig`], and [`BuildError`].

use crate::bound::FullPolicy;
use crate::sleep::MAX_WORKERS;
use crate::unwind::Payload;
use std::fmt;
use std::io;
use std::time::Duration;

/// The environment variable read for the number of threads when
/// [`ThreadPoolBuilder::num_threads`](crate::ThreadPoolBuilder::num_threads)
/// is not called.
pub const NUM_THREADS_ENV: &str = "PILFER_NUM_THREADS";

/// rayon's variable for the number of threads, read when
/// [`NUM_THREADS_ENV`] is not set (as rayon reads it: `0` or a value that
/// is not a count means the default).
pub const RAYON_NUM_THREADS_ENV: &str = "RAYON_NUM_THREADS";

/// A closure run on each worker as it starts or exits, with its index.
pub(crate) type LifecycleHandler = Box<dyn Fn(usize) + Send + Sync>;
/// A closure that receives the panics of detached tasks.
pub(crate) type PanicHandler = Box<dyn Fn(Payload) + Send + Sync>;
/// A closure that names worker `i`.
pub(crate) type ThreadNamer = Box<dyn FnMut(usize) -> String + Send>;

/// The default of `max_spare_workers` (Java's `ForkJoinPool` allows as
/// many compensating threads). Under loom, none unless a model asks: each
/// spare's room is a handful of modelled atomics.
#[cfg(not(loom))]
pub(crate) const DEFAULT_MAX_SPARE_WORKERS: usize = 256;
#[cfg(loom)]
pub(crate) const DEFAULT_MAX_SPARE_WORKERS: usize = 0;
/// The default of `spare_keep_alive`.
pub(crate) const DEFAULT_SPARE_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// The stack size of a thread whose size is not known (std's default for
/// spawned threads).
const DEFAULT_STACK_SIZE: usize = 2 << 20;

/// The options of a pool as the builder collects them, unchecked. The
/// defaults are the builder's.
pub(crate) struct PoolOptions {
    pub(crate) num_threads: Option<usize>,
    pub(crate) thread_name: Option<ThreadNamer>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) pin_workers: bool,
    pub(crate) start_handler: Option<LifecycleHandler>,
    pub(crate) exit_handler: Option<LifecycleHandler>,
    pub(crate) panic_handler: Option<PanicHandler>,
    pub(crate) max_pending: Option<usize>,
    pub(crate) when_full: FullPolicy,
    pub(crate) use_current_thread: bool,
    pub(crate) max_spare_workers: Option<usize>,
    pub(crate) spare_keep_alive: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            num_threads: None,
            thread_name: None,
            stack_size: None,
            pin_workers: true,
            start_handler: None,
            exit_handler: None,
            panic_handler: None,
            max_pending: None,
            when_full: FullPolicy::Block,
            use_current_thread: false,
            max_spare_workers: None,
            spare_keep_alive: DEFAULT_SPARE_KEEP_ALIVE,
        }
    }
}

/// What starting a pool needs, resolved and validated.
pub(crate) struct PoolConfig {
    pub(crate) num_threads: usize,
    pub(crate) thread_name: Option<ThreadNamer>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) pin_workers: bool,
    pub(crate) start_handler: Option<LifecycleHandler>,
    pub(crate) exit_handler: Option<LifecycleHandler>,
    pub(crate) panic_handler: Option<PanicHandler>,
    pub(crate) max_pending: Option<usize>,
    pub(crate) when_full: FullPolicy,
    /// The calling thread is to be worker 0.
    pub(crate) use_current_thread: bool,
    pub(crate) max_spare_workers: usize,
    pub(crate) spare_keep_alive: Duration,
}

impl PoolConfig {
    pub(crate) fn thread_name(&mut self, index: usize) -> String {
        name_thread(&mut self.thread_name, index)
    }

    /// How deep into a worker's stack its waits may run other work: half
    /// the stack (the rest is left to what the waits run then; see
    /// worker/restricted.rs). A thread of unknown stack size (one adopted by
    /// `use_current_thread`, or started by a spawn handler that set none)
    /// is assumed to have std's default for spawned threads.
    pub(crate) fn wait_stack_budget(&self) -> usize {
        self.stack_size.unwrap_or_else(default_stack_size) / 2
    }
}

/// The name of worker (or spare) `index`: `namer`'s, or `pilfer-{index}`.
pub(crate) fn name_thread(namer: &mut Option<ThreadNamer>, index: usize) -> String {
    match namer {
        Some(name) => name(index),
        None => format!("pilfer-{index}"),
    }
}

/// The stack size std gives spawned threads: `RUST_MIN_STACK` if set to a
/// number, else 2 MiB.
fn default_stack_size() -> usize {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(DEFAULT_STACK_SIZE)
}

impl PoolOptions {
    /// Checks the options and resolves the defaults that depend on the
    /// environment.
    pub(crate) fn validate(self) -> Result<PoolConfig, BuildError> {
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
        let spare_room = MAX_WORKERS - num_threads;
        let max_spare_workers = match self.max_spare_workers {
            Some(requested) if requested > spare_room => {
                return Err(BuildError::TooManySpareWorkers {
                    requested,
                    max: spare_room,
                });
            }
            Some(requested) => requested,
            None => DEFAULT_MAX_SPARE_WORKERS.min(spare_room),
        };
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
            use_current_thread: self.use_current_thread,
            max_spare_workers,
            spare_keep_alive: self.spare_keep_alive,
        })
    }
}

impl fmt::Debug for PoolOptions {
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
            .field("use_current_thread", &self.use_current_thread)
            .field("max_spare_workers", &self.max_spare_workers)
            .field("spare_keep_alive", &self.spare_keep_alive)
            .finish()
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
        Err(std::env::VarError::NotPresent) => Ok(rayon_num_threads()
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))),
    }
}

/// The thread count rayon's variables ask for, read as rayon reads them, so
/// that a program moved from rayon keeps the width it was given:
/// `RAYON_NUM_THREADS`, then the older `RAYON_RS_NUM_CPUS`; a positive
/// count is taken (lowered to the most a pool may have), `0` in the first
/// means the default, and a value that is not a count is ignored.
fn rayon_num_threads() -> Option<usize> {
    let read = |name| std::env::var(name).ok()?.trim().parse::<usize>().ok();
    match read(RAYON_NUM_THREADS_ENV) {
        Some(0) => None,
        Some(n) => Some(n.min(MAX_WORKERS)),
        None => read("RAYON_RS_NUM_CPUS")
            .filter(|&n| n > 0)
            .map(|n| n.min(MAX_WORKERS)),
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
    /// [`ThreadPoolBuilder::build_global`](crate::ThreadPoolBuilder::build_global) was called after the global pool
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
    /// [`use_current_thread`](crate::ThreadPoolBuilder::use_current_thread)
    /// on a thread that is already a worker of a pool.
    CurrentThreadInPool,
    /// More spare workers allowed than a pool supports beside its workers.
    TooManySpareWorkers {
        /// The number asked for.
        requested: usize,
        /// The most this pool may have.
        max: usize,
    },
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
            BuildError::CurrentThreadInPool => f.write_str(
                "use_current_thread on a thread that is already a worker of a thread pool",
            ),
            BuildError::TooManySpareWorkers { requested, max } => write!(
                f,
                "max_spare_workers({requested}) requested; beside its workers this pool \
                 supports at most {max} spares"
            ),
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
