//! Bad input stays an error: configurations a pool cannot have come back
//! from `build` as a [`BuildError`] that says what was wrong (never a panic
//! deep inside, an abort or a hang), and the process can build a working
//! pool afterwards. Then the edges of a task's life that user code can
//! reach in odd orders: `Task::abort` racing the task's start, aborts under
//! a full bound, `shutdown_now` from inside the pool, a `Task` outliving its
//! pool, and a `thread_name` closure that panics.
//!
//! Every test runs its body under [`common::with_deadline`] (a hang fails
//! the test after [`common::DEADLINE`]) and the process-wide watchdog.

mod common;

use common::{DEADLINE, panic_message, wait_for, with_deadline};
use pilfer::{BuildError, ThreadPool, ThreadPoolBuilder, ThreadSpawn};
use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Builds on a fresh thread, under the deadline, and fails the test if
/// `build` panics instead of returning.
fn try_build<S>(what: &str, builder: ThreadPoolBuilder<S>) -> Result<ThreadPool, BuildError>
where
    S: ThreadSpawn + Send + 'static,
{
    let what_owned = what.to_string();
    with_deadline(what, move || {
        match panic::catch_unwind(AssertUnwindSafe(|| builder.build())) {
            Ok(result) => result,
            Err(payload) => panic!(
                "{what_owned}: build() panicked instead of returning an error: {}",
                panic_message(&*payload)
            ),
        }
    })
}

/// The error `build` must return; fails the test if it built a pool.
fn build_error<S>(what: &str, builder: ThreadPoolBuilder<S>) -> BuildError
where
    S: ThreadSpawn + Send + 'static,
{
    match try_build(what, builder) {
        Ok(pool) => panic!("{what}: build() accepted it and built {pool:?}"),
        Err(error) => error,
    }
}

/// The process can still build a pool that works.
fn assert_can_build_a_working_pool() {
    let pool = try_build(
        "a pool after a failed build",
        ThreadPool::builder().num_threads(2).pin_workers(false),
    )
    .expect("building a pool after a failed build");
    assert_eq!(
        with_deadline("the new pool runs work", move || {
            let sum = pool.install(|| pilfer::join(|| 40, || 2));
            (sum.0 + sum.1, pool.submit(|| 6 * 7).join().unwrap())
        }),
        (42, 42)
    );
}

/// A builder whose start and exit handlers count, to show that no worker
/// started (or that each started one was stopped).
fn counting_builder(starts: &Arc<AtomicUsize>, exits: &Arc<AtomicUsize>) -> ThreadPoolBuilder {
    let (starts, exits) = (Arc::clone(starts), Arc::clone(exits));
    ThreadPool::builder()
        .pin_workers(false)
        .start_handler(move |_| {
            starts.fetch_add(1, Ordering::SeqCst);
        })
        .exit_handler(move |_| {
            exits.fetch_add(1, Ordering::SeqCst);
        })
}

// ---------------------------------------------------------------------------
// Build errors
// ---------------------------------------------------------------------------

#[test]
fn too_many_threads_is_an_error_that_names_the_limit() {
    let starts = Arc::new(AtomicUsize::new(0));
    let exits = Arc::new(AtomicUsize::new(0));
    let mut limit = None;
    for requested in [1_000_000, usize::MAX] {
        let error = build_error(
            "too many threads",
            counting_builder(&starts, &exits).num_threads(requested),
        );
        let max = match error {
            BuildError::TooManyThreads { requested: r, max } => {
                assert_eq!(r, requested, "the error reports the number asked for");
                max
            }
            ref other => panic!("num_threads({requested}): expected TooManyThreads, got {other:?}"),
        };
        assert_eq!(
            max,
            pilfer::max_num_threads(),
            "the limit is max_num_threads()"
        );
        assert!(max < requested);
        assert_eq!(*limit.get_or_insert(max), max, "the limit does not move");
        let message = error.to_string();
        assert!(
            message.contains(&format!("{requested} threads requested"))
                && message.contains(&format!("at most {max}")),
            "num_threads({requested}): unclear message {message:?}"
        );
    }
    // Just past the limit is refused the same way.
    let max = limit.unwrap();
    match build_error(
        "one thread past the limit",
        counting_builder(&starts, &exits).num_threads(max + 1),
    ) {
        BuildError::TooManyThreads { requested, max: m } => {
            assert_eq!((requested, m), (max + 1, max));
        }
        other => panic!(
            "num_threads({}): expected TooManyThreads, got {other:?}",
            max + 1
        ),
    }
    // `build_scoped` validates the same way, before `with_pool` is called.
    let scoped = with_deadline("build_scoped with too many threads", || {
        ThreadPool::builder()
            .num_threads(usize::MAX)
            .build_scoped(|thread| thread.run(), |_| unreachable!("with_pool called"))
    });
    assert!(
        matches!(
            scoped,
            Err(BuildError::TooManyThreads {
                requested: usize::MAX,
                ..
            })
        ),
        "build_scoped: {scoped:?}"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 0, "a worker started");
    assert_eq!(exits.load(Ordering::SeqCst), 0);
    assert_can_build_a_working_pool();
}

