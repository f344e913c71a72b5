//! pilfer, packaged as `rayon-core`: put every rayon program on pilfer
//! without changing a line of it.
//!
//! rayon's parallel iterators reach their thread pool only through
//! rayon-core's public API, which pilfer provides under the same names. A
//! program switches with a `[patch.crates-io]` entry naming this package
//! (see pilfer's README, "rayon's parallel iterators on pilfer"); this
//! crate is not meant for publishing.
//!
//! Everything is pilfer's ([`pilfer`]'s items are re-exported as they are),
//! except where a program written for rayon relies on a behaviour of
//! rayon-core's that pilfer changed on purpose. There this package keeps
//! rayon's:
//!
//! * [`ThreadPoolBuilder::num_threads`]`(0)` means "the default", and a
//!   count above [`max_num_threads`] is lowered to it, where pilfer returns
//!   an error for both.
//! * The default thread count follows `RAYON_NUM_THREADS` (and the older
//!   `RAYON_RS_NUM_CPUS`) as rayon reads them; pilfer's own
//!   `PILFER_NUM_THREADS` comes first when it is set. pilfer reads the
//!   three in that order for every pool, the global one included.
//! * Dropping a [`ThreadPool`] does not wait for its tasks: it closes the
//!   pool, and the workers finish what was accepted, then exit, in the
//!   background (a rayon program may drop a pool while its tasks still
//!   wait for the dropping thread; pilfer's waiting drop would deadlock
//!   it).
//! * [`ThreadPoolBuildError`] says what rayon-core's says for the errors
//!   the two share (the global pool exists, the thread is in a pool, the
//!   OS refused a thread); it wraps pilfer's [`BuildError`].
//!
//! The remaining differences, none of which a rayon program can rely on,
//! are listed in pilfer's README.

use std::error::Error;
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::time::Duration;

pub use pilfer::*;

/// rayon-core's `ThreadPoolBuilder`: pilfer's, with rayon's meaning of
/// `num_threads`, and building a [`ThreadPool`] that does not wait for its
/// tasks when dropped.
pub struct ThreadPoolBuilder<S = DefaultSpawn> {
    inner: pilfer::ThreadPoolBuilder<S>,
    /// As rayon counts it: `0` for the default.
    num_threads: usize,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder::new()
    }
}

impl ThreadPoolBuilder {
    /// A builder with rayon's defaults, on pilfer (workers pinned to cores
    /// where the machine has one free for each; see pilfer's
    /// `pin_workers`).
    pub fn new() -> Self {
        ThreadPoolBuilder {
            inner: pilfer::ThreadPoolBuilder::new(),
            num_threads: 0,
        }
    }

    /// Builds a pool on scoped threads and calls `with_pool` with it; see
    /// [`pilfer::ThreadPoolBuilder::build_scoped`]. The pool lives only
    /// inside that call, which waits for its workers, as rayon's does.
    pub fn build_scoped<W, F, R>(self, wrapper: W, with_pool: F) -> Result<R, ThreadPoolBuildError>
    where
        W: Fn(ThreadBuilder) + Sync,
        F: FnOnce(&ThreadPool) -> R,
    {
        self.into_pilfer()
            .build_scoped(wrapper, |pool| with_pool(ThreadPool::borrowed(pool)))
            .map_err(ThreadPoolBuildError)
    }
}

impl<S> ThreadPoolBuilder<S> {
    fn map(
        self,
        f: impl FnOnce(pilfer::ThreadPoolBuilder<S>) -> pilfer::ThreadPoolBuilder<S>,
    ) -> Self {
        ThreadPoolBuilder {
            inner: f(self.inner),
            num_threads: self.num_threads,
        }
    }

    /// pilfer's builder, with the thread count as rayon means it.
    fn into_pilfer(self) -> pilfer::ThreadPoolBuilder<S> {
        match self.num_threads {
            0 => self.inner,
            n => self.inner.num_threads(n.min(max_num_threads())),
        }
    }

    /// Starts the workers with `spawn` instead of `std::thread`; see
    /// [`pilfer::ThreadPoolBuilder::spawn_handler`].
    pub fn spawn_handler<F>(self, spawn: F) -> ThreadPoolBuilder<CustomSpawn<F>>
    where
        F: FnMut(ThreadBuilder) -> io::Result<()>,
    {
        ThreadPoolBuilder {
            inner: self.inner.spawn_handler(spawn),
            num_threads: self.num_threads,
        }
    }

    /// The number of worker threads. `0` (rayon's default) means one per
    /// core, or `PILFER_NUM_THREADS` / `RAYON_NUM_THREADS` if set; more than
    /// [`max_num_threads`] means that many.
    pub fn num_threads(self, num_threads: usize) -> Self {
        ThreadPoolBuilder {
            num_threads,
            ..self
        }
    }

