//! Configuring and starting a pool.

use crate::bound::FullPolicy;
use crate::config::{BuildError, PoolOptions};
use crate::pool::ThreadPool;
use crate::start::{Spawner, ThreadBuilder};
use crate::{global, start};
use std::any::Any;
use std::fmt;
use std::io;
use std::time::Duration;

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
///
/// The type parameter says how the worker threads are started: on std
/// threads ([`DefaultSpawn`]), or by a closure of yours
/// ([`spawn_handler`](ThreadPoolBuilder::spawn_handler)).
pub struct ThreadPoolBuilder<S = DefaultSpawn> {
    options: PoolOptions,
    spawn: S,
}

/// Worker threads started as std threads: the default of a
/// [`ThreadPoolBuilder`].
#[derive(Debug, Default)]
pub struct DefaultSpawn;

/// Worker threads started by a spawn handler
/// ([`ThreadPoolBuilder::spawn_handler`]).
#[derive(Debug)]
pub struct CustomSpawn<F>(F);

/// How a [`ThreadPoolBuilder`] starts worker threads: [`DefaultSpawn`] or
/// [`CustomSpawn`]. Sealed: only those two implement it.
pub trait ThreadSpawn: sealed::Spawn {}

mod sealed {
    use super::{CustomSpawn, DefaultSpawn, Spawner, ThreadBuilder};
    use std::io;

    /// The crate's side of [`ThreadSpawn`](super::ThreadSpawn).
    pub trait Spawn {
        fn spawner(&mut self) -> Spawner<'_>;
    }

    impl Spawn for DefaultSpawn {
        fn spawner(&mut self) -> Spawner<'_> {
            Spawner::Std
        }
    }

    impl<F> Spawn for CustomSpawn<F>
    where
        F: FnMut(ThreadBuilder) -> io::Result<()>,
    {
        fn spawner(&mut self) -> Spawner<'_> {
            Spawner::Custom(&mut self.0)
        }
    }
}

impl ThreadSpawn for DefaultSpawn {}

impl<F> ThreadSpawn for CustomSpawn<F> where F: FnMut(ThreadBuilder) -> io::Result<()> {}

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
            spawn: DefaultSpawn,
        }
    }

    /// Builds a pool whose workers run on scoped threads
    /// ([`std::thread::scope`]), each starting in `wrapper`, which sets up
    /// what it needs (thread-locals, say) and must call
    /// [`ThreadBuilder::run`]; then calls `with_pool` with the pool and
    /// returns its result once the pool is dropped and every worker has
    /// exited. The workers may therefore borrow from the caller's stack
    /// through `wrapper`.
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// thread_local!(static SET_UP: Cell<bool> = const { Cell::new(false) });
    /// let greeting = String::from("ready"); // borrowed by every worker
    /// let answer = pilfer::ThreadPool::builder()
    ///     .num_threads(2)
    ///     .build_scoped(
    ///         |thread| {
    ///             assert_eq!(greeting, "ready");
    ///             SET_UP.with(|set_up| set_up.set(true));
    ///             thread.run()
    ///         },
    ///         |pool| pool.install(|| SET_UP.with(Cell::get)),
    ///     )
    ///     .unwrap();
    /// assert!(answer);
    /// ```
    pub fn build_scoped<W, F, R>(self, wrapper: W, with_pool: F) -> Result<R, BuildError>
    where
        W: Fn(ThreadBuilder) + Sync,
        F: FnOnce(&ThreadPool) -> R,
    {
        std::thread::scope(|scope| {
            let pool = self
                .spawn_handler(|thread| {
                    let mut builder = std::thread::Builder::new();
                    if let Some(name) = thread.name() {
                        builder = builder.name(name.to_owned());
                    }
                    if let Some(size) = thread.stack_size() {
                        builder = builder.stack_size(size);
                    }
                    let wrapper = &wrapper;
                    builder.spawn_scoped(scope, move || wrapper(thread))?;
                    Ok(())
                })
                .build()?;
            // The pool drops (and waits for its workers) before the scope
            // joins their threads, also when `with_pool` panics.
            Ok(with_pool(&pool))
        })
    }
}

impl<S> ThreadPoolBuilder<S> {
    /// Starts the worker threads with `spawn` instead of as std threads:
    /// it is called once per worker (before `build` returns) with a
    /// [`ThreadBuilder`], and must start a thread that calls
    /// [`ThreadBuilder::run`] (or return the error that kept it from
    /// doing so, which `build` returns as [`BuildError::Spawn`] after
    /// stopping the workers already started). The pool then has no handles
    /// of the threads: dropping it waits for each worker to leave `run`.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder()
    ///     .num_threads(2)
    ///     .spawn_handler(|thread| {
    ///         std::thread::Builder::new()
    ///             .name(format!("custom-{}", thread.index()))
    ///             .spawn(move || thread.run())?;
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let name = pool.install(|| std::thread::current().name().map(str::to_owned));
    /// assert!(name.unwrap().starts_with("custom-"));
    /// ```
    pub fn spawn_handler<F>(self, spawn: F) -> ThreadPoolBuilder<CustomSpawn<F>>
    where
        F: FnMut(ThreadBuilder) -> io::Result<()>,
    {
        ThreadPoolBuilder {
            options: self.options,
            spawn: CustomSpawn(spawn),
        }
    }

