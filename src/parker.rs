//! A per-worker parker: `park` blocks until `unpark` has been called since
//! the last `park` returned (one saved token, like `std::thread::park`).
//!
//! Built from `sync.rs`'s mutex and condition variable rather than on
//! `std::thread::park`, so that loom models it exactly: loom drops an unpark
//! that reaches a thread while it is blocked on a mutex, where std would
//! keep the token. The fast paths are one atomic operation each; the mutex
//! is only taken when a thread actually sleeps or is woken from sleep.

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{self, Condvar, Mutex, count_traffic, lock};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

pub(crate) struct Parker {
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            mutex: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Blocks until a token is available, then consumes it. Only the owning
    /// thread calls this.
    pub(crate) fn park(&self) {
        // A token already waiting: consume it. Acquire pairs with the
        // Release swap in `unpark`.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let mut guard = lock(&self.mutex);
        // Announce PARKED while holding the mutex: an `unpark` that sees it
        // must take the mutex before notifying, so it cannot notify before
        // this thread waits.
        if let Err(actual) =
            self.state
                .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
        {
            debug_assert_eq!(actual, NOTIFIED);
            // Consume the token. Acquire: pairs with `unpark`'s Release swap.
            self.state.swap(EMPTY, Ordering::Acquire);
            return;
        }
        count_traffic!(Park);
        loop {
            guard = sync::wait(&self.condvar, guard);
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // Spurious wake-up: still PARKED.
        }
    }

    /// Makes a token available, waking the owner if it is parked.
    pub(crate) fn unpark(&self) {
        // Release: pairs with the Acquire in `park`.
        if self.state.swap(NOTIFIED, Ordering::Release) != PARKED {
            return;
        }
        // The owner set PARKED under the mutex and holds it until it waits;
        // passing through the mutex orders this notify after that wait.
        count_traffic!(Unpark);
        drop(lock(&self.mutex));
        self.condvar.notify_one();
    }
}
