//! The seats of blocked, pinned workers and the spares that hold them
//! (the policy: `spares/mod.rs`, "Seats"). Kept under the spares' lock.

/// The core a blocked, pinned worker left idle, named by the worker's
/// index, and the spare on duty that holds it, if any does.
struct Seat {
    worker: usize,
    spare: Option<usize>,
}

#[derive(Default)]
pub(super) struct Seats {
    seats: Vec<Seat>,
}

impl Seats {
    /// Worker `worker` blocks: its core is vacant.
    pub(super) fn vacate(&mut self, worker: usize) {
        self.seats.push(Seat {
            worker,
            spare: None,
        });
    }

    /// Worker `worker` is back: its seat goes. Returns whether a spare
    /// held it (and is now free).
    pub(super) fn remove(&mut self, worker: usize) -> bool {
        match self.seats.iter().position(|seat| seat.worker == worker) {
            Some(position) => self.seats.swap_remove(position).spare.is_some(),
            None => false,
        }
    }

    /// Spare `spare` leaves duty. Returns whether it held a seat (now
    /// vacant again).
    pub(super) fn unseat(&mut self, spare: usize) -> bool {
        match self.seats.iter_mut().find(|seat| seat.spare == Some(spare)) {
            Some(seat) => {
                seat.spare = None;
                true
            }
            None => false,
        }
    }

    /// Gives each vacant seat to a spare of `on_duty` that holds none.
    /// Returns whether any seat changed hands.
    pub(super) fn fill(&mut self, on_duty: &[usize]) -> bool {
        let mut changed = false;
        for position in 0..self.seats.len() {
            if self.seats[position].spare.is_some() {
                continue;
            }
            let Some(spare) = on_duty
                .iter()
                .copied()
                .find(|&spare| self.held_by(spare).is_none())
            else {
                break;
            };
            self.seats[position].spare = Some(spare);
            changed = true;
        }
        changed
    }

    /// The seat (a worker's index) that spare `spare` holds.
    pub(super) fn held_by(&self, spare: usize) -> Option<usize> {
        self.seats
            .iter()
            .find(|seat| seat.spare == Some(spare))
            .map(|seat| seat.worker)
    }
}
