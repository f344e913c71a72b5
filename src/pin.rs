//! Pinning workers to cores.
//!
//! A pool's workers are pinned only if each can have a core of its own: a
//! core of the set the process may run on that no pinned worker of another
//! live pool holds. The pool then takes the first such cores, in order, and
//! holds them until its registry is dropped (its workers have exited); a
//! pool that cannot get one free core per worker is not pinned at all. Two
//! workers pinned to one core could not be moved apart by the OS when one
//! core is busier than another (BENCHMARKS.md measures what that cost
//! with more workers than cores), and two small
//! pools each pinned to the first core could never run at the same time.
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

use crate::sync::{OnceLock, process};
pub(crate) use core_affinity::CoreId;

/// The cores the process may run on, as first read (empty if unknown).
pub(crate) fn allowed_cores() -> Vec<CoreId> {
    if cfg!(any(loom, shuttle, miri)) {
        // Loom's and shuttle's threads are not OS threads, and Miri does
        // not emulate `sched_setaffinity`: nothing to pin.
        return Vec::new();
    }
    static ALLOWED: OnceLock<Vec<CoreId>> = OnceLock::new();
    ALLOWED
        .get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
        .clone()
}

/// Which of the allowed cores (by position in `allowed_cores()`) a pinned
/// worker of some live pool holds.
static HELD: process::Mutex<Vec<bool>> = process::Mutex::new(Vec::new());

/// Where the workers of one pool run, and the cores it holds while alive.
pub(crate) struct CorePlan {
    /// The allowed cores (empty if unknown: nothing to do).
    cores: Vec<CoreId>,
    /// If the pool is pinned: the position in `cores` of each worker's core.
    pinned: Option<Vec<usize>>,
    /// Whether the pool's cores were given back (`release`).
    released: process::Mutex<bool>,
}

impl CorePlan {
    /// Plans a pool of `workers`: pinned, on free cores taken now, if `pin`
    /// and enough cores are free; spread over all the allowed cores if not.
    pub(crate) fn new(pin: bool, workers: usize) -> CorePlan {
        let cores = allowed_cores();
        let pinned = if pin && !cores.is_empty() {
            hold_free_cores(cores.len(), workers)
        } else {
            None
        };
        CorePlan {
            cores,
            pinned,
            released: process::Mutex::new(false),
        }
    }

    /// The placement of worker `index` (`None`: nothing to do).
    pub(crate) fn placement(&self, index: usize) -> Option<Placement> {
        if self.cores.is_empty() {
            return None;
        }
        Some(match &self.pinned {
            Some(positions) => Placement::Pin(self.cores[positions[index]]),
            None => Placement::Spread(self.cores.clone()),
        })
    }

    /// The allowed cores (empty if unknown).
    pub(crate) fn cores(&self) -> &[CoreId] {
        &self.cores
    }
}

impl CorePlan {
    /// Gives the pool's cores back (its workers have exited); once, however
    /// often it is called.
    pub(crate) fn release(&self) {
        let mut released = process::lock(&self.released);
        if std::mem::replace(&mut *released, true) {
            return;
        }
        if let Some(positions) = &self.pinned {
            let mut held = process::lock(&HELD);
            for &position in positions {
                held[position] = false;
            }
        }
    }
}

impl Drop for CorePlan {
    fn drop(&mut self) {
        self.release();
    }
}

/// Takes the first `workers` of `allowed` cores that no live pool holds, or
/// none if fewer are free.
fn hold_free_cores(allowed: usize, workers: usize) -> Option<Vec<usize>> {
    let mut held = process::lock(&HELD);
    held.resize(allowed, false);
    let free: Vec<usize> = (0..allowed)
        .filter(|&position| !held[position])
        .take(workers)
        .collect();
    if free.len() < workers {
        return None;
    }
    for &position in &free {
        held[position] = true;
    }
    Some(free)
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
fn spread_current_thread(cores: &[CoreId]) {
    #[cfg(target_os = "linux")]
    set_affinity(0, cores);
    // Elsewhere a thread keeps the mask it inherited.
    #[cfg(not(target_os = "linux"))]
    let _ = cores;
}

/// An OS thread that another thread can move between cores (spares/,
/// "Seats"): on Linux, its kernel thread id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OsThread(#[cfg(target_os = "linux")] libc::pid_t);

/// The calling thread, if threads can be moved from outside here (Linux;
/// not under loom, shuttle or Miri, whose threads are not the OS's to move).
pub(crate) fn current_os_thread() -> Option<OsThread> {
    #[cfg(target_os = "linux")]
    if !cfg!(any(loom, shuttle, miri)) {
        // SAFETY: `gettid` has no preconditions.
        return Some(OsThread(unsafe { libc::gettid() }));
    }
    None
}

/// Lets `thread` run only on `cores` (one core: pinned there). A thread
/// that has exited, or a refusal, leaves things as they were.
pub(crate) fn move_thread(thread: OsThread, cores: &[CoreId]) {
    #[cfg(target_os = "linux")]
    set_affinity(thread.0, cores);
    #[cfg(not(target_os = "linux"))]
    let _ = (thread, cores);
}

/// Sets the affinity mask of thread `tid` (0: the calling thread).
#[cfg(target_os = "linux")]
fn set_affinity(tid: libc::pid_t, cores: &[CoreId]) {
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
        // A refusal leaves the mask as it was: still a valid place to run.
        let _ = libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
