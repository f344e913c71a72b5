//! Counts what each pool operation does to shared memory: the atomic
//! read-modify-writes, stores and fences of pilfer's own code, the mutexes
//! it takes, the parks and unparks, and its calls into crossbeam's queues,
//! per operation (BENCHMARKS.md, "What each operation costs in shared
//! memory"). The counters exist only with the `traffic` feature:
//!
//! ```text
//! cargo run --release --features traffic --example traffic
//! ```
//!
//! Each operation is repeated many times on a fresh pool and the counts
//! are divided by the repetitions; every count of the pool's threads in
//! that time is included (a thief's steals, a worker falling asleep after
//! the work is done). Five such runs, and the median of each column.

use pilfer::ThreadPool;
use pilfer::traffic::{Event, Traffic};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs per scenario; each column's median is printed.
const RUNS: usize = 5;
/// How long the pool is left alone after the operations, so that its
/// workers finish searching and fall asleep inside the count.
const QUIET: Duration = Duration::from_millis(30);

/// One scenario: a name, and a run that returns the counts and the
/// number of operations they cover.
struct Scenario {
    name: &'static str,
    run: fn() -> (Traffic, u64),
}

fn main() {
    let scenarios = [
        Scenario {
            name: "join, frame-less (1 worker, fib(22))",
            run: join_alone,
        },
        Scenario {
            name: "join, 2 workers (fib(24); steals included)",
            run: join_pair,
        },
        Scenario {
            name: "spawn from outside (2 workers)",
            run: || spawn_outside(pool(2)),
        },
        Scenario {
            name: "spawn from outside, max_pending(64)",
            run: || spawn_outside(bounded_pool(2, 64)),
        },
        Scenario {
            name: "spawn from a worker (2 workers)",
            run: spawn_inside,
        },
        Scenario {
            name: "scope task (2 workers)",
            run: scope_tasks,
        },
        Scenario {
            name: "broadcast (2 workers)",
            run: broadcasts,
        },
        Scenario {
            name: "wake a sleeping pool, run one task",
            run: wake_cycles,
        },
    ];
    print!("{:<45}", "per operation (median of 5 runs)");
    for event in Event::ALL {
        print!(" {:>8}", event.name());
    }
    println!();
    for scenario in &scenarios {
        let runs: Vec<(Traffic, u64)> = (0..RUNS).map(|_| (scenario.run)()).collect();
        print!("{:<45}", scenario.name);
        for event in Event::ALL {
            let mut per_op: Vec<f64> = runs
                .iter()
                .map(|(traffic, ops)| traffic.get(event) as f64 / *ops as f64)
                .collect();
            per_op.sort_by(f64::total_cmp);
            print!(" {:>8}", format_count(per_op[RUNS / 2]));
        }
        println!();
    }
}

fn format_count(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPool::builder()
        .num_threads(threads)
        .build()
        .expect("a pool")
}

fn bounded_pool(threads: usize, max_pending: usize) -> ThreadPool {
    ThreadPool::builder()
        .num_threads(threads)
        .max_pending(max_pending)
        .build()
        .expect("a bounded pool")
}

/// `fib(n)` with a `join` at every call.
fn fib(n: u32) -> u64 {
    if n < 2 {
        return n.into();
    }
    let (a, b) = pilfer::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

/// The number of `join`s in `fib(n)`: its calls with `n >= 2`.
fn joins_in_fib(n: u32) -> u64 {
    let (mut calls, mut previous) = (1u64, 1u64); // calls of fib(1), fib(0)
    for _ in 2..=n {
        (calls, previous) = (calls + previous + 1, calls);
    }
    // calls(n) = calls(n-1) + calls(n-2) + 1; joins = (calls - 1) / 2.
    (calls - 1) / 2
}

/// Counts `fib(n)` run inside a pool of `threads` workers, from its
/// first join to its last.
fn fib_counted(threads: usize, n: u32) -> (Traffic, u64) {
    let pool = pool(threads);
    let traffic = pool.install(|| {
        let before = Traffic::now();
        assert_eq!(fib(n), fib_serial(n));
        Traffic::now().since(&before)
    });
    (traffic, joins_in_fib(n))
}

fn fib_serial(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

fn join_alone() -> (Traffic, u64) {
    fib_counted(1, 22)
}

fn join_pair() -> (Traffic, u64) {
    fib_counted(2, 24)
}

/// Waits until `done` reaches `count`, then leaves the pool alone for
/// [`QUIET`]; panics after a minute.
fn wait_then_quiet(done: &AtomicUsize, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Acquire) < count {
        assert!(
            Instant::now() < deadline,
            "tasks did not finish in a minute"
        );
        std::thread::yield_now();
    }
    std::thread::sleep(QUIET);
}

const TASKS: usize = 20_000;

fn spawn_outside(pool: ThreadPool) -> (Traffic, u64) {
    let done = Arc::new(AtomicUsize::new(0));
    std::thread::sleep(QUIET);
    let before = Traffic::now();
    for _ in 0..TASKS {
        let done = Arc::clone(&done);
        pool.spawn(move || {
            done.fetch_add(1, Ordering::Release);
        });
    }
    wait_then_quiet(&done, TASKS);
    (Traffic::now().since(&before), TASKS as u64)
}

fn spawn_inside() -> (Traffic, u64) {
    let pool = pool(2);
    let done = Arc::new(AtomicUsize::new(0));
    std::thread::sleep(QUIET);
    let before = Traffic::now();
    pool.install(|| {
        for _ in 0..TASKS {
            let done = Arc::clone(&done);
            pilfer::spawn(move || {
                done.fetch_add(1, Ordering::Release);
            });
        }
    });
    wait_then_quiet(&done, TASKS);
    (Traffic::now().since(&before), TASKS as u64)
}

fn scope_tasks() -> (Traffic, u64) {
    let pool = pool(2);
    let done = AtomicUsize::new(0);
    std::thread::sleep(QUIET);
    let before = Traffic::now();
    pool.scope(|scope| {
        for _ in 0..TASKS {
            scope.spawn(|_| {
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    wait_then_quiet(&done, TASKS);
    (Traffic::now().since(&before), TASKS as u64)
}

fn broadcasts() -> (Traffic, u64) {
    const BROADCASTS: usize = 2_000;
    let pool = pool(2);
    std::thread::sleep(QUIET);
    let before = Traffic::now();
    for _ in 0..BROADCASTS {
        let shares = pool.broadcast(|context| context.index());
        assert_eq!(shares.len(), 2);
    }
    std::thread::sleep(QUIET);
    (Traffic::now().since(&before), BROADCASTS as u64)
}

fn wake_cycles() -> (Traffic, u64) {
    const CYCLES: usize = 100;
    let pool = pool(2);
    let done = Arc::new(AtomicUsize::new(0));
    std::thread::sleep(QUIET);
    let before = Traffic::now();
    for cycle in 0..CYCLES {
        let task_done = Arc::clone(&done);
        pool.spawn(move || {
            task_done.fetch_add(1, Ordering::Release);
        });
        wait_then_quiet(&done, cycle + 1);
    }
    (Traffic::now().since(&before), CYCLES as u64)
}
