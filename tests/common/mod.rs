//! Helpers shared by the integration tests. Each test file compiles this
//! module separately and uses only part of it.
#![allow(dead_code)]

use std::any::Any;
use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Safety limit for anything that should finish quickly; only a deadlock or
/// a lost wake-up gets anywhere near it.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Whole-process safety limit, far above any test binary's normal run time
/// (a few seconds): a binary still running then has a test stuck in a
/// deadlock or lost wake-up that no per-test deadline covers (an outside
/// thread blocked in `install`, `Task::join`, a drop...).
pub const PROCESS_LIMIT: Duration = Duration::from_secs(180);

/// Runs `f` with the panic hook silenced, for panics a test expects (keeps
/// the output, and Miri's, short). Touches no other state: safe to use
/// under Miri.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = f();
    panic::set_hook(hook);
    result
}

/// Starts (once per process) a watchdog that aborts the process, saying
/// why, once it has run for [`PROCESS_LIMIT`], so that a hang fails the run
/// instead of eating the CI budget. The helpers below arm it; tests that use
/// none of them call it first.
pub fn arm_watchdog() {
    static ARMED: Once = Once::new();
    ARMED.call_once(|| {
        thread::Builder::new()
            .name("watchdog".into())
            .spawn(|| {
                thread::sleep(PROCESS_LIMIT);
                // Straight to the stream: `eprintln!` in a thread spawned by
                // a test is captured by the test harness, and lost on abort.
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: test process still running after {PROCESS_LIMIT:?}: \
                     a test is stuck (deadlock or lost wake-up?); aborting"
                );
                std::process::abort();
            })
            .expect("spawning the watchdog");
    });
}

/// A pool of `n` unpinned workers. (Pinning is tested on its own; the
/// pools of tests running in parallel would otherwise compete for cores.)
pub fn pool(n: usize) -> pilfer::ThreadPool {
    arm_watchdog();
    pilfer::ThreadPool::builder()
        .num_threads(n)
        .pin_workers(false)
        .build()
        .expect("building a test pool")
}

/// A pool of `n` unpinned workers whose panic handler records each
/// detached panic's message, and the record.
pub fn pool_recording_panics(n: usize) -> (pilfer::ThreadPool, std::sync::Arc<Mutex<Vec<String>>>) {
    arm_watchdog();
    let handled = std::sync::Arc::new(Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&handled);
    let pool = pilfer::ThreadPool::builder()
        .num_threads(n)
        .pin_workers(false)
        .panic_handler(move |payload| record.lock().unwrap().push(panic_message(&*payload)))
        .build()
        .expect("building a test pool");
    (pool, handled)
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f` and returns the message of the panic it must raise.
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, but the closure returned normally"),
        Err(payload) => panic_message(&*payload),
    }
}

/// Runs `f` on a fresh thread and returns its result, failing the test if it
/// takes longer than [`DEADLINE`] (a deadlock). A panic in `f` is re-raised.
/// On a timeout the stuck thread is leaked; the test process ends anyway.
pub fn with_deadline<T, F>(what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    arm_watchdog();
    let (sender, receiver) = mpsc::channel();
    thread::Builder::new()
        .name(format!("deadline: {what}"))
        .spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            let _ = sender.send(result);
        })
        .expect("spawning the deadline thread");
    match receiver.recv_timeout(DEADLINE) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: still running after {DEADLINE:?}; deadlock?"),
    }
}

/// Polls `condition` until it holds; fails the test after [`DEADLINE`].
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    arm_watchdog();
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: condition not reached within {DEADLINE:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` once on every worker of `pool`, all at the same time: one scope
/// task per worker, each waiting (up to the deadline) until all of them are
/// running, so they must be on distinct workers. Returns each worker's
/// result by index; fails if some worker never took its task (dead, or never
/// woken). Never blocks a worker for good, so a failure cannot hang the pool.
pub fn on_every_worker<T: Send>(
    pool: &pilfer::ThreadPool,
    f: impl Fn() -> T + Sync,
) -> BTreeMap<usize, T> {
    arm_watchdog();
    let n = pool.num_threads();
    let arrived = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    pool.scope(|s| {
        for _ in 0..n {
            s.spawn(|_| {
                arrived.fetch_add(1, Ordering::SeqCst);
                let start = Instant::now();
                while arrived.load(Ordering::SeqCst) < n && start.elapsed() < DEADLINE {
                    thread::sleep(Duration::from_micros(200));
                }
                let index = pilfer::current_worker_index().expect("ran off-pool");
                let value = f();
                results.lock().unwrap().insert(index, value);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let indices: Vec<usize> = results.keys().copied().collect();
    assert_eq!(
        indices,
        (0..n).collect::<Vec<_>>(),
        "not every worker ran a task concurrently: a worker is dead or was never woken"
    );
    results
}

/// Checks that every worker of `pool` still takes work (see
/// [`on_every_worker`]).
pub fn assert_all_workers_alive(pool: &pilfer::ThreadPool) {
    on_every_worker(pool, || ());
}

/// Recursive Fibonacci on `pilfer::join`.
pub fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = pilfer::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

/// Plain sequential Fibonacci, the reference for [`fib`].
pub fn fib_sequential(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

/// Names of this process's threads whose name starts with `prefix` (Linux:
/// `/proc/self/task/*/comm`, truncated by the kernel to 15 bytes).
#[cfg(target_os = "linux")]
pub fn threads_named(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("reading /proc/self/task") {
        let path = entry.expect("task entry").path().join("comm");
        // A thread may exit between the listing and the read.
        if let Ok(name) = std::fs::read_to_string(path) {
            let name = name.trim_end().to_string();
            if name.starts_with(prefix) {
                names.push(name);
            }
        }
    }
    names
}

/// Every worker of a pool held by a task blocked on a channel. Dropping it
/// (also when a test fails) lets those tasks return, so the pool's drop
/// cannot hang.
pub struct Occupied {
    gates: Vec<mpsc::Sender<()>>,
}

impl Occupied {
    pub fn release(self) {
        drop(self.gates);
    }
}

/// Occupies every worker of `pool`, one task at a time: each has started
/// (and so given its slot back) before the next is spawned.
pub fn occupy(pool: &pilfer::ThreadPool) -> Occupied {
    let mut gates = Vec::new();
    for _ in 0..pool.num_threads() {
        let (gate, wait) = mpsc::channel::<()>();
        let (started, is_started) = mpsc::channel();
        pool.spawn(move || {
            started.send(()).unwrap();
            // Returns when the test sends or drops the gate.
            let _ = wait.recv();
        });
        is_started
            .recv_timeout(DEADLINE)
            .expect("an occupying task never started");
        gates.push(gate);
    }
    assert_eq!(
        pool.pending(),
        0,
        "the started occupying tasks still hold slots of the bound"
    );
    Occupied { gates }
}
