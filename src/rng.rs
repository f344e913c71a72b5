//! A tiny per-worker random number generator, to pick the first victim of a
//! steal (so thieves do not all pile onto worker 0).

use std::cell::Cell;

/// xorshift64* (Marsaglia 2003; Vigna 2016): fast, and plenty random for
/// spreading thieves.
pub(crate) struct XorShift64Star {
    state: Cell<u64>,
}

impl XorShift64Star {
    pub(crate) fn new(seed: u64) -> Self {
        // Any non-zero state works; mix the seed so nearby seeds diverge.
        let mixed = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        XorShift64Star {
            state: Cell::new(mixed | 1),
        }
    }

    pub(crate) fn next(&self) -> u64 {
        let mut x = self.state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`; `n` must be non-zero.
    pub(crate) fn next_below(&self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
