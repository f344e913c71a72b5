//! The sleep protocol: how idle workers stop burning CPU, and why no
//! wake-up is ever lost.
//!
//! # States
//!
//! A worker is *busy* (running a job), *searching* (awake, looking for work)
//! or *asleep* (parked). One packed word, `counts`, holds the number of
//! searching and of sleeping workers; the list of sleepers sits under a
//! mutex that only the slow paths take, and each worker parks on a
//! `Parker` of its own, outside the mutex (parker.rs).
//!
//! # Steps
//!
//! **Posting work** (`notify_new_work`), after a job was pushed to any queue:
//!
//! 1. `fence(SeqCst)` — fence **P**.
//! 2. Load `counts`. If nobody searches and somebody sleeps, wake one sleeper
//!    (`wake_one`). Otherwise do nothing: a searcher will find the job.
//!
//! That is the whole fast path: a fence and a load of a word that changes
//! only when workers change state. No read-modify-write.
//!
//! **Waking one** (`wake_one`): under the mutex, re-check that nobody
//! searches (a concurrent waker may have just made someone a searcher), pop
//! one sleeper, move it from *asleep* to *searching* in `counts` on its
//! behalf, and unpark it. Counting the wakee as a searcher at once is what
//! stops a thundering herd: the next push sees a searcher and wakes nobody.
//!
//! **Searching**: a worker that runs out of work increments `searching`
//! (`start_searching`) and spins for a short while, trying to steal. When it
//! stops searching (`stop_searching`, because it found a job or because what
//! it waits for is done) it decrements `searching`; if it was the **last**
//! searcher and somebody sleeps, it issues `fence(SeqCst)` and, if any queue
//! still holds work, wakes one sleeper. This is the chain that spreads work:
//! each worker that finds work hands the search on when more is queued.
//!
//! **Falling asleep** (`sleep`), by a searcher whose spin ran out:
//!
//! 1. Tell the condition it waits for (a latch) that it is about to sleep
//!    (`prepare_sleep`); stop if it is already met.
//! 2. Under the mutex, put itself on the list and move itself from
//!    *searching* to *asleep* in `counts`.
//! 3. `fence(SeqCst)` — fence **S**.
//! 4. Re-check the latch and every queue it may take from (the injector,
//!    every deque, its own broadcast queue; see below for the broadcast
//!    queues of others). If anything is there, take itself
//!    off the list again (unless a waker already did) and go back to
//!    searching.
//! 5. Otherwise park until unparked; a waker has then taken it off the list
//!    (and counted it as searching), or its latch was set, or the wake-up was
//!    spurious and it parks again.
//!
//! # Why no wake-up is lost
//!
//! Suppose a job J is pushed and every worker ends up asleep with J queued.
//! Consider the poster's fence P and the state it then loads.
//!
//! * If it saw nobody searching and somebody asleep, it woke one: not all
//!   are asleep. (A concurrent waker that made someone a searcher instead
//!   hands over to the next case.)
//! * If it saw nobody asleep, or saw some worker W searching: W later either
//!   stops searching or falls asleep, in both cases by a read-modify-write
//!   of `counts` that comes *after* the value P's load read, followed by a
//!   fence (S, or the one in `stop_searching`). Had that fence preceded P in
//!   the single total order of SeqCst fences, P's load — sequenced after P —
//!   would have had to see W's write. It did not, so P precedes W's fence,
//!   and W's re-check of the queues, sequenced after its fence, sees J
//!   (pushed before P). W therefore cancels its sleep, or (as the last
//!   searcher) wakes a sleeper. If W was not the last searcher, the same
//!   argument applies to the last one, whose decrement is later still.
//!
//! A job only worker `i` may take (its broadcast queue) is not posted with
//! `notify_new_work` but with `notify_worker(i)`: the pusher pushes, then
//! takes the sleepers' lock and wakes `i` if it is listed; `i` lists itself
//! under that lock before its re-check, which includes its own broadcast
//! queue. Other workers ignore that queue, so they do not spin while `i`
//! is on its way.
//!
//! A latch set while its waiter falls asleep is covered by the latch's own
//! compare-exchange (see `latch/`): the setter either sees `SLEEPING` and
//! unparks, or the waiter sees `SET` and does not park. An unpark that
//! arrives before the park makes the park return at once.
//!
//! The loom models in `loom/` check these arguments on small pools.

use crate::parker::Parker;
use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Arc, Mutex, lock};
use crate::table::GrowTable;
use crossbeam_utils::CachePadded;

