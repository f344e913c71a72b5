//! Seats: the cores that blocked, pinned workers leave idle, and the
//! spares on duty pinned there meanwhile (the policy: `spares/mod.rs`,
//! "Seats"). Kept under the spares' lock, so that spares are moved in the
//! order their seats change.

use crate::pin::{self, CoreId, OsThread};

pub(super) struct Seats {
    /// Every core the process may use; empty if unknown (then nobody is
    /// moved).
    all_cores: Vec<CoreId>,
    seats: Vec<Seat>,
    /// Spares inside a block of their own: they hold no seat.
    blocked_spares: Vec<usize>,
    /// The OS thread of each live spare that has started running.
    threads: Vec<(usize, OsThread)>,
}

/// The core a blocked worker left idle, and the spare that holds it.
struct Seat {
    worker: usize,
    core: CoreId,
    spare: Option<usize>,
}

impl Seats {
    pub(super) fn new(all_cores: Vec<CoreId>) -> Seats {
        Seats {
            all_cores,
            seats: Vec::new(),
            blocked_spares: Vec::new(),
            threads: Vec::new(),
        }
    }

    /// Worker `worker`, pinned to `core`, blocks.
    pub(super) fn worker_blocks(&mut self, worker: usize, core: CoreId, on_duty: &[usize]) {
        self.seats.push(Seat {
            worker,
            core,
            spare: None,
        });
        self.fill(on_duty, Vec::new());
    }

    /// Worker `worker` is back: its seat goes, and the spare that held it
    /// takes another or spreads out.
    pub(super) fn worker_back(&mut self, worker: usize, on_duty: &[usize]) {
        if let Some(position) = self.seats.iter().position(|seat| seat.worker == worker) {
            let seat = self.seats.swap_remove(position);
            self.fill(on_duty, seat.spare.into_iter().collect());
        }
    }

    /// Whether spare `spare` is inside a block of its own.
    pub(super) fn is_blocked_spare(&self, spare: usize) -> bool {
        self.blocked_spares.contains(&spare)
    }

    /// Spare `spare` blocks: its seat, if any, goes to another spare.
    pub(super) fn spare_blocks(&mut self, spare: usize, on_duty: &[usize]) {
        self.blocked_spares.push(spare);
        self.unseat(spare);
        self.fill(on_duty, Vec::new());
    }

    /// Spare `spare` is back from its block: it takes a vacant seat or
    /// spreads out.
    pub(super) fn spare_back(&mut self, spare: usize, on_duty: &[usize]) {
        self.blocked_spares.retain(|&blocked| blocked != spare);
        self.fill(on_duty, vec![spare]);
    }

    /// Spare `spare` is on duty now (started, or called back): it takes a
    /// vacant seat or spreads out.
    pub(super) fn on_duty(&mut self, spare: usize, on_duty: &[usize]) {
        self.fill(on_duty, vec![spare]);
    }

    /// Spare `spare` is off duty now (`on_duty` no longer has it): its
    /// seat goes to another spare on duty.
    pub(super) fn off_duty(&mut self, spare: usize, on_duty: &[usize]) {
        if self.unseat(spare) {
            self.fill(on_duty, Vec::new());
        }
    }

    /// Spare `spare`'s thread runs now: it is moved to its seat, or spread
    /// out, before it does anything else.
    pub(super) fn thread_started(&mut self, spare: usize, thread: OsThread) {
        self.threads.push((spare, thread));
        self.place(spare);
    }

    /// Spare `spare`'s thread is about to exit.
    pub(super) fn thread_exits(&mut self, spare: usize) {
        self.threads.retain(|&(index, _)| index != spare);
    }

    /// The worker whose seat spare `spare` holds.
    #[cfg(all(test, not(loom)))]
    pub(super) fn seat_of(&self, spare: usize) -> Option<usize> {
        self.seat_held_by(spare).map(|seat| seat.worker)
    }

    fn seat_held_by(&self, spare: usize) -> Option<&Seat> {
        self.seats.iter().find(|seat| seat.spare == Some(spare))
    }

    /// Takes spare `spare`'s seat from it; whether it had one.
    fn unseat(&mut self, spare: usize) -> bool {
        match self.seats.iter_mut().find(|seat| seat.spare == Some(spare)) {
            Some(seat) => {
                seat.spare = None;
                true
            }
            None => false,
        }
    }

    /// Gives each vacant seat to a spare of `on_duty` that holds none and
    /// is not blocked, then moves those spares and the ones in `moved`.
    fn fill(&mut self, on_duty: &[usize], mut moved: Vec<usize>) {
        for position in 0..self.seats.len() {
            if self.seats[position].spare.is_some() {
                continue;
            }
            let free = on_duty.iter().copied().find(|&spare| {
                !self.blocked_spares.contains(&spare) && self.seat_held_by(spare).is_none()
            });
            let Some(spare) = free else { break };
            self.seats[position].spare = Some(spare);
            moved.push(spare);
        }
        for spare in moved {
            self.place(spare);
        }
    }

    /// Moves spare `spare`'s thread, if it runs yet, to its seat's core, or
    /// over every core.
    fn place(&self, spare: usize) {
        if self.all_cores.is_empty() {
            return;
        }
        let Some(&(_, thread)) = self.threads.iter().find(|&&(index, _)| index == spare) else {
            return;
        };
        match self.seat_held_by(spare) {
            Some(seat) => pin::move_thread(thread, &[seat.core]),
            None => pin::move_thread(thread, &self.all_cores),
        }
    }
}
