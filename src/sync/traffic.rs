//! Counting what the pool does to shared memory: built only with the
//! `traffic` feature (`examples/traffic.rs` drives it, `tests/traffic.rs`
//! guards the cheapest paths; BENCHMARKS.md has its table).
//!
//! With it, `sync::atomic` resolves to the wrappers here, which count
//! each atomic read-modify-write (a failed compare-exchange too: on x86 it
//! is the same locked instruction), each atomic store and each fence, and
//! then do exactly what std's do. `sync::lock`, the parker and the queue
//! facade count their own events ([`Event`]). Loads are not counted: a load
//! of a line nobody writes stays in the reader's cache.
//!
//! What is not seen: the atomics inside crossbeam's queues (counted per
//! call instead, as pushes, pops, looks and steals, each with the cost that
//! crossbeam's code gives it) and std's `Arc` reference counts, which
//! pilfer touches on pool handles, not per task.
//!
//! The counters are global relaxed `AtomicU64`s: counting perturbs timing,
//! not the counts, so a build with the feature is for counting only.

use std::sync::atomic::{self as std_atomic, AtomicU64, Ordering};

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An atomic read-modify-write of pilfer's own (swap, fetch-and-op,
    /// compare-exchange).
    Rmw,
    /// An atomic store of pilfer's own.
    Store,
    /// A fence.
    Fence,
    /// A mutex taken (`sync::lock`).
    Lock,
    /// A worker parked (its parker's condvar wait).
    Park,
    /// A parked worker unparked (a condvar notification).
    Unpark,
    /// A push on a worker's deque (crossbeam: slot and `back` written, a
    /// fence where the buffer may be read concurrently).
    DequePush,
    /// A pop from a worker's own deque.
    DequePop,
    /// A look at a peer's deque before a steal attempt, by a worker
    /// looking for work (crossbeam's `is_empty`: two loads and a fence).
    Look,
    /// A steal attempt on a peer's deque that a look found non-empty, or on
    /// a FIFO queue (crossbeam: an epoch pin, a compare-exchange on `front`
    /// when there is something to take).
    Steal,
    /// A push on an injector (crossbeam: a compare-exchange on the tail, a
    /// slot written, a fetch-or on the slot's state).
    InjectorPush,
    /// A take from an injector (one item, or a batch moved into a deque).
    InjectorTake,
}

impl Event {
    /// Every event, in the order of a [`Traffic`] reading.
    pub const ALL: [Event; 12] = [
        Event::Rmw,
        Event::Store,
        Event::Fence,
        Event::Lock,
        Event::Park,
        Event::Unpark,
        Event::DequePush,
        Event::DequePop,
        Event::Look,
        Event::Steal,
        Event::InjectorPush,
        Event::InjectorTake,
    ];

    /// A short name, for a table's header.
    pub fn name(self) -> &'static str {
        match self {
            Event::Rmw => "rmw",
            Event::Store => "store",
            Event::Fence => "fence",
            Event::Lock => "lock",
            Event::Park => "park",
            Event::Unpark => "unpark",
            Event::DequePush => "push",
            Event::DequePop => "pop",
            Event::Look => "look",
            Event::Steal => "steal",
            Event::InjectorPush => "inj-push",
            Event::InjectorTake => "inj-take",
        }
    }
}

static COUNTS: [AtomicU64; Event::ALL.len()] = [const { AtomicU64::new(0) }; Event::ALL.len()];

/// Counts one `event`.
#[inline]
pub(crate) fn count(event: Event) {
    COUNTS[event as usize].fetch_add(1, Ordering::Relaxed);
}

/// A reading of every counter, or the difference of two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    counts: [u64; Event::ALL.len()],
}

impl Traffic {
    /// The counters now, summed over every thread since the process began.
    pub fn now() -> Traffic {
        Traffic {
            counts: std::array::from_fn(|i| COUNTS[i].load(Ordering::Relaxed)),
        }
    }

