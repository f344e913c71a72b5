//! The torture test: a seeded random mix of `join`, `join_context`,
//! `scope`, `scope_fifo`, `in_place_scope`, `spawn`, `spawn_fifo`,
//! `submit` (joined, awaited, detached or aborted), `install`, `broadcast`,
//! `spawn_broadcast`, `block_in_place`, `isolate` and the bounded pool's
//! `try_`/`_timeout` forms,
//! nested and across three pools (one bounded, one with a single worker),
//! with planned panics at random points and short-lived pools dropped,
//! shut down with a deadline or shut down now while busy, from outside and
//! from workers.
//!
//! Every closure handed to a pool carries a [`Probe`]: the ledger records
//! each probe's runs and drops, and at the end every closure the pools
//! accepted must have run exactly once, every closure (accepted or handed
//! back) must have been dropped exactly once, every planned panic must have
//! reached the caller that waits for it (`join`, `scope`, `install`,
//! `Task::join`) or its pool's panic handler (detached tasks), and nothing
//! may hang (a watchdog aborts the process, printing the seed).
//!
//! ```text
//! cargo test --test torture                                   # a few seconds
//! PILFER_TORTURE_SECS=600 cargo test --release --test torture # a long soak
//! PILFER_TORTURE_SEED=1234 cargo test --test torture          # replay a seed
//! PILFER_TORTURE_THREADS=64 cargo test --release --test torture  # oversubscribed
//! ```
//!
//! `PILFER_TORTURE_THREADS` sets the worker count of the two long-lived
//! multi-worker pools (3 and 2 by default); far above the machine's cores,
//! their workers sleep and wake thousands of times a second (the run prints
//! how often they slept).
//!
//! A seed fixes what each driver thread asks for; the interleavings still
//! vary from run to run, so a replay makes the failing mix likely, not
//! certain.

use std::any::Any;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use pilfer::{FullPolicy, TaskError, ThreadPool, TrySpawnError};

/// Default length of a run, in seconds (`PILFER_TORTURE_SECS` overrides).
const DEFAULT_SECS: u64 = 3;
/// Threads outside every pool that keep issuing random operations.
const DRIVERS: usize = 3;
/// How deep operations nest (each level may call into any pool).
const MAX_DEPTH: u32 = 3;
/// Closures a run may create; a driver stops early when half are used.
const MAX_PROBES: usize = 1 << 22;
/// The longest round: a soak is a sequence of rounds, each with fresh
/// pools and a fresh ledger.
const ROUND_LENGTH: Duration = Duration::from_secs(5);
/// Slack on top of a round's planned end before the watchdog declares a
/// hang.
const HANG_SLACK: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Randomness.

/// SplitMix64: every decision of a driver follows from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

// ---------------------------------------------------------------------------
// The ledger: every closure's runs and drops.

struct Ledger {
    runs: Box<[AtomicU8]>,
    drops: Box<[AtomicU8]>,
    /// 1 for a closure that must run once (accepted by a pool, or run by
    /// the test after a pool handed it back), 0 for one that must not,
    /// [`AT_MOST_ONCE`] for one that a shutdown may discard.
    expected_runs: Box<[AtomicU8]>,
    next: AtomicUsize,
}

fn ledger() -> &'static Ledger {
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let zeroes = || (0..MAX_PROBES).map(|_| AtomicU8::new(0)).collect();
        Ledger {
            runs: zeroes(),
            drops: zeroes(),
            expected_runs: zeroes(),
            next: AtomicUsize::new(0),
        }
    })
}

impl Ledger {
    fn used(&self) -> usize {
        self.next.load(Ordering::SeqCst).min(MAX_PROBES)
    }

    /// Forgets every probe, for the next round (no closure of the last
    /// one is alive: its pools are gone).
    fn reset(&self) {
        let used = self.used();
        for slots in [&self.runs, &self.drops, &self.expected_runs] {
            for slot in &slots[..used] {
                slot.store(0, Ordering::SeqCst);
            }
        }
        self.next.store(0, Ordering::SeqCst);
    }

