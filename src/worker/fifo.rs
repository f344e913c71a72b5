//! FIFO spawns (`spawn_fifo`, `ScopeFifo::spawn_fifo`): jobs that a worker
//! starts in the order it spawned them, while its deque stays LIFO.
//!
//! The job goes to the worker's FIFO queue (in its slot of the registry),
//! and a stand-in goes onto its deque. Whoever runs a stand-in (the worker
//! itself, or a thief) takes the *oldest* job of that worker's FIFO queue
//! and runs it. Every FIFO job comes with exactly one stand-in, so each is
//! taken exactly once, and the jobs of one worker start in the order they
//! were pushed, whichever stand-in runs first.

use super::{WorkerThread, take_from};
use crate::job::{self, JobRef};

impl WorkerThread {
    /// Queues `job` to start after this worker's earlier FIFO jobs.
    pub(crate) fn push_fifo(&self, job: JobRef) {
        self.slot().fifo.push(job);
        let index = self.index;
        // SAFETY: the stand-in captures an index only, is pushed once, and
        // does not unwind (`run_oldest_fifo_job` runs a job that contains
        // its user code's panics).
        let stand_in = unsafe { job::detached_job(move || run_oldest_fifo_job(index)) };
        self.push(stand_in);
    }
}

/// A stand-in's body: runs the oldest FIFO job of worker `index`.
fn run_oldest_fifo_job(index: usize) {
    let worker = WorkerThread::current().expect("pilfer: a FIFO stand-in ran off-pool");
    // Stand-ins only run on workers of the pool whose deques hold them.
    let queue = &worker.registry().slots().get(index).fifo;
    let job = take_from(queue).expect("pilfer: a FIFO stand-in without its job");
    // SAFETY: taken from the queue, which hands each job out once; whoever
    // pushed it keeps its data alive until it has run.
    unsafe { job.execute() }
}
