//! Restricted waits: what a waiting worker may run when it must not run
//! just anything.
//!
//! A worker that waits (in `join`, a scope, `Task::join`, `install` on
//! another pool) normally runs any work it finds meanwhile, on top of the
//! waiting frame. Two things restrict that:
//!
//! * **Isolation** ([`isolate`](crate::isolate)): inside the region, a wait
//!   runs only jobs created inside it, so that a task holding a lock across
//!   a `join` never finds an unrelated task that takes the same lock
//!   running on its own stack.
//! * **Stack depth**: a wait inside a job, deeper than half the worker's
//!   stack (`Registry::wait_stack_budget`), runs only jobs created by the
//!   job it is part of, so that waits picking up unrelated work cannot nest until
//!   the stack overflows (a pool whose tasks `install` into another pool
//!   that installs back, for instance).
//!
//! **Which jobs.** Only this thread pushes onto its deque, and thieves
//! take its *oldest* jobs. `net_pushes` counts this thread's pushes minus
//! its pops; a *mark* is its value at some moment (when a job started:
//! `job_mark`; when `isolate` began: `isolation`). While `net_pushes` is
//! above the mark, the deque's newest job, if any, was pushed after the
//! mark: jobs pushed before it sit below, and thieves take those first.
//! A restricted wait pops only then, so it runs only jobs pushed by code
//! that ran on this thread since the mark, which (as that code's own waits
//! were restricted too) are descendants of the isolated region or of the
//! running job. Two things keep older work from being pushed late: frames
//! are all published before a mark is taken (`isolate`) or before a job
//! starts in a wait, and restricted code takes no batch from the injector
//! (those jobs would land on the deque, uncounted).
//!
//! A restricted wait never steals and never takes from the injector
//! (`spawn_fifo` inside a region queues on the deque, as `spawn` does, so
//! that its jobs stay within reach). The one exception is a job broadcast
//! to its worker: no other thread may run that share, and the broadcast,
//! which may be the region's own or one that a worker waiting on this
//! region made, cannot complete without it. When it finds nothing it may
//! run, a restricted wait spins briefly, then *blocks*: the pool is told,
//! a spare worker takes over this worker's duty (spares.rs, `spare.rs`),
//! and the worker parks until its latch is set or a broadcast reaches it.
//! So nothing waits for a job that only this worker could take: a
//! one-worker pool still gets through.
//!
//! Jobs created inside an isolated region (`join`'s second half, scope
//! tasks, spawned and submitted tasks) carry the isolation with them: on
//! whichever worker they run, they run inside a region of their own
//! ([`in_isolation`]).

use super::WorkerThread;
use super::wait::{SPIN_ROUNDS, YIELD_ROUNDS};
use crate::job::JobRef;
use crate::latch::Latch;
use crate::sleep::Sleep;
use crate::sync::{hint, thread};

/// What a restricted wait may run: jobs pushed onto this worker's deque
/// since `net_pushes` was `mark` (and jobs broadcast to it).
#[derive(Clone, Copy)]
pub(crate) struct Restriction {
    mark: u64,
}

impl WorkerThread {
    /// Whether a wait here is restricted, and to what.
    pub(crate) fn restriction(&self) -> Option<Restriction> {
        // Depth matters only for a wait inside a job: one outside every
        // job (a worker's main loop, `install` on an adopted thread) has
        // nothing of the pool's below it.
        if self.executing.get() > 0 && self.stack_is_deep() {
            // The running job started after (or with) the isolated region,
            // if any: its mark is the stricter one.
            Some(Restriction {
                mark: self.job_mark.get(),
            })
        } else {
            self.isolation.get().map(|mark| Restriction { mark })
        }
    }

    /// Whether this thread's stack is deeper than the waits' budget.
    fn stack_is_deep(&self) -> bool {
        stack_address().abs_diff(self.stack_origin) > self.stack_budget
    }

