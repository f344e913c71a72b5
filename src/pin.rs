//! Pinning workers to cores.
//!
//! Worker `i` is pinned to the `i`-th core of the set the process may run on.
//! A pool with more workers than that set has cores is not pinned at all:
//! two workers pinned to one core could not be moved apart by the OS when
//! one core is busier than another (with 16 workers on 2 cores, quicksort
//! took about 1.4x as long pinned as unpinned; BENCHMARKS.md).
//!
//! `core_affinity::get_core_ids` reads the *calling thread's* mask, which a
//! pinned thread has narrowed to one core. So the set is read once per
//! process, by the first pool that pins, before any of its workers pins
//! itself, and reused by every later pool: a pool built by a task running
//! on a pinned worker still spreads over all the cores. (The first pool
//! built by a thread the user pinned beforehand sees only that thread's
//! cores.) Workers of an unpinned pool inherit the mask of the thread that
//! built the pool, as every new thread does, so each widens its mask back to
//! the whole set as it starts (on Linux; elsewhere it keeps what it got).
//!
//! A failed pin is not an error; the worker runs unpinned and the metrics
//! say so. (On macOS the OS treats affinity as a hint only.)

use crate::sync::OnceLock;
pub(crate) use core_affinity::CoreId;

/// The cores the process may run on, as first read (empty if unknown).
pub(crate) fn allowed_cores() -> Vec<CoreId> {
    if cfg!(any(loom, miri)) {
        // Loom's threads are not OS threads, and Miri does not emulate
        // `sched_setaffinity`: nothing to pin.
        return Vec::new();
    }
    static ALLOWED: OnceLock<Vec<CoreId>> = OnceLock::new();
    ALLOWED
        .get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
        .clone()
}

/// Where a worker runs.
#[derive(Clone)]
pub(crate) enum Placement {
    /// Pinned to one core.
    Pin(CoreId),
    /// Free to run on any of these cores.
    Spread(Vec<CoreId>),
}

impl Placement {
    /// The placement of worker `index` of `workers` among `cores` (empty:
    /// nothing to do). Pinned only if asked and every worker can have a
    /// core of its own.
    pub(crate) fn for_worker(
        pin: bool,
        cores: &[CoreId],
        index: usize,
        workers: usize,
    ) -> Option<Placement> {
        if cores.is_empty() {
            None
        } else if pin && workers <= cores.len() {
            Some(Placement::Pin(cores[index]))
        } else {
            Some(Placement::Spread(cores.to_vec()))
        }
    }

    /// Applies the placement to the calling thread; returns whether it is
    /// now pinned to one core.
    pub(crate) fn apply(&self) -> bool {
        match self {
            Placement::Pin(core) => core_affinity::set_for_current(*core),
            Placement::Spread(cores) => {
                spread_current_thread(cores);
                false
            }
        }
    }
}

/// Lets the calling thread run on every core of `cores`.
#[cfg(target_os = "linux")]
fn spread_current_thread(cores: &[CoreId]) {
    // SAFETY: `cpu_set_t` is plain data and all-zero is the empty set;
    // `CPU_SET` is only called with ids below `CPU_SETSIZE`, inside the set;
    // `sched_setaffinity` reads `size_of::<cpu_set_t>()` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for core in cores
            .iter()
            .filter(|core| core.id < libc::CPU_SETSIZE as usize)
        {
            libc::CPU_SET(core.id, &mut set);
        }
        // A refusal leaves the inherited mask: still a valid place to run.
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Elsewhere a thread keeps the mask it inherited.
#[cfg(not(target_os = "linux"))]
fn spread_current_thread(_cores: &[CoreId]) {}
