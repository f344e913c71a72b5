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
//! 2. Load `counts`. If nobody sleeps, do nothing: a worker that falls
//!    asleep later re-checks the queues. If somebody sleeps and nobody
//!    searches, wake one sleeper (`wake_one`).
//! 3. If somebody sleeps and somebody searches, leave the job to the
//!    searchers (`leave_to_searchers`): set the `left` flag, `fence(SeqCst)`
//!    — fence **L** — and load `counts` again. If nobody searches any more,
//!    wake one sleeper after all; otherwise the searcher that stops last
//!    takes the flag.
//!
//! The fast path, when nobody sleeps (a busy pool), is a fence and a load of
//! a word that changes only when workers change state: no
//! read-modify-write. While some workers search and others sleep, a push
//! also swaps the flag, on a cache line of its own.
//!
//! **Waking one** (`wake_one`): under the mutex, re-check that nobody
//! searches (a concurrent waker may have just made someone a searcher; if
//! so, leave the job to the searchers as in step 3), pop one sleeper, move
//! it from *asleep* to *searching* in `counts` on its behalf, and unpark it.
//! Counting the wakee as a searcher at once is what stops a thundering herd:
//! the next push sees a searcher and wakes nobody.
//!
//! **Searching**: a worker that runs out of work increments `searching`
//! (`start_searching`) and spins for a short while, trying to steal. When it
//! stops searching (`stop_searching`, because it found a job or because what
//! it waits for is done) it decrements `searching`. If it was the **last**
//! searcher and somebody sleeps, it issues `fence(SeqCst)` — fence **H** —
//! and wakes one sleeper when it takes the `left` flag (a poster left it a
//! job) or when the queue it just took a job from still holds more (its
//! caller's check, a constant number of queues). This is the chain that
//! spreads work: each worker that finds work hands the search on when more
//! is queued, and no step of it reads every worker's queue.
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
//!    searching. This read of every queue is on the way to sleep, where
//!    the worker has nothing else to do, never on a task's path.
//! 5. Otherwise park until unparked; a waker has then taken it off the list
//!    (and counted it as searching), or its latch was set, or the wake-up was
//!    spurious and it parks again.
//!
//! # Why no wake-up is lost
//!
//! Suppose a job J is pushed, and while it stays queued every worker ends
//! up asleep or busy for good (a busy one may wait, outside the pool, for
//! what J does). Consider the poster's fence P and the state it then loads.
//!
//! * If it saw nobody asleep: every worker that falls asleep later does so
//!   by a read-modify-write of `counts` that comes *after* the value P's
//!   load read, followed by its fence S. Had S preceded P in the single
//!   total order of SeqCst fences, P's load — sequenced after P — would have
//!   had to see that write. It did not, so P precedes S, and the sleeper's
//!   re-check, sequenced after S, sees J (pushed before P): it cancels.
//! * If it saw somebody asleep and nobody searching, it went on to
//!   `wake_one`, which either woke a sleeper (not all are asleep) or found a
//!   searcher under the mutex and left J to the searchers (next case).
//! * If it left J to the searchers (flag set, fence L, then a load that saw
//!   somebody searching: otherwise it woke one itself), take the searcher W
//!   that stops last after that load, or falls asleep. W's read-modify-write
//!   of `counts` comes after the value the load read. If W falls asleep, the
//!   first case's argument, with L for P, shows that its re-check sees J.
//!   If W stops searching as the last searcher with somebody asleep, its
//!   fence H follows L (else the load after L would have seen W's
//!   decrement), so W's swap of the flag sees it set — or sees it cleared
//!   by a later taker, who woke a sleeper for it. If nobody sleeps when W
//!   stops, a worker that falls asleep later re-checks as in the first case.
//!   (The searcher that stops last might never look for work again: its
//!   job may wait for J. That is why the flag exists.)
//!
//! The flag is set with a release swap and taken with an acquire swap, so
//! that the sleeper woken for J by a searcher sees J: a swap continues the
//! release sequence of every earlier swap. A flag left set after its job
//! was taken costs one needless wake-up, never a lost one.
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
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
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
    /// Set by a poster that left its job to the searchers while others
    /// sleep; the last searcher to stop takes it and wakes a sleeper.
    left: CachePadded<AtomicBool>,
    state: Mutex<SleepState>,
    /// One per worker, spare workers included: where it sleeps.
    parkers: GrowTable<CachePadded<Parker>>,
}