    /// What was counted between `earlier` and this reading.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            counts: std::array::from_fn(|i| self.counts[i] - earlier.counts[i]),
        }
    }

    /// The count of `event`.
    pub fn get(&self, event: Event) -> u64 {
        self.counts[event as usize]
    }
}

/// Counts a fence, then issues it.
#[inline]
pub(crate) fn fence(order: Ordering) {
    count(Event::Fence);
    std_atomic::fence(order);
}

/// A std atomic integer or flag with the same methods, counting.
macro_rules! counted_atomic {
    ($name:ident, $value:ty) => {
        #[derive(Debug, Default)]
        pub(crate) struct $name(std_atomic::$name);

        #[allow(dead_code)] // each type uses a subset of the methods
        impl $name {
            #[inline]
            pub(crate) const fn new(value: $value) -> Self {
                $name(std_atomic::$name::new(value))
            }

            #[inline]
            pub(crate) fn load(&self, order: Ordering) -> $value {
                self.0.load(order)
            }

            #[inline]
            pub(crate) fn store(&self, value: $value, order: Ordering) {
                count(Event::Store);
                self.0.store(value, order);
            }

            #[inline]
            pub(crate) fn swap(&self, value: $value, order: Ordering) -> $value {
                count(Event::Rmw);
                self.0.swap(value, order)
            }

            #[inline]
            pub(crate) fn compare_exchange(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                count(Event::Rmw);
                self.0.compare_exchange(current, new, success, failure)
            }

            /// As std's, a loop of compare-exchanges, each counted (strong
            /// ones: on x86 the same instruction as std's weak one).
            #[inline]
            pub(crate) fn fetch_update(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                mut f: impl FnMut($value) -> Option<$value>,
            ) -> Result<$value, $value> {
                let mut previous = self.load(fetch_order);
                while let Some(next) = f(previous) {
                    match self.compare_exchange(previous, next, set_order, fetch_order) {
                        Ok(value) => return Ok(value),
                        Err(actual) => previous = actual,
                    }
                }
                Err(previous)
            }

            #[inline]
            pub(crate) fn into_inner(self) -> $value {
                self.0.into_inner()
            }
        }
    };
}

counted_atomic!(AtomicBool, bool);
counted_atomic!(AtomicUsize, usize);

#[allow(dead_code)] // the subset of std's methods the crate uses
impl AtomicUsize {
    #[inline]
    pub(crate) fn fetch_add(&self, value: usize, order: Ordering) -> usize {
        count(Event::Rmw);
        self.0.fetch_add(value, order)
    }

    #[inline]
    pub(crate) fn fetch_sub(&self, value: usize, order: Ordering) -> usize {
        count(Event::Rmw);
        self.0.fetch_sub(value, order)
    }
}

/// std's `AtomicPtr`, counting.
#[derive(Debug)]
pub(crate) struct AtomicPtr<T>(std_atomic::AtomicPtr<T>);

#[allow(dead_code)] // the subset of std's methods the crate uses
impl<T> AtomicPtr<T> {
    #[inline]
    pub(crate) const fn new(value: *mut T) -> Self {
        AtomicPtr(std_atomic::AtomicPtr::new(value))
    }

    #[inline]
    pub(crate) fn load(&self, order: Ordering) -> *mut T {
        self.0.load(order)
    }

    #[inline]
    pub(crate) fn store(&self, value: *mut T, order: Ordering) {
        count(Event::Store);
        self.0.store(value, order);
    }

    #[inline]
    pub(crate) fn swap(&self, value: *mut T, order: Ordering) -> *mut T {
        count(Event::Rmw);
        self.0.swap(value, order)
    }

    #[inline]
    pub(crate) fn compare_exchange(
        &self,
        current: *mut T,
        new: *mut T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<*mut T, *mut T> {
        count(Event::Rmw);
        self.0.compare_exchange(current, new, success, failure)
    }
}
