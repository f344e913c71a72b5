//! Detached work: `spawn` (fire and forget) and `submit` (with a `Task`).

use crate::job::HeapJob;
use crate::registry::Registry;
use crate::task::{self, Task};
use crate::unwind;
use crate::worker::WorkerThread;

/// Queues `func` on `registry`: on the caller's deque if it is one of the
/// pool's workers, else in the injector.
pub(crate) fn spawn_in<F>(registry: &Registry, func: F)
where
    F: FnOnce() + Send + 'static,
{
    let job = HeapJob::new(move || run_detached(func));
    // SAFETY: `func` is `'static`; the job is pushed once, and every queued
    // job runs exactly once (workers drain the queues before exiting);
    // `run_detached` does not unwind.
    registry.push(unsafe { job.into_job_ref() });
}

/// Queues `func` and returns the handle to its result.
pub(crate) fn submit_in<F, T>(registry: &Registry, func: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (task, runner) = task::new_task(func);
    // `runner` catches the panic itself (into the task's result).
    let job = HeapJob::new(runner);
    // SAFETY: as in `spawn_in`; `runner` does not unwind.
    registry.push(unsafe { job.into_job_ref() });
    task
}

/// Runs a detached closure on a worker; a panic goes to the pool's handler.
fn run_detached<F: FnOnce()>(func: F) {
    if let Err(payload) = unwind::halt_unwinding(func) {
        match WorkerThread::current() {
            Some(worker) => worker.registry().handle_detached_panic(payload),
            // Queued jobs only ever run on workers.
            None => unreachable!("pilfer: detached task ran off-pool"),
        }
    }
}

/// Spawns a detached closure on the current worker's pool, or on the global
/// pool when called outside every pool.
///
/// A panic in `func` goes to the pool's
/// [`panic_handler`](crate::ThreadPoolBuilder::panic_handler); it never
/// aborts the process or stops a worker.
///
/// ```
/// use std::sync::mpsc;
///
/// let (sender, receiver) = mpsc::channel();
/// pilfer::spawn(move || sender.send(7).unwrap());
/// assert_eq!(receiver.recv().unwrap(), 7);
/// ```
pub fn spawn<F>(func: F)
where
    F: FnOnce() + Send + 'static,
{
    match WorkerThread::current() {
        Some(worker) => spawn_in(worker.registry(), func),
        None => spawn_in(crate::global::registry(), func),
    }
}
