//! Detached work: `spawn` (fire and forget) and `submit` (with a `Task`):
//! admission under the bound (bound/), the jobs they queue, a counted
//! task's slot given back as it starts, where their panics go, and what a
//! closed or discarding pool does with them.

pub(crate) use crate::bound::Wait;
use crate::bound::{self, Rejected, Route, Submitter, TrySpawnError};
use crate::global;
use crate::job::{self, JobRef};
use crate::registry::Registry;
use crate::sync::Arc;
use crate::task::{self, Origin, Task};
use crate::unwind;
use crate::worker::{self, Caller, Lane, WorkerThread};

/// Decides where a task submitted from this thread goes (bound/), and who
/// the submitter is.
fn admit(registry: &Registry, wait: Wait) -> Result<(Route, Caller), Rejected> {
    let caller = Caller::of(registry);
    if caller.is_refused_by(registry) {
        return Err(Rejected::ShutDown);
    }
    let submitter = match caller {
        Caller::Own(_) => Submitter::OwnWorker,
        Caller::OtherPool(_) => Submitter::OtherPoolWorker,
        Caller::Outside => Submitter::Outside,
    };
    let route = registry.admit(submitter, wait)?;
    Ok((route, caller))
}

/// The pool was closed while the producer waited for room (`WaitInLine`):
/// its closure was dropped.
struct ShutDown;

/// Queues `runner` (a closure that does not unwind) along `route`, for
/// `lane` (`Lane::Lifo`, or `Lane::Fifo(None)` for `spawn_fifo`); `caller`
/// is who admitted it. `gives_slot_back`: the runner gives its slot of the
/// bound back itself (a task's cell), so it is not wrapped to do so.
fn dispatch<F>(
    registry: &Registry,
    (route, lane): (Route, Lane<'static>),
    caller: Caller,
    runner: F,
    gives_slot_back: bool,
) -> Result<(), ShutDown>
where
    F: FnOnce() + Send + 'static,
{
    match (route, caller) {
        (Route::CallerRuns, _) => runner(),
        (Route::WaitInLine, Caller::OtherPool(worker)) => {
            return wait_in_line(registry, worker, runner, gives_slot_back);
        }
        (Route::WaitInLine, _) => {
            unreachable!("pilfer: waiting in line, but not on a worker of another pool")
        }
        // SAFETY: `runner` is `'static` and does not unwind (callers wrap
        // user code in `halt_unwinding`); neither does `release_slot`.
        (Route::Inject { counted: true }, _) if !gives_slot_back => unsafe {
            worker::queue_job(registry, caller, lane, move || {
                release_slot();
                runner();
            })
        },
        // SAFETY: as above.
        (Route::Local | Route::Inject { .. }, _) => unsafe {
            worker::queue_job(registry, caller, lane, runner)
        },
    }
    Ok(())
}

/// A worker of another pool hands `runner` to the bound's line and runs its
/// own pool's work until it is queued, or refused because the pool was
/// closed (then the runner is dropped here).
#[cold]
fn wait_in_line<F>(
    registry: &Registry,
    worker: &WorkerThread,
    runner: F,
    gives_slot_back: bool,
) -> Result<(), ShutDown>
where
    F: FnOnce() + Send + 'static,
{
    let make_job = |ticket: bound::Ticket| {
        into_job(move || {
            if ticket.is_refused() {
                worker::drop_reporting(runner);
                return;
            }
            if !gives_slot_back {
                release_slot();
            }
            runner();
        })
    };
    let ticket = registry.hand_to_line(make_job);
    worker.wait_until(ticket.latch());
    match ticket.take_returned() {
        Some(job) => {
            // SAFETY: the job was made above and given back unqueued: this
            // is its one execution, and seeing the ticket refused it only
            // drops what it carries.
            unsafe { job.execute() };
            Err(ShutDown)
        }
        None => Ok(()),
    }
}

/// Runs a detached closure on the submitting thread (`CallerRuns`); its
/// panic goes to this pool's handler, wherever the caller is.
fn run_on_caller<F: FnOnce()>(registry: &Registry, func: F) {
    if let Err(payload) = unwind::halt_unwinding(func) {
        registry.handle_detached_panic(payload);
    }
}

fn into_job<F>(runner: F) -> JobRef
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
    worker.registry().release_slot();
}

/// A detached closure spawned by a worker of its own pool, with its panic
/// routed to the pool that runs it.
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

