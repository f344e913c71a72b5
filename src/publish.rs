//! Lazy publication: when the second half of a `join` becomes visible to
//! thieves. This module owns the policy; the rest of the crate links here.
//!
//! # The policy
//!
//! `join(a, b)` runs `a` on the calling worker and offers `b` to thieves.
//! Offering costs a deque push (and a fence, to wake a sleeper) that most
//! fine-grained joins never need: nobody is idle to take `b`. So `b` is
//! offered lazily, in three steps.
//!
//! 1. **Recorded or not.** A job records a *frame* for `b` (a `JobRef` on
//!    the worker's private [`FrameStack`]) only in the top
//!    [`WINDOW_DEPTH`] levels of its tree of joins, its *window*: a `join`
//!    records when fewer than that many recording joins are in progress
//!    below it on the stack (since the job started). Deeper joins, the vast
//!    majority in recursive work, record nothing and call `a`, then `b`: a
//!    function call and a check of one flag. A job run while
//!    its worker waits (on top of the joins of the job that waits) gets a
//!    window of its own.
//! 2. **Published or private.** The frames of a window's first
//!    [`EAGER_DEPTH`] levels are published at once: they are the job's
//!    largest pieces, and a thief should not have to wait for them. The
//!    rest stay private until a thief asks.
//! 3. **Thieves ask, owners publish.** A thief that finds a worker's deque
//!    empty raises that worker's [`PublishRequest`]. The owner sees it
//!    at its next `join` and publishes its *oldest* private frame, the
//!    largest piece of work it has. Past the window, a request makes the
//!    next `join` record its own frame first, so the request is answered
//!    even when every frame of the window is already out (with that join's
//!    `b`, a smaller piece). Before a worker waits on anything it publishes
//!    all its frames, so nothing stays hidden while it waits.
//!
//! Frames are published oldest first, so the published ones are always a
//! prefix of the stack (see [`FrameStack`]); a `join` returning to its
//! frame finds it private exactly when it is above that prefix, and then
//! calls `b` right there.
//!
//! # What a `join` reads
//!
//! Two things decide whether a `join` takes the slow path: whether the
//! running job's window has room (or the thread is not a worker at all),
//! which the owner tracks as recording joins start and end, and the
//! *request*, in the pool's shared state ([`PublishRequest`]): raised by
//! thieves, cleared by the owner as it publishes. The owner folds the two
//! into one thread-local pointer, `SIGNAL`: while the window has room it
//! points at a request raised for good, otherwise at the worker's own
//! request. So the frame-less `join` is one thread-local load, the load of
//! the flag it points at and one branch, with no read-modify-write: the
//! window's edge is crossed often in a recursion, and a locked instruction
//! per crossing on a line that thieves poll cost more than it saved
//! (BENCHMARKS.md). The request is a hint read with relaxed loads: a
//! request seen late is answered late; every guarantee that needs more
//! goes through the sleep protocol (`sleep.rs`), not through this flag.
//!
//! A pool's only worker never records (its limit is 0) and nobody asks it
//! for work, so all its joins are frame-less.
//!
//! Lazy publication of this kind follows the private-deques work stealing
//! of Acar, Charguéraud and Rainey ("Scheduling parallel programs by work
//! stealing with private deques", PPoPP 2013): thieves *request* work and
//! the owner answers at its next scheduling point. The figures behind the
//! constants are in BENCHMARKS.md.

use crate::frames::FrameStack;
use crate::job::JobRef;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::cell_thread_local;
use std::cell::Cell;
use std::ptr;

/// The frames of a window's first this many levels are published at once.
const EAGER_DEPTH: usize = 4;

/// A job records frames only in the top this-many levels of its joins.
const WINDOW_DEPTH: usize = 8;

/// A worker's request flag (module docs). Lives in the pool's shared
/// state, one per worker, on a cache line of its own.
pub(crate) struct PublishRequest {
    raised: AtomicBool,
}

impl PublishRequest {
    pub(crate) fn new() -> PublishRequest {
        PublishRequest {
            raised: AtomicBool::new(false),
        }
    }

