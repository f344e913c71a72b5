//! Every synchronization primitive the crate uses, in one place.
//!
//! Under `--cfg loom` the names below resolve to [loom]'s model-checked
//! stand-ins, so the protocols built on them (sleep, latches, the bound on
//! pending tasks) can be explored exhaustively by the models in `loom/`.
//! Under `--cfg shuttle` they resolve to [shuttle]'s, whose randomized (PCT)
//! schedulers sample the interleavings of scenarios far too big for loom:
//! the whole pool, driven through its public API (`shuttle/`). Everywhere
//! else they are the standard library's types, at no cost.
//!
//! Two things differ in shape between the worlds and get a wrapper here:
//! `UnsafeCell` (loom tracks every access through `with`/`with_mut`) and
//! thread-locals (loom and shuttle run their threads as coroutines on one
//! OS thread, so a `std` thread-local would be shared between them).
//!
//! What shuttle does not model: weak memory (it runs every atomic access as
//! `SeqCst`, and its `fence` does nothing; orderings are loom's to check)
//! and time (a `Condvar::wait_timeout` never times out, so a deadline that
//! has not passed when a wait begins is as good as none).
//!
//! [loom]: https://docs.rs/loom
//! [shuttle]: https://docs.rs/shuttle

#[cfg(all(loom, shuttle))]
compile_error!("`--cfg loom` and `--cfg shuttle` are two different models: pick one");

#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Shuttle has no `Arc` of its own: its `shuttle::sync::Arc` is std's,
/// re-exported (a reference count orders nothing the schedulers must see).
#[cfg(shuttle)]
pub(crate) use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The lazily built global pool lives in a `OnceLock`. Neither loom nor
/// shuttle has a stand-in for it, and the models never touch the global
/// pool, so it is always std's.
pub(crate) use std::sync::OnceLock;

/// Process-wide state that the models never reach (which cores pinned
/// pools hold, pin.rs: nothing is pinned under loom or shuttle) sits in
/// `static`s, for which loom's types have no `const` constructors: always
/// std's.
pub(crate) mod process {
    pub(crate) use std::sync::Mutex;
}

pub(crate) mod atomic {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};
    #[cfg(shuttle)]
    pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};
    #[cfg(not(any(loom, shuttle)))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};

    pub(crate) use std::sync::atomic::Ordering;
}

/// Statistics counters (`metrics.rs`): std's atomics even under loom and
/// shuttle. They order nothing, so a model has nothing to check in them;
/// loom's bounded history of stores per atomic cannot take a counter that a
/// worker bumps on every search for work, and under shuttle each bump would
/// be one more scheduling point to no purpose.
pub(crate) mod counter {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
}

pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{Builder, JoinHandle, Thread, current, park, yield_now};
    #[cfg(shuttle)]
    pub(crate) use shuttle::thread::{Builder, JoinHandle, Thread, current, park, yield_now};
    #[cfg(not(any(loom, shuttle)))]
    pub(crate) use std::thread::{Builder, JoinHandle, Thread, current, park, yield_now};
}

/// A thread-local of the model's own (one per modelled thread), for the
/// few that are not a `Cell` with a constant (`cell_thread_local!` covers
/// those): `loom::thread_local!` or `shuttle::thread_local!`.
#[cfg(loom)]
pub(crate) use loom::thread_local as model_thread_local;
#[cfg(shuttle)]
pub(crate) use shuttle::thread_local as model_thread_local;

pub(crate) mod hint {
    /// A busy-wait hint. Under loom or shuttle a spin must let the model
    /// switch threads, or a spinning thread would starve the one it waits
    /// for (shuttle's `spin_loop` yields to its scheduler).
    #[inline]
    pub(crate) fn spin_loop() {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(shuttle)]
        shuttle::hint::spin_loop();
        #[cfg(not(any(loom, shuttle)))]
        std::hint::spin_loop();
    }
}

pub(crate) mod cell {
    #[cfg(loom)]
    pub(crate) use loom::cell::UnsafeCell;

    /// `std::cell::UnsafeCell` with loom's access API, so the same code
    /// compiles in every world and loom can see every access. Shuttle has
    /// no checked cell, so under shuttle too it is this plain one.
    #[cfg(not(loom))]
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[cfg(not(loom))]
    impl<T> UnsafeCell<T> {
        #[inline(always)]
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// Declares a thread-local `Cell<T>` with a constant initial value, backed
/// by std's `const`-initialized thread-local normally (one load from the
/// thread's block to read it), loom's under loom and shuttle's under shuttle.
macro_rules! cell_thread_local {
    ($vis:vis static $name:ident: $t:ty = $init:expr) => {
        #[cfg(not(any(loom, shuttle)))]
        std::thread_local! {
            $vis static $name: std::cell::Cell<$t> = const { std::cell::Cell::new($init) };
        }
        #[cfg(any(loom, shuttle))]
        $crate::sync::model_thread_local! {
            $vis static $name: std::cell::Cell<$t> = std::cell::Cell::new($init);
        }
    };
}
pub(crate) use cell_thread_local;

/// Locks `mutex`, ignoring poisoning: the crate never panics while holding
/// one of its own locks, and user code never runs under them.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
