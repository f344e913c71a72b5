//! Starting a pool: its shared state, then one thread per worker; and
//! stopping one that nobody will use.

use crate::config::{BuildError, PoolConfig};
use crate::job::JobRef;
use crate::queue::LocalQueue;
use crate::registry::Registry;
use crate::sync::atomic::Ordering;
use crate::sync::{Arc, thread};
use crate::unwind;
use crate::worker;

/// Creates the pool's shared state and starts its workers. On failure, the
/// workers already started are stopped and joined before the error returns.
pub(crate) fn start(mut config: PoolConfig) -> Result<Arc<Registry>, BuildError> {
    let num_threads = config.num_threads;
    // Names first: a name the OS cannot take must fail the build before any
    // worker has started.
    let names = (0..num_threads)
        .map(|index| config.thread_name(index))
        .collect::<Vec<_>>();
    if let Some(index) = names.iter().position(|name| name.contains('\0')) {
        return Err(BuildError::InvalidThreadName { index });
    }
    let deques: Vec<LocalQueue<JobRef>> = (0..num_threads).map(|_| LocalQueue::new()).collect();
    let registry = Registry::new(
        &mut config,
        deques.iter().map(LocalQueue::stealer).collect(),
    );

    let mut handles = Vec::with_capacity(num_threads);
    for ((index, deque), name) in deques.into_iter().enumerate().zip(names) {
        let mut builder = thread::Builder::new().name(name);
        if let Some(size) = config.stack_size {
            builder = builder.stack_size(size);
        }
        let placement = registry.placement(index);
        let worker_registry = Arc::clone(&registry);
        let spawned = unwind::halt_unwinding(move || {
            builder.spawn(move || worker::main_loop(worker_registry, index, deque, placement))
        });
        match spawned {
            Ok(Ok(handle)) => handles.push(handle),
            failed => {
                // Stop the workers already started before reporting. Only
                // they take part in the shutdown count; the store is
                // published to them by the shutdown latch's Release.
                registry.running.store(handles.len(), Ordering::Relaxed);
                registry.begin_shutdown();
                for handle in handles {
                    let _ = handle.join();
                }
                match failed {
                    Ok(Err(error)) => return Err(BuildError::spawn(index, error)),
                    Err(payload) => unwind::resume_unwinding(payload),
                    Ok(Ok(_)) => unreachable!(),
                }
            }
        }
    }
    registry.set_threads(handles);
    Ok(registry)
}

/// Shuts down a pool that was never handed out (nothing is queued on it),
/// and joins its workers.
pub(crate) fn stop(registry: &Registry) {
    registry.begin_shutdown();
    registry.join_threads();
}