/// A stack the OS cannot provide: `BuildError::Spawn` for worker 0, with
/// the OS's error as its source, and no worker left behind.
#[test]
fn impossible_stack_size_is_a_spawn_error() {
    let starts = Arc::new(AtomicUsize::new(0));
    let exits = Arc::new(AtomicUsize::new(0));
    for bytes in [usize::MAX, usize::MAX / 2] {
        let error = build_error(
            "an impossible stack size",
            counting_builder(&starts, &exits)
                .num_threads(3)
                .stack_size(bytes)
                .thread_name(|i| format!("bi-stack-{i}")),
        );
        match &error {
            BuildError::Spawn { index, error: os } => {
                assert_eq!(*index, 0, "stack_size({bytes}): the first worker fails");
                let message = error.to_string();
                assert!(
                    message.starts_with("could not start worker thread 0: ")
                        && message.ends_with(&os.to_string()),
                    "stack_size({bytes}): unclear message {message:?}"
                );
            }
            other => panic!("stack_size({bytes}): expected Spawn, got {other:?}"),
        }
        let source = std::error::Error::source(&error).expect("Spawn has the OS error as source");
        assert!(source.downcast_ref::<io::Error>().is_some());
        println!("stack_size({bytes}): {error}");
    }
    assert_eq!(starts.load(Ordering::SeqCst), 0, "a worker started");
    assert_eq!(exits.load(Ordering::SeqCst), 0);
    #[cfg(target_os = "linux")]
    assert_eq!(common::threads_named("bi-stack-"), Vec::<String>::new());
    assert_can_build_a_working_pool();
}

/// With `use_current_thread`, worker 0 is the calling thread and worker 1
/// is the first to fail: the calling thread must be let go again.
#[test]
fn impossible_stack_size_lets_an_adopted_thread_go() {
    with_deadline("an adopted thread and a failing worker 1", || {
        let result = panic::catch_unwind(|| {
            ThreadPool::builder()
                .num_threads(2)
                .pin_workers(false)
                .use_current_thread()
                .stack_size(usize::MAX)
                .build()
        });
        match result {
            Ok(Err(BuildError::Spawn { index, .. })) => assert_eq!(index, 1),
            Ok(Err(other)) => panic!("expected Spawn for worker 1, got {other:?}"),
            Ok(Ok(_)) => panic!("a usize::MAX stack was provided"),
            Err(payload) => panic!("build() panicked: {}", panic_message(&*payload)),
        }
        assert_eq!(
            pilfer::current_thread_index(),
            None,
            "the calling thread stayed a worker of the failed pool"
        );
        // The same thread can become a worker of a good pool.
        let pool = ThreadPool::builder()
            .num_threads(2)
            .pin_workers(false)
            .use_current_thread()
            .build()
            .expect("adopting the thread after the failure");
        assert_eq!(pool.install(pilfer::current_thread_index), Some(0));
        drop(pool);
        assert_eq!(pilfer::current_thread_index(), None);
    });
    assert_can_build_a_working_pool();
}

