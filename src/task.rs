//! `Task<T>`: the handle to a submitted closure's result. It can be joined
//! (blocking, or running other work on a worker), awaited as a future, or
//! aborted before the closure starts.
//!
//! A task's closure and result live in one shared cell (`TaskCell`), which
//! the queued job points to. Its state word decides, exactly once, whether
//! the closure runs or is cancelled: the job's runner and `abort` (or a
//! discarding `shutdown_now`) race to move it out of `QUEUED`, and only the
//! winner touches the closure.

use crate::latch::{Latch, SharedLatch};
use crate::registry::Registry;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::cell::UnsafeCell;
use crate::unwind::{self, Payload};
use crate::worker::{self, Caller, WorkerThread};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Not started yet: it may still start, or be cancelled.
const QUEUED: usize = 0;
/// Started: it runs to completion.
const RUNNING: usize = 1;
/// Cancelled: it never runs; its closure was dropped.
const CANCELLED: usize = 2;

/// The result of a closure passed to
/// [`ThreadPool::submit`](crate::ThreadPool::submit).
///
/// Join it ([`join`](Task::join)), await it (a `Task` is a [`Future`]
/// whose output is the same `Result`), or abort it before it starts
/// ([`abort`](Task::abort)). Dropping a `Task` detaches it: the closure
/// still runs, and its result is dropped.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let task = pool.submit(|| 6 * 7);
/// assert_eq!(task.join().unwrap(), 42);
///
/// let failing = pool.submit(|| -> u32 { panic!("boom") });
/// assert!(failing.join().unwrap_err().is_panic());
/// ```
#[must_use = "dropping a Task detaches it: the closure still runs; join it to get the result"]
pub struct Task<T> {
    cell: Arc<TaskCell<T>>,
}

/// What a task's closure and its waiter share.
pub(crate) struct TaskCell<T> {
    /// `QUEUED`, `RUNNING` or `CANCELLED`.
    state: AtomicUsize,
    /// Taken by whoever moves `state` out of `QUEUED`.
    func: UnsafeCell<Option<Box<dyn FnOnce() -> T + Send>>>,
    /// Written once, before `latch` is set; taken by the waiter after.
    result: UnsafeCell<Option<Result<T, TaskError>>>,
    latch: SharedLatch,
    /// The pool that accepted it (to give a slot back, count a
    /// cancellation, report a panic while dropping a cancelled closure).
    registry: Arc<Registry>,
    /// Holds a slot of the bound, given back as it starts or is cancelled.
    counted: bool,
    /// Accepted from outside the pool: `shutdown_now` discards it.
    from_outside: bool,
}

// SAFETY: `func` is touched only by the one thread that moved `state` out
// of `QUEUED` (a compare-exchange, so exactly one); `result` is written by
// that thread before the latch's Release `set` and read by the waiter after
// its Acquire `probe` saw it set. `T: Send` lets the value cross over; the
// closure is `Send` by its type.
unsafe impl<T: Send> Sync for TaskCell<T> {}

