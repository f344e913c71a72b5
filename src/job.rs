//! Type-erased jobs: the only place that turns closures into raw pointers.
//!
//! A [`JobRef`] is what the queues hold: one word of data and the function
//! that runs it. Three kinds of job stand behind it:
//!
//! * [`StackJob`]: lives on the stack of the thread that waits for it (the
//!   second half of a `join`, the body of an `install`). The waiter keeps the
//!   frame alive until the job's latch is set, or until it takes the job back
//!   unrun; either way the job runs exactly once. The word is its address.
//! * [`HeapJob`]: boxed, owned by the queue until it runs (`spawn`, `submit`,
//!   `Scope::spawn`); running it frees it. The word is its address.
//! * A packed job: a queued closure of the same three sources that fits in
//!   one word travels in the word itself, so queueing it allocates nothing
//!   ([`detached_job`] picks this or a `HeapJob`). For `spawn` that is a
//!   user closure capturing one `Arc`, one reference or nothing; `submit`
//!   and `Scope::spawn` add a word of their own (the task's `Arc`, the
//!   scope's pointer), so there only a closure capturing nothing fits.
//!
//! Invariant for every `JobRef`: it is executed **exactly once**, and what it
//! refers to (the job behind its address, or whatever a packed closure
//! borrows) outlives that execution. The queues (each item popped or stolen
//! once) and the latches (the owner does not return before the job's latch
//! is set) uphold it; the code constructing a `JobRef` states why.

use crate::latch::SetLatch;
use crate::sync::cell::UnsafeCell;
use crate::unwind::{self, AbortIfPanic, Payload};
use std::mem::{self, ManuallyDrop, MaybeUninit};

/// A job that can be run through a [`JobRef`].
///
/// # Safety
/// `execute` receives the pointer given to [`JobRef::new`]; implementors may
/// rely on it being valid and on being called at most once for it.
pub(crate) unsafe trait Job {
    /// Runs the job. It must not unwind: user panics are caught inside.
    ///
    /// # Safety
    /// `this` is valid and no other execution of it has happened or will.
    unsafe fn execute(this: *const Self);
}

/// A pointer to a job plus the function that runs it; or, for a packed
/// job, the closure's own bytes plus the function that runs them.
#[derive(Copy, Clone, Debug)]
pub(crate) struct JobRef {
    /// A job's address, or a packed closure's bytes (some of which may be
    /// uninitialized padding): only `execute_fn` knows which.
    data: JobData,
    execute_fn: unsafe fn(JobData),
}

/// One word that holds either a pointer or a small closure.
type JobData = MaybeUninit<*const ()>;

// SAFETY: a `JobRef` is handed between threads by the queues; everything that
// produces one requires its closure and result to be `Send` (the bounds on
// `StackJob`, `HeapJob` and `detached_job` at their construction sites); a
// stack job's latch, which the taker sets while the owner probes it, is
// `Sync` (a supertrait of `SetLatch`).
unsafe impl Send for JobRef {}

impl JobRef {
    /// # Safety
    /// `data` must stay valid until the returned `JobRef` has been executed,
    /// and the caller must ensure it is executed exactly once.
    #[inline]
    pub(crate) unsafe fn new<T: Job>(data: *const T) -> JobRef {
        unsafe fn call<T: Job>(data: JobData) {
            // SAFETY: `data` holds the `*const T` written in `JobRef::new`,
            // whose caller vouched for its validity and single execution.
            unsafe { T::execute(data.assume_init().cast::<T>()) }
        }
        JobRef {
            data: MaybeUninit::new(data.cast()),
            execute_fn: call::<T>,
        }
    }

    /// Whether `self` is `job`, a `StackJob`'s reference (made by
    /// [`JobRef::new`]). Compares the run functions first: only if they are
    /// equal is `self` a pointer-carrying job whose data may be read.
    ///
    /// The one caller (`join`'s `reclaim`) pops jobs from its own deque and
    /// asks whether each is the reference it pushed. When it is, `self` is
    /// a bitwise copy of `job`, so both words are equal: no false
    /// "different". A false "same" would need another job's run function at
    /// the same address as `job`'s, which only merging identical machine
    /// code can produce; no packed job's run function has the code of a
    /// `StackJob`'s (it reads a closure out of the word, the other follows
    /// the word to a job and writes its result there).
    #[inline]
    pub(crate) fn is(&self, job: &JobRef) -> bool {
        if !std::ptr::fn_addr_eq(self.execute_fn, job.execute_fn) {
            return false;
        }
        // SAFETY: equal run functions mean that `self`, like `job`, was made
        // by `JobRef::new`, which initialized its data with a pointer (see
        // the doc comment for why they are not equal otherwise).
        let (mine, theirs) = unsafe { (self.data.assume_init(), job.data.assume_init()) };
        std::ptr::eq(mine, theirs)
    }

