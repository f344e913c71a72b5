//! Shuttle scenarios: the whole pool, driven through its public API, under
//! thousands of randomized (PCT) schedules each. Run with
//!
//! ```text
//! RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle \
//!     cargo test --release --test shuttle
//! ```
//!
//! shuttle/README.md lists the scenarios, the `pilfer_bug` switch each one
//! catches, and how to replay a failing schedule (`PILFER_SHUTTLE_REPLAY`).
#![cfg(shuttle)]

use shuttle::scheduler::{
    PctScheduler, RandomScheduler, ReplayScheduler, Scheduler,
    UncontrolledNondeterminismCheckScheduler,
};
use shuttle::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use shuttle::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The harness: how each scenario is explored (or one schedule replayed).
// ---------------------------------------------------------------------------

/// PCT finds, with a probability it bounds from below, every bug that needs
/// at most `DEPTH - 1` ordering constraints between threads ("A Randomized
/// Scheduler with Probabilistic Guarantees of Finding Bugs", Burckhardt et
/// al., ASPLOS 2010). The switches below need one or two.
const DEPTH: usize = 3;

/// A scenario deadlocked, livelocked or spun if it takes this many steps
/// (scheduling points); the largest scenario takes a few thousand.
const MAX_STEPS: usize = 200_000;

/// The wall-clock deadline of one scenario's whole exploration, past which
/// the test binary aborts (shuttle reports deadlocks itself; this catches a
/// hang outside its control): this much, plus `DEADLINE_PER_SCHEDULE` for
/// each schedule (one takes about half a millisecond on an idle machine).
/// `PILFER_SHUTTLE_DEADLINE_SECS` overrides it.
const DEADLINE: Duration = Duration::from_secs(600);
const DEADLINE_PER_SCHEDULE: Duration = Duration::from_millis(20);

/// Explores `scenario` under `iterations` PCT schedules (`PILFER_SHUTTLE_ITERATIONS`
/// overrides the count), or replays the one schedule in `PILFER_SHUTTLE_REPLAY`.
/// Over an exploration of at least `COVERAGE_MIN` schedules, the scenario
/// must have reported (`seen`) each outcome in `must_see`: the races it is
/// about were really run both ways.
fn explore(name: &str, iterations: usize, scenario: fn(), must_see: &[&'static str]) {
    install_panic_filter();
    let replay = env("PILFER_SHUTTLE_REPLAY");
    let iterations = match replay {
        Some(_) => 1,
        None => env("PILFER_SHUTTLE_ITERATIONS")
            .map(|n| n.parse().expect("PILFER_SHUTTLE_ITERATIONS: a number"))
            .unwrap_or(iterations),
    };
    let _watchdog = Watchdog::start(name, iterations);
    let started = Instant::now();
    if let Some(schedule) = replay {
        eprintln!("shuttle: {name}: replaying one schedule");
        let scheduler = if std::path::Path::new(&schedule).is_file() {
            ReplayScheduler::new_from_file(&schedule).expect("cannot read the schedule file")
        } else {
            ReplayScheduler::new_from_encoded(schedule.trim().trim_matches('"').trim())
        };
        run(name, scheduler, scenario, "replay");
        return;
    }
    // A fixed seed per scenario, so that CI explores the same schedules on
    // every run; shuttle's own `SHUTTLE_RANDOM_SEED` picks another.
    let seed = fnv1a(name);
    SEEN.with(|seen| seen.borrow_mut().clear());
    let (ran, how) = match env("PILFER_SHUTTLE_SCHEDULER").as_deref() {
        // Checks that the scenario is replayable: each random schedule is
        // run twice, and must make the same choices both times.
        Some("determinism") => (
            run(
                name,
                UncontrolledNondeterminismCheckScheduler::new(RandomScheduler::new_from_seed(
                    seed, iterations,
                )),
                scenario,
                "determinism",
            ) / 2,
            "determinism check",
        ),
        Some("random") => (
            run(
                name,
                RandomScheduler::new_from_seed(seed, iterations),
                scenario,
                "random",
            ),
            "random",
        ),
        None | Some("pct") => (
            run(
                name,
                PctScheduler::new_from_seed(seed, depth(), iterations),
                scenario,
                "pct",
            ),
            "pct",
        ),
        Some(other) => {
            panic!("PILFER_SHUTTLE_SCHEDULER: `pct`, `random` or `determinism`, not `{other}`")
        }
    };
    let how = match how {
        "pct" => format!("pct depth {}", depth()),
        other => other.to_owned(),
    };
    let seed = env("SHUTTLE_RANDOM_SEED").unwrap_or_else(|| seed.to_string());
    eprintln!(
        "shuttle: {name}: {ran} schedules ({how}, seed {seed}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ran, iterations, "every schedule was run");
    let seen = SEEN.with(|seen| seen.borrow().clone());
    if !seen.is_empty() || !must_see.is_empty() {
        eprintln!("shuttle: {name}: outcomes seen: {seen:?}");
    }
    if iterations >= COVERAGE_MIN {
        for outcome in must_see {
            assert!(
                seen.contains(outcome),
                "{name}: no schedule out of {iterations} gave the outcome `{outcome}`: \
                 the scenario no longer runs the race it is about"
            );
        }
    }
}

/// Explorations shorter than this are not held to their outcomes.
const COVERAGE_MIN: usize = 1000;

/// Records that this schedule gave `outcome` (see `explore`).
fn seen(outcome: &'static str) {
    SEEN.with(|seen| seen.borrow_mut().insert(outcome));
}

/// Shuttle's configuration for every exploration.
fn config() -> Config {
    let mut config = Config::new();
    // pilfer's code paths are deep (catch_unwind, nested waits): give each
    // thread a real stack (shuttle's default is 60 KiB).
    config.stack_size = 1 << 20;
    config.max_steps = MaxSteps::FailAfter(MAX_STEPS);
    // pilfer uses Relaxed/Acquire/Release orderings, which shuttle runs as
    // SeqCst: weak memory is loom's to check (shuttle/README.md says so),
    // so shuttle's warning about them is not repeated here.
    config.silence_warnings = true;
    config.failure_persistence = match env("PILFER_SHUTTLE_SCHEDULE_DIR") {
        Some(dir) => FailurePersistence::File(Some(dir.into())),
        None => FailurePersistence::Print,
    };
    config
}

fn run(name: &str, scheduler: impl Scheduler + 'static, scenario: fn(), how: &str) -> usize {
    let runner = Runner::new(scheduler, config());
    SCHEDULES.set(0);
    let counted = move || {
        SCHEDULES.set(SCHEDULES.get() + 1);
        scenario();
    };
    match catch_unwind(AssertUnwindSafe(|| runner.run(counted))) {
        Ok(ran) => ran,
        Err(payload) => {
            eprintln!(
                "shuttle: scenario `{name}` failed in schedule {} ({how}). \
                 Replay the schedule printed above with\n  \
                 PILFER_SHUTTLE_REPLAY='<schedule, or the file it was persisted to>' \
                 RUSTFLAGS='<the same as this run>' \
                 cargo test --release --test shuttle -- --exact explore::{name}",
                SCHEDULES.get(),
            );
            std::panic::resume_unwind(payload)
        }
    }
}

std::thread_local! {
    /// Schedules begun in this test's exploration (shuttle runs them all on
    /// the test's own thread, so a std thread-local is the exploration's).
    static SCHEDULES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The outcomes its schedules reported (`seen`).
    static SEEN: std::cell::RefCell<std::collections::BTreeSet<&'static str>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

/// PCT's depth: `DEPTH`, or `PILFER_SHUTTLE_DEPTH`.
fn depth() -> usize {
    env("PILFER_SHUTTLE_DEPTH")
        .map(|depth| depth.parse().expect("PILFER_SHUTTLE_DEPTH: a number"))
        .unwrap_or(DEPTH)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// FNV-1a: a seed per scenario name, stable across runs and platforms.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Aborts the test binary if a scenario's exploration outlives its deadline.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn start(name: &str, schedules: usize) -> Watchdog {
        let deadline = env("PILFER_SHUTTLE_DEADLINE_SECS")
            .map(|secs| Duration::from_secs(secs.parse().expect("a number of seconds")))
            .unwrap_or_else(|| {
                DEADLINE + DEADLINE_PER_SCHEDULE * u32::try_from(schedules).unwrap_or(u32::MAX)
            });
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let name = name.to_owned();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(deadline)
            {
                eprintln!("shuttle: scenario `{name}` still running after {deadline:?}: aborting");
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Disconnects the channel: the watchdog thread returns.
        self.0.take();
    }
}

/// A panic a scenario raises on purpose, to check where it ends up.
#[derive(Debug, PartialEq)]
struct Expected(&'static str);

fn expected_panic(what: &'static str) -> ! {
    std::panic::panic_any(Expected(what))
}

fn is_expected(payload: &(dyn Any + Send), what: &'static str) -> bool {
    payload.downcast_ref::<Expected>() == Some(&Expected(what))
}

/// pilfer's refusal of work from outside a closed pool (spawn.rs, install.rs).
fn is_refusal(payload: &(dyn Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    message.is_some_and(|message| message.contains("on a closed pool"))
}

/// Shuttle's panic hook prints the schedule on every panic, caught or not;
/// the scenarios' deliberate ones (`Expected`, pilfer's refusals) are kept
/// quiet. A real failure still prints its schedule: shuttle persists it
/// again when the execution fails.
fn install_panic_filter() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Shuttle installs its hook (with this configuration) in its first
        // execution: run one first, so that this filter wraps it rather
        // than being replaced.
        Runner::new(RandomScheduler::new_from_seed(0, 1), config()).run(|| {
            shuttle::thread::spawn(|| ()).join().unwrap();
        });
        let shuttle_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            if payload.is::<Expected>() || is_refusal(payload) {
                return;
            }
            shuttle_hook(info);
        }));
    });
}

