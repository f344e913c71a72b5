//! Latches: one-shot "this is done" signals between the thread that finishes
//! something and the thread waiting for it.
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
//! Two traits split the two sides. [`Latch`] is what can be waited on: its
//! methods have defaults over the core, which a latch overrides only where
//! it waits differently. [`SetLatch`] is what a job's runner sets through a
//! raw pointer (the latches of stack jobs). Each latch wakes its waiter
//! through the [`Sleep`] it holds, never through the setter's thread-local
//! worker.
//!
//! | latch | waited on by | set by |
//! |---|---|---|
//! | [`JoinLatch`] | the worker that called `join` | a thief of the same pool |
//! | [`CrossPoolLatch`] | a worker of another pool (`install`) | a worker of this pool |
//! | [`ThreadLatch`] | a thread outside every pool | a worker |
//! | [`SharedLatch`] | anyone (a `Task`, a producer granted a slot) | anyone |
//! | [`ScopeLatch`] | the scope's owner | the last of its tasks |
//! | [`PoolLatch`] | every worker of a pool (shutdown phases) | the pool |
//!
//! **Use-after-free discipline.** A latch often lives in the waiter's stack
//! frame, which may vanish the instant the waiter sees `SET`. So `set` takes
//! a raw pointer, reads everything it needs (whom to wake, and a reference
//! that keeps that alive) *before* the swap, and touches nothing of the latch
//! after it.

use crate::sleep::{Sleep, Sleeper, WakeCondition};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::cell::UnsafeCell;
use crate::sync::{Arc, thread};

const UNSET: usize = 0;
const SLEEPING: usize = 1;
const SET: usize = 2;

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
    fn probe(&self) -> bool {
        // Acquire: pairs with the Release half of the swap in `set`.
        self.state.load(Ordering::Acquire) == SET
    }

    /// `UNSET → SLEEPING`. AcqRel: the Release half publishes whatever the
    /// waiter wrote to be woken by (see `SharedLatch`); the Acquire half
    /// pairs with `set` when it fails because the latch is set.
    #[inline]
    fn start_sleep(&self) -> bool {
        self.state
            .compare_exchange(UNSET, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `SLEEPING → UNSET`; fails harmlessly if the latch was set meanwhile.
    #[inline]
    fn end_sleep(&self) {
        let _ = self
            .state
            .compare_exchange(SLEEPING, UNSET, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Sets the latch; returns whether the waiter was asleep (must be woken).
    ///
    /// # Safety
    /// `this` is valid on entry; see [`SetLatch::set`].
    #[inline]
    unsafe fn set(this: *const Self) -> bool {
        // SAFETY: valid on entry by the caller's contract; the swap is the
        // last access. AcqRel: Release publishes what the setter wrote to
        // the waiter's Acquire `probe`; Acquire pairs with `start_sleep`.
        unsafe { (*this).state.swap(SET, Ordering::AcqRel) == SLEEPING }
    }

    /// Parks the calling thread (outside every pool) until the latch is set,
    /// after `prepare` recorded how to wake it (if anything must be).
    fn park_until_set(&self) {
        if self.start_sleep() {
            // SLEEPING now: the setter will unpark this thread. `park` may
            // return spuriously, hence the loop.
            while !self.probe() {
                thread::park();
            }
        }
    }
}

/// A latch that can be waited on. The defaults are the core latch's
/// single-waiter protocol.
pub(crate) trait Latch {
    fn core(&self) -> &CoreLatch;

    /// Whether the latch is set. An Acquire load: once it returns `true`,
    /// everything the setter wrote before setting it is visible.
    #[inline]
    fn probe(&self) -> bool {
        self.core().probe()
    }

    /// Called by a worker about to sleep in its pool's protocol. Arranges
    /// for the setter to wake `sleeper`; `false` if the latch is already
    /// set.
    #[inline]
    fn start_sleep(&self, _sleeper: &Sleeper<'_>) -> bool {
        self.core().start_sleep()
    }

    /// Called by the waiting worker after it wakes.
    #[inline]
    fn end_sleep(&self) {
        self.core().end_sleep()
    }
}

/// Every latch is something a worker can sleep on (`sleep.rs`).
impl<L: Latch + ?Sized> WakeCondition for L {
    #[inline]
    fn is_met(&self) -> bool {
        self.probe()
    }

    #[inline]
    fn prepare_sleep(&self, sleeper: &Sleeper<'_>) -> bool {
        self.start_sleep(sleeper)
    }

    #[inline]
    fn end_sleep(&self) {
        Latch::end_sleep(self)
    }
}

/// A latch that a job's runner sets through a raw pointer: the latch of a
/// stack job. `Sync`: the setter and the waiter share it.
pub(crate) trait SetLatch: Latch + Sync {
    /// Sets the latch and wakes its waiter if it sleeps.
    ///
    /// # Safety
    /// `this` must be valid on entry. It may be freed by the waiter as soon as
    /// the latch becomes set, so implementations touch nothing of it after.
    unsafe fn set(this: *const Self);
}

/// The latch of the second half of a `join`: waited on by the worker that
/// called `join`, set by a worker of the same pool (a thief, or the caller
/// itself when it pops the job back inside a nested wait).
pub(crate) struct JoinLatch<'r> {
    core: CoreLatch,
    /// The waiter's pool's sleep state. The setter, a worker of that pool,
    /// keeps it alive after the swap.
    sleep: &'r Sleep,
    /// The waiter's index in its pool.
    target: usize,
}

impl<'r> JoinLatch<'r> {
    #[inline]
    pub(crate) fn new(sleep: &'r Sleep, target: usize) -> Self {
        JoinLatch {
            core: CoreLatch::new(),
            sleep,
            target,
        }
    }
}

impl Latch for JoinLatch<'_> {
    #[inline]
    fn core(&self) -> &CoreLatch {
        &self.core
    }
}

impl SetLatch for JoinLatch<'_> {
    #[inline]
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; what is needed is read before the swap.
        let (sleep, target) = unsafe { ((*this).sleep, (*this).target) };
        // SAFETY: `(*this).core` is valid now; nothing of the latch is used
        // after the swap. `sleep` outlives it: join frames are only ever
        // queued on their pool's deques, which only its workers take from,
        // and the setter's own worker keeps the pool alive.
        if unsafe { CoreLatch::set(&(*this).core) } {
            sleep.wake_worker(target);
        }
    }
}

