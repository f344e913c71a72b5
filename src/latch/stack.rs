//! The latches of stack jobs: each lives in its waiter's frame, and the
//! job's runner sets it through a raw pointer ([`SetLatch`]).

use super::{CoreLatch, Latch, SetLatch};
use crate::sleep::Sleep;
use crate::sync::{Arc, thread};

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
    pub(crate) fn wait_blocking(&self) {
        self.core.wait_blocking();
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
