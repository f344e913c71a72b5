//! Compensation: while a worker is blocked, a spare worker does its duty.
//!
//! A worker *blocks* inside [`block_in_place`](crate::block_in_place), or
//! when a restricted wait has nothing it may run (worker/restricted.rs).
//! It tells the pool first (`begin_block`); from then until `end_block`,
//! the pool keeps one more *spare* worker on duty, so that `num_threads`
//! threads stay available for its work:
//!
//! * an idle spare, if there is one, is called back to duty;
//! * otherwise a new spare thread is started, unless `max` spares are
//!   alive already: then nobody compensates (the block is never refused).
//!
//! A spare on duty is a worker like the others (a deque of its own that
//! peers steal from, a place in the sleep protocol), with an index past
//! the pool's workers. The blocked worker keeps its deque, with its frames
//! published, so the spare (and everyone else) can steal from it. When
//! more spares are on duty than workers are blocked, the surplus ones
//! retire at their next look for work (`try_retire`; `end_block` wakes
//! the sleeping ones so that they notice), and wait idle for a call. An
//! idle spare that nobody calls within `keep_alive` exits.
//!
//! *Seats* (Linux). A blocked worker that is pinned leaves its core idle:
//! its *seat*. Each seat goes to one spare on duty that holds none and is
//! not blocked itself, and the pool pins that spare's thread to the seat's
//! core at once (from the thread that changed the seats, under the lock).
//! When the worker is back, its seat goes, and the spare that held it
//! takes another vacant seat or is spread over every core again, also in
//! the middle of a job, so that it never crowds the worker that came back.
//! A spare that blocks gives its seat to another; spares of an unpinned
//! pool hold none. A spare without a seat runs on every core.
//!
//! This module holds the counts and the idle list; the seats' bookkeeping
//! and the moves are `seats.rs`; the slots spares run in, and their
//! threads' names, `slots.rs`. The worker's side (blocking, starting a
//! spare's thread, its duty loop) is `worker/blocking.rs`: it runs a
//! worker, so it sits above the registry that holds this state.

mod seats;
mod slots;

use seats::Seats;
pub(crate) use slots::{SpareNamer, SpareSlot, SpareSlots};

use crate::pin::{CoreId, OsThread};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::counter::AtomicU64;
use crate::sync::{self, Condvar, Mutex, Waited, lock};
use std::time::{Duration, Instant};

pub(crate) struct Spares {
    /// The most spare threads alive at once.
    max: usize,
    keep_alive: Duration,
    state: Mutex<SpareState>,
    /// Idle spares wait here for a call.
    calls: Condvar,
    /// Copies of `state.blocked` and `state.on_duty`, written under the
    /// lock, for the lock-free surplus check of spares on duty and for
    /// metrics.
    blocked: AtomicUsize,
    on_duty: AtomicUsize,
    /// A copy of `state.closed`: once set, no spare is surplus (it stays
    /// on duty for the shutdown).
    closed: AtomicBool,
    /// Spare threads started, for metrics.
    started: AtomicU64,
    /// The slots spares run in, and their threads' names.
    slots: SpareSlots,
}

struct SpareState {
    /// Workers blocked now.
    blocked: usize,
    /// Spares on duty now (their indices).
    on_duty: Vec<usize>,
    /// Idle spares (their indices).
    idle: Vec<usize>,
    /// Idle spares called back to duty that have not woken yet.
    called: Vec<usize>,
    /// Spares being started, on duty once they have an index.
    starting: usize,
    /// Spare threads alive: on duty, idle, or being started.
    live: usize,
    /// The pool is shutting down: idle spares exit, none is called.
    closed: bool,
    /// The seats of blocked workers (module docs).
    seats: Seats,
}

/// What `begin_block` asks of the blocking worker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Compensation {
    /// An idle spare was called back to duty.
    Called,
    /// Start a new spare thread (counted as alive and on duty already);
    /// report it with `started` or `failed_to_start`.
    Start,
    /// No spare: enough are on duty, or the limit is reached.
    None,
}

/// Why an idle spare stopped waiting.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// Back to duty.
    Duty,
    /// Exit: unused for `keep_alive`, or the pool is shutting down.
    Exit,
}

