//! `join`: run two closures, potentially in parallel.
//!
//! Most joins record nothing: below the top levels of a job's joins, and
//! when no thief asked for work, `join` calls `a`, then `b` — the common,
//! cheapest case (publish.rs has the policy). Otherwise `join(a, b)`
//! records `b` as a frame, runs `a` on the calling worker, then takes `b`
//! back:
//!
//! * still private (nobody asked for work): call it right here;
//! * published but still in this worker's deque: pop it and call it here;
//! * stolen: run other work until the thief sets `b`'s latch.
//!
//! `b` always runs to completion before `join` returns or unwinds, because it
//! may borrow from the caller's stack — also when `a` panics.

use crate::job::{JobRef, StackJob};
use crate::latch::{JoinLatch, SetLatch};
use crate::publish::{self, RecordedJoin};
use crate::unwind::{self, Payload};
use crate::worker::{self, WorkerThread};
use crate::{global, install};

/// Runs `a` and `b`, potentially in parallel, and returns both results.
///
/// On a worker of a pool, `a` runs on the calling thread and `b` may be
/// stolen by another worker of that pool. Outside every pool, the call runs
/// inside the global pool. A panic in either closure is re-raised here once
/// both have finished (if both panic, `a`'s panic is the one re-raised).
///
/// `join` does not promise that `a` and `b` run at the same time: work is
/// offered to thieves lazily, when one asks and this worker reaches its
/// next `join`, and `b` runs right here after `a` if nobody took it (deep
/// in a recursion, `b` is offered at all only if a thief is already asking
/// when the `join` starts). So `a` must not block waiting for something
/// only `b` does.
///
/// In fine-grained recursion, `move` closures are cheaper when the
/// arguments are small `Copy` values: a closure that captures `n` by
/// reference makes each `join` store it and load it back through a
/// pointer, where a `move` closure carries it in a register (7
/// of 28 instructions per `join` in a fib like the one below;
/// BENCHMARKS.md).
///
/// # Panics
///
/// Outside every pool, if the global pool does not exist yet and cannot be
/// built (for example `PILFER_NUM_THREADS` is not a valid thread count); use
/// [`ThreadPoolBuilder::build_global`](crate::ThreadPoolBuilder::build_global)
/// to get that error as a value instead.
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     let (a, b) = pilfer::join(move || fib(n - 1), move || fib(n - 2));
///     a + b
/// }
/// assert_eq!(fib(20), 6765);
/// ```
// Never inlined: in a recursion, `join` itself then becomes the recursive
// function, with the caller's closures (and their base cases) inlined into
// it, so a leaf of the recursion costs no call; inlined into the caller,
// every leaf was a call of its own (BENCHMARKS.md).
#[inline(never)]
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if publish::join_is_slow() {
        join_slow(a, b)
    } else {
        join_in_order(a, b)
    }
}

/// What a closure passed to [`join_context`] is told about where it runs.
#[derive(Clone, Copy, Debug)]
pub struct FnContext {
    migrated: bool,
}

impl FnContext {
    /// Whether the closure runs on a thread other than the one that called
    /// [`join_context`]: a thief took it, or the call came from outside
    /// every pool and both closures ran on the pool's workers.
    pub fn migrated(&self) -> bool {
        self.migrated
    }
}

/// As [`join`], telling each closure whether it migrated: whether it runs
/// on a thread other than the caller's (see [`FnContext::migrated`]). `a`
/// runs on the calling worker, so it migrates only when `join_context` is
/// called outside every pool; `b` migrates when a thief takes it.
///
/// # Panics
///
/// As [`join`].
///
/// ```
/// let pool = pilfer::ThreadPool::builder().num_threads(1).build().unwrap();
/// let (a, b) = pool.install(|| {
///     pilfer::join_context(|ctx| ctx.migrated(), |ctx| ctx.migrated())
/// });
/// assert_eq!((a, b), (false, false)); // one worker: nobody to steal `b`
/// ```
pub fn join_context<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce(FnContext) -> RA + Send,
    B: FnOnce(FnContext) -> RB + Send,
    RA: Send,
    RB: Send,
{
    match WorkerThread::current() {
        Some(worker) => join_context_on(worker, a, b, false),
        None => install::on_worker(global::registry(), |worker| {
            join_context_on(worker, a, b, true)
        }),
    }
}

/// `join_context` on `worker`; `injected`: the caller is not this thread.
fn join_context_on<A, B, RA, RB>(worker: &WorkerThread, a: A, b: B, injected: bool) -> (RA, RB)
where
    A: FnOnce(FnContext) -> RA + Send,
    B: FnOnce(FnContext) -> RB + Send,
    RA: Send,
    RB: Send,
{
    let caller = worker.index();
    let migrated =
        move || injected || WorkerThread::current().is_none_or(|runner| runner.index() != caller);
    join_on(
        worker,
        || a(FnContext { migrated: injected }),
        move || {
            b(FnContext {
                migrated: migrated(),
            })
        },
    )
}

/// `join` when the current thread's signal is up (publish.rs): on a worker,
/// usually one whose window has room or that a thief asked for work; off
/// every pool, in the global pool.
#[inline(never)]
fn join_slow<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    match WorkerThread::current() {
        Some(worker) => join_on(worker, a, b),
        None => install::on_worker(global::registry(), |worker| join_on(worker, a, b)),
    }
}

/// `join` on the given (current) worker.
#[inline]
pub(crate) fn join_on<A, B, RA, RB>(worker: &WorkerThread, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if !worker.wants_frame() {
        join_in_order(a, b)
    } else if worker.is_isolated() {
        // `b` may be stolen: it takes the isolation with it.
        join_with_frame(worker, a, move || worker::in_isolation(b))
    } else {
        join_with_frame(worker, a, b)
    }
}