struct SleepState {
    /// Indices of the sleeping workers; the last one is woken first.
    sleepers: Vec<usize>,
    /// `listed[i]`: where worker `i` is in `sleepers`, if it is; a worker
    /// that cancels its sleep leaves the list in constant time.
    listed: Vec<Option<usize>>,
    /// `blocked[i]`: worker `i` is parked outside the protocol (`block`),
    /// to be woken for a job broadcast to it.
    blocked: Vec<bool>,
}

impl SleepState {
    fn is_listed(&self, index: usize) -> bool {
        self.listed[index].is_some()
    }

    fn list(&mut self, index: usize) {
        debug_assert!(!self.is_listed(index));
        self.listed[index] = Some(self.sleepers.len());
        self.sleepers.push(index);
    }

    /// Takes the most recently listed sleeper off the list.
    fn pop(&mut self) -> Option<usize> {
        let index = self.sleepers.pop()?;
        self.listed[index] = None;
        Some(index)
    }

    /// Takes worker `index` off the list; `false` if it was not on it.
    fn unlist(&mut self, index: usize) -> bool {
        let Some(position) = self.listed[index].take() else {
            return false;
        };
        self.sleepers.swap_remove(position);
        if let Some(&moved) = self.sleepers.get(position) {
            self.listed[moved] = Some(position);
        }
        true
    }
}