impl Spares {
    /// At most `max` spares, each idle for at most `keep_alive`, on
    /// `all_cores` (empty if unknown) when they hold no seat, in `slots`.
    pub(crate) fn new(
        max: usize,
        keep_alive: Duration,
        all_cores: Vec<CoreId>,
        slots: SpareSlots,
    ) -> Spares {
        Spares {
            max,
            keep_alive,
            state: Mutex::new(SpareState {
                blocked: 0,
                on_duty: Vec::new(),
                idle: Vec::new(),
                called: Vec::new(),
                starting: 0,
                live: 0,
                closed: false,
                seats: Seats::new(all_cores),
            }),
            calls: Condvar::new(),
            blocked: AtomicUsize::new(0),
            on_duty: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            started: AtomicU64::new(0),
            slots,
        }
    }

    /// The slots spares run in, and their threads' names.
    #[inline]
    pub(crate) fn slots(&self) -> &SpareSlots {
        &self.slots
    }

    /// Updates the lock-free copies of the counts.
    fn publish_counts(&self, state: &SpareState) {
        // Release: pairs with the Acquire loads in `surplus` (a spare that
        // was unparked after this store sees it).
        self.blocked.store(state.blocked, Ordering::Release);
        self.on_duty.store(state.on_duty.len(), Ordering::Release);
    }

    /// Worker `index` (a spare's index for a spare) is about to block,
    /// leaving `core` idle if it is pinned there: keeps a spare on duty
    /// for it if it can.
    pub(crate) fn begin_block(&self, index: usize, core: Option<CoreId>) -> Compensation {
        let mut state = lock(&self.state);
        state.blocked += 1;
        let closed = state.closed;
        let compensation = if state.on_duty.len() + state.starting >= state.blocked {
            Compensation::None
        } else if let Some(spare) = (!closed).then(|| state.idle.pop()).flatten() {
            // (Idle spares of a closed pool are on their way out: only a
            // new one can help then. Accepted tasks still run during
            // shutdown, and may block.)
            state.on_duty.push(spare);
            state.called.push(spare);
            self.calls.notify_all();
            Compensation::Called
        } else if state.live < self.max {
            state.live += 1;
            state.starting += 1;
            Compensation::Start
        } else {
            Compensation::None
        };
        self.publish_counts(&state);
        let SpareState { seats, on_duty, .. } = &mut *state;
        if on_duty.contains(&index) {
            seats.spare_blocks(index, on_duty);
        } else if let Some(core) = core {
            seats.worker_blocks(index, core, on_duty);
        }
        if compensation == Compensation::Called {
            let called = *on_duty.last().expect("the called spare is on duty");
            seats.on_duty(called, on_duty);
        }
        compensation
    }

    /// The spare asked for by `Compensation::Start` runs with `index`.
    pub(crate) fn started(&self, index: usize) {
        let mut state = lock(&self.state);
        state.starting -= 1;
        state.on_duty.push(index);
        self.started.fetch_add(1, Ordering::Relaxed);
        self.publish_counts(&state);
        let SpareState { seats, on_duty, .. } = &mut *state;
        seats.on_duty(index, on_duty);
    }

    /// Spare `index`'s thread runs now, as `thread` if the OS lets other
    /// threads move it: it is moved to its seat, or over every core, before
    /// it does anything else.
    pub(crate) fn thread_started(&self, index: usize, thread: Option<OsThread>) {
        if let Some(thread) = thread {
            lock(&self.state).seats.thread_started(index, thread);
        }
    }

    /// The spare asked for by `Compensation::Start` could not be started.
    pub(crate) fn failed_to_start(&self) {
        let mut state = lock(&self.state);
        state.starting -= 1;
        state.live -= 1;
    }

    /// Worker `index`, blocked, is back. Returns the spares on duty to
    /// wake if one of them is now surplus (so that a sleeping one notices
    /// and retires).
    pub(crate) fn end_block(&self, index: usize) -> Vec<usize> {
        let mut state = lock(&self.state);
        state.blocked -= 1;
        self.publish_counts(&state);
        let SpareState { seats, on_duty, .. } = &mut *state;
        if seats.is_blocked_spare(index) {
            seats.spare_back(index, on_duty);
        } else {
            seats.worker_back(index, on_duty);
        }
        if state.on_duty.len() > state.blocked {
            state.on_duty.clone()
        } else {
            Vec::new()
        }
    }

