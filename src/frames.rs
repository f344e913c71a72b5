//! The stack of a worker's pending join frames: the second halves of its
//! recording `join`s (when a `join` records one, and when a frame is
//! published, is the policy of publish.rs).
//!
//! Frames are published oldest first, so at any time the published ones are
//! a prefix of the stack, `frames[..published]`. A `join` returning to its
//! frame at index `i` finds it private exactly when `i >= published`, and
//! then calls it right there: no deque traffic, no atomic read-modify-write, no
//! fence.

use crate::job::JobRef;
use std::cell::{Cell, UnsafeCell};

/// A worker's stack of open join frames. Owned by one `WorkerThread` and
/// only ever touched by its thread (the type is `!Sync`).
pub(crate) struct FrameStack {
    frames: UnsafeCell<Vec<JobRef>>,
    /// How many frames, from the bottom, have been published.
    published: Cell<usize>,
}

impl FrameStack {
    pub(crate) fn new() -> FrameStack {
        FrameStack {
            frames: UnsafeCell::new(Vec::with_capacity(64)),
            published: Cell::new(0),
        }
    }

    /// Records a frame; returns its index, to be passed back to `pop`.
    #[inline]
    pub(crate) fn push(&self, job: JobRef) -> usize {
        // SAFETY: `FrameStack` is `!Sync` and no method lets a reference to
        // the vector escape, so this is the only live access.
        let frames = unsafe { &mut *self.frames.get() };
        frames.push(job);
        frames.len() - 1
    }

    /// Removes the top frame, which must be the one at `index`. Returns
    /// `true` when it was never published (the caller may run it itself).
    #[inline]
    pub(crate) fn pop(&self, index: usize) -> bool {
        // SAFETY: as in `push`.
        let frames = unsafe { &mut *self.frames.get() };
        // A real check, not a debug one: `set_len` below relies on it.
        assert_eq!(
            frames.len(),
            index + 1,
            "pilfer: join frames popped out of order"
        );
        // SAFETY: `index < len` (the frame at `index` is the top one, pushed
        // by this caller and not popped since); `JobRef` is `Copy`.
        unsafe { frames.set_len(index) };
        if index < self.published.get() {
            self.published.set(index);
            false
        } else {
            true
        }
    }

    /// Marks the oldest private frame as published and returns it.
    #[inline]
    pub(crate) fn publish_oldest(&self) -> Option<JobRef> {
        // SAFETY: as in `push`.
        let frames = unsafe { &*self.frames.get() };
        let published = self.published.get();
        let job = *frames.get(published)?;
        self.published.set(published + 1);
        Some(job)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::FrameStack;
    use crate::job::{self, JobRef};
    use std::cell::Cell;

    thread_local! {
        static RAN: Cell<usize> = const { Cell::new(0) };
    }

    /// A distinct job per `id`, that records it ran.
    fn job(id: usize) -> JobRef {
        // A closure of one word: packed into the `JobRef`, no allocation.
        let record = move || RAN.with(|ran| ran.set(ran.get() + id));
        // SAFETY: captures a `usize` only; each test runs every job it made
        // exactly once (or none: a packed job owns nothing to leak).
        unsafe { job::detached_job(record) }
    }

    #[test]
    fn frames_are_published_oldest_first() {
        let frames = FrameStack::new();
        let indices: Vec<usize> = (1..=3).map(|id| frames.push(job(id))).collect();
        assert_eq!(indices, [0, 1, 2]);
        for expected in [1, 2] {
            let published = frames.publish_oldest().expect("a private frame");
            RAN.with(|ran| ran.set(0));
            // SAFETY: each published job is run once, here.
            unsafe { published.execute() };
            assert_eq!(RAN.with(Cell::get), expected, "not the oldest frame");
        }
        // The published ones are a prefix: the top frame is still private,
        // the two below it are not.
        assert!(frames.pop(2), "the newest frame was never published");
        assert!(!frames.pop(1));
        assert!(!frames.pop(0));
        assert!(frames.publish_oldest().is_none(), "the stack is empty");
    }

    #[test]
    fn a_frame_pushed_after_publication_is_private() {
        let frames = FrameStack::new();
        frames.push(job(1));
        assert!(frames.publish_oldest().is_some());
        assert!(!frames.pop(0));
        // The published count fell back with the pop: a new frame at the
        // same index is private again.
        assert_eq!(frames.push(job(2)), 0);
        assert!(frames.pop(0));
    }

    #[test]
    #[should_panic(expected = "popped out of order")]
    fn frames_pop_in_order_only() {
        let frames = FrameStack::new();
        frames.push(job(1));
        frames.push(job(2));
        frames.pop(0);
    }
}
