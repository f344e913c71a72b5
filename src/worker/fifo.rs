//! FIFO spawns (`spawn_fifo`, `ScopeFifo::spawn_fifo`): jobs that a worker
//! starts in the order it spawned them, while its deque stays LIFO.
//!
//! **Queues.** A job goes to a FIFO queue of the spawning worker's, and a
//! *stand-in* goes onto its deque. Each worker has one queue for its
//! detached `spawn_fifo`s (in its slot of the registry), and each FIFO
//! scope one per worker that spawns into it ([`ScopeQueues`]), as in
//! rayon-core: the FIFO order of one scope does not reach into another, and
//! a stand-in pushed by a scope's task runs a job of that scope.
//!
//! **Stand-ins.** Whoever runs a stand-in (the worker itself, or a thief)
//! takes the *oldest* job of the stand-in's queue and runs it. Every job
//! comes with exactly one stand-in, and every stand-in takes exactly one
//! job, so each job runs once and the jobs of one queue start in push
//! order, whichever stand-in runs first.
//!
//! **Restricted waits.** A stand-in run by the queue's own worker where
//! its waits are restricted (inside `isolate`, or deeper than the stack
//! budget: restricted.rs) takes the queue's *newest* job instead. That job
//! was pushed after the stand-in, or with it: the stand-in is the newest of
//! its queue's on the deque (a restricted wait pops only jobs pushed since
//! its mark, and nothing older is pushed after one), so every stand-in
//! pushed after it was popped by this worker and took a job; the queue
//! holds as many jobs as stand-ins are left, and the ones older than ours
//! cannot have taken fewer than their own number of old jobs. Run oldest
//! first instead, a deep wait would pull in the oldest job of the queue,
//! spawned long before its mark, whose own deep wait pulls in the next: a
//! tree of FIFO scopes stacked its whole breadth on one stack. Near the
//! stack budget, then, a worker starts its own FIFO jobs newest first.

use super::{WorkerThread, take_from_queue};
use crate::job::{self, JobRef};
use crate::queue::FifoQueue;
use crate::table::LazyTable;

impl WorkerThread {
    /// Queues `job` on `queue`, one of this worker's FIFO queues, with its
    /// stand-in on the deque.
    ///
    /// # Safety
    /// `queue` outlives every stand-in it is given: it is this worker's
    /// slot's, or a scope's that waits for all of its jobs (each stand-in
    /// takes one job, and touches the queue no more once it runs it).
    pub(crate) unsafe fn push_fifo(&self, queue: &FifoQueue<JobRef>, job: JobRef) {
        assert_eq!(
            queue.owner(),
            self.index,
            "pilfer: pushed to another worker's FIFO queue"
        );
        // SAFETY: this thread is worker `queue.owner()` (checked above).
        unsafe { queue.push(job) };
        let queue = QueuePtr(queue);
        // SAFETY: the stand-in captures one pointer, valid while it may run
        // (the caller's promise); it is pushed once, and does not unwind
        // (`run_stand_in` runs a job, which contains its user code's panics).
        let stand_in = unsafe { job::detached_job(move || run_stand_in(queue)) };
        self.push(stand_in);
    }

    /// Queues `job` after this worker's earlier detached FIFO spawns.
    pub(crate) fn push_detached_fifo(&self, job: JobRef) {
        // SAFETY: the slot's queue lives as long as the registry, which
        // every worker holding a stand-in keeps alive.
        unsafe { self.push_fifo(&self.slot().fifo, job) }
    }
}

/// The FIFO queues of a FIFO scope: one per worker that spawns into it,
/// made on its first spawn.
pub(crate) struct ScopeQueues {
    queues: LazyTable<FifoQueue<JobRef>>,
}

impl ScopeQueues {
    /// Room for the queues of up to `max_workers` workers (indices below it).
    pub(crate) fn new(max_workers: usize) -> ScopeQueues {
        ScopeQueues {
            queues: LazyTable::new(max_workers),
        }
    }

    /// The queue of `worker`.
    pub(crate) fn of(&self, worker: &WorkerThread) -> &FifoQueue<JobRef> {
        let index = worker.index();
        self.queues.get_or_make(index, || FifoQueue::new(index))
    }
}

/// A `*const FifoQueue` that a stand-in carries to whichever worker runs it.
struct QueuePtr(*const FifoQueue<JobRef>);

// SAFETY: `FifoQueue` is `Sync`; `push_fifo`'s caller keeps it alive while
// a stand-in holding the pointer may run.
unsafe impl Send for QueuePtr {}

/// A stand-in's body: runs the oldest job of its queue (the newest when its
/// owner runs it in a restricted wait: module docs).
fn run_stand_in(queue: QueuePtr) {
    // SAFETY: valid until this stand-in has taken its job (`push_fifo`).
    let queue = unsafe { &*queue.0 };
    let worker = WorkerThread::current().expect("pilfer: a FIFO stand-in ran off-pool");
    // Stand-ins only run on workers of the pool whose queues they are for.
    let job = if worker.index() == queue.owner() && worker.restriction().is_some() {
        // SAFETY: this thread is the queue's owner (same pool, same index).
        unsafe { queue.pop_newest() }
    } else {
        take_from_queue(|| queue.take_oldest())
    };
    let job = job.expect("pilfer: a FIFO stand-in without its job");
    // SAFETY: taken from the queue, which hands each job out once; whoever
    // pushed it keeps its data alive until it has run. Nothing touches the
    // queue after this: the job's end may end its scope.
    unsafe { job.execute() }
}
