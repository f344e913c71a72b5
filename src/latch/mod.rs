//! Latches: one-shot "this is done" signals between the thread that finishes
//! something and the thread waiting for it.
//!
//! Every latch is built on [`CoreLatch`], a three-state word:
//!
//! ```text
//!   UNSET ─prepare_sleep─▶ SLEEPING ──end_sleep──▶ UNSET
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
//! The latches of stack jobs, set through a raw pointer, are in
//! `stack.rs`; those kept alive by their owner (shared, per pool, per
//! scope) in `owned.rs`.
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

mod owned;
mod stack;

pub(crate) use owned::{PoolLatch, ScopeLatch, SharedLatch};
pub(crate) use stack::{CrossPoolLatch, JoinLatch, ThreadLatch};

use crate::sleep::{Sleeper, WakeCondition};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::thread;

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
    fn prepare_sleep(&self) -> bool {
        self.state
            .compare_exchange(UNSET, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `SLEEPING → UNSET` if a waiter had moved it to `SLEEPING`, taking
    /// its registration back; `false` if the latch is set.
    fn take_back_sleep(&self) -> bool {
        // Success, Relaxed: the waiter only needs to know that the setter
        // will not read its slot (a setter that swaps now sees `UNSET`).
        // Failure, Acquire: seeing `SET` here is how the waiter may learn
        // the latch is set, and what the setter wrote must be visible then
        // (pairs with the Release half of the swap in `set`; loom caught
        // the race on a task's result with Relaxed here).
        match self
            .state
            .compare_exchange(SLEEPING, UNSET, Ordering::Relaxed, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(actual) => actual != SET,
        }
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
        // the waiter's Acquire `probe`; Acquire pairs with `prepare_sleep`.
        unsafe { (*this).state.swap(SET, Ordering::AcqRel) == SLEEPING }
    }

    /// Parks the calling thread (outside every pool) until the latch is
    /// set; the setter must know to unpark it (`ThreadLatch`).
    fn wait_blocking(&self) {
        if self.prepare_sleep() {
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
    fn prepare_sleep(&self, _sleeper: &Sleeper<'_>) -> bool {
        self.core().prepare_sleep()
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
        Latch::prepare_sleep(self, sleeper)
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
