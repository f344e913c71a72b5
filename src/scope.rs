//! Scopes: tasks that may borrow from the caller's stack.

use crate::context::BroadcastContext;
use crate::job::JobRef;
use crate::latch::ScopeLatch;
use crate::registry::Registry;
use crate::sync::Arc;
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::unwind::{self, Payload};
use crate::worker::{self, Caller, Lane, ScopeQueues, WorkerThread};
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
        let scope = ScopePtr(self);
        // SAFETY: the task is queued once by `spawn_task`, which holds a
        // count for it; the pointer is used only while that count is held.
        self.spawn_task(Lane::Lifo, move || body(unsafe { scope.as_ref() }));
    }

    /// Spawns `body` on every worker of the scope's pool, once each, with a
    /// [`BroadcastContext`] saying which (see [`broadcast`](crate::broadcast)).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(3).build().unwrap();
    /// let runs = AtomicUsize::new(0);
    /// pool.scope(|s| {
    ///     s.spawn_broadcast(|_, ctx| {
    ///         assert_eq!(ctx.num_threads(), 3);
    ///         runs.fetch_add(1, Ordering::Relaxed);
    ///     });
    /// });
    /// assert_eq!(runs.into_inner(), 3);
    /// ```
    // Out of line, like the other parts of a scope's body that the scope's
    // frame would otherwise have room for while it waits.
    #[inline(never)]
    pub fn spawn_broadcast<BODY>(&self, body: BODY)
    where
        BODY: Fn(&Scope<'scope>, BroadcastContext<'_>) + Send + Sync + 'scope,
    {
        let body = Arc::new(body);
        let threads = self.registry.num_threads();
        for index in 0..threads {
            let (body, scope) = (Arc::clone(&body), ScopePtr(self));
            self.spawn_task(Lane::Worker(index), move || {
                // SAFETY: as in `spawn`.
                body(
                    unsafe { scope.as_ref() },
                    BroadcastContext::new(index, threads),
                );
            });
        }
    }

    /// Queues `task` as one of the scope's tasks: counted, its panic
    /// recorded, the count given back once it is done.
    fn spawn_task<TASK>(&self, lane: Lane<'_>, task: TASK)
    where
        TASK: FnOnce() + Send + 'scope,
    {
        self.latch.increment();
        let scope = ScopePtr(self);
        let job = move || {
            // SAFETY: the count taken above keeps the scope waiting until
            // the decrement below, the last use of the pointer.
            let scope = unsafe { scope.as_ref() };
            if let Err(payload) = unwind::halt_unwinding(task) {
                scope.record_panic(payload);
            }
            // SAFETY: the scope is valid; nothing touches it after this.
            unsafe { ScopeLatch::decrement(&scope.latch) };
        };
        let caller = Caller::of(&self.registry);
        // SAFETY: the job borrows only `'scope` data and the scope itself,
        // both alive until the scope's count drops to zero, which needs
        // this job to have run; it is queued once (below) and does not
        // unwind.
        let job_ref = unsafe { worker::into_job_for(caller, lane, job) };
        self.queue(caller, lane, job_ref);
    }

    /// Queues the job of one of the scope's tasks (worker/route.rs). Out
    /// of line: inlined into a scope's body, it enlarged the frame that the
    /// scope keeps on the stack while it waits.
    #[inline(never)]
    fn queue(&self, caller: Caller, lane: Lane<'_>, job_ref: JobRef) {
        // SAFETY: a FIFO scope's queues live as long as the scope, which
        // waits for every job queued on them.
        unsafe { worker::place(&self.registry, caller, lane, job_ref) }
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

/// A scope whose tasks, spawned from one worker, start in the order they
/// were spawned (FIFO), where [`Scope`]'s start newest first; see
/// [`scope_fifo`].
pub struct ScopeFifo<'scope> {
    base: Scope<'scope>,
    /// The FIFO queues of the workers that spawn into this scope.
    queues: ScopeQueues,
}

/// A `*const ScopeFifo` that may cross threads, as [`ScopePtr`].
struct ScopeFifoPtr<'scope>(*const ScopeFifo<'scope>);

// SAFETY: as for `ScopePtr`.
unsafe impl Send for ScopeFifoPtr<'_> {}