/// `counts` holds the searchers in its low half, the sleepers in its high.
const SLEEPING_SHIFT: u32 = usize::BITS / 2;
const ONE_SEARCHING: usize = 1;
const ONE_SLEEPING: usize = 1 << SLEEPING_SHIFT;
const HALF_MASK: usize = ONE_SLEEPING - 1;
/// Added to `counts` when a searcher falls asleep.
const SEARCHER_TO_SLEEPER: usize = ONE_SLEEPING.wrapping_sub(ONE_SEARCHING);
/// Added to `counts` when a sleeper is woken (counted as searching at once).
const SLEEPER_TO_SEARCHER: usize = ONE_SEARCHING.wrapping_sub(ONE_SLEEPING);

/// The most workers a pool may have: each half of `counts` must hold them.
pub(crate) const MAX_WORKERS: usize = if HALF_MASK > 0xFFFF {
    0xFFFF
} else {
    HALF_MASK
};

#[inline]
fn searching(counts: usize) -> usize {
    counts & HALF_MASK
}

#[inline]
fn sleeping(counts: usize) -> usize {
    counts >> SLEEPING_SHIFT
}

/// What a worker sleeps until: besides new work, a condition (in practice a
/// latch, `latch/`) that whoever meets it signals.
pub(crate) trait WakeCondition {
    /// Whether the condition is met (an Acquire load).
    fn is_met(&self) -> bool;

    /// The worker `sleeper` is about to park: arrange for whoever meets the
    /// condition to wake it. `false` if it is already met.
    fn prepare_sleep(&self, sleeper: &Sleeper<'_>) -> bool;

    /// The worker woke (or cancelled its sleep).
    fn end_sleep(&self);
}

/// A worker about to sleep: its pool's sleep state and its index in it.
pub(crate) struct Sleeper<'a> {
    pub(crate) sleep: &'a Arc<Sleep>,
    pub(crate) index: usize,
}

pub(crate) struct Sleep {
    counts: CachePadded<AtomicUsize>,
    state: Mutex<SleepState>,
    /// One per worker, spare workers included: where it sleeps.
    parkers: GrowTable<CachePadded<Parker>>,
}

struct SleepState {
    /// Indices of the sleeping workers; the last one is woken first.
    sleepers: Vec<usize>,
    /// `asleep[i]` is whether worker `i` is in `sleepers`.
    asleep: Vec<bool>,
    /// `blocked[i]`: worker `i` is parked outside the protocol (`block`),
    /// to be woken for a job broadcast to it.
    blocked: Vec<bool>,
}

impl Sleep {
    /// The sleep state of `num_workers` workers, with room for
    /// `spare_capacity` more (`add_worker`).
    pub(crate) fn new(num_workers: usize, spare_capacity: usize) -> Sleep {
        assert!(num_workers + spare_capacity <= MAX_WORKERS);
        Sleep {
            counts: CachePadded::new(AtomicUsize::new(0)),
            state: Mutex::new(SleepState {
                sleepers: Vec::with_capacity(num_workers),
                asleep: vec![false; num_workers],
                blocked: vec![false; num_workers],
            }),
            parkers: GrowTable::new(
                (0..num_workers)
                    .map(|_| CachePadded::new(Parker::new()))
                    .collect(),
                spare_capacity,
            ),
        }
    }

    /// Adds a worker (a spare) and returns its index; `None` when there is
    /// no room left. Callers serialize their calls, and add the workers'
    /// other state with the same index.
    pub(crate) fn add_worker(&self) -> Option<usize> {
        let mut state = lock(&self.state);
        let index = self.parkers.push(CachePadded::new(Parker::new())).ok()?;
        state.asleep.resize(index + 1, false);
        state.blocked.resize(index + 1, false);
        Some(index)
    }

    /// A worker with nothing to do begins searching.
    #[inline]
    pub(crate) fn start_searching(&self) {
        // SeqCst read-modify-write; the protocol relies on its place in
        // `counts`' modification order, not on its own ordering.
        self.counts.fetch_add(ONE_SEARCHING, Ordering::SeqCst);
    }

    /// A searcher stops searching. If it was the last one while others
    /// sleep, it wakes one when `has_work` finds work still queued.
    #[inline]
    pub(crate) fn stop_searching(&self, has_work: impl FnOnce() -> bool) {
        let previous = self.counts.fetch_sub(ONE_SEARCHING, Ordering::SeqCst);
        debug_assert!(searching(previous) > 0);
        if searching(previous) == 1 && sleeping(previous) > 0 {
            self.hand_over_search(has_work);
        }
    }

    #[cold]
    fn hand_over_search(&self, has_work: impl FnOnce() -> bool) {
        // Pairs with fence P in `notify_new_work`: a job whose poster saw
        // this worker searching is visible to `has_work` (module docs).
        fence(Ordering::SeqCst);
        if has_work() {
            self.wake_one();
        }
    }

