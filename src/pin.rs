//! Pinning workers to cores.
//!
//! Worker `i` is pinned to the `i`-th core of the set the process may run on,
//! wrapping around when there are more workers than cores. The set is read
//! once, before any worker pins itself: `core_affinity::get_core_ids` reads
//! the *calling thread's* mask, which a pinned thread would have narrowed.
//! A failed pin is not an error; the worker runs unpinned and the metrics
//! say so. (On macOS the OS treats affinity as a hint only.)

pub(crate) use core_affinity::CoreId;

/// The cores the calling thread may run on (empty if unknown).
pub(crate) fn allowed_cores() -> Vec<CoreId> {
    if cfg!(any(loom, miri)) {
        // Loom's threads are not OS threads, and Miri does not emulate
        // `sched_setaffinity`: nothing to pin.
        return Vec::new();
    }
    core_affinity::get_core_ids().unwrap_or_default()
}

/// Pins the calling thread to `core`; `false` if the OS refused.
pub(crate) fn pin_current_thread(core: CoreId) -> bool {
    core_affinity::set_for_current(core)
}
