//! Latches: one-shot "this is done" signals between the thread that finishes
//! a job and the thread waiting for it.
//!
//! Every latch is built on [`CoreLatch`], a three-state word:
//!
//! ```text
//!   UNSET ──start_sleep──▶ SLEEPING ──end_sleep──▶ UNSET
//!     │                       │
//!     └──────── set ──────────┴──────────▶ SET  (final)
//! ```
//!
//! The waiter moves `UNSET → SLEEPING` just before it parks; the setter swaps
//! in `SET` and, if it replaced `SLEEPING`, wakes the waiter. Either the
//! setter sees `SLEEPING` (and wakes), or the waiter's compare-exchange fails
//! on `SET` (and it does not park): no wake-up is lost.
//!
//! **Use-after-free discipline.** A latch often lives in the waiter's stack
//! frame, which may vanish the instant the waiter sees `SET`. So `set` takes
//! a raw pointer, reads everything it needs (whom to wake, and a reference
//! that keeps that alive) *before* the swap, and touches nothing of the latch
//! after it.

use crate::registry::Registry;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::cell::UnsafeCell;
use crate::sync::{Arc, thread};
use crate::worker::WorkerThread;

const UNSET: usize = 0;
const SLEEPING: usize = 1;
const SET: usize = 2;

/// A latch that can be set once. `Sync`: the thread that sets it and the
/// one that waits on it share it.
pub(crate) trait Latch: Sync {
    /// Sets the latch and wakes its waiter if it sleeps.
    ///
    /// # Safety
    /// `this` must be valid on entry. It may be freed by the waiter as soon as
    /// the latch becomes set, so implementations touch nothing of it after.
    unsafe fn set(this: *const Self);

    /// Whether the latch is set. An Acquire load: once it returns `true`,
    /// everything the setter wrote before `set` is visible.
    fn probe(&self) -> bool;
}

/// A latch a pool worker can wait on: it knows how to wake that worker.
pub(crate) trait SleepLatch: Latch {
    /// Called by the waiting worker before it parks. Arranges for `set` to
    /// wake it; returns `false` if the latch is already set.
    fn start_sleep(&self) -> bool;

    /// Called by the waiting worker after it wakes.
    fn end_sleep(&self);
}

/// The state word shared by all latches.
pub(crate) struct CoreLatch {
    state: AtomicUsize,
}

impl CoreLatch {
    #[inline]
    pub(crate) fn new() -> CoreLatch {
        CoreLatch {
            state: AtomicUsize::new(UNSET),
        }
    }

    #[inline]
    pub(crate) fn probe(&self) -> bool {
        // Acquire: pairs with the Release half of the swap in `set`.
        self.state.load(Ordering::Acquire) == SET
    }

    /// `UNSET → SLEEPING`. AcqRel: the Release half publishes whatever the
    /// waiter wrote to be woken by (see `OnceLatch`); the Acquire half pairs
    /// with `set` when it fails because the latch is set.
    #[inline]
    pub(crate) fn start_sleep(&self) -> bool {
        self.state
            .compare_exchange(UNSET, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `SLEEPING → UNSET`; fails harmlessly if the latch was set meanwhile.
    #[inline]
    pub(crate) fn end_sleep(&self) {
        let _ = self
            .state
            .compare_exchange(SLEEPING, UNSET, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Sets the latch; returns whether the waiter was asleep (must be woken).
    ///
    /// # Safety
    /// `this` is valid on entry; see [`Latch::set`].
    #[inline]
    pub(crate) unsafe fn set(this: *const Self) -> bool {
        // SAFETY: valid on entry by the caller's contract; the swap is the
        // last access. AcqRel: Release publishes the job's result to the
        // waiter's Acquire `probe`; Acquire pairs with `start_sleep`.
        unsafe { (*this).state.swap(SET, Ordering::AcqRel) == SLEEPING }
    }
}

/// The latch of the second half of a `join`: waited on by the worker that
/// called `join`, set by a worker of the same pool (a thief, or the caller
/// itself when it pops the job back inside a nested wait). Two words, since
/// it is built on every `join`.
pub(crate) struct SpinLatch {
    core: CoreLatch,
    /// The waiter's index in its pool.
    target: usize,
}

impl SpinLatch {
    #[inline]
    pub(crate) fn new(target: usize) -> Self {
        SpinLatch {
            core: CoreLatch::new(),
            target,
        }
    }
}

impl Latch for SpinLatch {
    #[inline]
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; the target is read before the swap.
        let target = unsafe { (*this).target };
        // The setter is a worker of the waiter's pool: join frames are only
        // ever queued on that pool's deques, which only its workers pop or
        // steal. Its own `WorkerThread` keeps the registry alive.
        let setter = WorkerThread::current().expect("pilfer: join latch set off-pool");
        // SAFETY: `(*this).core` is valid now; nothing of the latch is used
        // after the swap.
        if unsafe { CoreLatch::set(&(*this).core) } {
            setter.registry().sleep.wake_worker(target);
        }
    }

    #[inline]
    fn probe(&self) -> bool {
        self.core.probe()
    }
}

impl SleepLatch for SpinLatch {
    fn start_sleep(&self) -> bool {
        self.core.start_sleep()
    }

    fn end_sleep(&self) {
        self.core.end_sleep()
    }
}

/// The latch of an `install` called from a worker of another pool: set by a
/// worker of the pool that runs the job, waited on by a worker of the
/// caller's pool, which the setter must keep alive while waking it.
pub(crate) struct CrossLatch<'r> {
    core: CoreLatch,
    /// The waiter's pool.
    registry: &'r Arc<Registry>,
    /// The waiter's index in `registry`.
    target: usize,
}

impl<'r> CrossLatch<'r> {
    pub(crate) fn new(registry: &'r Arc<Registry>, target: usize) -> Self {
        CrossLatch {
            core: CoreLatch::new(),
            registry,
            target,
        }
    }
}

impl Latch for CrossLatch<'_> {
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; everything needed is read before the swap.
        let latch = unsafe { &*this };
        let target = latch.target;
        // The setter belongs to another pool: nothing else keeps the
        // waiter's registry alive once the waiter has returned.
        let registry = Arc::clone(latch.registry);
        // SAFETY: `latch.core` is valid now; nothing of `latch` is used after.
        if unsafe { CoreLatch::set(&latch.core) } {
            registry.sleep.wake_worker(target);
        }
    }

