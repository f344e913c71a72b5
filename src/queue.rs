//! The three queues of the scheduler, behind a small interface.
//!
//! * [`LocalQueue`]: one per worker, owned by it. Only the owner pushes and
//!   pops, at the LIFO end, so the work it touched last (hot in its cache)
//!   runs first. The type is `!Sync`: the owner end cannot be shared.
//! * [`StealQueue`]: a handle on a peer's `LocalQueue`, taking from the
//!   other (FIFO) end, where the oldest and usually largest work sits.
//! * [`GlobalQueue`]: the injector, the entry point for threads outside the
//!   pool; workers take batches from it into their own `LocalQueue`. Each
//!   worker also has one for the jobs broadcast to it (only it takes them).
//! * [`FifoQueue`]: one worker's FIFO spawns, for `spawn_fifo` (one per
//!   worker) and `ScopeFifo::spawn_fifo` (one per scope and worker). Its
//!   worker pushes, and anyone takes the oldest item; the worker may also
//!   take back the newest (worker/fifo.rs says when).
//!
//! Normally these wrap crossbeam-deque's Chase-Lev deque ("Dynamic Circular
//! Work-Stealing Deque", Chase and Lev, SPAA 2005; its weak-memory version,
//! Lê et al., PPoPP 2013) and its lock-free injector. crossbeam uses std
//! atomics that loom and shuttle cannot see, so under `--cfg loom` or
//! `--cfg shuttle` each queue is a `Mutex<VecDeque>` (the facade's mutex)
//! with the same interface: the models check the scheduler's protocols
//! *around* the queues, taking the queues' own linearizability from
//! crossbeam's tests.

/// The result of one attempt to take work from a shared queue.
pub(crate) enum Steal<T> {
    /// Nothing was there.
    Empty,
    /// Took one item.
    Success(T),
    /// Lost a race with another taker; trying again may succeed. (The
    /// loom and shuttle stand-ins are locked, so they never lose one.)
    #[cfg_attr(any(loom, shuttle), allow(dead_code))]
    Retry,
}

#[cfg(not(any(loom, shuttle)))]
mod imp {
    use super::Steal;
    use crate::sync::count_traffic;
    use crossbeam_deque as deque;

    /// Counts a take from an injector that got something.
    #[inline]
    fn counted_take<T>(steal: Steal<T>) -> Steal<T> {
        if let Steal::Success(_) = steal {
            count_traffic!(InjectorTake);
        }
        steal
    }

    fn convert<T>(steal: deque::Steal<T>) -> Steal<T> {
        match steal {
            deque::Steal::Empty => Steal::Empty,
            deque::Steal::Success(item) => Steal::Success(item),
            deque::Steal::Retry => Steal::Retry,
        }
    }

    pub(crate) struct LocalQueue<T>(deque::Worker<T>);

    impl<T> LocalQueue<T> {
        pub(crate) fn new() -> Self {
            LocalQueue(deque::Worker::new_lifo())
        }

        pub(crate) fn stealer(&self) -> StealQueue<T> {
            StealQueue(self.0.stealer())
        }