    /// # Safety
    /// Called at most once per job, while its data is alive (see `new`).
    #[inline]
    pub(crate) unsafe fn execute(self) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.execute_fn)(self.data) }
    }
}

/// Whether a closure of type `F` fits in a `JobRef`'s data word.
const fn fits_in_word<F>() -> bool {
    mem::size_of::<F>() <= mem::size_of::<JobData>()
        && mem::align_of::<F>() <= mem::align_of::<JobData>()
}

/// Turns a detached closure into a `JobRef`: inside the reference if it is
/// at most one word, else boxed as a [`HeapJob`].
///
/// # Safety
/// As for [`HeapJob::into_job_ref`]: everything `func` borrows must outlive
/// its execution, the `JobRef` must be executed exactly once, and `func`
/// must not unwind.
#[inline]
pub(crate) unsafe fn detached_job<F>(func: F) -> JobRef
where
    F: FnOnce() + Send,
{
    if !fits_in_word::<F>() {
        // SAFETY: forwarded from the caller.
        return unsafe { HeapJob::new(func).into_job_ref() };
    }
    unsafe fn call_packed<F: FnOnce()>(data: JobData) {
        // SAFETY: `data` holds the `F` written by `detached_job` (it fits:
        // size and alignment were checked), read out once: the caller of
        // `detached_job` promised a single execution.
        let func = unsafe { data.as_ptr().cast::<F>().read() };
        // As in `HeapJob::execute`: a panic escaping here is a bug.
        let abort = AbortIfPanic;
        func();
        mem::forget(abort);
    }
    let mut data = JobData::uninit();
    // SAFETY: `F` fits in the word (checked above); the write moves `func`
    // into it, to be moved out once by `call_packed`.
    unsafe { data.as_mut_ptr().cast::<F>().write(func) };
    JobRef {
        data,
        execute_fn: call_packed::<F>,
    }
}

/// The outcome of a job, written once by whoever runs it.
pub(crate) enum JobResult<T> {
    Ok(T),
    Panic(Payload),
}

impl<T> JobResult<T> {
    /// Converts a finished job's outcome into its value, re-raising a panic.
    fn into_value(self) -> T {
        match self {
            JobResult::Ok(value) => value,
            JobResult::Panic(payload) => unwind::resume_unwinding(payload),
        }
    }
}

/// A job living on the stack of the thread that waits for it.
pub(crate) struct StackJob<L, F, R> {
    pub(crate) latch: L,
    /// Taken exactly once: by `run_here` or by `execute` (job.rs header).
    func: UnsafeCell<ManuallyDrop<F>>,
    /// Written by `execute` only (a job run by its owner returns its value
    /// directly); read once by `take_result` after the latch is set.
    result: UnsafeCell<MaybeUninit<JobResult<R>>>,
}

