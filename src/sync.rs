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

use std::time::Instant;

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

    /// Locks a process-wide mutex (poisoning ignored, as [`super::lock`]).
    pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) mod atomic {
    #[cfg(all(feature = "traffic", not(any(loom, shuttle))))]
    pub(crate) use super::traffic::{AtomicBool, AtomicPtr, AtomicUsize, fence};
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};
    #[cfg(shuttle)]
    pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};
    #[cfg(not(any(loom, shuttle, feature = "traffic")))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};

    pub(crate) use std::sync::atomic::Ordering;
}

/// The counting instrument (the `traffic` feature, outside the models):
/// the atomics above, the mutexes, the parker and the queues count what
/// they do to shared memory.
#[cfg(all(feature = "traffic", not(any(loom, shuttle))))]
pub(crate) mod traffic;

/// Counts `Event::$event` with the `traffic` feature (sync/traffic.rs);
/// nothing otherwise.
macro_rules! count_traffic {
    ($event:ident) => {
        #[cfg(all(feature = "traffic", not(any(loom, shuttle))))]
        $crate::sync::traffic::count($crate::sync::traffic::Event::$event);
    };
}
pub(crate) use count_traffic;

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

    /// Starts a thread of the pool's own, named `name`, with a stack of
    /// `stack_size` bytes (the platform's default if `None`), running
    /// `body`: the one way the pool starts a thread of its own (a worker
    /// on a std thread, start.rs; a spare, worker/blocking.rs). The scoped
    /// threads of `build_scoped` are started through the public spawn
    /// handler instead, as a user's would be (builder.rs).
    pub(crate) fn spawn_named(
        name: String,
        stack_size: Option<usize>,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let mut builder = Builder::new().name(name);
        if let Some(size) = stack_size {
            builder = builder.stack_size(size);
        }
        builder.spawn(body)
    }
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

// Poisoning is ignored everywhere below: the crate never panics while
// holding one of its own locks, and user code never runs under them.

/// Locks `mutex`.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    count_traffic!(Lock);
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` until notified (or woken spuriously).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One step of a wait with a deadline: how it ended.
pub(crate) enum Waited<'a, T> {
    /// Notified, or woken spuriously: check the condition again.
    Woken(MutexGuard<'a, T>),
    /// The deadline has passed (the lock is held again).
    Expired(MutexGuard<'a, T>),
}

/// Waits on `condvar` until notified, or until `deadline` if there is one;
/// returns at once, without waiting, if the deadline has passed already.
/// (Under shuttle, which does not model time, a deadline that has not
/// passed when the wait begins is as good as none.)
pub(crate) fn wait_before<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> Waited<'a, T> {
    let Some(deadline) = deadline else {
        return Waited::Woken(wait(condvar, guard));
    };
    let now = Instant::now();
    if now >= deadline {
        return Waited::Expired(guard);
    }
    let (guard, _) = condvar
        .wait_timeout(guard, deadline - now)
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Waited::Woken(guard)
}

/// The value of a `Mutex` no thread shares any more.
pub(crate) fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a thread that waits for something cheap to happen on another
/// thread spends the time before it sleeps: rounds of exponential
/// busy-waiting, then rounds of `yield_now`. About 20-60 µs in all on
/// current machines. Under loom and shuttle there is no spinning: it only
/// multiplies the interleavings, and a waiter sleeps at once.
///
/// (crossbeam-utils' `Backoff` has the same shape, but spins and yields
/// with std's calls, which the models cannot see.)
pub(crate) struct Backoff {
    round: u32,
}

impl Backoff {
    #[cfg(not(any(loom, shuttle)))]
    const SPIN_ROUNDS: u32 = 7;
    #[cfg(not(any(loom, shuttle)))]
    const YIELD_ROUNDS: u32 = 16;
    #[cfg(any(loom, shuttle))]
    const SPIN_ROUNDS: u32 = 0;
    #[cfg(any(loom, shuttle))]
    const YIELD_ROUNDS: u32 = 0;

    pub(crate) fn new() -> Backoff {
        Backoff { round: 0 }
    }

    /// Starts over (the waiter found something to do).
    pub(crate) fn reset(&mut self) {
        self.round = 0;
    }

    /// One round: spins, then (past the spinning rounds) yields; `false`
    /// once both are spent and the waiter should sleep instead.
    pub(crate) fn snooze(&mut self) -> bool {
        self.spin() || self.yield_now()
    }

    /// One round of spinning only; `false` once the spinning rounds are
    /// spent (for a waiter that must not give its core away).
    pub(crate) fn spin(&mut self) -> bool {
        if self.round >= Self::SPIN_ROUNDS {
            return false;
        }
        for _ in 0..(1u32 << self.round) {
            hint::spin_loop();
        }
        self.round += 1;
        true
    }

    fn yield_now(&mut self) -> bool {
        if self.round >= Self::SPIN_ROUNDS + Self::YIELD_ROUNDS {
            return false;
        }
        thread::yield_now();
        self.round += 1;
        true
    }
}