// ---------------------------------------------------------------------------
// Helpers for the scenarios (all of shuttle's primitives: each operation is
// a scheduling point).
// ---------------------------------------------------------------------------

fn pool(threads: usize) -> pilfer::ThreadPool {
    pilfer::ThreadPool::builder()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// A pool with room for `max` pending tasks from outside; producers beyond
/// that wait (`FullPolicy::Block`).
fn bounded_pool(threads: usize, max: usize) -> pilfer::ThreadPool {
    pilfer::ThreadPool::builder()
        .num_threads(threads)
        .max_pending(max)
        .when_full(pilfer::FullPolicy::Block)
        .build()
        .unwrap()
}

/// Spawns closures `0..count` of `runs`, each holding a worker at the
/// returned gate, and returns once all of them have started.
fn hold_workers(pool: &pilfer::ThreadPool, runs: &Arc<Runs>, count: usize) -> Arc<Gate> {
    let gate = Gate::new();
    let started = Tally::new();
    for closure in 0..count {
        let (runs, gate, started) = (runs.clone(), gate.clone(), started.clone());
        pool.spawn(move || {
            started.add();
            gate.wait();
            runs.ran(closure);
        });
    }
    started.wait_for(count);
    gate
}

/// A pool of two workers with `max_pending(1)`, both workers held at the
/// returned gate (closures 0 and 1 of `runs`, which has room for 7) and the
/// bound filled by closure 2, which nobody can start before the gate opens.
fn held_full_pool() -> (Arc<pilfer::ThreadPool>, Arc<Runs>, Arc<Gate>) {
    let pool = Arc::new(bounded_pool(2, 1));
    let runs = Runs::new(7);
    // Occupy both workers (the second spawn may wait for the first to start).
    let gate = hold_workers(&pool, &runs, 2);
    {
        let runs = runs.clone();
        pool.spawn(move || runs.ran(2));
    }
    (pool, runs, gate)
}

/// Locks `mutex`, ignoring poisoning. Shuttle runs every thread of an
/// execution on one OS thread, whose panic count std's mutex consults: a
/// guard dropped while *another* shuttle thread is unwinding (a deliberate
/// panic on its way to pilfer's `catch_unwind`) poisons the mutex though
/// its holder never panicked. A real failure fails the scenario anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A gate that tasks wait at until it is opened.
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: Mutex::new(false),
            changed: Condvar::new(),
        })
    }

    fn wait(&self) {
        let mut open = lock(&self.open);
        while !*open {
            open = self
                .changed
                .wait(open)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn open(&self) {
        *lock(&self.open) = true;
        self.changed.notify_all();
    }
}

/// A count that a thread can wait for.
struct Tally {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Tally {
    fn new() -> Arc<Tally> {
        Arc::new(Tally {
            count: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    fn add(&self) {
        *lock(&self.count) += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, target: usize) {
        let mut count = lock(&self.count);
        while *count < target {
            count = self
                .changed
                .wait(count)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn get(&self) -> usize {
        *lock(&self.count)
    }
}

/// How many times each of a scenario's closures ran.
struct Runs(Vec<AtomicUsize>);

impl Runs {
    fn new(closures: usize) -> Arc<Runs> {
        Arc::new(Runs((0..closures).map(|_| AtomicUsize::new(0)).collect()))
    }

    fn ran(&self, closure: usize) {
        self.0[closure].fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self, closure: usize) -> usize {
        self.0[closure].load(Ordering::SeqCst)
    }

    /// Closures `range` each ran exactly once.
    fn assert_once(&self, range: std::ops::Range<usize>) {
        for closure in range {
            assert_eq!(
                self.count(closure),
                1,
                "closure {closure} ran {} times",
                self.count(closure)
            );
        }
    }

    /// Closures `range` never ran.
    fn assert_never(&self, range: std::ops::Range<usize>) {
        for closure in range {
            assert_eq!(self.count(closure), 0, "closure {closure} ran");
        }
    }
}

/// The pool behind `pool`, once every other handle on it is gone.
fn unwrap_pool(pool: Arc<pilfer::ThreadPool>) -> pilfer::ThreadPool {
    Arc::try_unwrap(pool).unwrap_or_else(|_| panic!("every other handle on the pool was dropped"))
}

/// A far deadline: shuttle does not model time (a timed wait never times
/// out), so only a deadline that cannot pass keeps a schedule replayable.
const FOREVER: Duration = Duration::from_secs(24 * 3600);

// ---------------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------------

/// Tasks submitted from two threads while the workers fall asleep, and a
/// task that spawns onto its own worker's deque, all run exactly once and
/// reach their waiters. Catches `lost_wakeup` and `no_recheck`: the task
/// stays queued while every worker sleeps, and the waiter waits forever.
fn submits_from_two_threads_wake_sleeping_workers() {
    let pool = Arc::new(pool(2));
    let runs = Runs::new(5);
    let producer = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let first = {
                let runs = runs.clone();
                pool.submit(move || {
                    runs.ran(0);
                    10
                })
            };
            let second = {
                let runs = runs.clone();
                pool.submit(move || {
                    runs.ran(1);
                    20
                })
            };
            first.join().unwrap() + second.join().unwrap()
        })
    };
    let child_done = Tally::new();
    let parent = {
        let (runs, child_done) = (runs.clone(), child_done.clone());
        pool.submit(move || {
            runs.ran(2);
            // Pushed by a worker onto its own deque: the notify comes from
            // inside the pool.
            let runs = runs.clone();
            pilfer::spawn(move || {
                runs.ran(3);
                child_done.add();
            });
            3
        })
    };
    assert_eq!(parent.join().unwrap(), 3);
    child_done.wait_for(1);
    // The workers may be asleep again: one more from outside.
    let last = {
        let runs = runs.clone();
        pool.submit(move || {
            runs.ran(4);
            4
        })
    };
    assert_eq!(last.join().unwrap(), 4);
    assert_eq!(producer.join().unwrap(), 30);
    drop(unwrap_pool(pool));
    runs.assert_once(0..5);
}

/// Producers blocked on a full bound (`max_pending(1)`, `FullPolicy::Block`)
/// get through once the workers start tasks; `try_spawn` on the full pool
/// hands the closure back; `pending()` never exceeds the bound and every
/// accepted closure runs exactly once. Catches `no_grant`: a freed slot is
/// never handed to the producer waiting in line.
fn bounded_producers_block_then_get_through() {
    let (pool, runs, gate) = held_full_pool();
    assert_eq!(pool.pending(), 1);
    let producers: Vec<_> = (3..5)
        .map(|closure| {
            let (pool, runs) = (pool.clone(), runs.clone());
            shuttle::thread::spawn(move || {
                if closure == 3 {
                    let runs = runs.clone();
                    pool.spawn(move || runs.ran(closure));
                } else {
                    let runs = runs.clone();
                    let task = pool.submit(move || {
                        runs.ran(closure);
                        closure
                    });
                    assert!(pool.pending() <= 1);
                    assert_eq!(task.join().unwrap(), closure);
                }
                assert!(pool.pending() <= 1);
            })
        })
        .collect();
    // Full: both workers wait at the gate and the one slot is taken.
    let handed_back = {
        let runs = runs.clone();
        pool.try_spawn(move || runs.ran(5))
            .expect_err("the pool is full")
    };
    assert!(handed_back.is_full());
    (handed_back.into_inner())();
    assert_eq!(runs.count(5), 1, "the closure handed back is the one given");
    gate.open();
    for producer in producers {
        producer.join().unwrap();
    }
    // Room again once the pending tasks started: accepted, not rejected.
    {
        let (runs, done) = (runs.clone(), Tally::new());
        let waiter = done.clone();
        let accepted = pool.spawn_timeout(
            move || {
                runs.ran(6);
                done.add();
            },
            FOREVER,
        );
        assert!(accepted.is_ok(), "a producer with time to wait gets in");
        waiter.wait_for(1);
    }
    drop(unwrap_pool(pool));
    runs.assert_once(0..7);
}

/// Producers blocked on a full bound are refused, and woken, when the pool
/// is closed: `spawn_timeout`/`submit_timeout` return `ShutDown` with the
/// closure, a blocking `spawn` panics; the task accepted before the close
/// still runs, the refused ones never. Catches `no_close_wake`: a producer
/// stays in line and nothing ever frees a slot for it before it returns.
fn close_refuses_producers_blocked_on_the_bound() {
    let (pool, runs, gate) = held_full_pool();
    let spawner = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let refused = pool
                .spawn_timeout(move || runs.ran(3), FOREVER)
                .expect_err("no slot frees up before the close");
            assert!(refused.is_shut_down());
            drop(refused.into_inner());
        })
    };
    let submitter = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let refused = pool
                .submit_timeout(
                    move || {
                        runs.ran(4);
                        4
                    },
                    FOREVER,
                )
                .expect_err("no slot frees up before the close");
            assert!(refused.is_shut_down());
        })
    };
    let blocking = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| pool.spawn(move || runs.ran(5))));
            let payload = outcome.expect_err("spawn on a closed pool panics");
            assert!(is_refusal(&*payload));
        })
    };
    pool.close();
    assert!(pool.is_closed());
    // Only the refusal can let them return: the gate is still shut.
    spawner.join().unwrap();
    submitter.join().unwrap();
    blocking.join().unwrap();
    let refused = {
        let runs = runs.clone();
        pool.try_spawn(move || runs.ran(6)).expect_err("closed")
    };
    assert!(refused.is_shut_down());
    gate.open();
    drop(unwrap_pool(pool));
    runs.assert_once(0..3);
    runs.assert_never(3..7);
}