    /// Ids of probes whose runs or drops are wrong, with what was seen.
    fn mismatches(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        for id in 0..self.used() {
            let runs = self.runs[id].load(Ordering::SeqCst);
            let drops = self.drops[id].load(Ordering::SeqCst);
            let expected = self.expected_runs[id].load(Ordering::SeqCst);
            let runs_wrong = if expected == AT_MOST_ONCE {
                runs > 1
            } else {
                runs != expected
            };
            if runs_wrong || drops != 1 {
                wrong.push(format!(
                    "closure {id}: ran {runs} times (expected {expected}), dropped {drops} times"
                ));
            }
        }
        wrong
    }
}

/// The expected runs of a closure that `shutdown_now` may discard: 0 or 1.
const AT_MOST_ONCE: u8 = 2;

/// Carried inside a closure handed to a pool: records that the closure ran
/// ([`Probe::ran`]) and, when the closure is dropped (after running, or
/// instead of it), that it was dropped.
struct Probe(usize);

impl Probe {
    /// A probe for a closure the pool cannot refuse: it must run once.
    fn accepted() -> Probe {
        let probe = Probe::unaccepted();
        probe.expect_run();
        probe
    }

    /// A probe for a closure accepted by a pool that `shutdown_now` may
    /// discard it from.
    fn discardable() -> Probe {
        let probe = Probe::unaccepted();
        ledger().expected_runs[probe.id()].store(AT_MOST_ONCE, Ordering::SeqCst);
        probe
    }

    /// A probe for a closure the pool may hand back.
    fn unaccepted() -> Probe {
        let id = ledger().next.fetch_add(1, Ordering::SeqCst);
        assert!(id < MAX_PROBES, "torture: out of probes");
        Probe(id)
    }

    fn id(&self) -> usize {
        self.0
    }

    fn expect_run(&self) {
        expect_run(self.0);
    }

    fn ran(&self) {
        ledger().runs[self.0].fetch_add(1, Ordering::SeqCst);
    }
}

fn expect_run(id: usize) {
    ledger().expected_runs[id].store(1, Ordering::SeqCst);
}