impl<'scope> ScopeFifoPtr<'scope> {
    /// # Safety
    /// As [`ScopePtr::as_ref`].
    unsafe fn as_ref(&self) -> &ScopeFifo<'scope> {
        // SAFETY: forwarded from the caller.
        unsafe { &*self.0 }
    }
}

impl<'scope> ScopeFifo<'scope> {
    /// Spawns a task that may borrow anything outliving the scope; the
    /// tasks spawned from one worker start in the order they were spawned.
    ///
    /// ```
    /// use std::sync::Mutex;
    ///
    /// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
    /// let order = Mutex::new(Vec::new());
    /// pool.scope_fifo(|s| {
    ///     for i in 0..4 {
    ///         let order = &order;
    ///         s.spawn_fifo(move |_| order.lock().unwrap().push(i));
    ///     }
    /// });
    /// assert_eq!(order.into_inner().unwrap(), [0, 1, 2, 3]);
    /// ```
    pub fn spawn_fifo<BODY>(&self, body: BODY)
    where
        BODY: FnOnce(&ScopeFifo<'scope>) + Send + 'scope,
    {
        let scope = ScopeFifoPtr(self);
        let task = move || {
            // SAFETY: as in `Scope::spawn`.
            body(unsafe { scope.as_ref() })
        };
        self.base.spawn_task(Lane::Fifo(Some(&self.queues)), task);
    }

    /// Spawns `body` on every worker of the scope's pool, once each; see
    /// [`Scope::spawn_broadcast`].
    // Out of line, like the other parts of a scope's body that the scope's
    // frame would otherwise have room for while it waits.
    #[inline(never)]
    pub fn spawn_broadcast<BODY>(&self, body: BODY)
    where
        BODY: Fn(&ScopeFifo<'scope>, BroadcastContext<'_>) + Send + Sync + 'scope,
    {
        let body = Arc::new(body);
        let threads = self.base.registry.num_threads();
        for index in 0..threads {
            let (body, scope) = (Arc::clone(&body), ScopeFifoPtr(self));
            self.base.spawn_task(Lane::Worker(index), move || {
                // SAFETY: as in `Scope::spawn`.
                body(
                    unsafe { scope.as_ref() },
                    BroadcastContext::new(index, threads),
                );
            });
        }
    }
}

/// A scope of either kind, as its body sees it.
pub(crate) trait ScopeKind<'scope>: Sized {
    fn new(base: Scope<'scope>) -> Self;
    fn base(&self) -> &Scope<'scope>;
}

impl<'scope> ScopeKind<'scope> for Scope<'scope> {
    fn new(base: Scope<'scope>) -> Self {
        base
    }
    fn base(&self) -> &Scope<'scope> {
        self
    }
}

impl<'scope> ScopeKind<'scope> for ScopeFifo<'scope> {
    fn new(base: Scope<'scope>) -> Self {
        let queues = ScopeQueues::new(base.registry.max_workers());
        ScopeFifo { base, queues }
    }
    fn base(&self) -> &Scope<'scope> {
        &self.base
    }
}

/// Who runs a scope's body and waits for it.
enum Owner<'a> {
    Worker(&'a WorkerThread),
    /// A thread outside every pool (`in_place_scope`).
    Thread,
}

/// A new scope on `registry`'s pool, waited for by `owner`. Made out of
/// line, straight into the caller's frame, which keeps no temporaries of
/// it while the scope waits (a chain of scopes nests one such frame per
/// level).
#[inline(never)]
fn new_scope<'scope, S: ScopeKind<'scope>>(registry: &Arc<Registry>, owner: &Owner<'_>) -> S {
    let latch = match owner {
        Owner::Worker(worker) => ScopeLatch::for_worker(&worker.registry().sleep, worker.index()),
        Owner::Thread => ScopeLatch::for_current_thread(),
    };
    S::new(Scope {
        latch,
        registry: Arc::clone(registry),
        panic: AtomicPtr::new(ptr::null_mut()),
        _marker: PhantomData,
    })
}