/// The latch of an `install` called from a worker of another pool: set by a
/// worker of the pool that runs the job, waited on by a worker of the
/// caller's pool, whose sleep state the setter must keep alive to wake it.
pub(crate) struct CrossPoolLatch<'r> {
    core: CoreLatch,
    /// The waiter's pool's sleep state.
    sleep: &'r Arc<Sleep>,
    /// The waiter's index in its pool.
    target: usize,
}

impl<'r> CrossPoolLatch<'r> {
    pub(crate) fn new(sleep: &'r Arc<Sleep>, target: usize) -> Self {
        CrossPoolLatch {
            core: CoreLatch::new(),
            sleep,
            target,
        }
    }
}

impl Latch for CrossPoolLatch<'_> {
    fn core(&self) -> &CoreLatch {
        &self.core
    }
}

impl SetLatch for CrossPoolLatch<'_> {
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; everything needed is read before the swap.
        let latch = unsafe { &*this };
        let target = latch.target;
        // The setter belongs to another pool: nothing else keeps the
        // waiter's pool alive once the waiter has returned.
        let sleep = Arc::clone(latch.sleep);
        // SAFETY: `latch.core` is valid now; nothing of `latch` is used after.
        if unsafe { CoreLatch::set(&latch.core) } {
            sleep.wake_worker(target);
        }
    }
}

/// The latch of a job whose waiter is a thread outside every pool: it parks
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

    /// Parks the calling thread (the one that created the latch) until set.
    pub(crate) fn wait(&self) {
        self.core.park_until_set();
    }
}

impl Latch for ThreadLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }
}

impl SetLatch for ThreadLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry. The handle is cloned before the swap: the
        // latch may be gone once it is set.
        let thread = unsafe { (*this).thread.clone() };
        // SAFETY: valid until the swap inside `CoreLatch::set` completes.
        if unsafe { CoreLatch::set(&(*this).core) } {
            thread.unpark();
        }
    }
}

/// A latch kept alive by shared ownership (a `Task`'s result slot, a
/// producer's place in the bound's line), which any thread may wait on: a
/// pool worker sleeps in its pool's protocol, an outside thread parks. The
/// waiter says how to wake it just before it sleeps, so the setter needs no
/// target fixed in advance.
pub(crate) struct SharedLatch {
    core: CoreLatch,
    /// Written by the waiter while the state is `UNSET`, taken by the setter
    /// only after swapping out `SLEEPING`.
    waiter: UnsafeCell<Option<Waiter>>,
}