/// `Task::abort` from two threads racing the workers that start the tasks
/// (on a bounded pool): each task either runs or is cancelled, once;
/// exactly one `abort` returns `true` for a cancelled task and none for a
/// run one; every slot comes back. Catches `abort_without_claim`: `abort`
/// cancels a task that already started.
fn abort_races_the_start() {
    const TASKS: usize = 3;
    let pool = bounded_pool(2, TASKS);
    let runs = Runs::new(TASKS);
    let tasks: Arc<Vec<pilfer::Task<usize>>> = Arc::new(
        (0..TASKS)
            .map(|closure| {
                let runs = runs.clone();
                pool.submit(move || {
                    runs.ran(closure);
                    closure
                })
            })
            .collect(),
    );
    let aborted_by_other = {
        let tasks = tasks.clone();
        shuttle::thread::spawn(move || {
            tasks
                .iter()
                .rev()
                .map(|task| task.abort())
                .collect::<Vec<_>>()
        })
    };
    let mut aborted: Vec<bool> = tasks.iter().map(|task| task.abort()).collect();
    let other = aborted_by_other.join().unwrap();
    for (mine, theirs) in aborted.iter_mut().zip(other.into_iter().rev()) {
        assert!(!(*mine && theirs), "two aborts of one task both won");
        *mine |= theirs;
    }
    let tasks = Arc::try_unwrap(tasks).unwrap_or_else(|_| panic!("the aborter is done"));
    for (closure, (task, aborted)) in tasks.into_iter().zip(aborted).enumerate() {
        match task.join() {
            Ok(value) => {
                assert_eq!(value, closure);
                assert!(!aborted, "abort returned true for a task that ran");
                assert_eq!(runs.count(closure), 1);
                seen("ran");
            }
            Err(error) => {
                assert!(error.is_cancelled());
                assert!(aborted, "cancelled, but no abort says so");
                assert_eq!(runs.count(closure), 0, "an aborted task ran");
                seen("aborted");
            }
        }
    }
    assert_eq!(pool.pending(), 0, "every slot was given back");
    drop(pool);
}

