//! Scopes: tasks that may borrow from the caller's stack.

use crate::job;
use crate::latch::ScopeLatch;
use crate::registry::Registry;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::unwind::{self, Payload};
use crate::worker;
use crate::worker::WorkerThread;
use crate::{global, install};
use std::marker::PhantomData;
use std::ptr;

/// A scope in which tasks borrowing from the enclosing stack can be spawned;
/// see [`ThreadPool::scope`](crate::ThreadPool::scope) and [`scope`].
pub struct Scope<'scope> {
    /// Counts the body and every unfinished task; its owner waits on it.
    latch: ScopeLatch,
    /// The pool its tasks are queued on.
    registry: Arc<Registry>,
    /// The first panic of the body or a task; re-raised by the owner.
    panic: AtomicPtr<Payload>,
    /// Invariant in `'scope`, like `std::thread::Scope`: tasks may borrow
    /// anything that outlives the scope, nothing shorter.
    _marker: PhantomData<&'scope mut &'scope ()>,
}

/// A `*const Scope` that may cross threads: the scope outlives its tasks.
struct ScopePtr<'scope>(*const Scope<'scope>);

// SAFETY: `Scope` is `Sync` (atomics and an `Arc`), and the pointee outlives
// every task holding the pointer (the owner waits for all of them).
unsafe impl Send for ScopePtr<'_> {}

impl<'scope> ScopePtr<'scope> {
    /// # Safety
    /// The scope must still be waiting for the task that holds this pointer.
    unsafe fn as_ref(&self) -> &Scope<'scope> {
        // SAFETY: forwarded from the caller.
        unsafe { &*self.0 }
    }
}

impl<'scope> Scope<'scope> {
    /// Spawns a task that may borrow anything outliving the scope. The scope
    /// does not return before the task (and everything it spawns) finishes.
    ///
    /// ```
    /// let mut counts = vec![0; 4];
    /// pilfer::scope(|s| {
    ///     for (i, count) in counts.iter_mut().enumerate() {
    ///         s.spawn(move |_| *count = i * 10);
    ///     }
    /// });
    /// assert_eq!(counts, [0, 10, 20, 30]);
    /// ```
    pub fn spawn<BODY>(&self, body: BODY)
    where
        BODY: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        self.latch.increment();
        let scope = ScopePtr(self);
        let job = move || {
            // SAFETY: the count taken above keeps the scope waiting until
            // the decrement below, the last use of the pointer.
            let scope = unsafe { scope.as_ref() };
            if let Err(payload) = unwind::halt_unwinding(|| body(scope)) {
                scope.record_panic(payload);
            }
            // SAFETY: the scope is valid; nothing touches it after this.
            unsafe { ScopeLatch::decrement(&scope.latch) };
        };
        // SAFETY: the job borrows only `'scope` data and the scope itself,
        // both alive until the scope's count drops to zero, which needs this
        // job to have run; it is pushed once and does not unwind.
        let job_ref = unsafe { job::detached_job(job) };
        worker::push_from_anywhere(&self.registry, job_ref);
    }

    fn record_panic(&self, payload: Payload) {
        let boxed = Box::into_raw(Box::new(payload));
        // AcqRel on success: Release publishes the box to the owner's
        // `swap` in `take_panic`. The first panic wins.
        if self
            .panic
            .compare_exchange(ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: `boxed` was not stored; we still own it.
            let payload = *unsafe { Box::from_raw(boxed) };
            // Its `Drop` is user code: keep a panic in it from unwinding here.
            unwind::drop_payload(payload);
        }
    }

    fn take_panic(&self) -> Option<Payload> {
        // Acquire: pairs with the CAS in `record_panic`.
        let boxed = self.panic.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: non-null only if `record_panic` stored a box it gave up.
        (!boxed.is_null()).then(|| *unsafe { Box::from_raw(boxed) })
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        // Only reached with a stored panic if the owner itself unwound.
        if let Some(payload) = self.take_panic() {
            unwind::drop_payload(payload);
        }
    }
}

/// Runs a scope's body on `worker` and waits for all its tasks.
pub(crate) fn scope_on<'scope, OP, R>(worker: &WorkerThread, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    let scope = Scope {
        latch: ScopeLatch::new(&worker.registry().sleep, worker.index()),
        registry: Arc::clone(worker.registry()),
        panic: AtomicPtr::new(ptr::null_mut()),
        _marker: PhantomData,
    };
    let result = match unwind::halt_unwinding(|| op(&scope)) {
        Ok(value) => Some(value),
        Err(payload) => {
            scope.record_panic(payload);
            None
        }
    };
    // The body's own count.
    // SAFETY: `scope` lives in this frame until after the wait below.
    unsafe { ScopeLatch::decrement(&scope.latch) };
    worker.wait_until(&scope.latch);
    if let Some(payload) = scope.take_panic() {
        unwind::resume_unwinding(payload);
    }
    result.expect("pilfer: scope body finished without a value or a panic")
}

/// Creates a scope on the current worker's pool (or the global pool outside
/// every pool), runs `op` in it, and returns once every task spawned in it
/// has finished. A panic in the body or any task is re-raised here after
/// that (the first one, if several).
///
/// # Panics
///
/// Outside every pool, if the global pool does not exist yet and cannot be
/// built (for example `PILFER_NUM_THREADS` is not a valid thread count); use
/// [`ThreadPoolBuilder::build_global`](crate::ThreadPoolBuilder::build_global)
/// to get that error as a value instead.
///
/// ```
/// let data = vec![1, 2, 3, 4];
/// let mut left = 0;
/// let mut right = 0;
/// pilfer::scope(|s| {
///     s.spawn(|_| left = data[..2].iter().sum());
///     s.spawn(|_| right = data[2..].iter().sum());
/// });
/// assert_eq!(left + right, 10);
/// ```
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    match WorkerThread::current() {
        Some(worker) => scope_on(worker, op),
        None => install::on_worker(global::registry(), |worker| scope_on(worker, op)),
    }
}