/// Whom a `SharedLatch` wakes.
enum Waiter {
    /// A thread outside every pool, parked with `thread::park`.
    Thread(thread::Thread),
    /// A pool worker, asleep on its own parker (sleep.rs): a thread unpark
    /// would not reach it.
    Worker { sleep: Arc<Sleep>, index: usize },
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Worker { sleep, index } => sleep.wake_worker(index),
        }
    }
}

// SAFETY: `waiter` is accessed under the state protocol above: the waiter
// writes it only before its Release `UNSET → SLEEPING`, the setter takes it
// only after its Acquire swap observed `SLEEPING`; the state never returns
// from `SET`, so the two accesses are ordered.
unsafe impl Sync for SharedLatch {}

impl SharedLatch {
    pub(crate) fn new() -> Self {
        SharedLatch {
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

    /// Parks the calling thread (outside every pool) until set.
    pub(crate) fn wait_blocking(&self) {
        if self.record_waiter(Waiter::Thread(thread::current())) {
            self.core.park_until_set();
        }
    }

    /// Records whom to wake; `false` if the latch is already set.
    fn record_waiter(&self, waiter: Waiter) -> bool {
        if self.core.probe() {
            return false;
        }
        // SAFETY: the state is not SLEEPING (only this waiter moves it
        // there), so the setter does not touch `waiter` now.
        self.waiter.with_mut(|slot| unsafe { *slot = Some(waiter) });
        true
    }
}

impl Latch for SharedLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }

    /// A worker about to sleep in its pool's protocol.
    fn start_sleep(&self, sleeper: &Sleeper<'_>) -> bool {
        let waiter = Waiter::Worker {
            sleep: Arc::clone(sleeper.sleep),
            index: sleeper.index,
        };
        self.record_waiter(waiter) && self.core.start_sleep()
    }
}

/// A latch that every worker of a pool waits on, set once (a phase of the
/// pool's shutdown). Many waiters share it, so it never enters `SLEEPING`:
/// whoever sets it wakes every sleeper through the pool's sleep state
/// (`Sleep::wake_all`), under the lock each sleeper re-checks under.
pub(crate) struct PoolLatch {
    core: CoreLatch,
}

impl PoolLatch {
    pub(crate) fn new() -> Self {
        PoolLatch {
            core: CoreLatch::new(),
        }
    }

    /// Sets the latch; the caller then wakes the sleepers.
    pub(crate) fn set(&self) {
        // SAFETY: `self` is a live reference. No waiter is ever SLEEPING on
        // it (`start_sleep` below), so there is nobody to wake here.
        unsafe { CoreLatch::set(&self.core) };
    }
}

impl Latch for PoolLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }

    fn start_sleep(&self, _sleeper: &Sleeper<'_>) -> bool {
        !self.probe()
    }

    fn end_sleep(&self) {}
}

/// A counter that sets its latch when it drops to zero: a scope waits on it
/// for its body and every task spawned in it. The waiter (the scope's owner)
/// and every decrementer run on workers of the same pool.
pub(crate) struct ScopeLatch {
    core: CoreLatch,
    counter: AtomicUsize,
    sleep: Arc<Sleep>,
    owner: usize,
}

impl ScopeLatch {
    /// A latch with a count of one, waited on by worker `owner` of the pool
    /// whose sleep state is `sleep`.
    pub(crate) fn new(sleep: &Arc<Sleep>, owner: usize) -> Self {
        ScopeLatch {
            core: CoreLatch::new(),
            counter: AtomicUsize::new(1),
            sleep: Arc::clone(sleep),
            owner,
        }
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
        // earlier task's, and the set passes them on to the owner.
        if unsafe { (*this).counter.fetch_sub(1, Ordering::AcqRel) } != 1 {
            return;
        }
        // SAFETY: still valid (the owner waits for the latch, not the
        // count); what is needed is read before the swap. The sleep state
        // outlives it: every decrementer runs on a worker of the scope's
        // pool (scope tasks are only queued there), which keeps it alive.
        let (sleep, owner) = unsafe { (&*(*this).sleep as *const Sleep, (*this).owner) };
        // SAFETY: the core is valid now; nothing of the latch is used after.
        if unsafe { CoreLatch::set(&(*this).core) } {
            // SAFETY: see above: the decrementer's pool is alive.
            unsafe { (*sleep).wake_worker(owner) };
        }
    }
}

impl Latch for ScopeLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }
}