/// Tasks awaited as futures from outside (shuttle's `block_on`, whose waker
/// parks the awaiting thread) complete; one aborted while awaited resolves
/// as cancelled. Catches `waker_unregistered`: the waker is never woken.
fn awaited_tasks_wake_their_wakers() {
    let pool = Arc::new(pool(2));
    let runs = Runs::new(2);
    let other = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let task = pool.submit(move || {
                runs.ran(0);
                5
            });
            shuttle::future::block_on(task).unwrap()
        })
    };
    let gate = Gate::new();
    let started = Tally::new();
    let mine = {
        let (runs, gate, started) = (runs.clone(), gate.clone(), started.clone());
        pool.submit(move || {
            started.add();
            gate.wait();
            runs.ran(1);
            7
        })
    };
    let opener = {
        let (gate, started) = (gate.clone(), started.clone());
        shuttle::thread::spawn(move || {
            started.wait_for(1);
            gate.open();
        })
    };
    assert_eq!(shuttle::future::block_on(mine).unwrap(), 7);
    assert_eq!(other.join().unwrap(), 5);
    opener.join().unwrap();
    // Awaited while its abort races it: resolves either way.
    let raced = pool.submit(|| 9);
    let raced = Arc::new(Mutex::new(Some(raced)));
    let aborter = {
        let raced = raced.clone();
        shuttle::thread::spawn(move || {
            // The awaiting thread may have taken it already.
            lock(&raced).as_ref().map(|task| task.abort())
        })
    };
    let task = lock(&raced).take().unwrap();
    let outcome = shuttle::future::block_on(task);
    let aborted = aborter.join().unwrap();
    match outcome {
        Ok(value) => {
            assert_eq!(value, 9);
            assert_ne!(aborted, Some(true), "aborted, yet it ran");
            seen("abort lost");
        }
        Err(error) => {
            assert!(error.is_cancelled());
            assert_eq!(aborted, Some(true), "cancelled, but the abort says not");
            seen("abort won");
        }
    }
    drop(unwrap_pool(pool));
    runs.assert_once(0..2);
}

/// Both workers of a pool block (`block_in_place`) until two tasks queued on
/// their own deques have run: only spare workers can run them. They run
/// exactly once, the workers resume, the surplus spares retire or meet the
/// shutdown, and the drop waits for them. Catches `no_compensation`.
fn blocked_workers_are_compensated_by_spares() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(2)
        .max_spare_workers(2)
        .build()
        .unwrap();
    let runs = Runs::new(4);
    let children_done = Tally::new();
    let parents: Vec<_> = (0..2)
        .map(|parent| {
            let (runs, children_done) = (runs.clone(), children_done.clone());
            pool.submit(move || {
                runs.ran(parent);
                let (runs, done) = (runs.clone(), children_done.clone());
                // Onto this worker's own deque.
                pilfer::spawn(move || {
                    runs.ran(2 + parent);
                    done.add();
                });
                // Waits for both children: whichever parent blocks last
                // has its child stranded unless a spare is called.
                pilfer::block_in_place(|| children_done.wait_for(2));
                parent
            })
        })
        .collect();
    for (parent, task) in parents.into_iter().enumerate() {
        assert_eq!(task.join().unwrap(), parent);
    }
    // The pool works normally again.
    assert_eq!(pool.install(|| pilfer::join(|| 1, || 2)), (1, 2));
    drop(pool);
    runs.assert_once(0..4);
}

/// A task blocks (`block_in_place`) on a child queued on its own worker's
/// deque while the pool is dropped: compensation goes on during the
/// shutdown, a spare runs the child, and the drop waits for everything.
/// Catches `no_compensation` too, on the shutdown path.
fn a_spare_joins_the_shutdown() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(1)
        .max_spare_workers(1)
        .build()
        .unwrap();
    let runs = Runs::new(3);
    let started = Tally::new();
    {
        let (runs, started) = (runs.clone(), started.clone());
        pool.spawn(move || {
            let child_done = Tally::new();
            let done = child_done.clone();
            let child_runs = runs.clone();
            pilfer::spawn(move || {
                child_runs.ran(1);
                done.add();
            });
            started.add();
            pilfer::block_in_place(|| child_done.wait_for(1));
            runs.ran(0);
        });
    }
    {
        // Queued behind it, from outside: still runs before the drop returns.
        let runs = runs.clone();
        pool.spawn(move || runs.ran(2));
    }
    started.wait_for(1);
    drop(pool);
    runs.assert_once(0..3);
}

