//! What a broadcast closure is told about where it runs.

use std::marker::PhantomData;

/// Where a closure passed to [`broadcast`](crate::broadcast) (or one of its
/// forms) runs: each worker of the pool runs it once, with its own index.
#[derive(Debug)]
pub struct BroadcastContext<'a> {
    index: usize,
    num_threads: usize,
    /// Not `Send`: a context is only valid on the worker it describes.
    _marker: PhantomData<&'a mut *mut ()>,
}

impl BroadcastContext<'_> {
    pub(crate) fn new(index: usize, num_threads: usize) -> Self {
        BroadcastContext {
            index,
            num_threads,
            _marker: PhantomData,
        }
    }

    /// The index of the worker running the closure (`0..num_threads`), as
    /// [`current_thread_index`](crate::current_thread_index) would say.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many workers run the closure: the pool's thread count.
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }
}
