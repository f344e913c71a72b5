//! Counts what each pool operation does to shared memory: the atomic
//! read-modify-writes, stores and fences of pilfer's own code, the mutexes
//! it takes, the parks and unparks, and its calls into crossbeam's queues,
//! per operation (BENCHMARKS.md, "What each operation costs in shared
//! memory"). The counters exist only with the `traffic` feature:
//!
//! ```text
//! cargo run --release --features traffic --example traffic [WORKERS...]
//! ```
//!
//! Each operation is repeated many times on a fresh pool and the counts
//! are divided by the repetitions; every count of the pool's threads in
//! that time is included (a thief's steals, a worker falling asleep after
//! the work is done). Five such runs, and the median of each column; a
//! table per pool size given (2 workers by default). Counts, unlike
//! times, mean something on a machine with fewer cores than workers.

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

/// One scenario: a name, and a run on a pool of the given number of
/// workers that returns the counts and the number of operations they
/// cover.
struct Scenario {
    name: &'static str,
    run: fn(usize) -> (Traffic, u64),
}

const SCENARIOS: [Scenario; 8] = [
    Scenario {
        name: "join, frame-less (1 worker, fib(22))",
        run: |_| fib_counted(1, 22),
    },
    Scenario {
        name: "join (fib(24); steals included)",
        run: |threads| fib_counted(threads, 24),
    },
    Scenario {
        name: "spawn from outside",
        run: |threads| spawn_outside(pool(threads)),
    },
    Scenario {
        name: "spawn from outside, max_pending(64)",
        run: |threads| spawn_outside(bounded_pool(threads, 64)),
    },
    Scenario {
        name: "spawn from a worker",
        run: spawn_inside,
    },
    Scenario {
        name: "scope task",
        run: scope_tasks,
    },
    Scenario {
        name: "broadcast",
        run: broadcasts,
    },
    Scenario {
        name: "wake a sleeping pool, run one task",
        run: wake_cycles,
    },
];

/// `traffic [WORKERS...]`: a table per pool size (default 2).
fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| match arg.parse() {
            Ok(threads) if threads > 0 => threads,
            _ => {
                eprintln!("usage: traffic [WORKERS...]   (pool sizes, default 2)");
                std::process::exit(2);
            }
        })
        .collect();
    let sizes = if sizes.is_empty() { vec![2] } else { sizes };
    for threads in sizes {
        print!(
            "{:<45}",
            format!("{threads} workers; per operation, median of {RUNS}")
        );
        for event in Event::ALL {
            print!(" {:>8}", event.name());
        }
        println!();
        for scenario in &SCENARIOS {
            let runs: Vec<(Traffic, u64)> = (0..RUNS).map(|_| (scenario.run)(threads)).collect();
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

fn spawn_inside(threads: usize) -> (Traffic, u64) {
    let pool = pool(threads);
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

fn scope_tasks(threads: usize) -> (Traffic, u64) {
    let pool = pool(threads);
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

fn broadcasts(threads: usize) -> (Traffic, u64) {
    const BROADCASTS: usize = 2_000;
    let pool = pool(threads);
    std::thread::sleep(QUIET);
    let before = Traffic::now();
    for _ in 0..BROADCASTS {
        let shares = pool.broadcast(|context| context.index());
        assert_eq!(shares.len(), threads);
    }
    std::thread::sleep(QUIET);
    (Traffic::now().since(&before), BROADCASTS as u64)
}

fn wake_cycles(threads: usize) -> (Traffic, u64) {
    const CYCLES: usize = 100;
    let pool = pool(threads);
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