/// `shutdown_now` while the workers are busy and tasks from outside wait:
/// its count is exactly the number that never ran; those report
/// cancelled; what was running finishes; nothing runs after it returns.
fn shutdown_now_counts_what_never_ran() {
    const QUEUED: usize = 4;
    let pool = pool(2);
    let runs = Runs::new(2 + QUEUED);
    let returned = Arc::new(AtomicBool::new(false));
    let gate = hold_workers(&pool, &runs, 2);
    let mut tasks = Vec::new();
    for closure in 2..2 + QUEUED {
        let (runs, returned) = (runs.clone(), returned.clone());
        let body = move || {
            assert!(
                !returned.load(Ordering::SeqCst),
                "a task ran after shutdown_now returned"
            );
            runs.ran(closure);
        };
        if closure % 2 == 0 {
            tasks.push((closure, pool.submit(body)));
        } else {
            pool.spawn(body);
        }
    }
    // Releases the workers, racing the shutdown: some queued tasks may run.
    let opener = {
        let gate = gate.clone();
        shuttle::thread::spawn(move || gate.open())
    };
    let discarded = pool.shutdown_now();
    returned.store(true, Ordering::SeqCst);
    opener.join().unwrap();
    runs.assert_once(0..2);
    let never_ran = (2..2 + QUEUED)
        .filter(|&closure| runs.count(closure) == 0)
        .count();
    assert_eq!(discarded, never_ran, "shutdown_now's count");
    seen(if discarded == QUEUED {
        "discarded all"
    } else {
        "some ran"
    });
    for closure in 2..2 + QUEUED {
        assert!(runs.count(closure) <= 1);
    }
    for (closure, task) in tasks {
        match task.join() {
            Ok(()) => assert_eq!(runs.count(closure), 1),
            Err(error) => {
                assert!(error.is_cancelled());
                assert_eq!(runs.count(closure), 0);
            }
        }
    }
}

/// `shutdown_timeout(0)` returns at once, and the workers still run every
/// accepted task (including work those tasks queue, and a block with a
/// spare) before they exit on their own; `close` refuses new work from
/// outside but runs what it accepted; `shutdown_timeout` with time to wait
/// returns `true` with everything done; `shutdown` likewise.
fn shutdowns_run_every_accepted_task() {
    let runs = Runs::new(9);
    let all_ran = Tally::new();
    {
        let pool = pool(2);
        for closure in 0..2 {
            let (runs, all_ran) = (runs.clone(), all_ran.clone());
            pool.spawn(move || {
                runs.ran(closure);
                all_ran.add();
                let (runs, all_ran) = (runs.clone(), all_ran.clone());
                // Queued by a task while the shutdown begins.
                pilfer::spawn(move || {
                    runs.ran(2 + closure);
                    all_ran.add();
                });
            });
        }
        {
            let (runs, all_ran) = (runs.clone(), all_ran.clone());
            pool.spawn(move || {
                pilfer::block_in_place(|| runs.ran(4));
                all_ran.add();
            });
        }
        // Either answer is right; the work goes on detached if `false`.
        if !pool.shutdown_timeout(Duration::ZERO) {
            seen("timed out");
        }
        all_ran.wait_for(5);
    }
    {
        let pool = pool(2);
        {
            let runs = runs.clone();
            pool.spawn(move || runs.ran(5));
        }
        let task = {
            let runs = runs.clone();
            pool.submit(move || {
                runs.ran(6);
                6
            })
        };
        pool.close();
        let refused = {
            let runs = runs.clone();
            pool.try_spawn(move || runs.ran(8)).expect_err("closed")
        };
        assert!(refused.is_shut_down());
        assert_eq!(task.join().unwrap(), 6);
        assert!(pool.shutdown_timeout(FOREVER), "every worker exited");
    }
    {
        let pool = pool(1);
        let runs = runs.clone();
        pool.spawn(move || runs.ran(7));
        pool.shutdown();
    }
    runs.assert_once(0..8);
    runs.assert_never(8..9);
}

/// A broadcast from outside, a detached broadcast from another thread and
/// a scope's broadcast from inside, all at once, while one worker is inside
/// `block_in_place` (a spare stands in for it; its share of each broadcast
/// waits until it returns): each runs exactly once on every worker, and
/// each caller gets its results in worker order.
fn broadcasts_reach_every_worker_once() {
    const THREADS: usize = 3;
    let pool = Arc::new(pool(THREADS));
    let runs = Runs::new(3 * THREADS + 1);
    let detached_done = Tally::new();
    let (gate, blocked) = (Gate::new(), Tally::new());
    {
        let (runs, gate, blocked) = (runs.clone(), gate.clone(), blocked.clone());
        pool.spawn(move || {
            pilfer::block_in_place(|| {
                blocked.add();
                gate.wait();
            });
            runs.ran(3 * THREADS);
        });
    }
    let opener = shuttle::thread::spawn(move || {
        blocked.wait_for(1);
        gate.open();
    });
    let detached = {
        let (pool, runs, done) = (pool.clone(), runs.clone(), detached_done.clone());
        shuttle::thread::spawn(move || {
            pool.spawn_broadcast(move |ctx| {
                assert_eq!(ctx.num_threads(), THREADS);
                runs.ran(THREADS + ctx.index());
                done.add();
            });
        })
    };
    let scoped = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            pool.install(|| {
                pilfer::scope(|scope| {
                    scope.spawn_broadcast(|_, ctx| runs.ran(2 * THREADS + ctx.index()));
                    scope.spawn(|_| ());
                });
            });
        })
    };
    let indices = {
        let runs = runs.clone();
        pool.broadcast(move |ctx| {
            runs.ran(ctx.index());
            ctx.index()
        })
    };
    assert_eq!(indices, (0..THREADS).collect::<Vec<_>>());
    detached.join().unwrap();
    scoped.join().unwrap();
    opener.join().unwrap();
    detached_done.wait_for(THREADS);
    drop(unwrap_pool(pool));
    runs.assert_once(0..3 * THREADS + 1);
}