impl<T: Send + 'static> TaskCell<T> {
    /// Moves `state` from `QUEUED` to `to`; `true` for the one caller that
    /// does.
    fn claim(&self, to: usize) -> bool {
        // `--cfg pilfer_bug="abort_without_claim"` lets `abort` cancel
        // without the compare-exchange, to show that the loom models catch
        // a task both run and cancelled.
        if cfg!(pilfer_bug = "abort_without_claim") && to == CANCELLED {
            self.state.store(CANCELLED, Ordering::Release);
            return true;
        }
        // AcqRel: the winner's later writes are ordered after the claim,
        // and the loser sees the winner's claim.
        self.state
            .compare_exchange(QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The task's job: runs the closure unless the task was cancelled, or
    /// discards it if it came from outside and the pool is discarding.
    pub(crate) fn run(&self) {
        if self.from_outside && self.registry.end().is_discarding() {
            self.cancel(true);
            return;
        }
        if !self.claim(RUNNING) {
            return;
        }
        self.give_back_slot();
        // SAFETY: this thread won the claim: nobody else touches `func`.
        let func = self.func.with_mut(|func| unsafe { (*func).take() });
        let func = func.expect("pilfer: a queued task without its closure");
        let result = unwind::halt_unwinding(func).map_err(TaskError::panic);
        self.complete(result);
    }

    /// Cancels the task if it has not started: drops its closure here and
    /// lets its waiter see `Cancelled`. `discarded`: by `shutdown_now`.
    fn cancel(&self, discarded: bool) -> bool {
        if !self.claim(CANCELLED) {
            return false;
        }
        self.give_back_slot();
        // SAFETY: this thread won the claim: nobody else touches `func`.
        let func = self.func.with_mut(|func| unsafe { (*func).take() });
        // The closure's destructor is user code: a panic in it goes where a
        // detached task's panic goes, and does not stop the cancellation.
        if let Err(payload) = unwind::halt_unwinding(move || drop(func)) {
            self.registry.handle_detached_panic(payload);
        }
        self.registry.count_cancelled(discarded);
        self.complete(Err(TaskError::cancelled()));
        true
    }

    /// The pool was closed before the task could be queued: drops its
    /// closure (a panic in its destructor goes to the pool's handler) and
    /// marks it cancelled, neither counted nor holding a slot.
    fn refuse(&self) {
        if self.claim(CANCELLED) {
            // SAFETY: this thread won the claim: nobody else touches `func`.
            let func = self.func.with_mut(|func| unsafe { (*func).take() });
            if let Err(payload) = unwind::halt_unwinding(move || drop(func)) {
                self.registry.handle_detached_panic(payload);
            }
            self.complete(Err(TaskError::cancelled()));
        }
    }

    /// Stores the outcome and wakes the waiter.
    fn complete(&self, result: Result<T, TaskError>) {
        // SAFETY: only the claim's winner gets here, once; the waiter reads
        // `result` only after the `set` below.
        self.result.with_mut(|slot| unsafe { *slot = Some(result) });
        // Runs no user code: wakes the waiter, dropping at most a waker or
        // a handle on a pool's sleep state.
        self.latch.set();
    }

    fn give_back_slot(&self) {
        if self.counted {
            self.registry.release_slot();
        }
    }

    /// The outcome, once the latch is set.
    fn take_result(&self) -> Result<T, TaskError> {
        debug_assert!(self.latch.probe());
        // SAFETY: the latch is set, so the winner finished writing `result`
        // (see the `Sync` impl); the `Task` owning this is the only reader.
        let result = self.result.with_mut(|result| unsafe { (*result).take() });
        result.expect("pilfer: a Task polled after it completed")
    }

    /// Whether the calling thread is a worker of the task's pool.
    fn on_own_pool(&self) -> Option<&'static WorkerThread> {
        Caller::of(&self.registry).own()
    }
}

impl<T: Send + 'static> Task<T> {
    /// Waits for the closure to finish and returns its value, or a
    /// [`TaskError`]: the panic of the closure, or the cancellation of the
    /// task ([`abort`](Task::abort), or a discarding
    /// [`shutdown_now`](crate::ThreadPool::shutdown_now)).
    ///
    /// On a worker of any pool, the wait runs other work of that pool
    /// instead of blocking the thread, so a task may join tasks it submitted
    /// to its own pool, even a one-thread pool.
    pub fn join(self) -> Result<T, TaskError> {
        match WorkerThread::current() {
            Some(worker) => worker.wait_until(&self.cell.latch),
            None => self.cell.latch.wait_blocking(),
        }
        self.cell.take_result()
    }

    /// Cancels the task if its closure has not started: the closure is
    /// dropped here, on the calling thread (so what it captured is freed
    /// now), its slot of the pool's bound is given back, and
    /// [`join`](Task::join) (or `.await`) returns an error whose
    /// [`is_cancelled`](TaskError::is_cancelled) is true. Returns `true`
    /// then, and `false` if the closure had already started (or finished,
    /// or the task was already cancelled): it then runs to completion as
    /// usual.
    ///
    /// Safe to call from any thread, any number of times, racing with a
    /// worker that is about to start the task: exactly one of "it runs"
    /// and "it is cancelled" happens. A panic in the closure's destructor
    /// goes to the pool's [`panic_handler`](crate::ThreadPoolBuilder::panic_handler).
    ///
    /// ```
    /// use std::sync::mpsc;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
    /// let (release, blocked) = mpsc::channel::<()>();
    /// pool.spawn(move || blocked.recv().unwrap()); // occupies the worker
    /// let task = pool.submit(|| "never");
    /// assert!(task.abort());
    /// assert!(task.join().unwrap_err().is_cancelled());
    /// release.send(()).unwrap();
    /// ```
    pub fn abort(&self) -> bool {
        self.cell.cancel(false)
    }

    /// See `TaskCell::refuse`.
    pub(crate) fn refuse(&self) {
        self.cell.refuse();
    }

    /// Whether the closure has finished or the task was cancelled (`join`
    /// would not wait).
    pub fn is_finished(&self) -> bool {
        self.cell.latch.probe()
    }
}