    fn probe(&self) -> bool {
        self.core.probe()
    }
}

impl SleepLatch for CrossLatch<'_> {
    fn start_sleep(&self) -> bool {
        self.core.start_sleep()
    }

    fn end_sleep(&self) {
        self.core.end_sleep()
    }
}

/// The latch of a job whose waiter is a thread outside every pool: it blocks
/// in [`ThreadLatch::wait`] until the job is done.
pub(crate) struct ThreadLatch {
    core: CoreLatch,
    thread: thread::Thread,
}

impl ThreadLatch {
    /// A latch to be waited on by the calling thread.
    pub(crate) fn for_current_thread() -> Self {
        ThreadLatch {
            core: CoreLatch::new(),
            thread: thread::current(),
        }
    }

    /// Blocks the calling thread (the one that created the latch) until set.
    pub(crate) fn wait(&self) {
        if self.core.start_sleep() {
            // SLEEPING now: `set` will unpark this thread. `park` may return
            // spuriously, hence the loop.
            while !self.core.probe() {
                thread::park();
            }
        }
    }
}

impl Latch for ThreadLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry. The handle is cloned before the swap: the
        // latch may be gone once it is set.
        let thread = unsafe { (*this).thread.clone() };
        // SAFETY: valid until the swap inside `CoreLatch::set` completes.
        if unsafe { CoreLatch::set(&(*this).core) } {
            thread.unpark();
        }
    }

    fn probe(&self) -> bool {
        self.core.probe()
    }
}

/// A latch kept alive by shared ownership (a `Task`'s result slot), which
/// any thread may wait on: a pool worker sleeps in its pool's protocol, an
/// outside thread parks. The waiter says how to wake it just before it
/// sleeps, so the setter needs no target fixed in advance.
pub(crate) struct OnceLatch {
    core: CoreLatch,
    /// Written by the waiter while the state is `UNSET`, taken by the setter
    /// only after swapping out `SLEEPING`.
    waiter: UnsafeCell<Option<Waiter>>,
}

/// Whom a `OnceLatch` wakes.
enum Waiter {
    /// A thread outside every pool, parked with `thread::park`.
    Thread(thread::Thread),
    /// A pool worker, asleep on its own parker (sleep.rs): a thread unpark
    /// would not reach it.
    Worker {
        registry: Arc<Registry>,
        index: usize,
    },
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Worker { registry, index } => registry.sleep.wake_worker(index),
        }
    }
}

// SAFETY: `waiter` is accessed under the state protocol above: the waiter
// writes it only before its Release `UNSET → SLEEPING`, the setter takes it
// only after its Acquire swap observed `SLEEPING`; the state never returns
// from `SET`, so the two accesses are ordered.
unsafe impl Sync for OnceLatch {}

impl OnceLatch {
    pub(crate) fn new() -> Self {
        OnceLatch {
            core: CoreLatch::new(),
            waiter: UnsafeCell::new(None),
        }
    }