    /// Whether more spares are on duty than workers are blocked (and the
    /// pool is not shutting down): a hint, confirmed under the lock by
    /// `try_retire`.
    #[inline]
    pub(crate) fn surplus(&self) -> bool {
        // Acquire: pairs with `publish_counts` and the store in `close`.
        !self.closed.load(Ordering::Acquire)
            && self.on_duty.load(Ordering::Acquire) > self.blocked.load(Ordering::Acquire)
    }

    /// Spare `index`, on duty, retires if it is surplus: it becomes idle.
    pub(crate) fn try_retire(&self, index: usize) -> bool {
        let mut state = lock(&self.state);
        if state.closed || state.on_duty.len() <= state.blocked {
            return false;
        }
        let Some(position) = state.on_duty.iter().position(|&i| i == index) else {
            return false;
        };
        state.on_duty.swap_remove(position);
        state.idle.push(index);
        self.publish_counts(&state);
        let SpareState { seats, on_duty, .. } = &mut *state;
        seats.off_duty(index, on_duty);
        true
    }

    /// Idle spare `index` waits to be called back to duty, at most
    /// `keep_alive`. On `Call::Exit` it is no longer counted as alive.
    pub(crate) fn wait_for_call(&self, index: usize) -> Call {
        let deadline = Instant::now().checked_add(self.keep_alive);
        let mut state = lock(&self.state);
        loop {
            if let Some(position) = state.called.iter().position(|&i| i == index) {
                state.called.swap_remove(position);
                return Call::Duty;
            }
            if !state.closed {
                match sync::wait_before(&self.calls, state, deadline) {
                    Waited::Woken(woken) => {
                        state = woken;
                        continue;
                    }
                    Waited::Expired(expired) => state = expired,
                }
            }
            if let Some(position) = state.idle.iter().position(|&i| i == index) {
                state.idle.swap_remove(position);
            }
            state.live -= 1;
            state.seats.thread_exits(index);
            return Call::Exit;
        }
    }

    /// Spare `index` leaves duty for good (the pool shut down).
    pub(crate) fn leave(&self, index: usize) {
        let mut state = lock(&self.state);
        if let Some(position) = state.on_duty.iter().position(|&i| i == index) {
            state.on_duty.swap_remove(position);
        }
        state.live -= 1;
        self.publish_counts(&state);
        let SpareState { seats, on_duty, .. } = &mut *state;
        seats.off_duty(index, on_duty);
        seats.thread_exits(index);
    }