#[test]
fn zero_max_pending_is_an_error() {
    for policy in [pilfer::FullPolicy::Block, pilfer::FullPolicy::CallerRuns] {
        let error = build_error(
            "max_pending(0)",
            ThreadPool::builder()
                .num_threads(1)
                .pin_workers(false)
                .max_pending(0)
                .when_full(policy),
        );
        assert!(
            matches!(error, BuildError::ZeroMaxPending),
            "{policy:?}: expected ZeroMaxPending, got {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("max_pending(0)") && message.contains("at least 1"),
            "unclear message {message:?}"
        );
    }
    // The smallest bound works.
    let pool = try_build(
        "max_pending(1)",
        ThreadPool::builder()
            .num_threads(1)
            .pin_workers(false)
            .max_pending(1),
    )
    .unwrap();
    let sum = with_deadline("a pool with max_pending(1)", move || {
        let tasks: Vec<_> = (0..100u64).map(|i| pool.submit(move || i)).collect();
        assert!(pool.pending() <= 1);
        tasks.into_iter().map(|t| t.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, 4950);
}

/// A spawn handler that returns an error for the first worker: the error
/// comes back as `BuildError::Spawn`, intact.
#[test]
fn spawn_handler_failing_at_once_is_a_spawn_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let error = build_error(
        "a spawn handler that fails",
        ThreadPool::builder()
            .num_threads(3)
            .pin_workers(false)
            .spawn_handler(move |_thread| {
                counted.fetch_add(1, Ordering::SeqCst);
                Err(io::Error::other("no threads today"))
            }),
    );
    match &error {
        BuildError::Spawn { index, error: os } => {
            assert_eq!(*index, 0);
            assert_eq!(os.kind(), io::ErrorKind::Other);
            assert_eq!(os.to_string(), "no threads today");
        }
        other => panic!("expected Spawn, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "could not start worker thread 0: no threads today"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler is not called again after it failed"
    );
    assert_can_build_a_working_pool();
}

/// A spawn handler that starts worker 0 and fails for worker 1: `Spawn`
/// with index 1, and worker 0 has been stopped (its exit handler ran, it
/// returns from `run`) before `build` returned.
#[test]
fn spawn_handler_failing_later_stops_the_started_worker() {
    let starts = Arc::new(AtomicUsize::new(0));
    let exits = Arc::new(AtomicUsize::new(0));
    let (handler, handles, left_run) = handler_starting_workers(|index| {
        (index == 1).then(|| io::Error::new(io::ErrorKind::WouldBlock, "worker 1 refused"))
    });
    let error = build_error(
        "a spawn handler that fails for worker 1",
        counting_builder(&starts, &exits)
            .num_threads(3)
            .spawn_handler(handler),
    );
    match &error {
        BuildError::Spawn { index, error: os } => {
            assert_eq!(*index, 1);
            assert_eq!(os.kind(), io::ErrorKind::WouldBlock);
        }
        other => panic!("expected Spawn for worker 1, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "could not start worker thread 1: worker 1 refused"
    );
    assert_started_worker_was_stopped(&starts, &exits, &handles, &left_run);
    assert_can_build_a_working_pool();
}

/// A spawn handler that panics (not an error it returns): the panic is the
/// user's own and comes out of `build` as it is, after the worker already
/// started has been stopped.
#[test]
fn spawn_handler_panicking_unwinds_after_stopping_the_started_workers() {
    let starts = Arc::new(AtomicUsize::new(0));
    let exits = Arc::new(AtomicUsize::new(0));
    let (handler, handles, left_run) = handler_starting_workers(|index| {
        assert!(index != 1, "handler bug for worker 1");
        None
    });
    let builder = counting_builder(&starts, &exits)
        .num_threads(3)
        .spawn_handler(handler);
    let result = with_deadline("a panicking spawn handler", move || {
        panic::catch_unwind(AssertUnwindSafe(|| builder.build()))
    });
    match result {
        Err(payload) => assert_eq!(panic_message(&*payload), "handler bug for worker 1"),
        Ok(Ok(_)) => panic!("built a pool without worker 1"),
        Ok(Err(error)) => panic!("expected the handler's panic, got the error {error:?}"),
    }
    assert_started_worker_was_stopped(&starts, &exits, &handles, &left_run);
    assert_can_build_a_working_pool();
}

type Handles = Arc<Mutex<Vec<thread::JoinHandle<()>>>>;

/// A spawn handler that starts each worker on a std thread unless `fail`
/// says otherwise (or panics), the threads' handles, and how many workers
/// returned from `run`.
fn handler_starting_workers(
    fail: impl Fn(usize) -> Option<io::Error> + Send + 'static,
) -> (
    impl FnMut(pilfer::ThreadBuilder) -> io::Result<()> + Send + 'static,
    Handles,
    Arc<AtomicUsize>,
) {
    let handles = Handles::default();
    let left_run = Arc::new(AtomicUsize::new(0));
    let (spawned, left) = (Arc::clone(&handles), Arc::clone(&left_run));
    let handler = move |thread: pilfer::ThreadBuilder| {
        if let Some(error) = fail(thread.index()) {
            return Err(error);
        }
        let left = Arc::clone(&left);
        let handle = thread::Builder::new()
            .name(format!("bi-handler-{}", thread.index()))
            .spawn(move || {
                thread.run();
                left.fetch_add(1, Ordering::SeqCst);
            })?;
        spawned.lock().unwrap().push(handle);
        Ok(())
    };
    (handler, handles, left_run)
}

/// Worker 0 alone was started, and was stopped before `build` returned:
/// its exit handler ran; its thread then returns from `run` and ends.
fn assert_started_worker_was_stopped(
    starts: &AtomicUsize,
    exits: &AtomicUsize,
    handles: &Handles,
    left_run: &Arc<AtomicUsize>,
) {
    assert_eq!(starts.load(Ordering::SeqCst), 1, "workers started");
    assert_eq!(
        exits.load(Ordering::SeqCst),
        1,
        "worker 0 not stopped when build() returned"
    );
    let handles = std::mem::take(&mut *handles.lock().unwrap());
    assert_eq!(handles.len(), 1);
    with_deadline("worker 0's thread to end", move || {
        for handle in handles {
            handle.join().expect("worker 0's thread panicked");
        }
    });
    assert_eq!(
        left_run.load(Ordering::SeqCst),
        1,
        "worker 0 never left run()"
    );
}

// ---------------------------------------------------------------------------
// Task::abort racing the start
// ---------------------------------------------------------------------------

/// The wait between `submit` and `abort`: a random number of spins around
/// a level that follows the outcomes (up after an abort that won, down
/// after one that lost), so that about half the aborts find the task
/// started whatever this machine's speed or load: the aborts keep landing
/// around the moment a worker starts the task. The spins yield now and
/// then, so that on a machine with fewer cores than threads the worker
/// gets to run while the racer waits. One race in eight does not wait.
///
/// On a machine so busy that a worker takes milliseconds to get a core,
/// those waits would add up to minutes: past `RACE_BUDGET` the races go on
/// without waiting (abort then mostly wins, and each race is still
/// checked).
struct Delay {
    /// xorshift state.
    rng: u64,
    /// Spins, on average.
    level: u32,
    /// When the waits stop.
    until: Instant,
    /// The races that waited (or were meant not to).
    paced: usize,
}

/// How long the racers may spend on tuned waits.
const RACE_BUDGET: Duration = Duration::from_secs(2);

impl Delay {
    /// Bounds one wait (4096 spins and 128 yields at most).
    const MAX_LEVEL: u32 = 2048;

    fn new(seed: u64) -> Delay {
        Delay {
            rng: 0x9E37_79B9_7F4A_7C15 ^ seed,
            level: 16,
            until: Instant::now() + RACE_BUDGET,
            paced: 0,
        }
    }

    fn wait(&mut self) {
        if Instant::now() > self.until {
            return;
        }
        self.paced += 1;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 8 == 0 {
            return;
        }
        let spins = (self.rng >> 3) % (2 * u64::from(self.level) + 1);
        for spin in 0..spins {
            std::hint::spin_loop();
            if spin % 32 == 31 {
                thread::yield_now();
            }
        }
    }

    fn record(&mut self, abort_won: bool) {
        self.level = if abort_won {
            (self.level + self.level / 8 + 1).min(Delay::MAX_LEVEL)
        } else {
            self.level - self.level / 8
        };
    }
}

const NOT_DECIDED: u8 = 0;
const CANCELLED: u8 = 1;
const RAN: u8 = 2;

/// `Task::abort` racing the task's start, 100,000 times over four pools
/// (one and two workers, bounded and not) and four racing threads: each
/// time exactly one of "abort returned true, the task reports cancelled and
/// the closure never ran" and "abort returned false, the closure ran once
/// and join returns its value".
#[test]
fn abort_racing_the_start_has_exactly_one_outcome() {
    const RACES: usize = 100_000;
    const RACERS: usize = 4;
    const PER_RACER: usize = RACES / RACERS;
    let started = Instant::now();
    let (cancelled_total, ran_total) = with_deadline("abort racing the start", || {
        let pools: Vec<Arc<ThreadPool>> = (0..RACERS)
            .map(|r| {
                let builder = ThreadPool::builder()
                    .num_threads(1 + r % 2)
                    .pin_workers(false);
                let builder = if r >= 2 {
                    builder.max_pending(4)
                } else {
                    builder
                };
                Arc::new(builder.build().unwrap())
            })
            .collect();
        let ran: Arc<Vec<AtomicU8>> = Arc::new((0..RACES).map(|_| AtomicU8::new(0)).collect());
        let outcome: Arc<Vec<AtomicU8>> =
            Arc::new((0..RACES).map(|_| AtomicU8::new(NOT_DECIDED)).collect());
        let racers: Vec<_> = (0..RACERS)
            .map(|r| {
                let pool = Arc::clone(&pools[r]);
                let (ran, outcome) = (Arc::clone(&ran), Arc::clone(&outcome));
                thread::spawn(move || {
                    let mut delay = Delay::new(r as u64 + 1);
                    let mut cancelled = 0u64;
                    for id in r * PER_RACER..(r + 1) * PER_RACER {
                        let ran_by_task = Arc::clone(&ran);
                        let task = pool.submit(move || {
                            ran_by_task[id].fetch_add(1, Ordering::SeqCst);
                            id
                        });
                        delay.wait();
                        let aborted = task.abort();
                        delay.record(aborted);
                        assert!(!task.abort(), "task {id}: a second abort returned true");
                        if aborted {
                            assert!(task.is_finished(), "task {id}: aborted but not finished");
                            let error = task
                                .join()
                                .expect_err("abort returned true, yet join returned a value");
                            assert!(error.is_cancelled() && !error.is_panic());
                            assert_eq!(
                                ran[id].load(Ordering::SeqCst),
                                0,
                                "task {id}: abort returned true, yet the closure ran"
                            );
                            outcome[id].store(CANCELLED, Ordering::SeqCst);
                            cancelled += 1;
                        } else {
                            match task.join() {
                                Ok(value) => assert_eq!(value, id),
                                Err(error) => panic!(
                                    "task {id}: abort returned false, yet join failed \
                                     (cancelled: {}, panic: {})",
                                    error.is_cancelled(),
                                    error.is_panic()
                                ),
                            }
                            assert_eq!(
                                ran[id].load(Ordering::SeqCst),
                                1,
                                "task {id}: abort returned false, joined, but the closure \
                                 did not run exactly once"
                            );
                            outcome[id].store(RAN, Ordering::SeqCst);
                        }
                    }
                    (cancelled, (delay.paced, delay.level))
                })
            })
            .collect();
        let (cancelled_by_racer, levels): (Vec<u64>, Vec<(usize, u32)>) = racers
            .into_iter()
            .map(|racer| {
                racer
                    .join()
                    .unwrap_or_else(|payload| panic::resume_unwind(payload))
            })
            .unzip();
        println!("(races paced, delay level at the end in spins), by racer: {levels:?}");
        for (r, pool) in pools.iter().enumerate() {
            assert_eq!(
                pool.metrics().cancelled(),
                cancelled_by_racer[r],
                "pool {r}: metrics().cancelled() disagrees with the aborts that returned true"
            );
            if r >= 2 {
                // Exact with a bound: every slot came back when its task
                // started or was cancelled.
                assert_eq!(
                    pool.pending(),
                    0,
                    "pool {r}: slots of the bound not given back"
                );
            } else {
                // Without a bound, `pending()` is the injector's length, which
                // still holds the jobs of cancelled tasks until a worker pops
                // (and skips) them.
                wait_for("the injector to drain", || pool.pending() == 0);
            }
        }
        // Once the pools are gone nothing can run any more: a cancelled
        // closure has still not run, and none ran twice.
        drop(pools);
        let mut totals = (0u64, 0u64);
        for id in 0..RACES {
            let ran = ran[id].load(Ordering::SeqCst);
            match outcome[id].load(Ordering::SeqCst) {
                CANCELLED => {
                    assert_eq!(ran, 0, "task {id}: cancelled, yet ran");
                    totals.0 += 1;
                }
                RAN => {
                    assert_eq!(ran, 1, "task {id}: ran {ran} times");
                    totals.1 += 1;
                }
                other => panic!("task {id}: no outcome recorded ({other})"),
            }
        }
        assert_eq!(totals.0, cancelled_by_racer.iter().sum::<u64>());
        totals
    });
    println!(
        "{RACES} races in {:?}: {cancelled_total} cancelled, {ran_total} ran",
        started.elapsed()
    );
    assert_eq!(cancelled_total + ran_total, RACES as u64);
    // Not a property of pilfer, a check that the races were real: with the
    // delays above both outcomes turn up many times in 100,000 tries.
    assert!(
        cancelled_total > 0 && ran_total > 0,
        "the races all went one way ({cancelled_total} cancelled, {ran_total} ran)"
    );
}

// ---------------------------------------------------------------------------
// Aborts under a full bound
// ---------------------------------------------------------------------------

/// Tasks submitted by the bounded test, in every build: a debug build on
/// 2 cores runs it in 2 to 14 s depending on the load (release: 0.5 to
/// 1.3 s), short enough not to scale it down.
const BOUNDED_SUBMISSIONS: usize = 1_000_000;
const BOUND: usize = 64;
const PRODUCERS: usize = 4;
/// Each producer keeps its last few even-numbered tasks and aborts the
/// oldest, so aborts land on tasks queued, starting and finished.
const ABORT_WINDOW: usize = 8;

/// `BOUNDED_SUBMISSIONS` tasks with `max_pending(64)` from four producers
/// while every even-numbered task is aborted a little later: every task ran
/// exactly once or was cancelled (never both), `pending()` never went above
/// the bound as far as anyone saw, and `metrics().cancelled()` agrees.
#[test]
fn aborts_under_a_full_bound_account_for_every_task() {
    let started = Instant::now();
    let (cancelled, ran, max_seen) = with_deadline("aborts under a full bound", || {
        let pool = Arc::new(
            ThreadPool::builder()
                .num_threads(2)
                .pin_workers(false)
                .max_pending(BOUND)
                .build()
                .unwrap(),
        );
        let ran: Arc<Vec<AtomicU8>> =
            Arc::new((0..BOUNDED_SUBMISSIONS).map(|_| AtomicU8::new(0)).collect());
        let cancelled_flags: Arc<Vec<AtomicU8>> =
            Arc::new((0..BOUNDED_SUBMISSIONS).map(|_| AtomicU8::new(0)).collect());
        let ran_total = Arc::new(AtomicU64::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));

        // Watches `pending()` from outside while the producers run.
        let monitor = {
            let (pool, max_seen, done) =
                (Arc::clone(&pool), Arc::clone(&max_seen), Arc::clone(&done));
            thread::spawn(move || {
                let mut samples = 0u64;
                while !done.load(Ordering::SeqCst) {
                    max_seen.fetch_max(pool.pending(), Ordering::SeqCst);
                    samples += 1;
                    thread::sleep(Duration::from_micros(50));
                }
                samples
            })
        };
        let per_producer = BOUNDED_SUBMISSIONS / PRODUCERS;
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (pool, ran, cancelled_flags, ran_total, max_seen) = (
                    Arc::clone(&pool),
                    Arc::clone(&ran),
                    Arc::clone(&cancelled_flags),
                    Arc::clone(&ran_total),
                    Arc::clone(&max_seen),
                );
                thread::spawn(move || {
                    let mut window = VecDeque::with_capacity(ABORT_WINDOW + 1);
                    let mut cancelled = 0u64;
                    let mut abort = |(id, task): (usize, pilfer::Task<()>)| {
                        if task.abort() {
                            cancelled_flags[id].store(1, Ordering::SeqCst);
                            cancelled += 1;
                            assert!(task.join().unwrap_err().is_cancelled());
                        }
                        // Not aborted: dropping the task detaches it; the
                        // count of its closure says it ran.
                    };
                    for id in p * per_producer..(p + 1) * per_producer {
                        let (ran, ran_total) = (Arc::clone(&ran), Arc::clone(&ran_total));
                        let task = pool.submit(move || {
                            ran[id].fetch_add(1, Ordering::SeqCst);
                            ran_total.fetch_add(1, Ordering::SeqCst);
                        });
                        max_seen.fetch_max(pool.pending(), Ordering::SeqCst);
                        if id % 2 == 0 {
                            window.push_back((id, task));
                            if window.len() > ABORT_WINDOW {
                                abort(window.pop_front().unwrap());
                            }
                        }
                    }
                    window.into_iter().for_each(&mut abort);
                    cancelled
                })
            })
            .collect();
        let cancelled: u64 = producers
            .into_iter()
            .map(|producer| {
                producer
                    .join()
                    .unwrap_or_else(|payload| panic::resume_unwind(payload))
            })
            .sum();
        done.store(true, Ordering::SeqCst);
        let samples = monitor.join().unwrap();
        let submitted = (per_producer * PRODUCERS) as u64;
        assert_eq!(submitted, BOUNDED_SUBMISSIONS as u64);

        // Every task not cancelled runs, detached: wait for the last ones.
        wait_for("every task that was not cancelled to run", || {
            ran_total.load(Ordering::SeqCst) + cancelled >= submitted
        });
        let ran_count = ran_total.load(Ordering::SeqCst);
        assert_eq!(
            ran_count + cancelled,
            submitted,
            "ran + cancelled != submitted"
        );
        assert_eq!(
            pool.metrics().cancelled(),
            cancelled,
            "metrics().cancelled()"
        );
        assert_eq!(pool.pending(), 0);
        let pool = Arc::try_unwrap(pool).expect("the pool is not shared any more");
        drop(pool);
        assert_eq!(
            ran_total.load(Ordering::SeqCst),
            ran_count,
            "a task ran after the count"
        );
        for id in 0..BOUNDED_SUBMISSIONS {
            let ran = ran[id].load(Ordering::SeqCst);
            let cancelled = cancelled_flags[id].load(Ordering::SeqCst);
            assert_eq!(
                ran + cancelled,
                1,
                "task {id}: ran {ran} times, cancelled: {cancelled}"
            );
            if id % 2 == 1 {
                assert_eq!(ran, 1, "task {id} was never aborted, yet did not run");
            }
        }
        println!("pending() sampled {samples} times by the monitor");
        (cancelled, ran_count, max_seen.load(Ordering::SeqCst))
    });
    println!(
        "{BOUNDED_SUBMISSIONS} tasks, max_pending({BOUND}), {PRODUCERS} producers, in {:?}: \
         {cancelled} cancelled, {ran} ran, largest pending() seen {max_seen}",
        started.elapsed()
    );
    assert!(
        max_seen <= BOUND,
        "pending() was seen at {max_seen} > {BOUND}"
    );
    assert!(
        cancelled > 0,
        "no abort succeeded: the test did not test aborts"
    );
}