/// `join`, `scope`, `scope_fifo`, `submit` and detached spawns mixed, from
/// inside and outside at once, on three workers: every closure runs exactly
/// once and every result reaches its waiter.
fn join_scope_submit_mixed() {
    let pool = Arc::new(pool(3));
    let runs = Runs::new(12);
    let outside = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let task = {
                let runs = runs.clone();
                pool.submit(move || {
                    let (a, b) = pilfer::join(
                        || {
                            runs.ran(0);
                            1
                        },
                        || {
                            runs.ran(1);
                            2
                        },
                    );
                    a + b
                })
            };
            let detached_done = Tally::new();
            {
                let (runs, done) = (runs.clone(), detached_done.clone());
                pool.spawn_fifo(move || {
                    runs.ran(2);
                    done.add();
                });
            }
            let (x, y) = pool.join(
                || {
                    runs.ran(3);
                    3
                },
                || {
                    runs.ran(4);
                    4
                },
            );
            detached_done.wait_for(1);
            task.join().unwrap() + x + y
        })
    };
    let (scoped, fifo) = pool.install(|| {
        pilfer::join(
            || {
                let count = AtomicUsize::new(0);
                pilfer::scope(|scope| {
                    scope.spawn(|scope| {
                        runs.ran(5);
                        count.fetch_add(1, Ordering::SeqCst);
                        scope.spawn(|_| {
                            runs.ran(6);
                            count.fetch_add(1, Ordering::SeqCst);
                        });
                    });
                    pilfer::join(|| runs.ran(7), || runs.ran(8));
                });
                count.load(Ordering::SeqCst)
            },
            || {
                let count = AtomicUsize::new(0);
                pilfer::scope_fifo(|scope| {
                    for closure in 9..11 {
                        let count = &count;
                        let runs = &runs;
                        scope.spawn_fifo(move |_| {
                            runs.ran(closure);
                            count.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                });
                count.load(Ordering::SeqCst)
            },
        )
    });
    assert_eq!(
        (scoped, fifo),
        (2, 2),
        "a scope returned before its tasks finished"
    );
    // A task submitted from inside, joined inside (the worker runs other
    // work while it waits).
    let inner = {
        let (pool2, runs) = (pool.clone(), runs.clone());
        pool.install(move || {
            // From a worker, `submit` queues onto its own deque; the join
            // runs other work (or this very task) while it waits.
            pool2
                .submit(move || {
                    runs.ran(11);
                    11
                })
                .join()
                .unwrap()
        })
    };
    assert_eq!(inner, 11);
    assert_eq!(outside.join().unwrap(), 10);
    drop(unwrap_pool(pool));
    runs.assert_once(0..12);
}

/// Panics reach whoever waits: `join`'s and `install`'s caller, a scope's
/// caller (after its sibling finished), a `Task`'s joiner; a detached
/// task's panic reaches the pool's `panic_handler`. The pool goes on.
fn panics_reach_their_waiters() {
    let handled = Tally::new();
    let pool = {
        let handled = handled.clone();
        Arc::new(
            pilfer::ThreadPool::builder()
                .num_threads(2)
                .panic_handler(move |payload| {
                    assert!(is_expected(&*payload, "detached"));
                    handled.add();
                })
                .build()
                .unwrap(),
        )
    };
    let runs = Runs::new(2);
    let other = {
        let pool = pool.clone();
        shuttle::thread::spawn(move || {
            let task = pool.submit(|| -> u32 { expected_panic("task") });
            let error = task.join().expect_err("the panic reaches the handle");
            assert!(error.is_panic());
            assert!(is_expected(&*error.into_panic(), "task"));
            pool.spawn(|| expected_panic("detached"));
        })
    };
    let joined = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| pilfer::join(|| runs.ran(0), || expected_panic("join b")))
    }));
    assert!(is_expected(
        &*joined.expect_err("join re-raises b's panic"),
        "join b"
    ));
    let scoped = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|scope| {
            scope.spawn(|_| expected_panic("scope task"));
            scope.spawn(|_| runs.ran(1));
        })
    }));
    assert!(is_expected(
        &*scoped.expect_err("the scope re-raises"),
        "scope task"
    ));
    // Re-raised only after the sibling finished.
    assert_eq!(runs.count(1), 1);
    other.join().unwrap();
    handled.wait_for(1);
    assert_eq!(pool.install(|| pilfer::join(|| 5, || 6)), (5, 6));
    drop(unwrap_pool(pool));
    runs.assert_once(0..2);
    assert_eq!(handled.get(), 1);
}

/// Pools nested both ways: a worker of `outer` installs into `inner`, which
/// installs back into `outer`; a worker of `outer` joins a task of `inner`
/// (sleeping in its own pool until woken across); a worker of `outer`
/// spawns into a full bounded pool and waits for room in its own pool's
/// protocol (the bound's line hands the task over). Catches `no_grant` on
/// the cross-pool path.
fn nested_pools_and_room_across_pools() {
    let outer = Arc::new(pool(2));
    let inner = Arc::new(pool(1));
    let bounded = Arc::new(bounded_pool(1, 1));
    let runs = Runs::new(4);
    let bounded_done = Tally::new();
    let (there_and_back, across) = {
        let (outer2, inner, bounded, runs, done) = (
            outer.clone(),
            inner.clone(),
            bounded.clone(),
            runs.clone(),
            bounded_done.clone(),
        );
        outer.install(move || {
            pilfer::join(
                || inner.install(|| outer2.install(|| 3)),
                || {
                    for closure in 0..3 {
                        let (runs, done) = (runs.clone(), done.clone());
                        bounded.spawn(move || {
                            runs.ran(closure);
                            done.add();
                        });
                    }
                    let runs = runs.clone();
                    inner
                        .submit(move || {
                            runs.ran(3);
                            4
                        })
                        .join()
                        .unwrap()
                },
            )
        })
    };
    assert_eq!((there_and_back, across), (3, 4));
    bounded_done.wait_for(3);
    drop(unwrap_pool(bounded));
    drop(unwrap_pool(inner));
    drop(unwrap_pool(outer));
    runs.assert_once(0..4);
}

/// Producers on two threads race `close` with `try_spawn`, `spawn_timeout`
/// and `try_submit`: every closure the pool accepted runs exactly once (the
/// close does not lose it), every refused one never, and a refusal after
/// the close says `ShutDown`.
fn close_races_producers() {
    const EACH: usize = 3;
    let pool = Arc::new(bounded_pool(2, 2));
    let runs = Runs::new(2 * EACH);
    let accepted = Runs::new(2 * EACH);
    let producers: Vec<_> = (0..2)
        .map(|producer| {
            let (pool, runs, accepted) = (pool.clone(), runs.clone(), accepted.clone());
            shuttle::thread::spawn(move || {
                for closure in producer * EACH..(producer + 1) * EACH {
                    let was_closed = pool.is_closed();
                    let runs = runs.clone();
                    let body = move || runs.ran(closure);
                    let outcome = match closure % 3 {
                        0 => pool.try_spawn(body).map_err(|error| error.is_shut_down()),
                        // Waits for room as long as it takes: refused only
                        // by the close, never for being full.
                        1 => pool.spawn_timeout(body, FOREVER).map_err(|error| {
                            assert!(error.is_shut_down(), "spawn_timeout gave up waiting");
                            true
                        }),
                        _ => match pool.try_submit(body) {
                            Ok(task) => {
                                task.join().expect("an accepted task runs");
                                Ok(())
                            }
                            Err(error) => Err(error.is_shut_down()),
                        },
                    };
                    match outcome {
                        Ok(()) => {
                            assert!(!was_closed, "accepted after the close");
                            accepted.ran(closure);
                            seen("accepted");
                        }
                        // Full only while open; once closed, ShutDown.
                        Err(shut_down) => {
                            assert!(shut_down || !was_closed, "Full after the close");
                            seen("refused");
                        }
                    }
                }
            })
        })
        .collect();
    pool.close();
    for producer in producers {
        producer.join().unwrap();
    }
    drop(unwrap_pool(pool));
    for closure in 0..2 * EACH {
        assert_eq!(
            runs.count(closure),
            accepted.count(closure),
            "closure {closure}: ran {} times, accepted {} times",
            runs.count(closure),
            accepted.count(closure)
        );
    }
}