    /// Sets the latch and wakes its waiter. Safe: the latch is kept alive by
    /// the caller's shared ownership, not by the waiter's stack.
    pub(crate) fn set(&self) {
        // SAFETY: `self` is a live reference.
        if unsafe { CoreLatch::set(&self.core) } {
            // SAFETY: the swap observed SLEEPING, so the waiter finished
            // writing (Release CAS, paired with the swap's Acquire) and will
            // not write again: `end_sleep` fails on SET. Only this setter
            // touches `waiter` from now on.
            let waiter = self.waiter.with_mut(|waiter| unsafe { (*waiter).take() });
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
    }

    /// Blocks the calling thread until set (for threads outside every pool).
    pub(crate) fn wait_blocking(&self) {
        if self.prepare_sleep(Waiter::Thread(thread::current())) {
            while !self.core.probe() {
                thread::park();
            }
        }
    }

    pub(crate) fn probe(&self) -> bool {
        self.core.probe()
    }

    /// Records `waiter` and moves to SLEEPING; `false` if already set.
    fn prepare_sleep(&self, waiter: Waiter) -> bool {
        if self.core.probe() {
            return false;
        }
        // SAFETY: the state is not SLEEPING (only this waiter moves it
        // there), so the setter does not touch `waiter` now.
        self.waiter.with_mut(|slot| unsafe { *slot = Some(waiter) });
        self.core.start_sleep()
    }
}

impl SleepLatch for OnceLatch {
    /// Called by a worker about to sleep in its pool's protocol.
    fn start_sleep(&self) -> bool {
        let worker = WorkerThread::current().expect("pilfer: a worker-only wait ran off-pool");
        let waiter = Waiter::Worker {
            registry: Arc::clone(worker.registry()),
            index: worker.index(),
        };
        self.prepare_sleep(waiter)
    }

    fn end_sleep(&self) {
        self.core.end_sleep()
    }
}

impl Latch for OnceLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: callers of the raw form still hold shared ownership.
        unsafe { (*this).set() }
    }

    fn probe(&self) -> bool {
        self.core.probe()
    }
}

/// The latch a pool's workers wait on in their main loop: set once, when
/// the pool shuts down. The shut-down path wakes every sleeper itself
/// (`Sleep::wake_all`), so this latch never needs to wake anyone.
pub(crate) struct ShutdownLatch {
    flag: crate::sync::atomic::AtomicBool,
}

impl ShutdownLatch {
    pub(crate) fn new() -> Self {
        ShutdownLatch {
            flag: crate::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Release: pairs with the Acquire in `probe`. Sleepers are then woken
    /// under the sleep mutex, which orders this store before their re-check.
    pub(crate) fn set(&self) {
        self.flag.store(true, Ordering::Release);
    }
}

impl Latch for ShutdownLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: the latch lives in the registry, which outlives callers.
        unsafe { (*this).set() }
    }

    fn probe(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

impl SleepLatch for ShutdownLatch {
    fn start_sleep(&self) -> bool {
        !self.probe()
    }

    fn end_sleep(&self) {}
}

/// A counter that sets its latch when it drops to zero: a scope waits on it
/// for its body and every task spawned in it. The waiter (the scope's owner)
/// and every decrementer run on workers of the same pool.
pub(crate) struct CountLatch {
    core: CoreLatch,
    counter: AtomicUsize,
    registry: Arc<Registry>,
    owner: usize,
}

impl CountLatch {
    /// A latch with a count of one, waited on by worker `owner`.
    pub(crate) fn new(registry: &Arc<Registry>, owner: usize) -> Self {
        CountLatch {
            core: CoreLatch::new(),
            counter: AtomicUsize::new(1),
            registry: Arc::clone(registry),
            owner,
        }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Adds one to the count.
    #[inline]
    pub(crate) fn increment(&self) {
        // Relaxed: the caller holds a count already (it is the scope's body
        // or one of its tasks), so the counter cannot reach zero meanwhile.
        self.counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes one; the last one sets the latch.
    ///
    /// # Safety
    /// `this` is valid on entry; the caller touches nothing of the latch (or
    /// what contains it) afterwards.
    #[inline]
    pub(crate) unsafe fn decrement(this: *const Self) {
        // SAFETY: valid on entry. AcqRel: the Release half publishes this
        // task's writes; the last decrementer's Acquire half gathers every
        // earlier task's, and `set` passes them on to the owner.
        if unsafe { (*this).counter.fetch_sub(1, Ordering::AcqRel) } == 1 {
            // SAFETY: still valid: the owner waits for the latch, not the count.
            unsafe { Latch::set(this) }
        }
    }
}

impl Latch for CountLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; what is needed is read before the swap.
        let latch = unsafe { &*this };
        let owner = latch.owner;
        // Every decrementer runs on a worker of this registry (scope tasks
        // are only ever queued in the scope's own pool), and that worker's
        // `WorkerThread` keeps the registry alive after the swap.
        let registry: &Registry = &latch.registry;
        // SAFETY: `latch.core` is valid now; nothing of `latch` is used after.
        if unsafe { CoreLatch::set(&latch.core) } {
            registry.sleep.wake_worker(owner);
        }
    }

    fn probe(&self) -> bool {
        self.core.probe()
    }
}

impl SleepLatch for CountLatch {
    fn start_sleep(&self) -> bool {
        self.core.start_sleep()
    }

    fn end_sleep(&self) {
        self.core.end_sleep()
    }
}
