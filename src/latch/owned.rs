//! Latches kept alive by their owner rather than by a waiter's stack frame:
//! shared ones (a `Task`, a place in the bound's line), a pool's shutdown
//! phases, a scope's count.

use super::{CoreLatch, Latch};
use crate::sleep::{Sleep, Sleeper};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::cell::UnsafeCell;
use crate::sync::{Arc, thread};
use std::task::Waker;

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

/// Whom a latch kept by its owner wakes (a `SharedLatch`'s waiter, a
/// scope's owner).
#[derive(Clone)]
enum Waiter {
    /// A thread outside every pool, parked with `thread::park`.
    Thread(thread::Thread),
    /// A pool worker, asleep on its own parker (sleep.rs): a thread unpark
    /// would not reach it.
    Worker { sleep: Arc<Sleep>, index: usize },
    /// A future's task (`Task` polled by an executor; not a scope's owner).
    Waker(Waker),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Worker { sleep, index } => sleep.wake_worker(index),
            Waiter::Waker(waker) => waker.wake(),
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
        if self.register(Waiter::Thread(thread::current())) {
            // `park` may return spuriously, hence the loop.
            while !self.core.probe() {
                thread::park();
            }
        }
    }

    /// Registers `waker` to be woken when the latch is set (a future's
    /// poll; a later poll replaces it). `false` if the latch is already
    /// set.
    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        // `--cfg pilfer_bug="waker_unregistered"` skips the registration,
        // to show that the loom models catch a future never woken.
        if cfg!(pilfer_bug = "waker_unregistered") {
            return !self.core.probe();
        }
        self.register(Waiter::Waker(waker.clone()))
    }

    /// Records whom to wake and moves to `SLEEPING`; `false` if the latch
    /// is already set. Only one waiter at a time registers (the owner of
    /// the `Task`, or the thread waiting in the bound's line); it may
    /// register again, replacing whom to wake.
    fn register(&self, waiter: Waiter) -> bool {
        // An earlier registration of this waiter is taken back first, so
        // that the setter cannot be reading the slot while it is replaced.
        if !self.core.take_back_sleep() || self.core.probe() {
            return false;
        }
        // SAFETY: the state is UNSET (only this waiter moves it to
        // SLEEPING, and it just moved it back), so the setter does not
        // touch `waiter` now.
        self.waiter.with_mut(|slot| unsafe { *slot = Some(waiter) });
        self.core.prepare_sleep()
    }
}

impl Latch for SharedLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }

    /// A worker about to sleep in its pool's protocol.
    fn prepare_sleep(&self, sleeper: &Sleeper<'_>) -> bool {
        self.register(Waiter::Worker {
            sleep: Arc::clone(sleeper.sleep),
            index: sleeper.index,
        })
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
        // it (`prepare_sleep` below), so there is nobody to wake here.
        unsafe { CoreLatch::set(&self.core) };
    }
}

impl Latch for PoolLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }

    fn prepare_sleep(&self, _sleeper: &Sleeper<'_>) -> bool {
        !self.probe()
    }

    fn end_sleep(&self) {}
}

/// A counter that sets its latch when it drops to zero: a scope waits on it
/// for its body and every task spawned in it. The decrementers run on the
/// scope's pool (and the body wherever the scope's owner is); the owner is
/// a worker, of that pool or another (it sleeps in its pool's protocol), or
/// a thread outside every pool (`in_place_scope`; it parks).
pub(crate) struct ScopeLatch {
    core: CoreLatch,
    counter: AtomicUsize,
    /// The scope's owner.
    owner: Waiter,
}

impl ScopeLatch {
    /// A latch with a count of one, waited on by worker `index` of the pool
    /// whose sleep state is `sleep`.
    // Out of line (so is `for_current_thread`): a scope's frame stays on
    // the stack while it waits, and these constructors' temporaries
    // enlarged it.
    #[inline(never)]
    pub(crate) fn for_worker(sleep: &Arc<Sleep>, index: usize) -> Self {
        ScopeLatch::new(Waiter::Worker {
            sleep: Arc::clone(sleep),
            index,
        })
    }

    /// A latch with a count of one, waited on by the calling thread, which
    /// is outside every pool ([`ScopeLatch::wait_blocking`]).
    #[inline(never)]
    pub(crate) fn for_current_thread() -> Self {
        ScopeLatch::new(Waiter::Thread(thread::current()))
    }

    fn new(owner: Waiter) -> Self {
        ScopeLatch {
            core: CoreLatch::new(),
            counter: AtomicUsize::new(1),
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
        if unsafe { (*this).counter.fetch_sub(1, Ordering::AcqRel) } == 1 {
            // SAFETY: still valid: the owner waits for the latch, not the
            // count.
            unsafe { ScopeLatch::set(this) }
        }
    }

    #[cold]
    unsafe fn set(this: *const Self) {
        // SAFETY: valid on entry; whom to wake is read (and kept alive by a
        // clone) before the swap, after which the owner may free the latch.
        let owner = unsafe { &(*this).owner }.clone();
        // SAFETY: the core is valid now; nothing of the latch is used after.
        if unsafe { CoreLatch::set(&(*this).core) } {
            owner.wake();
        }
    }

    /// Parks the calling thread, the owner outside every pool, until every
    /// count is gone.
    pub(crate) fn wait_blocking(&self) {
        self.core.wait_blocking();
    }
}

impl Latch for ScopeLatch {
    fn core(&self) -> &CoreLatch {
        &self.core
    }
}