// ---------------------------------------------------------------------------
// Shutdown from inside, and tasks outliving their pool
// ---------------------------------------------------------------------------

/// `shutdown_now` called by one of the pool's own tasks (the pool moved into
/// it): it does not wait for itself, the tasks queued behind it are
/// discarded (cancelled), work it spawns afterwards still runs, and the
/// workers exit.
#[test]
fn shutdown_now_from_inside_a_task() {
    with_deadline("shutdown_now from inside a task", || {
        let pool = ThreadPool::builder()
            .num_threads(1)
            .pin_workers(false)
            .thread_name(|i| format!("bi-inside-{i}"))
            .build()
            .unwrap();
        let (send_pool, receive_pool) = mpsc::channel::<ThreadPool>();
        let child_ran = Arc::new(AtomicBool::new(false));
        let child_flag = Arc::clone(&child_ran);
        // The only worker runs this first, and waits here for the pool.
        let shutter = pool.submit(move || {
            let pool = receive_pool
                .recv_timeout(DEADLINE)
                .expect("the pool never came");
            let discarded = pool.shutdown_now();
            // Work spawned by a running task still runs.
            pilfer::spawn(move || child_flag.store(true, Ordering::SeqCst));
            discarded
        });
        let queued: Vec<_> = (0..10).map(|i| pool.submit(move || i)).collect();
        send_pool.send(pool).unwrap();
        let discarded_so_far = shutter
            .join()
            .expect("the task calling shutdown_now failed");
        assert!(discarded_so_far <= 10, "discarded {discarded_so_far} of 10");
        for (i, task) in queued.into_iter().enumerate() {
            let error = task
                .join()
                .expect_err("a task queued behind shutdown_now ran on a one-worker pool");
            assert!(error.is_cancelled(), "task {i}: not cancelled");
        }
        wait_for("the task spawned after shutdown_now to run", || {
            child_ran.load(Ordering::SeqCst)
        });
        #[cfg(target_os = "linux")]
        wait_for("the worker to exit", || {
            common::threads_named("bi-inside-").is_empty()
        });
    });
}