/// A detached closure accepted from outside the pool: as [`detached`], but
/// dropped instead of run if the pool is discarding (`shutdown_now`).
fn detached_from_outside<F>(func: F) -> impl FnOnce() + Send + 'static
where
    F: FnOnce() + Send + 'static,
{
    move || {
        if worker::discard_outside_task() {
            worker::drop_reporting(func);
        } else if let Err(payload) = unwind::halt_unwinding(func) {
            worker::report_detached_panic(payload);
        }
    }
}

/// Runs a detached closure along `route`.
fn spawn_along<F>(
    registry: &Registry,
    (route, lane): (Route, Lane<'static>),
    caller: Caller,
    func: F,
) -> Result<(), ShutDown>
where
    F: FnOnce() + Send + 'static,
{
    match route {
        Route::CallerRuns => {
            run_on_caller(registry, func);
            Ok(())
        }
        Route::Local => dispatch(registry, (route, lane), caller, detached(func), false),
        route => dispatch(
            registry,
            (route, lane),
            caller,
            detached_from_outside(func),
            false,
        ),
    }
}

/// What `spawn` and `submit` do with a refusal they cannot return.
#[cold]
#[track_caller]
fn panic_closed(what: &str) -> ! {
    panic!(
        "pilfer: {what} on a closed pool (ThreadPool::close or shutdown): it refuses work from outside"
    )
}

pub(crate) fn spawn_in<F>(registry: &Registry, lane: Lane<'static>, func: F)
where
    F: FnOnce() + Send + 'static,
{
    let refused = match admit(registry, Wait::Policy) {
        Ok((route, caller)) => spawn_along(registry, (route, lane), caller, func).is_err(),
        // `Wait::Policy` never gives up waiting: only a closed pool refuses.
        Err(_) => true,
    };
    if refused {
        panic_closed("spawn");
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
        Ok((route, caller)) => {
            // Only a timeout too large to represent (`Wait::Forever`) waits
            // in line; refused there, the closure is already dropped and
            // cannot be handed back.
            if spawn_along(registry, (route, Lane::Lifo), caller, func).is_err() {
                panic_closed("spawn_timeout");
            }
            Ok(())
        }
        Err(rejected) => Err(rejected.with(func)),
    }
}

pub(crate) fn submit_in<F, T>(registry: &Arc<Registry>, func: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match try_submit_in(registry, func, Wait::Policy) {
        Ok(task) => task,
        Err(_) => panic_closed("submit"),
    }
}

pub(crate) fn try_submit_in<F, T>(
    registry: &Arc<Registry>,
    func: F,
    wait: Wait,
) -> Result<Task<T>, TrySpawnError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match admit(registry, wait) {
        Ok((route, caller)) => {
            let origin = Origin {
                counted: matches!(route, Route::Inject { counted: true } | Route::WaitInLine),
                from_outside: matches!(route, Route::Inject { .. } | Route::WaitInLine),
            };
            // The cell catches the closure's panic itself, into the result.
            let (task, cell) = task::new_task(func, registry, origin);
            let queued = dispatch(
                registry,
                (route, Lane::Lifo),
                caller,
                task::task_job(cell),
                true,
            );
            if queued.is_err() {
                task.refuse();
                panic_closed("submit");
            }
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
        Some(worker) => spawn_in(worker.registry(), Lane::Lifo, func),
        None => spawn_in(global::registry(), Lane::Lifo, func),
    }
}

/// As [`spawn`], but the tasks spawned from one worker with `spawn_fifo`
/// start in the order they were spawned (first in, first out), while
/// [`spawn`]'s start newest first. From outside every pool the two are the
/// same: the global injector is FIFO. The bound and panics work as for
/// [`spawn`].
///
/// # Panics
///
/// As [`spawn`].
///
/// ```
/// use std::sync::mpsc;
///
/// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
/// let (sender, receiver) = mpsc::channel();
/// pool.install(|| {
///     for i in 0..4 {
///         let sender = sender.clone();
///         pilfer::spawn_fifo(move || sender.send(i).unwrap());
///     }
/// });
/// drop(sender);
/// assert_eq!(receiver.iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
/// ```
pub fn spawn_fifo<F>(func: F)
where
    F: FnOnce() + Send + 'static,
{
    match WorkerThread::current() {
        Some(worker) => spawn_in(worker.registry(), Lane::Fifo(None), func),
        None => spawn_in(global::registry(), Lane::Fifo(None), func),
    }
}