    /// Whether this thread runs inside an isolated region.
    #[inline]
    pub(crate) fn is_isolated(&self) -> bool {
        self.isolation.get().is_some()
    }

    /// Pops the deque's newest job if it was pushed since `mark`.
    fn take_job_since(&self, mark: u64) -> Option<JobRef> {
        // Compared as a signed difference: pops of older jobs (before the
        // restriction began) may have taken the count below the mark.
        if (self.net_pushes.get().wrapping_sub(mark) as i64) <= 0 {
            return None;
        }
        self.take_local_job()
    }

    /// A job this worker may run now in a wait, under `restriction`: its
    /// own since the mark, or a share of a broadcast (which no other thread
    /// may run, and without which the broadcast never completes).
    fn find_restricted_work(&self, restriction: Restriction) -> Option<JobRef> {
        self.take_job_since(restriction.mark)
            .or_else(|| self.take_broadcast())
    }

    /// Pops a job of this worker's own deque, as a wait may: any, or only
    /// one pushed since the restriction's mark (a `join` taking its second
    /// half back).
    #[inline]
    pub(crate) fn take_own_job(&self) -> Option<JobRef> {
        match self.restriction() {
            None => self.take_local_job(),
            Some(restriction) => self.take_job_since(restriction.mark),
        }
    }

    /// A job for `yield_now`: any, or what a restricted wait here may run.
    pub(crate) fn find_work_to_yield(&self) -> Option<JobRef> {
        match self.restriction() {
            None => self.find_work(),
            Some(restriction) => self.find_restricted_work(restriction),
        }
    }

    /// The restricted form of `wait_until` (module docs).
    pub(super) fn wait_restricted<L: Latch>(&self, latch: &L, restriction: Restriction) {
        let mut round = 0;
        while !latch.probe() {
            if let Some(job) = self.find_restricted_work(restriction) {
                self.execute(job);
                round = 0;
                continue;
            }
            if round < SPIN_ROUNDS {
                for _ in 0..(1 << round) {
                    hint::spin_loop();
                }
            } else if round < SPIN_ROUNDS + YIELD_ROUNDS {
                thread::yield_now();
            } else {
                // Nothing here this worker may run: block until the latch
                // is set, with a spare on duty meanwhile. Only this thread
                // pushes onto its deque, so nothing it may run can appear.
                self.blocking(|| {
                    Sleep::block(&self.registry.sleep, self.index, latch, || {
                        !self.slot().broadcasts.is_empty()
                    })
                });
            }
            round += 1;
        }
    }

    /// Runs `f` in an isolated region on this worker (`isolate`).
    pub(crate) fn isolated<R>(&self, f: impl FnOnce() -> R) -> R {
        // A frame recorded before the region but published inside it would
        // look like a job of the region: publish them all now.
        self.publish_all_frames();
        let mark = self.net_pushes.get();
        let _restore = Restore {
            worker: self,
            isolation: self.isolation.replace(Some(mark)),
            job_mark: self.job_mark.replace(mark),
        };
        f()
    }
}

/// Puts the isolation and job mark back as they were when a region ends,
/// also when it unwinds.
struct Restore<'a> {
    worker: &'a WorkerThread,
    isolation: Option<u64>,
    job_mark: u64,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        self.worker.isolation.set(self.isolation);
        self.worker.job_mark.set(self.job_mark);
    }
}

/// Runs `f` (a job created inside an isolated region) in a region of its
/// own, unless the thread is in one already (then it is the region that
/// created it, or one nested inside it).
pub(crate) fn in_isolation<R>(f: impl FnOnce() -> R) -> R {
    match WorkerThread::current() {
        Some(worker) if !worker.is_isolated() => worker.isolated(f),
        _ => f(),
    }
}

/// An address in the caller's stack frame: how deep the stack is.
#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The stack position where a worker's state is created (its thread's
/// start, or the `build` call that adopted the thread).
pub(super) fn stack_origin() -> usize {
    stack_address()
}
