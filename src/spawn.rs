//! Detached work: `spawn` (fire and forget) and `submit` (with a `Task`),
//! and their admission under the bound on pending tasks (bound/).

pub(crate) use crate::bound::Wait;
use crate::bound::{self, Rejected, Route, Submitter, TrySpawnError};
use crate::global;
use crate::job;
use crate::registry::Registry;
use crate::task::{self, Task};
use crate::unwind;
use crate::worker::{self, WorkerThread};
use std::ptr;

/// Decides where a task submitted from this thread goes (bound/), with
/// the worker of this thread, if any.
fn admit(
    registry: &Registry,
    wait: Wait,
) -> Result<(Route, Option<&'static WorkerThread>), Rejected> {
    let worker = WorkerThread::current();
    let submitter = match worker {
        Some(worker) if ptr::eq(&**worker.registry(), registry) => Submitter::OwnWorker,
        Some(_) => Submitter::OtherPoolWorker,
        None => Submitter::Outside,
    };
    let route = bound::admit(
        registry.bound(),
        registry.full_policy(),
        registry.is_shutting_down(),
        submitter,
        wait,
        |job| registry.inject(job),
    )?;
    Ok((route, worker))
}

/// Queues `runner` (a closure that does not unwind) along `route`;
/// `worker` is the calling thread's, if it is one.
fn dispatch<F>(registry: &Registry, route: Route, worker: Option<&WorkerThread>, runner: F)
where
    F: FnOnce() + Send + 'static,
{
    match (route, worker) {
        (Route::Local, Some(worker)) => worker.push(into_job(runner)),
        (Route::Inject { counted: false }, _) => registry.inject(into_job(runner)),
        (Route::Inject { counted: true }, _) => registry.inject(counted_job(runner)),
        (Route::WaitInLine, Some(worker)) => {
            let bound = registry
                .bound()
                .expect("waiting in line for a bound that does not exist");
            let granted = bound.hand_to_line(counted_job(runner), |job| registry.inject(job));
            worker.wait_until(granted.latch());
        }
        (Route::CallerRuns, _) => runner(),
        (Route::Local | Route::WaitInLine, None) => {
            unreachable!("pilfer: a worker-only route for a thread outside every pool")
        }
    }
}

/// The job of a task that holds a slot of the bound, given back as it starts.
fn counted_job<F>(runner: F) -> crate::job::JobRef
where
    F: FnOnce() + Send + 'static,
{
    into_job(move || {
        release_slot();
        runner();
    })
}

/// Runs a detached closure on the submitting thread (`CallerRuns`); its
/// panic goes to this pool's handler, wherever the caller is.
fn run_here<F: FnOnce()>(registry: &Registry, func: F) {
    if let Err(payload) = unwind::halt_unwinding(func) {
        registry.handle_detached_panic(payload);
    }
}

fn into_job<F>(runner: F) -> crate::job::JobRef
where
    F: FnOnce() + Send + 'static,
{
    // SAFETY: `runner` is `'static` and does not unwind (callers wrap user
    // code in `halt_unwinding`); the job is queued once, and every queued
    // job runs exactly once (workers drain the queues before exiting).
    unsafe { job::detached_job(runner) }
}

/// A counted task is starting on a worker: give its slot back.
fn release_slot() {
    let worker = WorkerThread::current().expect("pilfer: queued task ran off-pool");
    let registry = worker.registry();
    registry
        .bound()
        .expect("counted task in an unbounded pool")
        .release(|job| registry.inject(job));
}

/// A detached closure queued on a pool, with its panic routed to the pool
/// that runs it (the current worker's).
fn detached<F>(func: F) -> impl FnOnce() + Send + 'static
where
    F: FnOnce() + Send + 'static,
{
    move || {
        if let Err(payload) = unwind::halt_unwinding(func) {
            worker::report_detached_panic(payload);
        }
    }
}

/// Runs a detached closure along `route`.
fn spawn_along<F>(registry: &Registry, route: Route, worker: Option<&WorkerThread>, func: F)
where
    F: FnOnce() + Send + 'static,
{
    match route {
        Route::CallerRuns => run_here(registry, func),
        route => dispatch(registry, route, worker, detached(func)),
    }
}

pub(crate) fn spawn_in<F>(registry: &Registry, func: F)
where
    F: FnOnce() + Send + 'static,
{
    match admit(registry, Wait::Policy) {
        Ok((route, worker)) => spawn_along(registry, route, worker, func),
        // `spawn` takes `&ThreadPool`, so the pool cannot be shutting down
        // (it shuts down when dropped), and `Wait::Policy` never gives up.
        Err(_) => unreachable!("pilfer: spawn on a pool that is shutting down"),
    }
}

pub(crate) fn try_spawn_in<F>(
    registry: &Registry,
    func: F,
    wait: Wait,
) -> Result<(), TrySpawnError<F>>
where
    F: FnOnce() + Send + 'static,
{
    match admit(registry, wait) {
        Ok((route, worker)) => {
            spawn_along(registry, route, worker, func);
            Ok(())
        }
        Err(rejected) => Err(rejected.with(func)),
    }
}

pub(crate) fn submit_in<F, T>(registry: &Registry, func: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match try_submit_in(registry, func, Wait::Policy) {
        Ok(task) => task,
        Err(_) => unreachable!("pilfer: submit on a pool that is shutting down"),
    }
}

pub(crate) fn try_submit_in<F, T>(
    registry: &Registry,
    func: F,
    wait: Wait,
) -> Result<Task<T>, TrySpawnError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match admit(registry, wait) {
        Ok((route, worker)) => {
            // `runner` catches the panic itself, into the task's result.
            let (task, runner) = task::new_task(func);
            dispatch(registry, route, worker, runner);
            Ok(task)
        }
        Err(rejected) => Err(rejected.with(func)),
    }
}

/// Spawns a detached closure on the current worker's pool, or on the global
/// pool when called outside every pool.
///
/// A panic in `func` goes to the pool's
/// [`panic_handler`](crate::ThreadPoolBuilder::panic_handler); it never
/// aborts the process or stops a worker.
///
/// # Panics
///
/// Outside every pool, if the global pool does not exist yet and cannot be
/// built (for example `PILFER_NUM_THREADS` is not a valid thread count); use
/// [`ThreadPoolBuilder::build_global`](crate::ThreadPoolBuilder::build_global)
/// to get that error as a value instead.
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
        None => spawn_in(global::registry(), func),
    }
}