    /// A thief asks the owner to publish work. A load first, so thieves
    /// polling an idle peer do not keep taking its cache line.
    #[inline]
    pub(crate) fn raise(&self) {
        // Relaxed: a hint (module docs).
        if !self.raised.load(Ordering::Relaxed) {
            self.raised.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
    }

    /// Clears a request the owner is answering. A store that overwrites a
    /// request raised meanwhile loses nothing: the owner is publishing, and
    /// the push wakes a sleeping thief (`sleep.rs`).
    #[inline]
    fn clear(&self) {
        if self.is_raised() {
            self.raised.store(false, Ordering::Relaxed);
        }
    }
}

/// A request raised for good and never cleared: where `SIGNAL` points
/// while a thread's joins take the slow path whatever the thieves say.
#[cfg(not(any(loom, shuttle)))]
static RAISED_FOR_GOOD: PublishRequest = PublishRequest {
    raised: AtomicBool::new(true),
};

/// The request raised for good (the models keep one per thread: their
/// atomics cannot be built in a `static`).
#[cfg(not(any(loom, shuttle)))]
#[inline(always)]
const fn raised_for_good() -> *const PublishRequest {
    &raw const RAISED_FOR_GOOD
}

#[cfg(any(loom, shuttle))]
fn raised_for_good() -> *const PublishRequest {
    crate::sync::model_thread_local! {
        static RAISED_FOR_GOOD: PublishRequest = PublishRequest {
            raised: AtomicBool::new(true),
        };
    }
    RAISED_FOR_GOOD.with(|request| request as *const PublishRequest)
}

// `SIGNAL`: the flag this thread's `join` reads. Its worker's request while
// the running job's window is full, else the request raised for good: the
// window has room, or the thread is not an attached worker.
cell_thread_local!(static SIGNAL: *const PublishRequest = raised_for_good());
// This thread's worker's request while the worker is attached; null
// otherwise. Only `update_room` and `attach` read it, never `join`.
cell_thread_local!(static REQUEST: *const PublishRequest = ptr::null());

/// Whether a `join` on this thread must take the slow path: the thread is
/// not a worker, its worker's window has room, or a thief asked. One
/// thread-local load and the load of the flag it points at.
#[inline(always)]
pub(crate) fn join_is_slow() -> bool {
    let signal = SIGNAL.with(Cell::get);
    // SAFETY: `SIGNAL` points either at the request raised for good, which
    // lives as long as the program (the models: as long as this thread), or
    // at this thread's worker's request, set only while that worker is
    // attached (`update_room`) and reset before it detaches (`Attached`);
    // the request lives in the worker's registry, which the worker keeps
    // alive meanwhile.
    unsafe { (*signal).is_raised() }
}

/// A worker's side of the policy: its frames, its window, and its request.
/// Owned by the `WorkerThread` and only touched by its thread.
pub(crate) struct Publication {
    frames: FrameStack,
    /// This worker's request flag, in the registry the worker keeps alive.
    request: *const PublishRequest,
    /// `WINDOW_DEPTH`, or 0 for a pool's only worker.
    limit: usize,
    /// Recording joins in progress on this thread's stack.
    depth: Cell<usize>,
    /// `depth` when the running job started (the joins below it belong to
    /// the jobs under it on this thread's stack).
    base: Cell<usize>,
}

/// The window of the job a worker was running before it started another;
/// given back to [`Publication::leave`].
pub(crate) struct OuterWindow {
    base: usize,
}

/// A join that recorded a frame: in progress until dropped (also when it
/// unwinds), which closes its level of the window.
pub(crate) struct RecordedJoin<'a> {
    publication: &'a Publication,
    /// The frame's index, for [`Publication::pop_frame`].
    frame: usize,
}

impl Drop for RecordedJoin<'_> {
    #[inline]
    fn drop(&mut self) {
        let publication = self.publication;
        publication.depth.set(publication.depth.get() - 1);
        publication.update_room();
    }
}

