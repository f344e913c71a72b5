//! A worker's life: start (pinning, the start handler), the run loop, the
//! shutdown phase, the exit handler.

use super::{WORKER_THREAD, WorkerThread, restricted};
use crate::job::JobRef;
use crate::metrics::bump;
use crate::pin::Placement;
use crate::publish::{Attached, Publication};
use crate::queue::LocalQueue;
use crate::registry::Registry;
use crate::rng::XorShift64Star;
use crate::sleep::Sleep;
use crate::sync::Arc;
use std::cell::Cell;
use std::ptr;

impl WorkerThread {
    /// The shutdown phase: runs queued jobs until no worker runs a job and
    /// no queue holds one. A worker may not leave as soon as *it* finds
    /// nothing: a job still running elsewhere may queue more work and wait
    /// for it. Who ends the phase is end.rs's count of running workers.
    pub(super) fn finish(&self) {
        let registry = &*self.registry;
        let end = registry.end();
        let sleep = &registry.sleep;
        'phase: loop {
            // Counted as running here.
            self.drain();
            match self.count_out() {
                CountedOut::Ended => return,
                CountedOut::WorkLeft => continue 'phase,
                CountedOut::OthersRun => {}
            }
            loop {
                if end.is_drained() {
                    return;
                }
                end.count_in();
                if let Some(job) = self.find_work() {
                    self.execute(job);
                    continue 'phase;
                }
                match self.count_out() {
                    CountedOut::Ended => return,
                    CountedOut::WorkLeft => continue 'phase,
                    // Others still run: sleep until one of them queues
                    // work, or the last one ends the phase.
                    CountedOut::OthersRun => {
                        sleep.start_searching();
                        Sleep::sleep(
                            sleep,
                            self.index,
                            end.drained(),
                            || registry.has_work_for(self.index),
                            || bump(&self.slot().counters.parks),
                        );
                        sleep.stop_searching(|| false);
                    }
                }
            }
        }
    }

    /// Counts this worker out of the running ones (end.rs). The last one
    /// out while the pool shuts down ends the shutdown phase: it lets the
    /// workers exit if no queue holds a job, or else counts itself back in
    /// to run what is left.
    pub(super) fn count_out(&self) -> CountedOut {
        let registry = &*self.registry;
        if !registry.end().count_out() {
            return CountedOut::OthersRun;
        }
        if registry.has_work() {
            registry.end().count_in();
            CountedOut::WorkLeft
        } else {
            registry.release_workers();
            CountedOut::Ended
        }
    }

    /// Runs jobs until no queue has any for this worker.
    pub(super) fn drain(&self) {
        while let Some(job) = self.find_work() {
            self.execute(job);
        }
    }
}

/// What a worker that counted itself out does next.
pub(super) enum CountedOut {
    /// It was the last one, and nothing was left: the pool is drained.
    Ended,
    /// It was the last one, and work was left: it is counted in again.
    WorkLeft,
    /// Other workers still run.
    OthersRun,
}

/// The body of a worker thread.
pub(crate) fn main_loop(
    registry: Arc<Registry>,
    index: usize,
    deque: LocalQueue<JobRef>,
    placement: Option<Placement>,
) {
    let pinned = placement.is_some_and(|placement| placement.apply());
    registry.slots().get(index).counters.set_pinned(pinned);

    let worker = WorkerThread::new(registry, index, deque);
    let _attached = worker.publication.attach();
    let _current = CurrentWorker::set(&worker);
    worker.registry.run_start_handler(index);

    worker.wait_until(worker.registry.end().shutting_down());
    worker.finish();
    worker.registry.run_exit_handler(index);
    // The exit handler may have spawned tasks onto this worker's deque.
    worker.drain();
    worker.registry.worker_exited();
}

impl WorkerThread {
    pub(super) fn new(
        registry: Arc<Registry>,
        index: usize,
        deque: LocalQueue<JobRef>,
    ) -> WorkerThread {
        // Alone: no thief can ask it for work, bar a spare standing in for
        // it, which asks like any thief (publish.rs).
        let alone = registry.num_threads() == 1;
        WorkerThread {
            deque,
            publication: Publication::new(&registry.slots().get(index).publish_request, alone),
            index,
            rng: XorShift64Star::new(index as u64),
            looks: Cell::new(0),
            last_victim: Cell::new(index),
            executing: Cell::new(0),
            net_pushes: Cell::new(0),
            job_mark: Cell::new(0),
            isolation: Cell::new(None),
            blocked: Cell::new(false),
            stack_origin: restricted::stack_origin(),
            stack_budget: registry.wait_stack_budget(),
            registry,
        }
    }
}

/// The worker state of a thread adopted by a pool (`use_current_thread`),
/// which runs no main loop: boxed, so that it stays put, and kept until the
/// thread exits, since frames of the thread may still borrow it after the
/// pool let the thread go.
struct Adopted {
    /// Present while the thread is the pool's worker (dropped first).
    roles: Option<(CurrentWorker, Attached)>,
    worker: Box<WorkerThread>,
}

#[cfg(not(any(loom, shuttle)))]
std::thread_local! {
    static ADOPTED: std::cell::RefCell<Vec<Adopted>> = const { std::cell::RefCell::new(Vec::new()) };
}
#[cfg(any(loom, shuttle))]
crate::sync::model_thread_local! {
    static ADOPTED: std::cell::RefCell<Vec<Adopted>> = std::cell::RefCell::new(Vec::new());
}

/// Makes the calling thread worker 0 of `registry`'s pool, with `deque`;
/// `false` if it is already a worker of a pool.
pub(crate) fn adopt_current_thread(registry: Arc<Registry>, deque: LocalQueue<JobRef>) -> bool {
    if WorkerThread::current().is_some() {
        return false;
    }
    let worker = Box::new(WorkerThread::new(registry, 0, deque));
    let roles = (CurrentWorker::set(&worker), worker.publication.attach());
    ADOPTED.with(|adopted| {
        adopted.borrow_mut().push(Adopted {
            roles: Some(roles),
            worker,
        })
    });
    true
}

/// If the calling thread was adopted by `registry`'s pool, lets it go,
/// after running what was broadcast to it (nobody else may). Returns
/// whether the thread may then wait for the pool's workers: it was not
/// running one of the pool's jobs (which a worker could be waiting on).
pub(crate) fn release_current_thread(registry: &Registry) -> bool {
    let Some(current) = WorkerThread::current_in(registry) else {
        return true;
    };
    let adopted_here = |entry: &Adopted| entry.roles.is_some() && ptr::eq(&*entry.worker, current);
    if !ADOPTED.with(|adopted| adopted.borrow().iter().any(adopted_here)) {
        // A worker the pool started, not an adopted thread.
        return false;
    }
    // Not under the borrow: the jobs are user code, which may use pilfer.
    while let Some(job) = current.take_broadcast() {
        current.execute(job);
    }
    ADOPTED.with(|adopted| {
        for entry in adopted.borrow_mut().iter_mut() {
            if adopted_here(entry) {
                entry.roles = None;
            }
        }
    });
    current.executing.get() == 0
}

/// Makes a worker the thread's current one until dropped: also when the
/// worker unwinds (an internal bug), so that no pointer to its freed state
/// is left in the thread-local.
pub(super) struct CurrentWorker(());

impl CurrentWorker {
    pub(super) fn set(worker: &WorkerThread) -> CurrentWorker {
        WORKER_THREAD.with(|cell| cell.set(worker));
        CurrentWorker(())
    }
}

impl Drop for CurrentWorker {
    fn drop(&mut self) {
        WORKER_THREAD.with(|cell| cell.set(ptr::null()));
    }
}