/// The last handle on a pool is dropped by one of its own tasks, racing the
/// outside thread's drop of its own handle: dropped on a worker, the pool
/// does not wait, yet its workers run every accepted task and exit on their
/// own (shuttle reports a deadlock if one never does).
fn pool_dropped_on_its_own_worker() {
    let pool = Arc::new(pool(2));
    let runs = Runs::new(4);
    let done = Tally::new();
    for closure in 0..3 {
        let (runs, done) = (runs.clone(), done.clone());
        pool.spawn(move || {
            runs.ran(closure);
            done.add();
        });
    }
    {
        let (runs, done, last) = (runs.clone(), done.clone(), pool.clone());
        pool.spawn(move || {
            // Queued behind this task on this worker's deque: run during
            // the shutdown if the drop below is the last.
            let (child_runs, child_done) = (runs.clone(), done.clone());
            pilfer::spawn(move || {
                child_runs.ran(3);
                child_done.add();
            });
            // No scheduling point between the count and the drop.
            seen(if Arc::strong_count(&last) == 1 {
                "dropped on a worker"
            } else {
                "dropped outside"
            });
            drop(last);
        });
    }
    drop(pool);
    done.wait_for(4);
    runs.assert_once(0..4);
}

/// `isolate` around a FIFO scope whose tasks spawn more, beside a plain
/// scope, a detached `spawn_fifo` and an isolated `join`, on two workers
/// that steal from each other: every closure runs exactly once, and every
/// scope returns only after its tasks.
fn isolated_fifo_scopes() {
    let pool = pool(2);
    let runs = Runs::new(8);
    let detached_done = Tally::new();
    let (fifo, plain) = {
        let (runs, done) = (runs.clone(), detached_done.clone());
        pool.install(move || {
            pilfer::join(
                || {
                    let count = AtomicUsize::new(0);
                    pilfer::isolate(|| {
                        pilfer::scope_fifo(|scope| {
                            for closure in 0..3 {
                                let (runs, count) = (&runs, &count);
                                scope.spawn_fifo(move |scope| {
                                    runs.ran(closure);
                                    count.fetch_add(1, Ordering::SeqCst);
                                    if closure == 0 {
                                        scope.spawn_fifo(move |_| {
                                            runs.ran(3);
                                            count.fetch_add(1, Ordering::SeqCst);
                                        });
                                    }
                                });
                            }
                        })
                    });
                    count.load(Ordering::SeqCst)
                },
                || {
                    let count = AtomicUsize::new(0);
                    pilfer::scope(|scope| {
                        scope.spawn(|_| {
                            runs.ran(4);
                            count.fetch_add(1, Ordering::SeqCst);
                        });
                        let (runs2, done) = (runs.clone(), done.clone());
                        pilfer::spawn_fifo(move || {
                            runs2.ran(5);
                            done.add();
                        });
                        scope.spawn(|_| {
                            pilfer::isolate(|| pilfer::join(|| runs.ran(6), || runs.ran(7)));
                            count.fetch_add(1, Ordering::SeqCst);
                        });
                    });
                    count.load(Ordering::SeqCst)
                },
            )
        })
    };
    assert_eq!(
        (fifo, plain),
        (4, 2),
        "a scope returned before its tasks finished"
    );
    detached_done.wait_for(1);
    drop(pool);
    runs.assert_once(0..8);
}

/// `FullPolicy::CallerRuns` with producers on three threads: a closure the
/// full pool would not queue runs on its producer before `spawn` returns;
/// every closure runs exactly once, on a worker or on its producer.
fn caller_runs_when_full() {
    const EACH: usize = 3;
    let pool = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(1)
            .max_pending(1)
            .when_full(pilfer::FullPolicy::CallerRuns)
            .build()
            .unwrap(),
    );
    let runs = Runs::new(3 * EACH);
    let on_caller = Runs::new(3 * EACH);
    let done = Tally::new();
    let produce = {
        let (runs, on_caller, done) = (runs.clone(), on_caller.clone(), done.clone());
        move |pool: &pilfer::ThreadPool, producer: usize| {
            for closure in producer * EACH..(producer + 1) * EACH {
                let (task_runs, task_on_caller, done) =
                    (runs.clone(), on_caller.clone(), done.clone());
                pool.spawn(move || {
                    if pilfer::current_thread_index().is_none() {
                        task_on_caller.ran(closure);
                        seen("on the caller");
                    } else {
                        seen("on a worker");
                    }
                    task_runs.ran(closure);
                    done.add();
                });
                if on_caller.count(closure) == 1 {
                    assert_eq!(
                        runs.count(closure),
                        1,
                        "ran on the caller before spawn returned"
                    );
                }
            }
        }
    };
    let producers: Vec<_> = (1..3)
        .map(|producer| {
            let (pool, produce) = (pool.clone(), produce.clone());
            shuttle::thread::spawn(move || produce(&pool, producer))
        })
        .collect();
    produce(&pool, 0);
    for producer in producers {
        producer.join().unwrap();
    }
    done.wait_for(3 * EACH);
    assert!(pool.pending() <= 1);
    drop(unwrap_pool(pool));
    runs.assert_once(0..3 * EACH);
}

/// A worker waits inside `isolate` for a task submitted from outside: the
/// wait is restricted (it may not take the task from the injector), so,
/// with nothing it may run, it blocks with compensation and a spare (or
/// the other worker) runs the task. Meanwhile a broadcast from outside
/// needs that blocked worker's share: it is woken for it and runs it.
fn restricted_wait_blocks_with_compensation() {
    let pool = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(2)
            .max_spare_workers(2)
            .build()
            .unwrap(),
    );
    let runs = Runs::new(3);
    let gate = Gate::new();
    let task = {
        let (runs, gate) = (runs.clone(), gate.clone());
        pool.submit(move || {
            gate.wait();
            runs.ran(0);
            5
        })
    };
    let broadcaster = {
        let (pool, runs) = (pool.clone(), runs.clone());
        shuttle::thread::spawn(move || {
            let indices = pool.broadcast(|ctx| {
                runs.ran(1 + ctx.index());
                ctx.index()
            });
            assert_eq!(indices, [0, 1]);
        })
    };
    let opener = shuttle::thread::spawn(move || gate.open());
    let value = pool.install(move || pilfer::isolate(move || task.join().unwrap()));
    assert_eq!(value, 5);
    broadcaster.join().unwrap();
    opener.join().unwrap();
    drop(unwrap_pool(pool));
    runs.assert_once(0..3);
}

