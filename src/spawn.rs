//! Detached work: `spawn` (fire and forget) and `submit` (with a `Task`),
//! and their admission under the bound on pending tasks (bound.rs).

use crate::bound::{FullPolicy, TrySpawnError};
use crate::job;
use crate::registry::Registry;
use crate::task::{self, Task};
use crate::unwind;
use crate::worker::WorkerThread;
use std::time::Instant;

/// How long a producer outside the pool may wait for room.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// As the pool's `FullPolicy` says (`spawn`, `submit`).
    Policy,
    /// Not at all (`try_spawn`, `try_submit`).
    Never,
    /// Until this instant, or for good if `None` (`spawn_timeout`).
    Until(Option<Instant>),
}

/// Where an admitted task goes.
enum Route<'a> {
    /// Onto the calling worker's own deque: never counted, never waits.
    Local(&'a WorkerThread),
    /// Into the injector; `counted` when it holds a slot of the bound.
    Inject { counted: bool },
    /// Handed to the line of producers waiting for a slot, by this worker
    /// of another pool, which runs its own pool's work until a slot was
    /// taken for the task and the task queued (bound.rs).
    WaitInLine(&'a WorkerThread),
    /// Run right here by the submitting thread (`FullPolicy::CallerRuns`).
    CallerRuns,
}

/// Why a task was not admitted.
enum Rejected {
    Full,
    ShutDown,
}

impl Rejected {
    fn with<F>(self, task: F) -> TrySpawnError<F> {
        match self {
            Rejected::Full => TrySpawnError::Full(task),
            Rejected::ShutDown => TrySpawnError::ShutDown(task),
        }
    }
}

/// Decides where a task submitted from this thread goes, taking a slot of
/// the bound (waiting as `wait` allows) when it must.
fn admit(registry: &Registry, wait: Wait) -> Result<Route<'static>, Rejected> {
    if let Some(worker) = WorkerThread::current_in(registry) {
        return Ok(Route::Local(worker));
    }
    if registry.is_terminating() {
        return Err(Rejected::ShutDown);
    }
    let Some(bound) = registry.bound() else {
        return Ok(Route::Inject { counted: false });
    };
    let inject = |job| registry.inject(job);
    let admitted = match (wait, registry.full_policy()) {
        (Wait::Never, _) => bound.try_acquire(),
        (Wait::Until(deadline @ Some(_)), _) => bound.acquire(deadline, inject),
        (Wait::Until(None), _) | (Wait::Policy, FullPolicy::Block) => {
            match WorkerThread::current() {
                // A worker of another pool (this pool's own went `Local`).
                Some(worker) if !bound.spin_for_slot() => return Ok(Route::WaitInLine(worker)),
                Some(_) => true,
                None => bound.acquire(None, inject),
            }
        }
        (Wait::Policy, FullPolicy::CallerRuns) => {
            if !bound.try_acquire() {
                return Ok(Route::CallerRuns);
            }
            true
        }
    };
    if admitted {
        Ok(Route::Inject { counted: true })
    } else {
        Err(Rejected::Full)
    }
}

/// Queues `runner` (a closure that does not unwind) along `route`.
fn dispatch<F>(registry: &Registry, route: Route<'_>, runner: F)
where
    F: FnOnce() + Send + 'static,
{
    match route {
        Route::Local(worker) => worker.push(into_job(runner)),
        Route::Inject { counted: false } => registry.inject(into_job(runner)),
        Route::Inject { counted: true } => registry.inject(counted_job(runner)),
        Route::WaitInLine(worker) => registry
            .bound()
            .expect("waiting in line for a bound that does not exist")
            .wait_in_line_with(counted_job(runner), worker, |job| registry.inject(job)),
        Route::CallerRuns => runner(),
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
            unwind::report_detached_panic(payload);
        }
    }
}

/// Runs a detached closure along `route`.
fn spawn_along<F>(registry: &Registry, route: Route<'_>, func: F)
where
    F: FnOnce() + Send + 'static,
{
    match route {
        Route::CallerRuns => run_here(registry, func),
        route => dispatch(registry, route, detached(func)),
    }
}

pub(crate) fn spawn_in<F>(registry: &Registry, func: F)
where
    F: FnOnce() + Send + 'static,
{
    match admit(registry, Wait::Policy) {
        Ok(route) => spawn_along(registry, route, func),
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
        Ok(route) => {
            spawn_along(registry, route, func);
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
        Ok(route) => {
            // `runner` catches the panic itself, into the task's result.
            let (task, runner) = task::new_task(func);
            dispatch(registry, route, runner);
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
        None => spawn_in(crate::global::registry(), func),
    }
}