    /// Called after pushing work to any queue.
    #[inline]
    pub(crate) fn notify_new_work(&self) {
        // Fence P: pairs with fence S in `sleep` and the fence in
        // `hand_over_search`.
        fence(Ordering::SeqCst);
        let counts = self.counts.load(Ordering::Relaxed);
        if searching(counts) == 0 && sleeping(counts) > 0 {
            // `--cfg pilfer_bug="lost_wakeup"` removes this wake-up, to show
            // that the loom models catch its absence (loom/README.md).
            #[cfg(not(pilfer_bug = "lost_wakeup"))]
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        let mut state = lock(&self.state);
        // Changes of the sleeping count happen under this lock; a searcher
        // that appeared since the caller looked will find the work instead.
        if searching(self.counts.load(Ordering::Relaxed)) != 0 {
            return;
        }
        if let Some(index) = state.sleepers.pop() {
            state.asleep[index] = false;
            self.counts.fetch_add(SLEEPER_TO_SEARCHER, Ordering::SeqCst);
            // Unpark after unlocking: the wakee's first step is to take this
            // lock, and should not find it held by its waker.
            drop(state);
            self.parkers.get(index).unpark();
        }
    }

    /// Called after pushing a job that only worker `index` may take (its
    /// broadcast queue): wakes that worker if it sleeps, counting it as a
    /// searcher. The pusher's push precedes its lock here; a worker falling
    /// asleep lists itself under the same lock before its re-check of the
    /// queues: one of the two sees the other.
    pub(crate) fn notify_worker(&self, index: usize) {
        let mut state = lock(&self.state);
        if self.take_off_list(&mut state, index) || state.blocked[index] {
            drop(state);
            self.parkers.get(index).unpark();
        }
    }

    /// Wakes worker `index` if it sleeps; used when the condition it waits
    /// for is met. It takes itself off the list when it runs.
    pub(crate) fn wake_worker(&self, index: usize) {
        self.parkers.get(index).unpark();
    }

    /// Wakes every sleeper (the pool is shutting down).
    pub(crate) fn wake_all(&self) {
        let woken = {
            let mut state = lock(&self.state);
            let woken = std::mem::take(&mut state.sleepers);
            for &index in &woken {
                state.asleep[index] = false;
                self.counts.fetch_add(SLEEPER_TO_SEARCHER, Ordering::SeqCst);
            }
            woken
        };
        for index in woken {
            self.parkers.get(index).unpark();
        }
    }

    /// Puts searcher `index` to sleep until new work arrives or `condition`
    /// is met. On return it is a searcher again.
    ///
    /// `has_work` reports whether any queue holds work; `on_park` runs once,
    /// just before the worker actually parks (not if it cancels).
    ///
    /// An associated function rather than a method: loom's `Arc` cannot be
    /// a receiver.
    pub(crate) fn sleep(
        this: &Arc<Sleep>,
        index: usize,
        condition: &impl WakeCondition,
        has_work: impl Fn() -> bool,
        on_park: impl FnOnce(),
    ) {
        let sleeper = Sleeper { sleep: this, index };
        if !condition.prepare_sleep(&sleeper) {
            return;
        }
        {
            let mut state = lock(&this.state);
            debug_assert!(!state.asleep[index]);
            state.sleepers.push(index);
            state.asleep[index] = true;
            this.counts.fetch_add(SEARCHER_TO_SLEEPER, Ordering::SeqCst);
        }
        // Fence S: pairs with fence P in `notify_new_work` (module docs).
        fence(Ordering::SeqCst);
        // `--cfg pilfer_bug="no_recheck"` skips the re-check, to show that
        // the loom models catch the lost wake-up that follows.
        let recheck = cfg!(not(pilfer_bug = "no_recheck"));
        let cancel = condition.is_met() || (recheck && has_work());
        if !cancel {
            on_park();
            loop {
                this.parkers.get(index).park();
                if !lock(&this.state).asleep[index] || condition.is_met() {
                    break;
                }
                // Spurious wake-up: still listed, nothing happened.
            }
        }
        this.leave_list(index);
        condition.end_sleep();
    }

    /// Parks worker `index` until `condition` is met or `has_broadcast`
    /// finds a job broadcast to it, outside the protocol: it is neither
    /// searching nor listed as a sleeper, so new work does not wake it (a
    /// worker blocked in a restricted wait, whose duties a spare worker has
    /// taken over; worker/restricted.rs). A broadcast does: only this worker
    /// can run its share. The flag is set under the lock before the check,
    /// as a sleeper lists itself (see `notify_worker`).
    pub(crate) fn block(
        this: &Arc<Sleep>,
        index: usize,
        condition: &impl WakeCondition,
        has_broadcast: impl Fn() -> bool,
    ) {
        let sleeper = Sleeper { sleep: this, index };
        if !condition.prepare_sleep(&sleeper) {
            return;
        }
        lock(&this.state).blocked[index] = true;
        // Whoever meets the condition unparks this worker (`wake_worker`),
        // as does a broadcast to it; a token left by an earlier, unrelated
        // unpark only costs a loop.
        while !condition.is_met() && !has_broadcast() {
            this.parkers.get(index).park();
        }
        lock(&this.state).blocked[index] = false;
        condition.end_sleep();
    }

    /// Takes worker `index` off the sleepers' list if a waker has not already
    /// done so, counting it as a searcher again.
    fn leave_list(&self, index: usize) {
        self.take_off_list(&mut lock(&self.state), index);
    }

    /// Under the lock: takes worker `index` off the sleepers' list if it is
    /// on it, counting it as a searcher again; returns whether it was.
    fn take_off_list(&self, state: &mut SleepState, index: usize) -> bool {
        if !state.asleep[index] {
            return false;
        }
        state.asleep[index] = false;
        if let Some(position) = state.sleepers.iter().position(|&i| i == index) {
            state.sleepers.swap_remove(position);
        }
        // A SeqCst read-modify-write like every update of `counts`
        // (`start_searching`), made under the lock as changes of the
        // sleeping count are.
        self.counts.fetch_add(SLEEPER_TO_SEARCHER, Ordering::SeqCst);
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    fn pack(searchers: usize, sleepers: usize) -> usize {
        searchers * ONE_SEARCHING + sleepers * ONE_SLEEPING
    }

    #[test]
    fn the_two_halves_of_counts_do_not_bleed_into_each_other() {
        for (searchers, sleepers) in [(1, 0), (MAX_WORKERS, 0), (1, MAX_WORKERS - 1), (3, 7)] {
            let counts = pack(searchers, sleepers);
            assert_eq!((searching(counts), sleeping(counts)), (searchers, sleepers));
            let asleep = counts.wrapping_add(SEARCHER_TO_SLEEPER);
            assert_eq!(
                (searching(asleep), sleeping(asleep)),
                (searchers - 1, sleepers + 1)
            );
            let woken = asleep.wrapping_add(SLEEPER_TO_SEARCHER);
            assert_eq!(woken, counts, "waking undoes falling asleep");
        }
    }

    /// A condition that is never met.
    struct Never;

    impl WakeCondition for Never {
        fn is_met(&self) -> bool {
            false
        }
        fn prepare_sleep(&self, _sleeper: &Sleeper<'_>) -> bool {
            true
        }
        fn end_sleep(&self) {}
    }

    fn wait_for(what: &str, condition: impl Fn() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{what}: timed out"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn new_work_wakes_a_sleeper_and_counts_it_as_searching() {
        let sleep = Arc::new(Sleep::new(2, 0));
        let parked = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (sleep, parked) = (Arc::clone(&sleep), Arc::clone(&parked));
            std::thread::spawn(move || {
                sleep.start_searching();
                Sleep::sleep(
                    &sleep,
                    0,
                    &Never,
                    || false,
                    || parked.store(true, Ordering::SeqCst),
                );
                // Woken: counted as a searcher again.
                assert_eq!(searching(sleep.counts.load(Ordering::SeqCst)), 1);
                sleep.stop_searching(|| false);
            })
        };
        wait_for("the sleeper parks", || parked.load(Ordering::SeqCst));
        assert_eq!(sleep.counts.load(Ordering::SeqCst), pack(0, 1));
        sleep.notify_new_work();
        sleeper.join().expect("the sleeper failed");
        assert_eq!(sleep.counts.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn no_sleeper_is_woken_while_someone_searches() {
        let sleep = Arc::new(Sleep::new(2, 0));
        let parked = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let (sleep, parked) = (Arc::clone(&sleep), Arc::clone(&parked));
            std::thread::spawn(move || {
                sleep.start_searching();
                Sleep::sleep(
                    &sleep,
                    0,
                    &Never,
                    || false,
                    || parked.store(true, Ordering::SeqCst),
                );
                sleep.stop_searching(|| false);
            })
        };
        wait_for("the sleeper parks", || parked.load(Ordering::SeqCst));
        // Another worker searches: a push must leave the sleeper alone.
        sleep.start_searching();
        sleep.notify_new_work();
        assert_eq!(sleep.counts.load(Ordering::SeqCst), pack(1, 1));
        // The last searcher stopping with work left hands the search over.
        sleep.stop_searching(|| true);
        sleeper.join().expect("the sleeper failed");
        assert_eq!(sleep.counts.load(Ordering::SeqCst), 0);
    }
}
