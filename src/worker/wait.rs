//! How a worker waits: it runs other work until what it waits for is done,
//! and when there is none, searches (spinning, then yielding: `Backoff`,
//! each round followed by one more look for work) and sleeps in its pool's
//! protocol (`sleep.rs`).

use super::WorkerThread;
use crate::job::JobRef;
use crate::latch::Latch;
use crate::metrics::bump;
use crate::sleep::{Sleep, WakeCondition};
use crate::sync::Backoff;
use std::time::Instant;

impl WorkerThread {
    /// Asks every peer to publish a frame, so that a busy peer wakes this
    /// worker (through `notify_new_work`) once it has work to share.
    fn request_publication_everywhere(&self) {
        for (index, slot) in self.registry.slots().iter().enumerate() {
            if index != self.index {
                slot.request_publication();
            }
        }
    }

    /// Runs other work until `latch` is set.
    #[inline]
    pub(crate) fn wait_until<L: Latch>(&self, latch: &L) {
        if !latch.probe() {
            self.wait_until_cold(latch);
        }
    }

    #[cold]
    fn wait_until_cold<L: Latch>(&self, latch: &L) {
        // While this worker waits, what it kept private is up for grabs.
        self.publish_all_frames();
        if let Some(restriction) = self.restriction() {
            return self.wait_restricted(latch, restriction);
        }
        while !latch.probe() {
            if let Some(job) = self.next_job(latch) {
                self.execute(job);
            }
        }
    }

    /// The next job for a wait that is not restricted, searching (and
    /// sleeping) when there is none; `None` once `latch` is met. Out of
    /// line: its temporaries stay off the frame of the wait, which every
    /// level of a chain of waits (scopes inside scopes) keeps on the stack.
    #[inline(never)]
    fn next_job<L: Latch>(&self, latch: &L) -> Option<JobRef> {
        self.find_work_fairly().or_else(|| self.search(latch))
    }

    /// Searches for work until it finds some (`Some`) or `latch` is met
    /// (`None`), spinning first, then sleeping (sleep.rs).
    pub(super) fn search<L: WakeCondition>(&self, latch: &L) -> Option<JobRef> {
        let started = Instant::now();
        let sleep = &self.registry.sleep;
        sleep.start_searching();
        let mut backoff = Backoff::new();
        let found = loop {
            if latch.is_met() {
                break None;
            }
            if let Some(job) = self.find_work() {
                break Some(job);
            }
            if !backoff.snooze() {
                self.request_publication_everywhere();
                Sleep::sleep(
                    sleep,
                    self.index,
                    latch,
                    || self.registry.has_work_for(self.index),
                    || bump(&self.slot().counters.parks),
                );
                backoff.reset();
            }
        };
        sleep.stop_searching(|| found.is_some() && self.more_where_found());
        self.slot().counters.record_search(started.elapsed());
        found
    }
}