impl Sleep {
    /// The sleep state of `num_workers` workers, with room for
    /// `spare_capacity` more (`add_worker`).
    pub(crate) fn new(num_workers: usize, spare_capacity: usize) -> Sleep {
        assert!(num_workers + spare_capacity <= MAX_WORKERS);
        Sleep {
            counts: CachePadded::new(AtomicUsize::new(0)),
            left: CachePadded::new(AtomicBool::new(false)),
            state: Mutex::new(SleepState {
                sleepers: Vec::with_capacity(num_workers),
                listed: vec![None; num_workers],
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
        state.listed.resize(index + 1, None);
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
    /// sleep, it wakes one when a poster left it work, or when
    /// `more_where_found` (a check of the queue it took its job from, in
    /// constant time) finds that queue holds more.
    #[inline]
    pub(crate) fn stop_searching(&self, more_where_found: impl FnOnce() -> bool) {
        let previous = self.counts.fetch_sub(ONE_SEARCHING, Ordering::SeqCst);
        debug_assert!(searching(previous) > 0);
        if searching(previous) == 1 && sleeping(previous) > 0 {
            self.hand_over_search(more_where_found);
        }
    }

    #[cold]
    fn hand_over_search(&self, more_where_found: impl FnOnce() -> bool) {
        // Fence H: pairs with fence L in `leave_to_searchers` (module docs).
        fence(Ordering::SeqCst);
        // Acquire: pairs with the release swap in `leave_to_searchers`, so
        // that the sleeper woken for a job sees it.
        let left = self.left.swap(false, Ordering::Acquire);
        if left || more_where_found() {
            self.wake_one();
        }
    }

    /// Called after pushing work to any queue.
    #[inline]
    pub(crate) fn notify_new_work(&self) {
        // Fence P: pairs with fence S in `sleep` and, through the load
        // after fence L, with fence H in `hand_over_search`.
        fence(Ordering::SeqCst);
        let counts = self.counts.load(Ordering::Relaxed);
        if sleeping(counts) > 0 {
            // `--cfg pilfer_bug="lost_wakeup"` removes this wake-up, to show
            // that the loom models catch its absence (loom/README.md).
            #[cfg(not(pilfer_bug = "lost_wakeup"))]
            self.wake_one_or_leave(counts);
        }
    }

    #[cold]
    fn wake_one_or_leave(&self, counts: usize) {
        if searching(counts) == 0 || !self.leave_to_searchers() {
            self.wake_one();
        }
    }

    /// Leaves a posted job to the workers now searching: sets the flag
    /// that the last of them takes (`hand_over_search`). `false` if nobody
    /// searches any more, so that the caller must wake a sleeper itself.
    fn leave_to_searchers(&self) -> bool {
        // `--cfg pilfer_bug="no_hand_over"` leaves the flag alone, to show
        // that the tests catch a job left to a searcher that then stops.
        #[cfg(not(pilfer_bug = "no_hand_over"))]
        // Release: pairs with the acquire swap in `hand_over_search`; a
        // swap, not a store, keeps earlier posters' release sequences.
        self.left.swap(true, Ordering::Release);
        // Fence L: pairs with fence H in `hand_over_search`.
        fence(Ordering::SeqCst);
        searching(self.counts.load(Ordering::Relaxed)) != 0
    }

    #[cold]
    fn wake_one(&self) {
        let mut state = lock(&self.state);
        // Changes of the sleeping count happen under this lock; a searcher
        // that appeared since the caller looked is left the work instead.
        if searching(self.counts.load(Ordering::Relaxed)) != 0 && self.leave_to_searchers() {
            return;
        }
        if let Some(index) = state.pop() {
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
                state.listed[index] = None;
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
            state.list(index);
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
                if !lock(&this.state).is_listed(index) || condition.is_met() {
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
        if !state.unlist(index) {
            return false;
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

    /// A worker that parks in the protocol; returns once it has parked, with
    /// the handle of its thread, which ends when it is woken.
    fn sleeper(sleep: &Arc<Sleep>) -> std::thread::JoinHandle<()> {
        let parked = Arc::new(AtomicBool::new(false));
        let handle = {
            let (sleep, parked) = (Arc::clone(sleep), Arc::clone(&parked));
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
        handle
    }

    #[test]
    fn work_posted_while_someone_searches_is_left_to_the_last_searcher() {
        let sleep = Arc::new(Sleep::new(2, 0));
        let sleeper = sleeper(&sleep);
        // Another worker searches: a push must leave the sleeper alone...
        sleep.start_searching();
        sleep.notify_new_work();
        assert_eq!(sleep.counts.load(Ordering::SeqCst), pack(1, 1));
        // ...and leave the job to the searcher, which, stopping last, wakes
        // the sleeper although the queue it took from is empty (its job
        // may be waiting for the one that was posted).
        sleep.stop_searching(|| false);
        wait_for("the sleeper is woken", || {
            sleep.counts.load(Ordering::SeqCst) == 0
        });
        sleeper.join().expect("the sleeper failed");
        assert!(!sleep.left.load(Ordering::SeqCst), "the flag was taken");
    }

    #[test]
    fn the_last_searcher_wakes_a_sleeper_only_for_work() {
        let sleep = Arc::new(Sleep::new(2, 0));
        let sleeper = sleeper(&sleep);
        // Nothing was posted and nothing more is where it found its job:
        // the sleeper stays asleep.
        sleep.start_searching();
        sleep.stop_searching(|| false);
        assert_eq!(sleep.counts.load(Ordering::SeqCst), pack(0, 1));
        // More is queued where it found its job: it hands the search on.
        sleep.start_searching();
        sleep.stop_searching(|| true);
        wait_for("the sleeper is woken", || {
            sleep.counts.load(Ordering::SeqCst) == 0
        });
        sleeper.join().expect("the sleeper failed");
    }

    #[test]
    fn a_sleeper_that_cancels_leaves_the_list_where_it_stood() {
        let mut state = SleepState {
            sleepers: Vec::new(),
            listed: vec![None; 4],
            blocked: vec![false; 4],
        };
        for index in [2, 0, 3, 1] {
            state.list(index);
        }
        assert!(state.unlist(0));
        assert!(!state.unlist(0), "already off the list");
        for index in [2, 3, 1] {
            assert!(state.is_listed(index));
            let position = state.listed[index].expect("listed");
            assert_eq!(state.sleepers[position], index);
        }
        assert_eq!(state.pop(), Some(3), "the last one listed goes first");
        assert!(state.unlist(2) && state.unlist(1));
        assert_eq!(state.pop(), None);
    }
}