/// Runs `op` in a new scope whose tasks go to `registry`'s pool, with the
/// body on the calling thread (`owner`), and waits for all its tasks.
fn run_scope<'scope, S, OP, R>(registry: &Arc<Registry>, owner: Owner<'_>, op: OP) -> R
where
    S: ScopeKind<'scope>,
    OP: FnOnce(&S) -> R,
{
    let scope = new_scope::<S>(registry, &owner);
    let result = match unwind::halt_unwinding(|| op(&scope)) {
        Ok(value) => Some(value),
        Err(payload) => {
            scope.base().record_panic(payload);
            None
        }
    };
    let base = scope.base();
    // The body's own count.
    // SAFETY: `scope` lives in this frame until after the wait below.
    unsafe { ScopeLatch::decrement(&base.latch) };
    match owner {
        Owner::Worker(worker) => worker.wait_until(&base.latch),
        Owner::Thread => base.latch.wait_blocking(),
    }
    if let Some(payload) = base.take_panic() {
        unwind::resume_unwinding(payload);
    }
    result.expect("pilfer: scope body finished without a value or a panic")
}

/// Runs a scope's body on `worker` (of the scope's pool) and waits for all
/// its tasks.
pub(crate) fn scope_on<'scope, OP, R>(worker: &WorkerThread, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    run_scope(worker.registry(), Owner::Worker(worker), op)
}

/// As [`scope_on`], for a FIFO scope.
pub(crate) fn scope_fifo_on<'scope, OP, R>(worker: &WorkerThread, op: OP) -> R
where
    OP: FnOnce(&ScopeFifo<'scope>) -> R,
{
    run_scope(worker.registry(), Owner::Worker(worker), op)
}

/// A scope on `registry`'s pool whose body runs on the calling thread,
/// wherever it is: a worker of that pool, of another one (which runs its
/// own pool's work while it waits), or a thread outside every pool.
///
/// # Panics
///
/// Off the pool, if the pool is closed.
pub(crate) fn in_place_on<'scope, S, OP, R>(registry: &Arc<Registry>, op: OP) -> R
where
    S: ScopeKind<'scope>,
    OP: FnOnce(&S) -> R,
{
    let caller = Caller::of(registry);
    install::panic_if_refused(caller, registry);
    let owner = match caller {
        Caller::Own(worker) | Caller::OtherPool(worker) => Owner::Worker(worker),
        Caller::Outside => Owner::Thread,
    };
    run_scope(registry, owner, op)
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

/// As [`scope`], but the tasks spawned from one worker start in the order
/// they were spawned (see [`ScopeFifo`]).
///
/// # Panics
///
/// As [`scope`].
///
/// ```
/// let mut squares = vec![0; 8];
/// pilfer::scope_fifo(|s| {
///     for (i, square) in squares.iter_mut().enumerate() {
///         s.spawn_fifo(move |_| *square = i * i);
///     }
/// });
/// assert_eq!(squares[7], 49);
/// ```
pub fn scope_fifo<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&ScopeFifo<'scope>) -> R + Send,
    R: Send,
{
    match WorkerThread::current() {
        Some(worker) => scope_fifo_on(worker, op),
        None => install::on_worker(global::registry(), |worker| scope_fifo_on(worker, op)),
    }
}

/// Creates a scope whose body runs right here, on the calling thread, and
/// whose tasks go to the current worker's pool (or the global pool, outside
/// every pool); returns once every task has finished. Unlike [`scope`], the
/// body is not moved into the pool, so it need not be `Send`. A worker
/// waiting for the tasks runs other work of its pool meanwhile; a thread
/// outside every pool blocks.
///
/// # Panics
///
/// With the first panic of the body or a task, after all finished; and as
/// [`scope`], if the global pool cannot be built.
///
/// ```
/// use std::rc::Rc;
///
/// let here = Rc::new(5); // not Send: the body stays on this thread
/// let mut doubled = 0;
/// pilfer::in_place_scope(|s| {
///     let (five, doubled) = (*here, &mut doubled);
///     s.spawn(move |_| *doubled = five * 2);
/// });
/// assert_eq!(doubled, 10);
/// ```
pub fn in_place_scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R,
{
    in_place_on(current_registry(), op)
}

/// As [`in_place_scope`], with a FIFO scope ([`ScopeFifo`]).
pub fn in_place_scope_fifo<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&ScopeFifo<'scope>) -> R,
{
    in_place_on(current_registry(), op)
}

/// The current worker's pool, or the global pool.
fn current_registry() -> &'static Arc<Registry> {
    match WorkerThread::current() {
        Some(worker) => worker.registry(),
        None => global::registry(),
    }
}