    /// Makes the calling thread worker 0; see
    /// [`pilfer::ThreadPoolBuilder::use_current_thread`].
    pub fn use_current_thread(self) -> Self {
        self.map(pilfer::ThreadPoolBuilder::use_current_thread)
    }

    /// Names worker `i` with `name(i)`.
    pub fn thread_name<F>(self, name: F) -> Self
    where
        F: FnMut(usize) -> String + Send + 'static,
    {
        self.map(|inner| inner.thread_name(name))
    }

    /// The stack size of each worker, in bytes.
    pub fn stack_size(self, bytes: usize) -> Self {
        self.map(|inner| inner.stack_size(bytes))
    }

    /// rayon's deprecated breadth-first mode: pilfer has none (a worker
    /// runs its own newest job first, as rayon does by default), so this
    /// changes nothing.
    #[deprecated(note = "use `scope_fifo` and `spawn_fifo` for similar effect")]
    pub fn breadth_first(self) -> Self {
        self
    }

    /// Runs `handler(i)` on worker `i` as it starts.
    pub fn start_handler<H>(self, handler: H) -> Self
    where
        H: Fn(usize) + Send + Sync + 'static,
    {
        self.map(|inner| inner.start_handler(handler))
    }

    /// Runs `handler(i)` on worker `i` as it exits.
    pub fn exit_handler<H>(self, handler: H) -> Self
    where
        H: Fn(usize) + Send + Sync + 'static,
    {
        self.map(|inner| inner.exit_handler(handler))
    }

    /// Receives the panics of detached tasks. Without one, such a panic is
    /// printed and counted (pilfer's way), where rayon aborts the process.
    pub fn panic_handler<H>(self, handler: H) -> Self
    where
        H: Fn(Box<dyn std::any::Any + Send>) + Send + Sync + 'static,
    {
        self.map(|inner| inner.panic_handler(handler))
    }
}

impl<S: ThreadSpawn> ThreadPoolBuilder<S> {
    /// Starts the pool.
    pub fn build(self) -> Result<ThreadPool, ThreadPoolBuildError> {
        self.into_pilfer()
            .build()
            .map(ThreadPool::owned)
            .map_err(ThreadPoolBuildError)
    }

    /// Configures the global pool; fails if it already exists.
    pub fn build_global(self) -> Result<(), ThreadPoolBuildError> {
        self.into_pilfer()
            .build_global()
            .map_err(ThreadPoolBuildError)
    }
}

impl<S> fmt::Debug for ThreadPoolBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("num_threads", &self.num_threads)
            .field("pilfer", &self.inner)
            .finish()
    }
}

/// rayon-core's `ThreadPool`: a pilfer pool (every method of
/// [`pilfer::ThreadPool`] is available through `Deref`) that, dropped,
/// closes and lets its workers finish in the background instead of waiting
/// for them.
#[repr(transparent)]
pub struct ThreadPool {
    /// Taken out only by `drop`.
    inner: ManuallyDrop<pilfer::ThreadPool>,
}

impl ThreadPool {
    fn owned(inner: pilfer::ThreadPool) -> ThreadPool {
        ThreadPool {
            inner: ManuallyDrop::new(inner),
        }
    }

    /// A pool that `build_scoped` owns and drops itself, seen as this type.
    fn borrowed(pool: &pilfer::ThreadPool) -> &ThreadPool {
        // SAFETY: `ThreadPool` is a `repr(transparent)` wrapper of a
        // `ManuallyDrop<pilfer::ThreadPool>`, itself `repr(transparent)`,
        // so the two have one layout; the reference keeps `pool`'s
        // lifetime, and nothing drops a `ThreadPool` behind a shared
        // reference.
        unsafe { &*(pool as *const pilfer::ThreadPool).cast::<ThreadPool>() }
    }
}

impl Deref for ThreadPool {
    type Target = pilfer::ThreadPool;

    fn deref(&self) -> &pilfer::ThreadPool {
        &self.inner
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // SAFETY: the pool is taken once, here, and never used again.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        // Closes the pool; the workers run what was accepted and exit on
        // their own.
        inner.shutdown_timeout(Duration::ZERO);
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Why a pool could not be built: pilfer's [`BuildError`], worded as
/// rayon-core words the errors the two share.
pub struct ThreadPoolBuildError(BuildError);

impl ThreadPoolBuildError {
    /// pilfer's error, which says more (and can be matched).
    pub fn into_pilfer(self) -> BuildError {
        self.0
    }
}

impl fmt::Display for ThreadPoolBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BuildError::GlobalPoolExists => {
                f.write_str("The global thread pool has already been initialized.")
            }
            BuildError::CurrentThreadInPool => {
                f.write_str("The current thread is already part of another thread pool.")
            }
            BuildError::Spawn { error, .. } => error.fmt(f),
            other => other.fmt(f),
        }
    }
}

impl fmt::Debug for ThreadPoolBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for ThreadPoolBuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}