/// The same with two workers, one of them busy with other tasks: every
/// queued task either ran (its value) or was cancelled, none both, none
/// lost, and the count `shutdown_now` returns is at most the cancelled ones.
#[test]
fn shutdown_now_from_inside_a_task_of_a_busy_pool() {
    with_deadline("shutdown_now from inside a busy pool", || {
        let pool = ThreadPool::builder()
            .num_threads(2)
            .pin_workers(false)
            .thread_name(|i| format!("bi-busy-{i}"))
            .build()
            .unwrap();
        let (send_pool, receive_pool) = mpsc::channel::<ThreadPool>();
        let shutter = pool.submit(move || {
            receive_pool
                .recv_timeout(DEADLINE)
                .expect("the pool never came")
                .shutdown_now()
        });
        let runs = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..200usize)
            .map(|i| {
                let runs = Arc::clone(&runs);
                pool.submit(move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_micros(20));
                    i
                })
            })
            .collect();
        send_pool.send(pool).unwrap();
        let discarded = shutter
            .join()
            .expect("the task calling shutdown_now failed");
        let mut cancelled = 0;
        for (i, task) in queued.into_iter().enumerate() {
            match task.join() {
                Ok(value) => assert_eq!(value, i),
                Err(error) => {
                    assert!(error.is_cancelled(), "task {i} panicked");
                    cancelled += 1;
                }
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst) + cancelled, 200);
        assert!(
            discarded <= cancelled,
            "shutdown_now said {discarded} discarded, {cancelled} were cancelled"
        );
        #[cfg(target_os = "linux")]
        wait_for("the workers to exit", || {
            common::threads_named("bi-busy-").is_empty()
        });
    });
}

