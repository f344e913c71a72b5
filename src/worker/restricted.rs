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
//!   stack (`Registry::wait_stack_budget`), runs only jobs pushed on this
//!   worker's deque since that job started, so that waits picking up
//!   unrelated work cannot nest until the stack overflows (a pool whose
//!   tasks `install` into another pool that installs back, for instance).
//!
//! **Which jobs.** Only this thread pushes onto its deque, and thieves
//! take its *oldest* jobs. `net_pushes` counts this thread's pushes minus
//! its pops: the deque's back index, as the owner sees it. A *mark* is its
//! value at some moment (when a job started: `job_mark`; when `isolate`
//! began: `isolation`). While `net_pushes` is above the mark, the deque's
//! newest job, if any, sits at or above the mark's index, so it was pushed
//! after the mark: jobs pushed before it sit below, and thieves take those
//! first. A restricted wait pops only then. What keeps the count exact:
//! pushes of batches from the injector happen only outside every job (a
//! wait inside a job takes one job from the injector at a time), and a
//! pop below the running job's mark (in one of its earlier, unrestricted
//! waits) lowers the mark with it, since the job's next pushes land there.
//! What keeps older work from being pushed after a mark: frames are all
//! published before `isolate` takes its mark, before a job starts in a
//! wait, and before `yield_now` runs one.
//!
//! Inside an isolated region every wait is restricted, so the code that
//! ran on this thread since the mark is the region's own or jobs it
//! pushed: a restricted wait there runs only the region's descendants.
//! Under the stack-depth rule alone the running job's earlier waits may
//! not have been restricted (they were shallower), so a deep wait may run
//! a job they pushed onto the deque (a task they ran that spawned): a
//! bounded amount of other work, whose own waits are deep and restricted
//! in turn. A FIFO stand-in pushed since the mark runs, here, the newest
//! job of its queue, never an older one (fifo.rs).
//!
//! A restricted wait never steals and never takes from the injector
//! (`spawn_fifo` inside a region queues on the deque, as `spawn` does, so
//! that its jobs stay within reach). The one exception is a job broadcast
//! to its worker: no other thread may run that share, and the broadcast,
//! which may be the region's own or one that a worker waiting on this
//! region made, cannot complete without it. Inside an isolated region the
//! share runs as a region of its own, and what it leaves on the deque goes
//! to the injector, so its tasks do not become the region's. Under the
//! stack-depth rule alone it simply runs, as a job of its own (its waits
//! are as deep, so restricted to its work); what it leaves is a bounded
//! amount of other work, as above, and running it without a region of its
//! own keeps the frames of a chain of broadcasts as small past the budget
//! as before it. When it finds nothing it may run, a
//! restricted wait spins briefly, then *blocks*: the pool is told, a spare
//! worker takes over this worker's duty (spares/, `blocking.rs`), and the
//! worker parks until its latch is set or a broadcast reaches it. So
//! nothing waits for a job that only this worker could take: a one-worker
//! pool still gets through.
//!
//! Jobs created inside an isolated region (`join`'s second half, scope
//! tasks, spawned and submitted tasks) carry the isolation with them: on
//! whichever worker they run, they run inside a region of their own
//! ([`in_isolation`]). A `Task` polled inside a region does not run its
//! closure inline, as it otherwise would on its own pool.

use super::WorkerThread;
use crate::job::JobRef;
use crate::latch::Latch;
use crate::sleep::Sleep;
use crate::sync::Backoff;

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

    /// Runs one job this worker may run in a wait under `restriction`:
    /// one of its own since the mark, or a share of a broadcast (which no
    /// other thread may run, and without which the broadcast never
    /// completes). Returns whether there was one.
    #[inline]
    fn run_restricted_work(&self, restriction: Restriction) -> bool {
        if let Some(job) = self.take_job_since(restriction.mark) {
            self.execute(job);
            true
        } else if let Some(share) = self.take_broadcast() {
            if self.is_isolated() {
                self.run_broadcast_share(share);
            } else {
                self.execute(share);
            }
            true
        } else {
            false
        }
    }

    /// Runs a broadcast share inside an isolated wait, as a region of its
    /// own: it is not the region's work, so what it leaves on the
    /// deque (tasks it spawned and nobody took yet) must not become the
    /// wait's. Those go to the injector, for any worker.
    #[cold]
    #[inline(never)]
    fn run_broadcast_share(&self, share: JobRef) {
        // The frames of the waiting code go on the deque before the mark
        // (as `isolated` would put them there after it): they are the
        // wait's, not the share's leftovers.
        self.publish_all_frames();
        let mark = self.net_pushes.get();
        self.isolated(|| self.execute(share));
        while let Some(left) = self.take_job_since(mark) {
            self.registry.inject(left);
        }
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

    /// Runs one job for `yield_now` (any, or one a restricted wait here may
    /// run) or, with `local`, for `yield_local` (of its own deque or
    /// broadcast to it); returns whether there was one.
    pub(crate) fn yield_one(&self, local: bool) -> bool {
        // The job runs above this frame: nothing recorded below may be
        // published after its mark (module docs).
        self.publish_all_frames();
        if let Some(restriction) = self.restriction() {
            return self.run_restricted_work(restriction);
        }
        let job = if local {
            self.take_local_job().or_else(|| self.take_broadcast())
        } else {
            self.find_work()
        };
        job.map(|job| self.execute(job)).is_some()
    }

    /// The restricted form of `wait_until` (module docs).
    pub(super) fn wait_restricted<L: Latch>(&self, latch: &L, restriction: Restriction) {
        let mut backoff = Backoff::new();
        while !latch.probe() {
            if self.run_restricted_work(restriction) {
                backoff.reset();
            } else if !backoff.snooze() {
                self.block_until(latch);
            }
        }
    }

    /// A restricted wait has nothing here it may run: blocks until `latch`
    /// is set (or a broadcast share arrives), with a spare on duty
    /// meanwhile. Only this thread pushes onto its deque, so nothing it may
    /// run can appear there. Out of line: the waits of a deep chain keep
    /// their frames small.
    #[cold]
    #[inline(never)]
    fn block_until<L: Latch>(&self, latch: &L) {
        self.blocking(|| {
            Sleep::block(&self.registry.sleep, self.index, latch, || {
                !self.slot().broadcasts.is_empty()
            })
        });
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
        self.worker.restore_job_mark(self.job_mark);
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