impl<L, F, R> StackJob<L, F, R>
where
    L: SetLatch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    #[inline]
    pub(crate) fn new(func: F, latch: L) -> Self {
        StackJob {
            latch,
            func: UnsafeCell::new(ManuallyDrop::new(func)),
            result: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// # Safety
    /// The caller must keep `self` in place until either its latch is set or
    /// it has taken the job back with [`StackJob::run_here`] after removing
    /// the `JobRef` from every queue; and it may publish the `JobRef` at most
    /// once.
    #[inline]
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        // SAFETY: the caller upholds `JobRef::new`'s contract as stated above.
        unsafe { JobRef::new(self) }
    }

    /// Runs the closure on the calling thread, skipping the latch.
    ///
    /// # Safety
    /// No other thread can reach this job: its `JobRef` was never published,
    /// or the caller popped it back from its own queue.
    #[inline]
    pub(crate) unsafe fn run_here(&self) -> R {
        // SAFETY: by the caller's guarantee this thread is the only one
        // touching `func`, and the job was not run: `func` is still there.
        let func = self
            .func
            .with_mut(|func| unsafe { ManuallyDrop::take(&mut *func) });
        func()
    }

    /// The value of a job that ran elsewhere and set its latch, re-raising
    /// its panic if it had one.
    pub(crate) fn into_result(self) -> R {
        // SAFETY: every caller waited for the latch, and `self` is consumed.
        unsafe { self.take_result() }.into_value()
    }

    /// Moves out the outcome of a job that ran through `execute`.
    ///
    /// # Safety
    /// The latch is set (so `execute` wrote the result), and the result has
    /// not been taken before.
    pub(crate) unsafe fn take_result(&self) -> JobResult<R> {
        debug_assert!(
            self.latch.probe(),
            "job result taken before its latch was set"
        );
        // SAFETY: the latch is set, so the job's runner initialized `result`
        // and is done with it; the caller's Acquire `probe` pairs with the
        // Release in `SetLatch::set`, which came after the write. Taken once.
        self.result
            .with_mut(|result| unsafe { (*result).assume_init_read() })
    }
}

/// Under loom, dropping a stack job claims exclusive access to its cells,
/// so a model fails if the job's runner touches them after setting the latch
/// (that is, after the owner may have returned and freed the frame).
#[cfg(loom)]
impl<L, F, R> Drop for StackJob<L, F, R> {
    fn drop(&mut self) {
        self.func.with_mut(|_| ());
        self.result.with_mut(|_| ());
    }
}

// SAFETY: `execute` is called once per published `JobRef` (the queues hand
// each item to one taker), while the owner keeps the frame alive waiting on
// the latch; it touches `this` only before `SetLatch::set` returns.
unsafe impl<L, F, R> Job for StackJob<L, F, R>
where
    L: SetLatch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    unsafe fn execute(this: *const Self) {
        // SAFETY: valid until the latch is set (the owner waits for it).
        let this = unsafe { &*this };
        let abort = AbortIfPanic;
        // SAFETY: only the one taker of this `JobRef` reaches this point, and
        // the owner no longer touches `func` once it has published the job
        // and not popped it back: `func` is still there, and taken once.
        let func = this
            .func
            .with_mut(|func| unsafe { ManuallyDrop::take(&mut *func) });
        let result = match unwind::halt_unwinding(func) {
            Ok(value) => JobResult::Ok(value),
            Err(payload) => JobResult::Panic(payload),
        };
        // SAFETY: the owner reads `result` only after seeing the latch set,
        // which happens after this write.
        this.result
            .with_mut(|slot| unsafe { (*slot).write(result) });
        // SAFETY: `this.latch` is valid here; `set` touches nothing of the
        // job after publishing, and neither does this function.
        unsafe { SetLatch::set(&this.latch) };
        mem::forget(abort);
    }
}

/// A boxed job; running it frees it.
pub(crate) struct HeapJob<F> {
    func: F,
}

impl<F> HeapJob<F>
where
    F: FnOnce() + Send,
{
    #[inline]
    pub(crate) fn new(func: F) -> Box<Self> {
        Box::new(HeapJob { func })
    }

    /// # Safety
    /// Everything `func` borrows must outlive its execution (it is `'static`,
    /// or a scope waits for it), the `JobRef` must be executed exactly once,
    /// and `func` must not unwind.
    #[inline]
    pub(crate) unsafe fn into_job_ref(self: Box<Self>) -> JobRef {
        // SAFETY: the box is leaked here and reclaimed in `execute`, which the
        // caller promises happens exactly once.
        unsafe { JobRef::new(Box::into_raw(self)) }
    }
}

// SAFETY: `this` comes from `Box::into_raw` in `into_job_ref` and is turned
// back into a box exactly once, here.
unsafe impl<F> Job for HeapJob<F>
where
    F: FnOnce() + Send,
{
    unsafe fn execute(this: *const Self) {
        // SAFETY: see the impl's comment; the pointer is uniquely owned now.
        let this = unsafe { Box::from_raw(this.cast_mut()) };
        // Every closure queued as a heap job contains its panics (spawn.rs,
        // scope.rs, task.rs); one escaping would unwind through a worker
        // with borrowed frames below it, so it is a bug worth an abort.
        let abort = AbortIfPanic;
        (this.func)();
        mem::forget(abort);
    }
}
