//! The three queues of the scheduler, behind a small interface.
//!
//! * [`LocalQueue`]: one per worker, owned by it. Only the owner pushes and
//!   pops, at the LIFO end, so the work it touched last (hot in its cache)
//!   runs first. The type is `!Sync`: the owner end cannot be shared.
//! * [`StealQueue`]: a handle on a peer's `LocalQueue`, taking from the
//!   other (FIFO) end, where the oldest and usually largest work sits.
//! * [`GlobalQueue`]: the injector, the entry point for threads outside the
//!   pool; workers take batches from it into their own `LocalQueue`. Each
//!   worker also has two of them: its FIFO queue (`spawn_fifo`) and its
//!   broadcast queue (jobs for that worker only).
//!
//! Normally these wrap crossbeam-deque's Chase-Lev deque ("Dynamic Circular
//! Work-Stealing Deque", Chase and Lev, SPAA 2005; its weak-memory version,
//! Lê et al., PPoPP 2013) and its lock-free injector. crossbeam uses std
//! atomics that loom cannot see, so under `--cfg loom` each queue is a
//! `Mutex<VecDeque>` with the same interface: the models check the
//! scheduler's protocols *around* the queues, taking the queues' own
//! linearizability from crossbeam's tests.

/// The result of one attempt to take work from a shared queue.
pub(crate) enum Steal<T> {
    /// Nothing was there.
    Empty,
    /// Took one item.
    Success(T),
    /// Lost a race with another taker; trying again may succeed. (The
    /// loom stand-ins are locked, so they never lose one.)
    #[cfg_attr(loom, allow(dead_code))]
    Retry,
}

#[cfg(not(loom))]
mod imp {
    use super::Steal;
    use crossbeam_deque as deque;

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
            self.0.push(item);
        }

        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
    }

    pub(crate) struct StealQueue<T>(deque::Stealer<T>);

    impl<T> StealQueue<T> {
        #[inline]
        pub(crate) fn steal(&self) -> Steal<T> {
            convert(self.0.steal())
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
            self.0.push(item);
        }

        /// Moves a batch into `dest` and returns one item of it.
        #[inline]
        pub(crate) fn steal_batch_and_pop(&self, dest: &LocalQueue<T>) -> Steal<T> {
            convert(self.0.steal_batch_and_pop(&dest.0))
        }

        /// Takes the oldest item.
        #[inline]
        pub(crate) fn steal(&self) -> Steal<T> {
            convert(self.0.steal())
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::Steal;
    use crate::sync::{Arc, Mutex, lock};
    use std::collections::VecDeque;
    use std::marker::PhantomData;

    /// Loom stand-ins move at most this many items per injector batch,
    /// enough to exercise batching without growing the state space.
    const BATCH: usize = 2;

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
