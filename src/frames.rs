//! The stack of a worker's pending join frames: the second halves of its
//! recording `join`s (when a `join` records one, and when a frame is
//! published, is the policy of publish.rs).
//!
//! Frames are published oldest first, so at any time the published ones are
//! a prefix of the stack, `frames[..published]`. A `join` returning to its
//! frame at index `i` finds it private exactly when `i >= published`, and
//! then calls it inline: no deque traffic, no atomic read-modify-write, no
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
    /// `true` when it was never published (the caller may run it inline).
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