    /// Makes the thread that calls [`build`](ThreadPoolBuilder::build)
    /// worker 0 of the pool, instead of starting a thread for it.
    ///
    /// That thread runs no main loop: it does the pool's work only while it
    /// is inside the pool ([`install`](ThreadPool::install), `join`,
    /// `scope` and the like run on it directly, and while they wait it runs
    /// other work of the pool), so work queued for it alone (a
    /// [`broadcast`](crate::broadcast)) waits until it enters the pool or
    /// calls [`yield_now`](crate::yield_now). Its queued work can be stolen
    /// by the other workers as usual. The start and exit handlers do not run
    /// for it, and it is not pinned. Dropping the pool on that thread lets
    /// it go (after it ran what was broadcast to it); dropped elsewhere, the
    /// thread stays attached to the shut-down pool until it exits.
    ///
    /// `build` fails with [`BuildError::CurrentThreadInPool`] if the thread
    /// is already a worker of a pool.
    ///
    /// ```
    /// let pool = pilfer::ThreadPool::builder()
    ///     .num_threads(2)
    ///     .use_current_thread()
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pilfer::current_thread_index(), Some(0));
    /// assert_eq!(pool.install(|| pilfer::current_thread_index()), Some(0));
    /// drop(pool);
    /// assert_eq!(pilfer::current_thread_index(), None);
    /// ```
    pub fn use_current_thread(mut self) -> Self {
        self.options.use_current_thread = true;
        self
    }

    /// The number of worker threads. Zero is an error at `build`.
    ///
    /// Default: the environment variable `PILFER_NUM_THREADS` if set (it
    /// must then be a positive count), else rayon's `RAYON_NUM_THREADS` (or
    /// its older `RAYON_RS_NUM_CPUS`) read as rayon reads it, else
    /// [`std::thread::available_parallelism`].
    pub fn num_threads(mut self, num_threads: usize) -> Self {
        self.options.num_threads = Some(num_threads);
        self
    }

    /// Names worker `i` with `name(i)`. Default: `pilfer-{i}`.
    ///
    /// [`build`](ThreadPoolBuilder::build) (or
    /// [`build_global`](ThreadPoolBuilder::build_global)) calls `name` for
    /// every worker, in order, before it starts any thread. A name with a
    /// NUL byte fails the build ([`BuildError::InvalidThreadName`]). If
    /// `name` panics, `build` panics with that same payload, before any
    /// thread has started or any handler has run; nothing is left behind
    /// (for `build_global`: no global pool, so it may be called again).
    ///
    /// Spare workers (see
    /// [`max_spare_workers`](ThreadPoolBuilder::max_spare_workers)) are
    /// named by the same closure as they start, with indices from
    /// `num_threads` on; there a panic, or a NUL byte, gives that spare the
    /// default name `pilfer-{i}` instead.
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

    /// The most spare threads the pool keeps alive at once (default 256).
    ///
    /// A worker that blocks, in [`block_in_place`](crate::block_in_place)
    /// or in a wait with nothing it may run (inside
    /// [`isolate`](crate::isolate), or too deep in its stack), calls an
    /// idle spare back to duty or starts a new one, so that the pool keeps
    /// its number of threads available for other work meanwhile. Once this
    /// many spares are alive, a blocking worker is not compensated (it
    /// still blocks: never an error). `0` turns compensation off.
    ///
    /// Spares are std threads named and started like the workers
    /// ([`thread_name`](ThreadPoolBuilder::thread_name),
    /// [`stack_size`](ThreadPoolBuilder::stack_size), the start and exit
    /// handlers), with indices from `num_threads` on, also when the
    /// workers came from a [`spawn_handler`](ThreadPoolBuilder::spawn_handler).
    /// On Linux, a spare standing in for a blocked worker of a pinned pool
    /// is pinned to the core that worker left idle while it stands in; any
    /// other spare runs on every core. More than the pool's room beside its workers
    /// (65 535 threads in all) is an error at `build`.
    pub fn max_spare_workers(mut self, max: usize) -> Self {
        self.options.max_spare_workers = Some(max);
        self
    }

    /// How long a spare thread stays idle before it exits (default 10 s).
    pub fn spare_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.options.spare_keep_alive = keep_alive;
        self
    }

    /// What `spawn` and `submit` do when `max_pending` tasks are pending:
    /// wait for room ([`FullPolicy::Block`], the default) or run the task
    /// on the calling thread ([`FullPolicy::CallerRuns`]).
    pub fn when_full(mut self, policy: FullPolicy) -> Self {
        self.options.when_full = policy;
        self
    }
}

impl<S: ThreadSpawn> ThreadPoolBuilder<S> {
    /// Starts the pool.
    ///
    /// ```
    /// let error = pilfer::ThreadPool::builder().num_threads(0).build().unwrap_err();
    /// assert!(error.to_string().contains("at least one thread"));
    /// ```
    pub fn build(mut self) -> Result<ThreadPool, BuildError> {
        let config = self.options.validate()?;
        start::start(config, sealed::Spawn::spawner(&mut self.spawn)).map(ThreadPool::from_registry)
    }

    /// Configures the global pool, used by [`join`](crate::join),
    /// [`scope`](crate::scope) and [`spawn`](crate::spawn) outside any pool.
    /// Fails if the global pool already exists (it is built on first use).
    pub fn build_global(mut self) -> Result<(), BuildError> {
        global::init(
            self.options.validate()?,
            sealed::Spawn::spawner(&mut self.spawn),
        )
    }
}

impl<S> fmt::Debug for ThreadPoolBuilder<S> {
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