/// A `Task` is a future: polling it never blocks and never runs the
/// closure anywhere but on the pool, except that a task polled on a worker
/// of its own pool before it started runs right there (a worker never
/// waits, here in an executor's poll, for work it could do itself: that is
/// what keeps an executor blocking a pool's only worker from deadlocking).
/// The waker is woken once, when the task finishes or is cancelled.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let task = pool.submit(|| 6 * 7);
/// // Any executor works; a tiny one that parks the calling thread:
/// struct Unparker(std::thread::Thread);
/// impl std::task::Wake for Unparker {
///     fn wake(self: std::sync::Arc<Self>) {
///         self.0.unpark();
///     }
/// }
/// let waker = std::sync::Arc::new(Unparker(std::thread::current())).into();
/// let mut context = std::task::Context::from_waker(&waker);
/// let mut task = std::pin::pin!(task);
/// let value = loop {
///     match task.as_mut().poll(&mut context) {
///         std::task::Poll::Ready(result) => break result.unwrap(),
///         std::task::Poll::Pending => std::thread::park(),
///     }
/// };
/// assert_eq!(value, 42);
/// # use std::future::Future;
/// ```
impl<T: Send + 'static> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let cell = &self.cell;
        // Run here if not started, on a worker of its own pool, unless in
        // an isolated region (it may be a task from outside it).
        if !cell.latch.probe()
            && cell
                .on_own_pool()
                .is_some_and(|worker| !worker.is_isolated())
        {
            cell.run();
        }
        if cell.latch.probe() || !cell.latch.register_waker(context.waker()) {
            return Poll::Ready(cell.take_result());
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.cell.latch.probe())
            .finish()
    }
}

/// Where a submitted task came from, and whether it holds a slot.
#[derive(Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) counted: bool,
    pub(crate) from_outside: bool,
}

/// A task handle and the cell its job runs (`TaskCell::run`).
pub(crate) fn new_task<F, T>(
    func: F,
    registry: &Arc<Registry>,
    origin: Origin,
) -> (Task<T>, Arc<TaskCell<T>>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let cell = Arc::new(TaskCell {
        state: AtomicUsize::new(QUEUED),
        func: UnsafeCell::new(Some(Box::new(func))),
        result: UnsafeCell::new(None),
        latch: SharedLatch::new(),
        registry: Arc::clone(registry),
        counted: origin.counted,
        from_outside: origin.from_outside,
    });
    (
        Task {
            cell: Arc::clone(&cell),
        },
        cell,
    )
}

/// The closure of a task's queued job: runs the cell, then lets go of it.
/// Dropping the last handle drops a result nobody joined (user code), so
/// that panic is contained too.
pub(crate) fn task_job<T: Send + 'static>(
    cell: Arc<TaskCell<T>>,
) -> impl FnOnce() + Send + 'static {
    move || {
        cell.run();
        worker::drop_reporting(cell);
    }
}

/// Why a [`Task`] has no value: its closure panicked, or the task was
/// cancelled before it started.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
/// let error = pool.submit(|| -> u8 { panic!("boom") }).join().unwrap_err();
/// assert!(error.is_panic() && !error.is_cancelled());
/// assert_eq!(*error.into_panic().downcast::<&str>().unwrap(), "boom");
/// ```
pub struct TaskError {
    repr: Repr,
}

enum Repr {
    Panic(Payload),
    Cancelled,
}

impl TaskError {
    fn panic(payload: Payload) -> TaskError {
        TaskError {
            repr: Repr::Panic(payload),
        }
    }

    fn cancelled() -> TaskError {
        TaskError {
            repr: Repr::Cancelled,
        }
    }

    /// Whether the closure panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// Whether the task was cancelled before its closure started.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The closure's panic payload, to re-raise with
    /// [`std::panic::resume_unwind`] or inspect.
    ///
    /// # Panics
    ///
    /// If the task was cancelled; [`try_into_panic`](TaskError::try_into_panic)
    /// returns it instead.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|_| panic!("pilfer: TaskError::into_panic on a cancelled task"))
    }

    /// The closure's panic payload, or the error itself if the task was
    /// cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::Panic(_) => f.write_str("TaskError::Panic(..)"),
            Repr::Cancelled => f.write_str("TaskError::Cancelled"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::Panic(_) => f.write_str("the task panicked"),
            Repr::Cancelled => f.write_str("the task was cancelled before it started"),
        }
    }
}

impl std::error::Error for TaskError {}