    /// The pool is shutting down: idle spares exit and none is called back
    /// (a worker that blocks while the accepted work drains gets a new
    /// one), and spares on duty stay on duty until the pool has drained.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        // Release: pairs with the Acquire in `surplus`. Stored under the
        // lock, as the counts are: a spare whose `try_retire` found the
        // pool closed sees it in `surplus` from then on (and does not spin).
        self.closed.store(true, Ordering::Release);
        drop(state);
        self.calls.notify_all();
    }

    /// The worker whose seat spare `index` holds.
    #[cfg(all(test, not(loom)))]
    fn seat_of(&self, index: usize) -> Option<usize> {
        lock(&self.state).seats.seat_of(index)
    }

    /// Workers blocked now.
    pub(crate) fn blocked_now(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Spare threads started so far.
    pub(crate) fn started_count(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn spares(max: usize, keep_alive: Duration) -> Spares {
        Spares::new(
            max,
            keep_alive,
            Vec::new(),
            SpareSlots::new(Box::new(|index| format!("spare-{index}")), None),
        )
    }

    fn core(id: usize) -> Option<CoreId> {
        Some(CoreId { id })
    }

    #[test]
    fn a_block_starts_a_spare_then_calls_back_the_idle_one() {
        let spares = spares(1, Duration::from_secs(60));
        assert_eq!(spares.begin_block(0, None), Compensation::Start);
        spares.started(5);
        assert!(!spares.surplus());
        assert!(
            spares.end_block(0).contains(&5),
            "the surplus spare is woken"
        );
        assert!(spares.surplus());
        assert!(spares.try_retire(5));
        assert!(!spares.surplus());
        // Called back by the next block, which the waiting spare sees.
        assert_eq!(spares.begin_block(0, None), Compensation::Called);
        assert_eq!(spares.wait_for_call(5), Call::Duty);
        // A second block at once: the only spare is on duty already.
        assert_eq!(spares.begin_block(1, None), Compensation::None);
        assert_eq!(spares.blocked_now(), 2);
        assert_eq!(spares.started_count(), 1);
    }

    #[test]
    fn a_blocked_workers_seat_goes_to_a_spare_on_duty_and_moves_on() {
        let spares = spares(4, Duration::from_secs(60));
        assert_eq!(spares.begin_block(0, core(0)), Compensation::Start);
        spares.started(7);
        assert_eq!(
            spares.seat_of(7),
            Some(0),
            "the new spare takes worker 0's core"
        );
        // Worker 0 is back: the seat goes.
        spares.end_block(0);
        assert_eq!(spares.seat_of(7), None);
        // Worker 1 blocks before the spare retired: the spare on duty
        // compensates, on worker 1's core.
        assert_eq!(spares.begin_block(1, core(1)), Compensation::None);
        assert_eq!(spares.seat_of(7), Some(1));
        // A second block gets a new spare, on its own core; a block
        // without a core (an unpinned worker) gets one on no core.
        assert_eq!(spares.begin_block(2, core(2)), Compensation::Start);
        spares.started(8);
        assert_eq!(spares.seat_of(8), Some(2));
        assert_eq!(spares.begin_block(3, None), Compensation::Start);
        spares.started(9);
        assert_eq!(spares.seat_of(9), None);
        // Worker 1 back: spare 7 holds nothing. A seated spare that
        // retires hands its seat to a free one.
        spares.end_block(1);
        assert_eq!(spares.seat_of(7), None);
        assert!(spares.try_retire(8));
        assert_eq!(spares.seat_of(8), None);
        let seated: Vec<_> = [7, 9].map(|spare| spares.seat_of(spare)).into();
        assert!(seated.contains(&Some(2)), "{seated:?}");
        // A spare leaving for good gives its seat up too.
        let holder = if seated[0].is_some() { 7 } else { 9 };
        spares.leave(holder);
        assert_eq!(spares.seat_of(holder), None);
    }

    #[test]
    fn a_spare_that_blocks_hands_its_seat_on_and_takes_none_while_blocked() {
        let spares = spares(4, Duration::from_secs(60));
        assert_eq!(spares.begin_block(0, core(0)), Compensation::Start);
        spares.started(7);
        assert_eq!(spares.seat_of(7), Some(0));
        // The seated spare blocks: a new spare takes worker 0's core.
        assert_eq!(spares.begin_block(7, None), Compensation::Start);
        assert_eq!(spares.seat_of(7), None);
        spares.started(8);
        assert_eq!(spares.seat_of(8), Some(0));
        // Worker 1 blocks while both spares are taken: the blocked spare
        // gets no seat; the next spare does.
        assert_eq!(spares.begin_block(1, core(1)), Compensation::Start);
        assert_eq!(spares.seat_of(7), None);
        spares.started(9);
        assert_eq!(spares.seat_of(9), Some(1));
        // Worker 0 back, then spare 7: spare 8 is free, spare 7 has
        // nothing to take.
        spares.end_block(0);
        assert_eq!(spares.seat_of(8), None);
        spares.end_block(7);
        assert_eq!(spares.seat_of(7), None);
        assert_eq!(spares.seat_of(9), Some(1));
    }

    #[test]
    fn no_spare_without_room_and_an_idle_one_exits_after_its_keep_alive() {
        let full = spares(0, Duration::from_secs(60));
        assert_eq!(full.begin_block(0, None), Compensation::None);
        full.end_block(0);

        let spares = spares(2, Duration::from_millis(1));
        assert_eq!(spares.begin_block(0, None), Compensation::Start);
        spares.started(3);
        spares.end_block(0);
        assert!(spares.try_retire(3));
        assert_eq!(spares.wait_for_call(3), Call::Exit);
        // It no longer counts against the limit.
        assert_eq!(spares.begin_block(0, None), Compensation::Start);
    }

    #[test]
    fn closing_lets_idle_spares_exit_and_calls_none_back() {
        let spares = spares(4, Duration::from_secs(60));
        assert_eq!(spares.begin_block(0, None), Compensation::Start);
        spares.started(2);
        spares.end_block(0);
        assert!(spares.try_retire(2));
        spares.close();
        assert_eq!(spares.wait_for_call(2), Call::Exit);
        // A worker blocking during the drain still gets a spare: a new one.
        assert_eq!(spares.begin_block(0, None), Compensation::Start);
    }
}