/// Tasks joined and awaited after their pool was dropped, shut down at once,
/// or dropped on another pool's worker (which does not wait): each gives the
/// right result, and nothing hangs.
#[test]
fn tasks_outlive_their_pool() {
    with_deadline("tasks after their pool is gone", || {
        // Dropped: the drop ran every accepted task.
        let pool = common::pool(2);
        let awaited = pool.submit(|| 6 * 7);
        let joined = pool.submit(|| String::from("joined"));
        let slow = pool.submit(|| {
            thread::sleep(Duration::from_millis(20));
            7u8
        });
        let aborted = pool.submit(|| 0u8);
        let _ = aborted.abort();
        drop(pool);
        assert!(awaited.is_finished() && joined.is_finished() && slow.is_finished());
        assert_eq!(futures::executor::block_on(awaited).unwrap(), 42);
        assert_eq!(joined.join().unwrap(), "joined");
        assert_eq!(futures::executor::block_on(slow).unwrap(), 7);
        match futures::executor::block_on(aborted) {
            Ok(value) => assert_eq!(value, 0), // it had started already
            Err(error) => assert!(error.is_cancelled()),
        }

        // Shut down at once: the tasks queued behind a busy worker are
        // cancelled, awaited or joined.
        let pool = common::pool(1);
        let occupied = common::occupy(&pool);
        let awaited = pool.submit(|| 1u32);
        let joined = pool.submit(|| 2u32);
        let releaser = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            occupied.release();
        });
        assert_eq!(pool.shutdown_now(), 2);
        releaser.join().unwrap();
        assert!(
            futures::executor::block_on(awaited)
                .unwrap_err()
                .is_cancelled()
        );
        assert!(joined.join().unwrap_err().is_cancelled());

        // Dropped on a worker of another pool, which returns at once: the
        // tasks, still queued behind a busy worker, run later and are
        // awaited and joined meanwhile.
        let pool = common::pool(1);
        let occupied = common::occupy(&pool);
        let awaited = pool.submit(|| 3u32);
        let joined = pool.submit(|| 4u32);
        let other = common::pool(1);
        other.install(move || drop(pool));
        assert!(!awaited.is_finished(), "ran behind a busy worker?");
        let releaser = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            occupied.release();
        });
        assert_eq!(futures::executor::block_on(awaited).unwrap(), 3);
        assert_eq!(joined.join().unwrap(), 4);
        releaser.join().unwrap();
    });
}

