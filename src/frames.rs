//! Pending join frames: the second halves of a worker's open `join`s, kept
//! private until a thief could use them.
//!
//! `join(a, b)` records `b`'s job here and runs `a`. If nobody asked for work
//! meanwhile, `b` is still private when `a` returns and the worker simply
//! calls it: no deque traffic, no atomic read-modify-write, no fence.
//!
//! A thief that finds a worker's deque empty raises that worker's
//! `publish_request` flag; the worker checks the flag (one relaxed load of
//! its own cache line) on each `join`, and when it is raised moves its
//! *oldest* private frame — the largest piece of work it has — onto its
//! crossbeam deque, where any thief can take it. Before a worker blocks
//! (`wait_until`) it publishes all of them, so nothing stays hidden while it
//! waits.
//!
//! Only a job's oldest few pending joins are recorded here (its window,
//! `OPEN_FRAME_LIMIT` in worker.rs); past them a `join` records nothing and
//! calls both halves in order, unless a thief asked for work: then it
//! records its frame, and the request publishes the oldest private one.
//! Recording every join would cost a few nanoseconds each; the price of not
//! doing so is that once a window's frames are all published, requests are
//! answered with smaller pieces (the current join's `b`).
//!
//! Frames are published oldest first, so at any time the published ones are
//! a prefix of the stack, `frames[..published]`. A `join` returning to its
//! frame at index `i` finds it private exactly when `i >= published`.
//!
//! Lazy publication of this kind follows the private-deques work-stealing
//! of Acar, Charguéraud and Rainey ("Scheduling parallel programs by work
//! stealing with private deques", PPoPP 2013): thieves *request* work and the
//! owner answers at its next scheduling point.

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

    /// How many frames are open (recorded and not yet popped).
    #[inline]
    pub(crate) fn open(&self) -> usize {
        // SAFETY: as in `push`.
        unsafe { (*self.frames.get()).len() }
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
