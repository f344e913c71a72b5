//! Starting a pool: its shared state, then its workers, each on a thread
//! of its own (std's, or one started by the user's spawn handler through a
//! [`ThreadBuilder`]), or on the calling thread (`use_current_thread`); and
//! stopping one that nobody will use.

use crate::config::{BuildError, PoolConfig};
use crate::job::JobRef;
use crate::pin::Placement;
use crate::queue::LocalQueue;
use crate::registry::Registry;
use crate::sync::{Arc, thread};
use crate::unwind;
use crate::worker;
use std::fmt;
use std::io;

/// One worker of a pool being built, handed to the
/// [`spawn_handler`](crate::ThreadPoolBuilder::spawn_handler): start a
/// thread (however you like) and call [`run`](ThreadBuilder::run) on it.
pub struct ThreadBuilder {
    name: String,
    stack_size: Option<usize>,
    registry: Arc<Registry>,
    index: usize,
    deque: LocalQueue<JobRef>,
    placement: Option<Placement>,
}

impl ThreadBuilder {
    /// The worker's index in its pool, `0..num_threads`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The name the pool gives this worker's thread
    /// ([`thread_name`](crate::ThreadPoolBuilder::thread_name), or
    /// `pilfer-{index}`); always `Some`.
    pub fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    /// The stack size set with
    /// [`stack_size`](crate::ThreadPoolBuilder::stack_size), if any.
    pub fn stack_size(&self) -> Option<usize> {
        self.stack_size
    }

    /// Runs the worker on the calling thread: returns once the pool has
    /// shut down and this worker has run its share of the remaining work.
    /// Every `ThreadBuilder` must be run, or the pool's drop waits for it
    /// for good.
    pub fn run(self) {
        worker::main_loop(self.registry, self.index, self.deque, self.placement);
    }
}

impl fmt::Debug for ThreadBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadBuilder")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}

/// How a pool's worker threads are started. Declared `pub` for the sealed
/// `ThreadSpawn` trait that returns it, but unreachable outside the crate.
pub enum Spawner<'a> {
    /// On std threads, joined when the pool shuts down.
    Std,
    /// By the user's spawn handler.
    Custom(&'a mut dyn FnMut(ThreadBuilder) -> io::Result<()>),
}

/// Creates the pool's shared state and starts its workers. On failure, the
/// workers already started are stopped and waited for before the error
/// returns.
pub(crate) fn start(
    mut config: PoolConfig,
    mut spawner: Spawner<'_>,
) -> Result<Arc<Registry>, BuildError> {
    let num_threads = config.num_threads;
    // A thread that is a worker already cannot become one of this pool.
    if config.use_current_thread && worker::is_worker_thread() {
        return Err(BuildError::CurrentThreadInPool);
    }
    // Names first: a name the OS cannot take must fail the build before any
    // worker has started.
    let names = (0..num_threads)
        .map(|index| config.thread_name(index))
        .collect::<Vec<_>>();
    if let Some(index) = names.iter().position(|name| name.contains('\0')) {
        return Err(BuildError::InvalidThreadName { index });
    }
    let mut deques: Vec<LocalQueue<JobRef>> = (0..num_threads).map(|_| LocalQueue::new()).collect();
    let registry = Registry::new(
        &mut config,
        deques.iter().map(LocalQueue::stealer).collect(),
    );

    let first = usize::from(config.use_current_thread);
    registry.set_started_workers(num_threads - first);
    if config.use_current_thread {
        let adopted = worker::adopt_current_thread(Arc::clone(&registry), deques.remove(0));
        debug_assert!(adopted, "checked above");
    }
    let mut handles = Vec::new();
    for ((index, deque), name) in (first..).zip(deques).zip(names.into_iter().skip(first)) {
        let builder = ThreadBuilder {
            name,
            stack_size: config.stack_size,
            registry: Arc::clone(&registry),
            index,
            deque,
            placement: registry.placement(index),
        };
        let spawned = unwind::halt_unwinding(|| match &mut spawner {
            Spawner::Std => spawn_std(builder).map(|handle| handles.push(handle)),
            Spawner::Custom(spawn) => spawn(builder),
        });
        let error = match spawned {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => Ok(error),
            Err(payload) => Err(payload),
        };
        // Stop the workers already started before reporting. Only they take
        // part in the shutdown count and the exits.
        registry.set_started_workers(index - first);
        worker::release_current_thread(&registry);
        registry.set_threads(handles);
        stop(&registry);
        return match error {
            Ok(error) => Err(BuildError::spawn(index, error)),
            Err(payload) => unwind::resume_unwinding(payload),
        };
    }
    registry.set_threads(handles);
    Ok(registry)
}

/// Starts `builder`'s worker on a std thread.
fn spawn_std(builder: ThreadBuilder) -> io::Result<thread::JoinHandle<()>> {
    thread::spawn_named(builder.name.clone(), builder.stack_size, move || {
        builder.run()
    })
}

/// Shuts down a pool that was never handed out (nothing is queued on it),
/// and waits for its workers.
pub(crate) fn stop(registry: &Registry) {
    registry.begin_shutdown();
    registry.join_threads();
}
