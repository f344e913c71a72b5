//! Panic plumbing: catching a panic where a task runs, carrying it to the
//! thread that waits for the task, and a last-resort guard.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// A caught panic, as `std::panic::catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Runs `f`, turning a panic into `Err`. Every place that runs user code on a
/// worker goes through this, so a panic never unwinds into the scheduler.
#[inline]
pub(crate) fn halt_unwinding<F, R>(f: F) -> Result<R, Payload>
where
    F: FnOnce() -> R,
{
    // The payload is handed to the waiting caller, which re-raises it or
    // returns it as an `Err`; no state observed half-updated leaks out.
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// Re-raises a caught panic on the current thread.
pub(crate) fn resume_unwinding(payload: Payload) -> ! {
    panic::resume_unwind(payload)
}

/// Drops a panic payload, containing a panic raised by its own `Drop`
/// (the second payload is leaked rather than dropped, which could panic
/// again). Scheduler code drops payloads only through this.
pub(crate) fn drop_payload(payload: Payload) {
    if let Err(second) = halt_unwinding(move || drop(payload)) {
        std::mem::forget(second);
    }
}

/// Aborts the process if dropped during unwinding.
///
/// Held across the few stretches of scheduler code that must not be
/// interrupted by a panic (for example, between taking a job's closure and
/// publishing its result). Those stretches run no user code, so the guard
/// firing would mean a bug in pilfer, never a user's panic.
pub(crate) struct AbortIfPanic;

impl Drop for AbortIfPanic {
    fn drop(&mut self) {
        eprintln!("pilfer: internal invariant broken by a panic; aborting");
        std::process::abort();
    }
}