/// The `join` that records `b` as a frame (module docs). Kept out of line so
/// that the common frame-less path stays small where `join` is inlined.
#[inline(never)]
fn join_with_frame<A, B, RA, RB>(worker: &WorkerThread, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let job_b = StackJob::new(b, JoinLatch::new(&worker.registry().sleep, worker.index()));
    // SAFETY: `job_b` stays in this frame until it has been taken back or
    // its latch is set: every path below (the panic path included) ends in
    // `run_here` or in waiting for the latch. It is published at most once
    // (frames.rs publishes each frame once).
    let job_b_ref = unsafe { job_b.as_job_ref() };
    let frame = worker.push_frame(job_b_ref);

    let result_a = match unwind::halt_unwinding(a) {
        Ok(value) => value,
        Err(payload) => recover_from_panic(worker, &job_b, job_b_ref, &frame, payload),
    };

    let result_b = if take_back(worker, &job_b, job_b_ref, &frame) {
        // SAFETY: the frame was never published, or this worker popped it
        // back from its own deque: no other thread can reach `job_b`.
        unsafe { job_b.run_here() }
    } else {
        job_b.into_result()
    };
    (result_a, result_b)
}

/// A `join` that records no frame (deep in a worker's joins, or on a pool's
/// only worker): nobody can take `b`, so the halves run one after the
/// other, with the same panic behaviour as the general path (`b` runs even
/// if `a` panicked, then `a`'s panic is re-raised).
#[inline]
fn join_in_order<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB,
{
    match unwind::halt_unwinding(a) {
        Ok(result_a) => (result_a, b()),
        Err(payload) => finish_after_panic(b, payload),
    }
}

/// `join_in_order`'s panic path: runs `b` (its panic is dropped), then
/// re-raises `a`'s. Out of line and cold so that the `catch_unwind` around
/// `a` is all the frame-less join carries of it (inlined, it slowed every
/// join down; BENCHMARKS.md).
#[cold]
#[inline(never)]
fn finish_after_panic<B, RB>(b: B, payload: unwind::Payload) -> !
where
    B: FnOnce() -> RB,
{
    // `b` runs as it does on every other path: not during unwinding. Its
    // value is dropped inside the catch too: a panicking `Drop` must not
    // replace `a`'s panic.
    if let Err(second) = unwind::halt_unwinding(move || drop(b())) {
        unwind::drop_payload(second);
    }
    unwind::resume_unwinding(payload)
}

/// Takes `b`'s frame back once `a` is done: `true` if `b` is to run here
/// (never published, or popped back from the deque), `false` once a thief
/// ran it. `job_b` may be in another thread's hands meanwhile, so a panic
/// here aborts rather than unwind and free the frame under that thread. It
/// can only be a broken invariant of pilfer's: the jobs this worker runs
/// meanwhile catch their users' panics themselves.
#[inline]
fn take_back<L, F, R>(
    worker: &WorkerThread,
    job_b: &StackJob<L, F, R>,
    job_b_ref: JobRef,
    frame: &RecordedJoin<'_>,
) -> bool
where
    L: SetLatch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    let abort_on_panic = unwind::AbortIfPanic;
    let run_here = worker.pop_frame(frame) || reclaim(worker, job_b, job_b_ref);
    std::mem::forget(abort_on_panic);
    run_here
}

/// `b`'s frame was published. Pops it back if no thief took it (returns
/// `true`: run it here), else runs other work until its latch is set
/// (returns `false`: its result is ready).
fn reclaim<L, F, R>(worker: &WorkerThread, job_b: &StackJob<L, F, R>, job_b_ref: JobRef) -> bool
where
    L: SetLatch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    while !job_b.latch.probe() {
        // Under a restriction (restricted.rs), only jobs pushed since it
        // began: `b` itself, or what `a` left behind.
        match worker.take_own_job() {
            Some(job) if job.is(&job_b_ref) => return true,
            // Another job of this worker's (a spawn, an injector batch, or,
            // once `b` was stolen, an older frame): run it here.
            Some(job) => worker.execute(job),
            None => {
                worker.wait_until(&job_b.latch);
                return false;
            }
        }
    }
    false
}

/// `a` panicked: let `b` finish (it may borrow from this frame), then
/// re-raise `a`'s panic. A panic of `b` here is dropped in favour of `a`'s.
#[cold]
fn recover_from_panic<L, F, R>(
    worker: &WorkerThread,
    job_b: &StackJob<L, F, R>,
    job_b_ref: JobRef,
    frame: &RecordedJoin<'_>,
    payload: Payload,
) -> !
where
    L: SetLatch,
    F: FnOnce() -> R + Send,
    R: Send,
{
    if take_back(worker, job_b, job_b_ref, frame) {
        // SAFETY: as in `join_on`: nobody else can reach `job_b`. Its value
        // is dropped inside the catch, like a stolen `b`'s below.
        if let Err(second) = unwind::halt_unwinding(|| drop(unsafe { job_b.run_here() })) {
            unwind::drop_payload(second);
        }
    } else {
        // SAFETY: `reclaim` returned after the latch was set; the result has
        // not been taken. Dropping it (a value or `b`'s panic) may panic.
        if let Err(second) = unwind::halt_unwinding(|| drop(unsafe { job_b.take_result() })) {
            unwind::drop_payload(second);
        }
    }
    unwind::resume_unwinding(payload)
}