// ---------------------------------------------------------------------------
// A thread_name closure that panics
// ---------------------------------------------------------------------------

/// `build` names every worker before it starts any thread, so a panicking
/// `thread_name` closure unwinds out of `build` with the user's own panic,
/// before anything started: no thread, no handler run, no spawn handler
/// called. The process can build pools afterwards.
#[test]
fn thread_name_panicking_unwinds_out_of_build_before_any_thread_starts() {
    for (panics_at, use_current_thread) in [(0, false), (2, false), (2, true)] {
        let starts = Arc::new(AtomicUsize::new(0));
        let exits = Arc::new(AtomicUsize::new(0));
        let named = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&named);
        let builder = counting_builder(&starts, &exits)
            .num_threads(4)
            .thread_name(move |i| {
                record.lock().unwrap().push(i);
                assert!(i != panics_at, "no name for worker {i}");
                format!("bi-namer-{i}")
            });
        let builder = if use_current_thread {
            builder.use_current_thread()
        } else {
            builder
        };
        let (result, index_after) = with_deadline("a panicking thread_name", move || {
            let result = panic::catch_unwind(AssertUnwindSafe(|| builder.build()));
            (result, pilfer::current_thread_index())
        });
        match result {
            Err(payload) => assert_eq!(
                panic_message(&*payload),
                format!("no name for worker {panics_at}"),
                "build() unwound with something other than the namer's panic"
            ),
            Ok(Ok(_)) => panic!("built a pool without a name for worker {panics_at}"),
            Ok(Err(error)) => panic!("now an error ({error:?}): update the docs and this test"),
        }
        assert_eq!(
            *named.lock().unwrap(),
            (0..=panics_at).collect::<Vec<_>>(),
            "names are asked for in order, up to the panic"
        );
        assert_eq!(starts.load(Ordering::SeqCst), 0, "a worker started");
        assert_eq!(exits.load(Ordering::SeqCst), 0);
        assert_eq!(index_after, None, "the calling thread was adopted");
        #[cfg(target_os = "linux")]
        assert_eq!(common::threads_named("bi-namer-"), Vec::<String>::new());
    }

    // With a spawn handler: it is never called.
    let handler_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&handler_calls);
    let builder = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .thread_name(|_| panic!("namer down"))
        .spawn_handler(move |thread| {
            calls.fetch_add(1, Ordering::SeqCst);
            thread::Builder::new().spawn(move || thread.run())?;
            Ok(())
        });
    let result = with_deadline("a panicking thread_name with a spawn handler", move || {
        panic::catch_unwind(AssertUnwindSafe(|| builder.build())).map(|r| r.is_ok())
    });
    assert_eq!(panic_message(&*result.unwrap_err()), "namer down");
    assert_eq!(handler_calls.load(Ordering::SeqCst), 0);

    assert_can_build_a_working_pool();
}

/// `build_global` with a panicking namer unwinds the same way and leaves no
/// global pool behind: a later `build_global` succeeds. (The only test of
/// this file that touches the global pool.)
#[test]
fn thread_name_panicking_in_build_global_leaves_it_unbuilt() {
    let result = with_deadline("build_global with a panicking namer", || {
        panic::catch_unwind(|| {
            ThreadPool::builder()
                .num_threads(1)
                .pin_workers(false)
                .thread_name(|_| panic!("global namer down"))
                .build_global()
        })
    });
    match result {
        Err(payload) => assert_eq!(panic_message(&*payload), "global namer down"),
        Ok(other) => panic!("expected the namer's panic, got {other:?}"),
    }
    with_deadline("build_global afterwards", || {
        ThreadPool::builder()
            .num_threads(1)
            .pin_workers(false)
            .thread_name(|i| format!("bi-global-{i}"))
            .build_global()
            .expect("the global pool was left half-built");
        let name = pilfer::join(|| thread::current().name().map(str::to_owned), || ()).0;
        assert_eq!(name.as_deref(), Some("bi-global-0"));
    });
}