impl Publication {
    /// The state of a worker that is `alone` in its pool (no thief can ask
    /// it for work) or not, asked for work through `request`, which must
    /// outlive the returned value.
    pub(crate) fn new(request: &PublishRequest, alone: bool) -> Publication {
        Publication {
            frames: FrameStack::new(),
            request,
            limit: if alone { 0 } else { WINDOW_DEPTH },
            depth: Cell::new(0),
            base: Cell::new(0),
        }
    }

    /// Makes `join` on the calling thread (the worker's) follow this
    /// worker's window and request, until the returned guard drops.
    pub(crate) fn attach(&self) -> Attached {
        REQUEST.with(|cell| cell.set(self.request));
        self.update_room();
        Attached(())
    }

    #[inline]
    fn request(&self) -> &PublishRequest {
        // SAFETY: points into the registry that the owning worker keeps
        // alive for as long as this value exists (`new`'s contract).
        unsafe { &*self.request }
    }

    /// Whether the running job's window has room for another level.
    #[inline]
    fn has_room(&self) -> bool {
        self.depth.get() < self.base.get() + self.limit
    }

    /// Whether a `join` of the running job records a frame (its window has
    /// room, or a thief asked).
    #[inline]
    pub(crate) fn wants_frame(&self) -> bool {
        self.has_room() || self.request().is_raised()
    }

    /// Records the frame of a `join`'s `b`. Returns the join, in progress
    /// until dropped, and the frame to publish now, if any: the oldest
    /// private one, within the window's eager levels or when a thief asked.
    #[inline]
    pub(crate) fn record(&self, job: JobRef) -> (RecordedJoin<'_>, Option<JobRef>) {
        let level = self.depth.get();
        let frame = self.frames.push(job);
        let publish = if level < self.base.get() + EAGER_DEPTH || self.request().is_raised() {
            self.request().clear();
            self.frames.publish_oldest()
        } else {
            None
        };
        self.depth.set(level + 1);
        self.update_room();
        let recorded = RecordedJoin {
            publication: self,
            frame,
        };
        (recorded, publish)
    }

    /// Removes `join`'s frame (the newest); `true` if it was never
    /// published, so that its job may be run right here.
    #[inline]
    pub(crate) fn pop_frame(&self, join: &RecordedJoin<'_>) -> bool {
        self.frames.pop(join.frame)
    }

    /// Publishes every private frame, oldest first (the worker is about to
    /// wait): returns them, to be pushed in that order.
    pub(crate) fn publish_all(&self) -> impl Iterator<Item = JobRef> + '_ {
        std::iter::from_fn(|| self.frames.publish_oldest())
    }

    /// A job starts on this worker: it gets a window of its own above the
    /// joins in progress now. Returns the window to restore when it is
    /// done.
    #[inline]
    pub(crate) fn enter(&self) -> OuterWindow {
        let outer = OuterWindow {
            base: self.base.replace(self.depth.get()),
        };
        self.update_room();
        outer
    }

    /// The job started by [`enter`](Publication::enter) is done (its joins
    /// all returned).
    #[inline]
    pub(crate) fn leave(&self, outer: OuterWindow) {
        self.base.set(outer.base);
        self.update_room();
    }

    /// Points this thread's `SIGNAL` where the window says (owner's thread
    /// only: plain thread-local accesses), while this worker is attached:
    /// a thread that a pool let go inside one of its jobs
    /// (`use_current_thread`) finishes that job detached, and its `SIGNAL`
    /// must stay on the request raised for good (`join_is_slow`).
    #[inline]
    fn update_room(&self) {
        if REQUEST.with(Cell::get) == self.request {
            let signal = if self.has_room() {
                raised_for_good()
            } else {
                self.request
            };
            SIGNAL.with(|cell| cell.set(signal));
        }
    }
}

/// Detaches the thread from its worker's window and request when dropped:
/// also when the worker unwinds, so that no pointer to a freed request is
/// left behind.
pub(crate) struct Attached(());

impl Drop for Attached {
    fn drop(&mut self) {
        SIGNAL.with(|cell| cell.set(raised_for_good()));
        REQUEST.with(|cell| cell.set(ptr::null()));
    }
}