/// A pool that adopted the calling thread as worker 0
/// (`use_current_thread`) runs a mix of work with it, and lets it go when
/// dropped there, after the other worker and the adopted thread ran all
/// of it.
fn adopted_thread_is_let_go_with_its_work_done() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(2)
        .use_current_thread()
        .build()
        .unwrap();
    assert_eq!(pilfer::current_thread_index(), Some(0));
    let runs = Runs::new(6);
    let (a, b) = {
        let runs = runs.clone();
        pool.install(move || {
            // Queued on this thread's own deque: the other worker steals
            // it, or this thread runs it, at the latest when let go.
            let detached = runs.clone();
            pilfer::spawn(move || detached.ran(0));
            pilfer::join(
                || {
                    runs.ran(1);
                    1
                },
                || {
                    runs.ran(2);
                    2
                },
            )
        })
    };
    assert_eq!((a, b), (1, 2));
    let task = {
        let runs = runs.clone();
        pool.submit(move || {
            runs.ran(3);
            3
        })
    };
    assert_eq!(task.join().unwrap(), 3);
    let indices = {
        let runs = runs.clone();
        pool.broadcast(move |ctx| {
            runs.ran(4 + ctx.index());
            ctx.index()
        })
    };
    assert_eq!(indices, [0, 1]);
    drop(pool);
    assert_eq!(pilfer::current_thread_index(), None);
    runs.assert_once(0..6);
}

/// Four workers, a bound of two pending tasks, two spares, and everything
/// at once: one producer submits tasks that `join` a plain half with a
/// half that blocks (`block_in_place`), another spawns tasks that run FIFO
/// scopes, the main thread broadcasts and then closes the pool while they
/// produce, and finally shuts it down with time to wait. Every accepted
/// closure runs exactly once, every refused one never, and the shutdown
/// completes.
fn four_workers_everything_at_once() {
    const EACH: usize = 2;
    let pool = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(4)
            .max_pending(2)
            .max_spare_workers(2)
            .build()
            .unwrap(),
    );
    // Per task: its own run, then its two parts.
    let runs = Runs::new(3 * 2 * EACH + 4);
    let accepted = Runs::new(2 * EACH);
    let joiner = {
        let (pool, runs, accepted) = (pool.clone(), runs.clone(), accepted.clone());
        shuttle::thread::spawn(move || {
            let mut tasks = Vec::new();
            for task in 0..EACH {
                let runs = runs.clone();
                let submitted = pool.submit_timeout(
                    move || {
                        runs.ran(3 * task);
                        pilfer::join(
                            || runs.ran(3 * task + 1),
                            || pilfer::block_in_place(|| runs.ran(3 * task + 2)),
                        );
                        task
                    },
                    FOREVER,
                );
                match submitted {
                    Ok(handle) => {
                        accepted.ran(task);
                        tasks.push((task, handle));
                        seen("accepted");
                    }
                    Err(error) => {
                        assert!(error.is_shut_down());
                        seen("refused");
                    }
                }
            }
            for (task, handle) in tasks {
                assert_eq!(handle.join().unwrap(), task);
            }
        })
    };
    let scoper = {
        let (pool, runs, accepted) = (pool.clone(), runs.clone(), accepted.clone());
        shuttle::thread::spawn(move || {
            for task in EACH..2 * EACH {
                let runs = runs.clone();
                let spawned = pool.spawn_timeout(
                    move || {
                        runs.ran(3 * task);
                        pilfer::scope_fifo(|scope| {
                            scope.spawn_fifo(|_| runs.ran(3 * task + 1));
                            scope.spawn_fifo(|_| runs.ran(3 * task + 2));
                        });
                    },
                    FOREVER,
                );
                match spawned {
                    Ok(()) => {
                        accepted.ran(task);
                        seen("accepted");
                    }
                    Err(error) => {
                        assert!(error.is_shut_down());
                        seen("refused");
                    }
                }
            }
        })
    };
    let indices = {
        let runs = runs.clone();
        pool.broadcast(move |ctx| {
            runs.ran(3 * 2 * EACH + ctx.index());
            ctx.index()
        })
    };
    assert_eq!(indices, [0, 1, 2, 3]);
    pool.close();
    joiner.join().unwrap();
    scoper.join().unwrap();
    assert!(
        unwrap_pool(pool).shutdown_timeout(FOREVER),
        "every worker and spare exited"
    );
    runs.assert_once(3 * 2 * EACH..3 * 2 * EACH + 4);
    for task in 0..2 * EACH {
        let expected = accepted.count(task);
        for part in 3 * task..3 * task + 3 {
            assert_eq!(runs.count(part), expected, "task {task}, part {part}");
        }
    }
}

// ---------------------------------------------------------------------------
// The tests: one per scenario, with its number of schedules.
// ---------------------------------------------------------------------------

macro_rules! scenarios {
    ($($name:ident: $iterations:expr $(, must see [$($outcome:expr),* $(,)?])?;)*) => {
        $(
            #[test]
            fn $name() {
                explore(stringify!($name), $iterations, super::$name, &[$($($outcome),*)?]);
            }
        )*
    };
}

mod explore {
    scenarios! {
        submits_from_two_threads_wake_sleeping_workers: 20_000;
        bounded_producers_block_then_get_through: 20_000;
        close_refuses_producers_blocked_on_the_bound: 20_000;
        abort_races_the_start: 20_000, must see ["aborted", "ran"];
        awaited_tasks_wake_their_wakers: 20_000, must see ["abort won", "abort lost"];
        blocked_workers_are_compensated_by_spares: 20_000;
        a_spare_joins_the_shutdown: 20_000;
        shutdown_now_counts_what_never_ran: 20_000, must see ["discarded all", "some ran"];
        shutdowns_run_every_accepted_task: 20_000, must see ["timed out"];
        broadcasts_reach_every_worker_once: 20_000;
        join_scope_submit_mixed: 20_000;
        panics_reach_their_waiters: 20_000;
        nested_pools_and_room_across_pools: 20_000;
        close_races_producers: 20_000, must see ["accepted", "refused"];
        pool_dropped_on_its_own_worker: 20_000, must see ["dropped on a worker", "dropped outside"];
        isolated_fifo_scopes: 20_000;
        caller_runs_when_full: 20_000, must see ["on a worker", "on the caller"];
        restricted_wait_blocks_with_compensation: 20_000;
        adopted_thread_is_let_go_with_its_work_done: 20_000;
        four_workers_everything_at_once: 20_000, must see ["accepted", "refused"];
    }
    use super::explore;
}