        #[inline]
        pub(crate) fn push(&self, item: T) {
            count_traffic!(DequePush);
            self.0.push(item);
        }

        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            let item = self.0.pop();
            if item.is_some() {
                count_traffic!(DequePop);
            }
            item
        }
    }

    pub(crate) struct StealQueue<T>(deque::Stealer<T>);

    impl<T> StealQueue<T> {
        #[inline]
        pub(crate) fn steal(&self) -> Steal<T> {
            count_traffic!(Steal);
            convert(self.0.steal())
        }

        /// Whether the queue looks empty, read without trying to take
        /// anything: two loads and a fence. A steal attempt first pins
        /// crossbeam's epoch (a locked instruction on the thread's epoch
        /// line, and every 128th pin a pass over every thread registered
        /// with the collector) before it reads whether there is anything
        /// to take, which makes an attempt on an empty deque two to seven
        /// times as dear as this look, the more so the more threads the
        /// collector knows (BENCHMARKS.md). For a searching worker, which
        /// finds most deques empty. A look that says empty is what an
        /// empty steal would have seen at that moment: crossbeam's
        /// `is_empty` makes `steal`'s own check, with a fence as strong as
        /// the pin's.
        #[inline]
        pub(crate) fn looks_empty(&self) -> bool {
            count_traffic!(Look);
            self.0.is_empty()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    pub(crate) struct GlobalQueue<T>(deque::Injector<T>);

    impl<T> GlobalQueue<T> {
        pub(crate) fn new() -> Self {
            GlobalQueue(deque::Injector::new())
        }

        #[inline]
        pub(crate) fn push(&self, item: T) {
            count_traffic!(InjectorPush);
            self.0.push(item);
        }

        /// Moves a batch into `dest` and returns one item of it.
        #[inline]
        pub(crate) fn steal_batch_and_pop(&self, dest: &LocalQueue<T>) -> Steal<T> {
            counted_take(convert(self.0.steal_batch_and_pop(&dest.0)))
        }

        /// Takes the oldest item.
        #[inline]
        pub(crate) fn steal(&self) -> Steal<T> {
            counted_take(convert(self.0.steal()))
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }
}

#[cfg(any(loom, shuttle))]
mod imp {
    use super::Steal;
    use crate::sync::{Arc, Mutex, lock};
    use std::collections::VecDeque;
    use std::marker::PhantomData;

    /// The stand-ins move at most this many items per injector batch:
    /// under loom, enough to exercise batching without growing the state
    /// space; under shuttle, which samples schedules rather than
    /// enumerating them, crossbeam's own bound on a batch.
    const BATCH: usize = if cfg!(loom) { 2 } else { 32 };

    pub(crate) struct LocalQueue<T> {
        items: Arc<Mutex<VecDeque<T>>>,
        /// The owner end is `!Sync`, as crossbeam's `Worker` is.
        _not_sync: PhantomData<std::cell::Cell<()>>,
    }

    impl<T> LocalQueue<T> {
        pub(crate) fn new() -> Self {
            LocalQueue {
                items: Arc::new(Mutex::new(VecDeque::new())),
                _not_sync: PhantomData,
            }
        }

        pub(crate) fn stealer(&self) -> StealQueue<T> {
            StealQueue(self.items.clone())
        }

        pub(crate) fn push(&self, item: T) {
            lock(&self.items).push_back(item);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.items).pop_back()
        }
    }

    pub(crate) struct StealQueue<T>(Arc<Mutex<VecDeque<T>>>);

    impl<T> StealQueue<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            match lock(&self.0).pop_front() {
                Some(item) => Steal::Success(item),
                None => Steal::Empty,
            }
        }

        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }

        /// A look is a hint, never a take: under loom it always says
        /// "maybe", so that every look is followed by the steal attempt and
        /// the models' state space stays as it was. Nothing is lost by
        /// that: with these locked queues a look that says empty is
        /// observably an empty steal at the same point (the same
        /// publication request follows), and one that says "maybe" changes
        /// nothing. Shuttle, which samples schedules, looks for real.
        pub(crate) fn looks_empty(&self) -> bool {
            !cfg!(loom) && self.is_empty()
        }
    }

    /// Takes the oldest item of `source` and moves up to `BATCH - 1` more
    /// (at most half of what is left) to `dest`, never holding both locks.
    fn move_batch<T>(source: &Mutex<VecDeque<T>>, dest: &LocalQueue<T>) -> Steal<T> {
        let (first, batch) = {
            let mut items = lock(source);
            let Some(first) = items.pop_front() else {
                return Steal::Empty;
            };
            let extra = (items.len() / 2).min(BATCH - 1);
            (first, items.drain(..extra).collect::<Vec<_>>())
        };
        lock(&dest.items).extend(batch);
        Steal::Success(first)
    }

    pub(crate) struct GlobalQueue<T>(Mutex<VecDeque<T>>);

    impl<T> GlobalQueue<T> {
        pub(crate) fn new() -> Self {
            GlobalQueue(Mutex::new(VecDeque::new()))
        }

        pub(crate) fn push(&self, item: T) {
            lock(&self.0).push_back(item);
        }

        pub(crate) fn steal_batch_and_pop(&self, dest: &LocalQueue<T>) -> Steal<T> {
            move_batch(&self.0, dest)
        }

        pub(crate) fn steal(&self) -> Steal<T> {
            match lock(&self.0).pop_front() {
                Some(item) => Steal::Success(item),
                None => Steal::Empty,
            }
        }

        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }
}

pub(crate) use imp::{GlobalQueue, LocalQueue, StealQueue};

/// A queue filled by one worker of a pool (its *owner*, by index): the
/// owner pushes at the back and may pop the newest item; anyone takes the
/// oldest. A `LocalQueue` and its `StealQueue`, shared.
pub(crate) struct FifoQueue<T> {
    owner: usize,
    items: LocalQueue<T>,
    oldest: StealQueue<T>,
}

// SAFETY: the owner's end (`items`, which is not `Sync`) is used only by
// `push` and `pop_newest`, whose callers promise to be the thread that is
// worker `owner`, of which there is at most one at a time; the rest is a
// `StealQueue`, made to be shared.
unsafe impl<T: Send> Sync for FifoQueue<T> {}

impl<T> FifoQueue<T> {
    /// An empty queue for worker `owner`.
    pub(crate) fn new(owner: usize) -> Self {
        let items = LocalQueue::new();
        let oldest = items.stealer();
        FifoQueue {
            owner,
            items,
            oldest,
        }
    }

    /// The index of the worker that fills this queue.
    #[inline]
    pub(crate) fn owner(&self) -> usize {
        self.owner
    }

    /// Adds `item` after the others.
    ///
    /// # Safety
    /// The calling thread is worker `owner` of the queue's pool.
    #[inline]
    pub(crate) unsafe fn push(&self, item: T) {
        self.items.push(item);
    }

    /// Takes the newest item.
    ///
    /// # Safety
    /// As for [`FifoQueue::push`].
    #[inline]
    pub(crate) unsafe fn pop_newest(&self) -> Option<T> {
        self.items.pop()
    }

    /// Takes the oldest item (one attempt).
    #[inline]
    pub(crate) fn take_oldest(&self) -> Steal<T> {
        self.oldest.steal()
    }
}