impl Drop for Probe {
    fn drop(&mut self) {
        ledger().drops[self.0].fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Planned panics.

/// The payload of every panic this test causes on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag(u64);

/// `Some(tag)`: the operation panics with `tag` once its work is done.
type Plan = Option<Tag>;

fn plan(rng: &mut Rng) -> Plan {
    static NEXT_TAG: AtomicU64 = AtomicU64::new(0);
    rng.chance(6)
        .then(|| Tag(NEXT_TAG.fetch_add(1, Ordering::Relaxed)))
}

fn carry_out(plan: Plan) {
    if let Some(tag) = plan {
        panic::panic_any(tag);
    }
}

fn describe(payload: &(dyn Any + Send)) -> String {
    if let Some(tag) = payload.downcast_ref::<Tag>() {
        format!("{tag:?}")
    } else if let Some(message) = payload.downcast_ref::<&str>() {
        format!("panic {message:?}")
    } else if let Some(message) = payload.downcast_ref::<String>() {
        format!("panic {message:?}")
    } else {
        "a panic with an unknown payload".to_owned()
    }
}

// ---------------------------------------------------------------------------
// Pools and the world they live in.

/// What the test knows about one pool's detached panics and exits.
struct PoolStats {
    name: String,
    threads: usize,
    /// Planned panics of detached tasks accepted by this pool.
    expected_panics: AtomicUsize,
    /// Tagged payloads its panic handler received.
    handled_panics: AtomicUsize,
    /// Workers whose exit handler ran.
    exited: AtomicUsize,
    /// Spare threads whose start handler ran, and whose exit handler ran.
    spares_started: AtomicUsize,
    spares_exited: AtomicUsize,
}

impl PoolStats {
    fn check(&self) -> Result<(), String> {
        let expected = self.expected_panics.load(Ordering::SeqCst);
        let handled = self.handled_panics.load(Ordering::SeqCst);
        let exited = self.exited.load(Ordering::SeqCst);
        let (spares, spares_exited) = self.spares();
        if handled != expected || exited != self.threads || spares_exited != spares {
            return Err(format!(
                "pool {}: {handled} detached panics handled, {expected} expected; \
                 {exited} of {} workers and {spares_exited} of {spares} spares exited",
                self.name, self.threads
            ));
        }
        Ok(())
    }

    /// Spares started and spares exited so far.
    fn spares(&self) -> (usize, usize) {
        (
            self.spares_started.load(Ordering::SeqCst),
            self.spares_exited.load(Ordering::SeqCst),
        )
    }

    /// Every worker and every spare has exited.
    fn all_exited(&self) -> bool {
        let (spares, spares_exited) = self.spares();
        self.exited.load(Ordering::SeqCst) == self.threads && spares_exited == spares
    }
}

/// A pool and its stats.
struct Tracked {
    pool: ThreadPool,
    stats: Arc<PoolStats>,
}

impl Tracked {
    fn build(name: String, threads: usize, bound: Option<(usize, FullPolicy)>) -> Tracked {
        let stats = Arc::new(PoolStats {
            name,
            threads,
            expected_panics: AtomicUsize::new(0),
            handled_panics: AtomicUsize::new(0),
            exited: AtomicUsize::new(0),
            spares_started: AtomicUsize::new(0),
            spares_exited: AtomicUsize::new(0),
        });
        let mut builder = ThreadPool::builder()
            .num_threads(threads)
            // The bounded pool is pinned where two cores are free, so that
            // its blocked workers' spares take their cores; the others
            // are not (they would not all fit).
            .pin_workers(stats.name == "bounded")
            // Deep enough for the nesting below (a waiting worker runs
            // other operations on top of its own).
            .stack_size(64 << 20)
            .thread_name({
                let name = stats.name.clone();
                move |i| format!("torture-{name}-{i}")
            })
            .panic_handler({
                let stats = Arc::clone(&stats);
                move |payload| {
                    if payload.is::<Tag>() {
                        stats.handled_panics.fetch_add(1, Ordering::SeqCst);
                    } else {
                        fail(format!(
                            "pool {}: unexpected detached panic: {}",
                            stats.name,
                            describe(&*payload)
                        ));
                    }
                }
            })
            // Spares (blocked workers' stand-ins) have indices from
            // `threads` on.
            .start_handler({
                let stats = Arc::clone(&stats);
                move |index| {
                    if index >= stats.threads {
                        stats.spares_started.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .exit_handler({
                let stats = Arc::clone(&stats);
                move |index| {
                    if index < stats.threads {
                        stats.exited.fetch_add(1, Ordering::SeqCst);
                    } else {
                        stats.spares_exited.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        if let Some((max, policy)) = bound {
            builder = builder.max_pending(max).when_full(policy);
        }
        let pool = builder.build().expect("building a torture pool");
        Tracked { pool, stats }
    }
}

/// The three long-lived pools.
struct World {
    /// Three workers (more than the machine's two cores, to interleave).
    wide: Tracked,
    /// Two workers, at most three pending tasks from outside.
    bounded: Tracked,
    /// One worker.
    single: Tracked,
    /// Stats of short-lived pools dropped on a worker thread: such a drop
    /// does not wait, so they are checked at the end.
    deferred: Mutex<Vec<Arc<PoolStats>>>,
}

impl World {
    fn pool(&self, which: u64) -> &Tracked {
        match which % 3 {
            0 => &self.wide,
            1 => &self.bounded,
            _ => &self.single,
        }
    }
}

fn failures() -> &'static Mutex<Vec<String>> {
    static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    &FAILURES
}

/// Records a failure, reported at the end (a panic here could be caught by
/// the pool and mistaken for a planned one).
fn fail(message: String) {
    failures().lock().unwrap().push(message);
}

/// Checks that an operation ended as planned.
fn check(what: &str, outcome: Result<(), Box<dyn Any + Send>>, expected: Plan) {
    match (outcome, expected) {
        (Ok(()), None) => {}
        (Err(payload), Some(tag)) if payload.downcast_ref::<Tag>() == Some(&tag) => {}
        (Ok(()), Some(tag)) => fail(format!("{what}: returned, but {tag:?} was planned")),
        (Err(payload), expected) => fail(format!(
            "{what}: got {}, planned {expected:?}",
            describe(&*payload)
        )),
    }
}

/// Checks a scope's outcome: its first panic, whichever of `planned` that is.
fn check_any(what: &str, outcome: Result<(), Box<dyn Any + Send>>, planned: &[Tag]) {
    match outcome {
        Ok(()) if planned.is_empty() => {}
        Ok(()) => fail(format!("{what}: returned, but {planned:?} were planned")),
        Err(payload) => match payload.downcast_ref::<Tag>() {
            Some(tag) if planned.contains(tag) => {}
            _ => fail(format!(
                "{what}: got {}, planned one of {planned:?}",
                describe(&*payload)
            )),
        },
    }
}

fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

/// A task's outcome as a panic payload: a cancellation becomes a message
/// (no task is cancelled unless an operation planned it).
fn task_outcome<T>(result: Result<T, TaskError>) -> Result<T, Box<dyn Any + Send>> {
    result.map_err(|error| {
        error
            .try_into_panic()
            .unwrap_or_else(|error| Box::new(format!("{error}")))
    })
}

// ---------------------------------------------------------------------------
// Operations.

/// Does one random thing (fork-join work at depth 0), then carries out
/// `plan`. Runs on any thread: a driver, or a worker of any pool.
fn operation(world: &Arc<World>, seed: u64, depth: u32, plan: Plan) {
    let mut rng = Rng(seed);
    if depth == 0 {
        leaf(&mut rng);
    } else {
        match rng.below(11) {
            0 => join(world, &mut rng, depth),
            1 => scope(world, &mut rng, depth),
            2 | 3 => spawn(world, &mut rng, depth),
            4 => submit(world, &mut rng, depth),
            5 => install(world, &mut rng, depth),
            6 => try_spawn_bounded(world, &mut rng, depth),
            7 if rng.chance(3) => short_lived_pool(world, &mut rng, depth),
            8 => broadcast(world, &mut rng, depth),
            9 => blocking(world, &mut rng, depth),
            _ => leaf(&mut rng),
        }
    }
    carry_out(plan);
}

/// A small fork-join computation on whatever pool the thread is in (the
/// global pool outside every pool), checked.
fn leaf(rng: &mut Rng) {
    fn fib(n: u32) -> u64 {
        if n < 2 {
            return n.into();
        }
        let (a, b) = pilfer::join(|| fib(n - 1), || fib(n - 2));
        a + b
    }
    let n = 4 + rng.below(8) as u32;
    let expected = (0..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0;
    let got = fib(n);
    if got != expected {
        fail(format!("fib({n}) = {got}, expected {expected}"));
    }
}

/// A closure for a pool that must run it: probe, then the operation.
fn child(
    world: &Arc<World>,
    rng: &mut Rng,
    depth: u32,
    plan: Plan,
) -> impl FnOnce() + Send + use<> {
    child_with(Probe::accepted(), world, rng, depth, plan)
}

/// A closure carrying `probe`, then the operation.
fn child_with(
    probe: Probe,
    world: &Arc<World>,
    rng: &mut Rng,
    depth: u32,
    plan: Plan,
) -> impl FnOnce() + Send + use<> {
    let world = Arc::clone(world);
    let seed = rng.next();
    move || {
        probe.ran();
        operation(&world, seed, depth - 1, plan);
    }
}

fn join(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let (plan_a, plan_b) = (plan(rng), plan(rng));
    let a = child(world, rng, depth, plan_a);
    let b = child(world, rng, depth, plan_b);
    let outcome = match rng.below(6) {
        3 => catch(|| pilfer::join(a, b)),
        4 => catch(|| pilfer::join_context(|_| a(), |_| b())),
        5 => catch(|| pilfer::isolate(|| pilfer::join(a, b))),
        which => catch(|| world.pool(which).pool.join(a, b)),
    };
    // A panic of `a` wins over one of `b`.
    check("join", outcome.map(drop), plan_a.or(plan_b));
}

fn scope(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let tasks = 1 + rng.below(4);
    let mut planned = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..tasks {
        let outer = plan(rng);
        // Some tasks spawn a nested task into the same scope.
        let nested = rng.chance(2).then(|| {
            let inner = plan(rng);
            planned.extend(inner);
            child(world, rng, depth, inner)
        });
        planned.extend(outer);
        bodies.push((child(world, rng, depth, outer), nested));
    }
    let body_plan = plan(rng);
    planned.extend(body_plan);
    // The same body for every kind of scope: `$spawn` is the scope's
    // spawning method.
    macro_rules! body {
        ($spawn:ident) => {
            |s| {
                for (body, nested) in bodies {
                    s.$spawn(move |s| {
                        if let Some(nested) = nested {
                            s.$spawn(move |_| nested());
                        }
                        body();
                    });
                }
                carry_out(body_plan);
            }
        };
    }
    let which = rng.below(3);
    let pool = &world.pool(which).pool;
    let outcome = match rng.below(8) {
        0 => catch(|| pilfer::scope(body!(spawn))),
        1 => catch(|| pilfer::in_place_scope(body!(spawn))),
        2 => catch(|| pool.in_place_scope(body!(spawn))),
        3 => catch(|| pool.scope_fifo(body!(spawn_fifo))),
        4 => catch(|| pilfer::in_place_scope_fifo(body!(spawn_fifo))),
        5 => catch(|| pilfer::isolate(|| pool.scope(body!(spawn)))),
        _ => catch(|| pool.scope(body!(spawn))),
    };
    check_any("scope", outcome, &planned);
}

fn spawn(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let target = world.pool(rng.below(3));
    let plan = plan(rng);
    if plan.is_some() {
        target.stats.expected_panics.fetch_add(1, Ordering::SeqCst);
    }
    let run = child(world, rng, depth, plan);
    if rng.chance(3) {
        target.pool.spawn_fifo(run);
    } else {
        target.pool.spawn(run);
    }
}

/// An operation inside `block_in_place`, after a short sleep (the block):
/// a spare takes over meanwhile; a planned panic comes back out of it.
fn blocking(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let plan = plan(rng);
    let run = child(world, rng, depth, plan);
    let pause = Duration::from_micros(rng.below(200));
    let outcome = catch(|| {
        pilfer::block_in_place(|| {
            thread::sleep(pause);
            run();
        })
    });
    check("block_in_place", outcome, plan);
}

/// A broadcast: each worker of the pool runs an operation; a planned panic
/// (on worker 0) reaches the caller once every worker ran. Sometimes
/// detached instead, without a planned panic.
fn broadcast(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let target = world.pool(rng.below(3));
    let seed = rng.next();
    let threads = target.pool.num_threads();
    if rng.chance(4) {
        let world = Arc::clone(world);
        let probe = Probe::accepted();
        // One run per worker: the last of them marks the probe run, so the
        // ledger sees one run exactly when every worker ran it once.
        let runs = AtomicUsize::new(0);
        target.pool.spawn_broadcast(move |ctx| {
            operation(&world, seed ^ ctx.index() as u64, depth - 1, None);
            match runs.fetch_add(1, Ordering::SeqCst) + 1 {
                n if n == threads => probe.ran(),
                n if n > threads => fail(format!("a broadcast ran {n} times on {threads} workers")),
                _ => {}
            }
        });
        return;
    }
    let plan = plan(rng);
    let probe = Probe::accepted();
    let outcome = catch(|| {
        target.pool.broadcast(|ctx| {
            if ctx.index() == 0 {
                probe.ran();
            }
            operation(world, seed ^ ctx.index() as u64, depth - 1, None);
            if ctx.index() == 0 {
                carry_out(plan);
            }
            ctx.index()
        })
    });
    if let Ok(indices) = &outcome {
        if *indices != (0..threads).collect::<Vec<_>>() {
            fail(format!(
                "broadcast returned {indices:?} on {threads} workers"
            ));
        }
    }
    check("broadcast", outcome.map(drop), plan);
}

fn submit(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let target = world.pool(rng.below(3));
    let plan = plan(rng);
    let probe = Probe::accepted();
    let id = probe.id();
    let task = target.pool.submit({
        let world = Arc::clone(world);
        let seed = rng.next();
        move || {
            probe.ran();
            operation(&world, seed, depth - 1, plan);
            42u32
        }
    });
    // Sometimes aborted, racing the worker that would start it: if the
    // abort wins, the closure must never run, and was dropped.
    if rng.chance(5) && task.abort() {
        ledger().expected_runs[id].store(0, Ordering::SeqCst);
        match task.join() {
            Err(error) if error.is_cancelled() => {}
            other => fail(format!(
                "an aborted task joined as {:?}",
                other.map(|_| ()).map_err(|error| error.to_string())
            )),
        }
        return;
    }
    // Sometimes detached: the result (or the panic) is dropped unseen.
    if rng.chance(4) {
        return;
    }
    let outcome = task_outcome(task.join()).map(|value| {
        if value != 42 {
            fail(format!("Task::join returned {value}, expected 42"));
        }
    });
    check("Task::join", outcome, plan);
}

fn install(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let target = world.pool(rng.below(3));
    let plan = plan(rng);
    let run = child(world, rng, depth, plan);
    let outcome = catch(|| target.pool.install(run));
    check("install", outcome, plan);
}

/// The non-blocking and deadline forms on the bounded pool, which may hand
/// the closure back.
fn try_spawn_bounded(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    let bounded = &world.bounded;
    let plan = plan(rng);
    let probe = Probe::unaccepted();
    let id = probe.id();
    let run = {
        let world = Arc::clone(world);
        let seed = rng.next();
        move || {
            probe.ran();
            operation(&world, seed, depth - 1, plan);
        }
    };
    let rejected = match rng.below(3) {
        0 => bounded.pool.try_spawn(run).err(),
        1 => bounded
            .pool
            .spawn_timeout(run, Duration::from_micros(rng.below(2000)))
            .err(),
        _ => match bounded.pool.try_submit(run) {
            Ok(task) => {
                expect_run(id);
                check("try_submit's Task::join", task_outcome(task.join()), plan);
                return;
            }
            Err(rejected) => Some(rejected),
        },
    };
    match rejected {
        None => {
            expect_run(id);
            if plan.is_some() {
                bounded.stats.expected_panics.fetch_add(1, Ordering::SeqCst);
            }
        }
        Some(TrySpawnError::Full(run)) => {
            // Handed back intact: run it here, or drop it.
            if rng.chance(2) {
                expect_run(id);
                check(
                    "a closure handed back, run by its producer",
                    catch(run),
                    plan,
                );
            }
        }
        Some(other) => fail(format!("bounded pool refused a task: {other:?}")),
    }
}

/// Builds a small pool, loads it with detached and submitted work, and
/// ends it while busy: drops it, shuts it down with a short deadline, or
/// shuts it down now (discarding what has not started; then no detached
/// task plans a panic, and what was discarded is counted). Then joins the
/// submitted tasks, or awaits them as futures.
fn short_lived_pool(world: &Arc<World>, rng: &mut Rng, depth: u32) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("short{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let threads = 1 + rng.below(2) as usize;
    let bound = rng.chance(2).then(|| {
        let policy = if rng.chance(2) {
            FullPolicy::Block
        } else {
            FullPolicy::CallerRuns
        };
        (1 + rng.below(3) as usize, policy)
    });
    let short = Tracked::build(name, threads, bound);
    let ending = rng.below(3);
    let discardable = ending == 2;
    let probe = || {
        if discardable {
            Probe::discardable()
        } else {
            Probe::accepted()
        }
    };
    let mut probes = Vec::new();
    for _ in 0..rng.below(6) {
        let plan = if discardable { None } else { plan(rng) };
        if plan.is_some() {
            short.stats.expected_panics.fetch_add(1, Ordering::SeqCst);
        }
        let probe = probe();
        probes.push(probe.id());
        short.pool.spawn(child_with(probe, world, rng, depth, plan));
    }
    let tasks: Vec<_> = (0..rng.below(3))
        .map(|_| {
            let plan = plan(rng);
            let probe = probe();
            probes.push(probe.id());
            let id = probe.id();
            let task = short
                .pool
                .submit(child_with(probe, world, rng, depth, plan));
            (task, plan, id)
        })
        .collect();
    let Tracked { pool, stats } = short;
    // On a worker, no form of shutdown waits for the workers.
    let on_worker = pilfer::current_worker_index().is_some();
    let exited = match ending {
        0 => {
            drop(pool);
            !on_worker
        }
        1 => pool.shutdown_timeout(Duration::from_millis(rng.below(20))),
        _ => {
            let discarded = pool.shutdown_now();
            let never_ran = probes
                .iter()
                .filter(|&&id| ledger().runs[id].load(Ordering::SeqCst) == 0)
                .count();
            if !on_worker && discarded != never_ran {
                fail(format!(
                    "shutdown_now discarded {discarded} tasks, but {never_ran} never ran"
                ));
            }
            !on_worker
        }
    };
    if exited {
        if let Err(message) = stats.check() {
            fail(format!("after its shutdown returned: {message}"));
        }
    } else {
        // Still finishing in the background: checked at the round's end.
        world.deferred.lock().unwrap().push(stats);
    }
    for (task, plan, id) in tasks {
        // Awaited as a future only outside every pool: an executor parks
        // its thread, which would starve a pool the task may call into.
        let result = if !on_worker && rng.chance(2) {
            futures::executor::block_on(task)
        } else {
            task.join()
        };
        match result {
            Err(error) if error.is_cancelled() && discardable => {
                if ledger().runs[id].load(Ordering::SeqCst) != 0 {
                    fail("a task reported cancelled, but its closure ran".into());
                }
            }
            result => check("a short-lived pool's task", task_outcome(result), plan),
        }
    }
}

// ---------------------------------------------------------------------------
// The run.

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={value:?} is not a number"),
    }
}

/// Aborts the process, printing the seed, when the current round is still
/// running `HANG_SLACK` past its planned end (a deadlock or a lost wake-up).
struct Watchdog {
    start: Instant,
    /// Milliseconds since `start` after which the process is aborted.
    limit_ms: AtomicU64,
}

impl Watchdog {
    fn start(seed: u64) -> Arc<Watchdog> {
        let watchdog = Arc::new(Watchdog {
            start: Instant::now(),
            limit_ms: AtomicU64::new(u64::MAX),
        });
        let watched = Arc::clone(&watchdog);
        thread::Builder::new()
            .name("torture-watchdog".into())
            .spawn(move || {
                loop {
                    thread::sleep(Duration::from_millis(200));
                    let elapsed = watched.start.elapsed().as_millis() as u64;
                    if elapsed > watched.limit_ms.load(Ordering::SeqCst) {
                        break;
                    }
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "torture: a round is still running {HANG_SLACK:?} after its planned end: \
                     a deadlock or a lost wake-up. Replay with PILFER_TORTURE_SEED={seed}"
                );
                std::process::abort();
            })
            .expect("spawning the watchdog");
        watchdog
    }

    /// The round now starting should end by `planned_end`.
    fn arm(&self, planned_end: Instant) {
        let limit = planned_end + HANG_SLACK - self.start;
        self.limit_ms
            .store(limit.as_millis() as u64, Ordering::SeqCst);
    }
}

/// Keeps planned panics quiet; anything else is printed as usual.
fn silence_planned_panics() {
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Tag>() {
            default_hook(info);
        }
    }));
}

/// Waits until `condition` holds, at most `limit`.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    true
}

/// What one round did.
struct RoundReport {
    operations: usize,
    closures: usize,
    /// Times the long-lived pools' workers went to sleep.
    parks: u64,
    problems: Vec<String>,
}

/// One round: three fresh pools, the drivers until `until` (or until half
/// the probes are used), then every pool dropped and every count checked.
fn round(seed: u64, until: Instant) -> RoundReport {
    let mut rng = Rng(seed);
    let policy = if rng.chance(2) {
        FullPolicy::Block
    } else {
        FullPolicy::CallerRuns
    };
    let (wide, bounded) = match env_u64("PILFER_TORTURE_THREADS") {
        Some(threads) => (threads as usize, threads as usize),
        None => (3, 2),
    };
    let world = Arc::new(World {
        wide: Tracked::build("wide".into(), wide, None),
        bounded: Tracked::build("bounded".into(), bounded, Some((3, policy))),
        single: Tracked::build("single".into(), 1, None),
        deferred: Mutex::new(Vec::new()),
    });

    let operations = Arc::new(AtomicUsize::new(0));
    let drivers: Vec<_> = (0..DRIVERS)
        .map(|driver| {
            let world = Arc::clone(&world);
            let operations = Arc::clone(&operations);
            let driver_seed = rng.next();
            thread::Builder::new()
                .name(format!("torture-driver-{driver}"))
                .spawn(move || {
                    let mut rng = Rng(driver_seed);
                    while Instant::now() < until && ledger().used() < MAX_PROBES / 2 {
                        let plan = plan(&mut rng);
                        let seed = rng.next();
                        let outcome = catch(|| operation(&world, seed, MAX_DEPTH, plan));
                        check("a driver's operation", outcome, plan);
                        operations.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .expect("spawning a driver")
        })
        .collect();
    for driver in drivers {
        if driver.join().is_err() {
            fail("a driver thread panicked".into());
        }
    }

    // Detached work still running holds the world; wait until it is done,
    // then drop the pools here, which waits for their workers.
    if !wait_until(HANG_SLACK / 2, || Arc::strong_count(&world) == 1) {
        fail("detached work still holds the pools long after the drivers stopped".into());
    }
    let world = Arc::try_unwrap(world).unwrap_or_else(|_| panic!("the pools are still shared"));
    let mut stats = vec![];
    let mut parks = 0;
    for tracked in [world.wide, world.bounded, world.single] {
        parks += tracked.pool.metrics().parks();
        stats.push(tracked.stats);
        drop(tracked.pool);
    }
    stats.extend(world.deferred.into_inner().unwrap());
    for stats in stats {
        // Pools dropped on a worker did not wait for their workers.
        if !wait_until(HANG_SLACK / 2, || stats.all_exited()) {
            fail(format!("pool {}: its workers never exited", stats.name));
        } else if let Err(message) = stats.check() {
            fail(message);
        }
    }

    let mut problems = std::mem::take(&mut *failures().lock().unwrap());
    problems.extend(ledger().mismatches());
    RoundReport {
        operations: operations.load(Ordering::Relaxed),
        closures: ledger().used(),
        parks,
        problems,
    }
}

#[test]
fn torture() {
    let seed = env_u64("PILFER_TORTURE_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| since.as_nanos() as u64)
    });
    let run_for = Duration::from_secs(env_u64("PILFER_TORTURE_SECS").unwrap_or(DEFAULT_SECS));
    // Printed by the harness if the test fails.
    println!("torture: seed {seed}, {run_for:?} (replay: PILFER_TORTURE_SEED={seed})");
    let watchdog = Watchdog::start(seed);
    silence_planned_panics();

    let start = Instant::now();
    let end = start + run_for;
    let mut seeds = Rng(seed);
    let (mut rounds, mut operations, mut closures, mut parks) = (0, 0, 0, 0);
    loop {
        let until = end.min(Instant::now() + ROUND_LENGTH);
        watchdog.arm(until);
        let report = round(seeds.next(), until);
        rounds += 1;
        operations += report.operations;
        closures += report.closures;
        parks += report.parks;
        assert!(
            report.problems.is_empty(),
            "seed {seed}, round {rounds}: {} problems (replay with \
             PILFER_TORTURE_SEED={seed}); the first ones:\n{}",
            report.problems.len(),
            report.problems[..report.problems.len().min(20)].join("\n")
        );
        ledger().reset();
        if Instant::now() >= end {
            break;
        }
    }
    println!(
        "torture: {rounds} rounds, {operations} top-level operations, {closures} closures, \
         {parks} sleeps of the long-lived pools' workers in {:.1?}",
        start.elapsed()
    );
    assert!(operations >= DRIVERS, "seed {seed}: hardly anything ran");
}
