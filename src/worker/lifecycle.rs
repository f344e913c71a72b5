//! A worker's life: start (pinning, the start handler), the run loop, the
//! shutdown phase, the exit handler.

use super::{WORKER_THREAD, WorkerThread};
use crate::job::JobRef;
use crate::latch::Latch;
use crate::metrics::bump;
use crate::pin::Placement;
use crate::publish::Publication;
use crate::queue::LocalQueue;
use crate::registry::Registry;
use crate::rng::XorShift64Star;
use crate::sleep::Sleep;
use crate::sync::Arc;
use crate::sync::atomic::Ordering;
use std::cell::Cell;
use std::ptr;

impl WorkerThread {
    /// The shutdown phase: runs queued jobs until no worker runs a job and
    /// no queue holds one. A worker may not leave as soon as *it* finds
    /// nothing: a job still running elsewhere may queue more work and wait
    /// for it.
    ///
    /// `registry.running` counts the workers not idle in this phase; a
    /// worker counts itself back in *before* it looks for work. The worker
    /// that counts itself out last checks the queues: nothing can be queued
    /// unseen, since every push came from a worker that was counted then,
    /// and the AcqRel read-modify-writes on `running` carry each push to
    /// that last check. Empty queues there mean the pool is done.
    fn finish(&self) {
        let registry = &*self.registry;
        let sleep = &registry.sleep;
        loop {
            // Counted as running here.
            self.drain();
            let mut last = registry.running.fetch_sub(1, Ordering::AcqRel) == 1;
            loop {
                if last && !registry.has_work() {
                    registry.release_workers();
                    return;
                }
                if registry.drained.probe() {
                    return;
                }
                registry.running.fetch_add(1, Ordering::AcqRel);
                if let Some(job) = self.find_work() {
                    self.execute(job);
                    break;
                }
                last = registry.running.fetch_sub(1, Ordering::AcqRel) == 1;
                if !last {
                    // Others still run: sleep until one of them queues
                    // work, or the last one closes the pool.
                    sleep.start_searching();
                    Sleep::sleep(
                        sleep,
                        self.index,
                        &registry.drained,
                        || registry.has_work(),
                        || bump(&self.slot().counters.parks),
                    );
                    sleep.stop_searching(|| registry.has_work());
                }
            }
        }
    }

    /// Runs jobs until no queue has any for this worker.
    fn drain(&self) {
        while let Some(job) = self.find_work() {
            self.execute(job);
        }
    }
}

/// The body of a worker thread.
pub(crate) fn main_loop(
    registry: Arc<Registry>,
    index: usize,
    deque: LocalQueue<JobRef>,
    placement: Option<Placement>,
) {
    let pinned = placement.is_some_and(|placement| placement.apply());
    registry.slots()[index].counters.set_pinned(pinned);

    let alone = registry.num_threads() == 1;
    let worker = WorkerThread {
        deque,
        publication: Publication::new(&registry.slots()[index].publish_request, alone),
        index,
        rng: XorShift64Star::new(index as u64),
        looks: Cell::new(0),
        registry,
    };
    let _attached = worker.publication.attach();
    let _current = CurrentWorker::set(&worker);
    worker.registry.run_start_handler(index);

    worker.wait_until(&worker.registry.shutting_down);
    worker.finish();
    worker.registry.run_exit_handler(index);
    // The exit handler may have spawned tasks onto this worker's deque.
    worker.drain();
    worker.registry.worker_exited();
}

/// Makes a worker the thread's current one until dropped: also when the
/// worker unwinds (an internal bug), so that no pointer to its freed state
/// is left in the thread-local.
struct CurrentWorker(());

impl CurrentWorker {
    fn set(worker: &WorkerThread) -> CurrentWorker {
        WORKER_THREAD.with(|cell| cell.set(worker));
        CurrentWorker(())
    }
}

impl Drop for CurrentWorker {
    fn drop(&mut self) {
        WORKER_THREAD.with(|cell| cell.set(ptr::null()));
    }
}
