//! `Task<T>`: the handle to a submitted closure's result.

use crate::latch::{Latch, SharedLatch};
use crate::sync::Arc;
use crate::sync::cell::UnsafeCell;
use crate::unwind;
use crate::worker::{self, WorkerThread};
use std::fmt;
use std::thread;

/// The result of a closure passed to [`ThreadPool::submit`](crate::ThreadPool::submit).
///
/// Dropping a `Task` detaches it: the closure still runs, and its result is
/// dropped.
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
/// let task = pool.submit(|| 6 * 7);
/// assert_eq!(task.join().unwrap(), 42);
///
/// let failing = pool.submit(|| -> u32 { panic!("boom") });
/// assert!(failing.join().is_err());
/// ```
#[must_use = "dropping a Task detaches it: the closure still runs; join it to get the result"]
pub struct Task<T> {
    inner: Arc<TaskInner<T>>,
}

pub(crate) struct TaskInner<T> {
    latch: SharedLatch,
    result: UnsafeCell<Option<thread::Result<T>>>,
}

// SAFETY: `result` is written once by the thread running the closure, before
// `latch.set()` (Release), and read once by the joiner after seeing the latch
// set (Acquire); no other access exists. `T: Send` lets the value cross over.
unsafe impl<T: Send> Sync for TaskInner<T> {}

impl<T> Task<T> {
    /// Waits for the closure to finish and returns its value, or `Err` with
    /// the panic payload if it panicked.
    ///
    /// On a worker of any pool, the wait runs other work of that pool
    /// instead of blocking the thread, so a task may join tasks it submitted
    /// to its own pool, even a one-thread pool.
    pub fn join(self) -> thread::Result<T> {
        match WorkerThread::current() {
            Some(worker) => worker.wait_until(&self.inner.latch),
            None => self.inner.latch.wait_blocking(),
        }
        // SAFETY: the latch is set, so the runner finished writing `result`
        // (see the `Sync` impl) and no one else reads it: `join` takes `self`.
        let result = self
            .inner
            .result
            .with_mut(|result| unsafe { (*result).take() });
        result.expect("pilfer: task result missing after completion")
    }

    /// Whether the closure has finished (`join` would not wait).
    pub fn is_finished(&self) -> bool {
        self.inner.latch.probe()
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A task handle and the closure that fulfils it.
pub(crate) fn new_task<F, T>(func: F) -> (Task<T>, impl FnOnce() + Send + 'static)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let inner = Arc::new(TaskInner {
        latch: SharedLatch::new(),
        result: UnsafeCell::new(None),
    });
    let runner = {
        let inner = Arc::clone(&inner);
        move || {
            let result = unwind::halt_unwinding(func);
            // SAFETY: this closure runs once and is the only writer; the
            // joiner reads only after the `set` below.
            inner
                .result
                .with_mut(|slot| unsafe { *slot = Some(result) });
            // Setting the latch may drop the last reference to the waiter's
            // pool, and dropping `inner` the result of a task nobody joins:
            // both run user `Drop` code, whose panic must not escape a job.
            let finish = unwind::halt_unwinding(move || {
                inner.latch.set();
                drop(inner);
            });
            if let Err(payload) = finish {
                worker::report_detached_panic(payload);
            }
        }
    };
    (Task { inner }, runner)
}
