//! What an idle pool's search costs: the process CPU time (user and system,
//! from `getrusage`) that a pool spends per broadcast and per wake-up, at
//! the pool sizes given. After each operation the program waits until the
//! workers it woke have searched, given up and fallen asleep again (the
//! pool's count of sleeps tells), so the figure is the operation plus the
//! searches it sets off. Counted by the CPU time, not the wall time, a pool
//! larger than the machine still shows what its searches cost
//! (BENCHMARKS.md, "A look before each steal").
//!
//! ```sh
//! cargo run --release --example search_cost             # 16 and 64 workers
//! cargo run --release --example search_cost -- 2 8 64
//! ```
//!
//! Five rounds per pool size, each on a fresh pool; the medians are
//! printed, with the range.

use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const BROADCASTS: u32 = 50;
const WAKES: u32 = 200;
/// How often the waiting thread checks whether the pool is asleep again
/// (its own CPU time is counted too, a few µs per check).
const POLL: Duration = Duration::from_micros(200);
/// A pool that does not fall asleep within this is a bug.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| match arg.parse() {
            Ok(workers) if workers > 0 => workers,
            _ => {
                eprintln!("usage: search_cost [WORKERS...]   (pool sizes, default 16 64)");
                std::process::exit(2);
            }
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![16, 64]
    } else {
        sizes
    };
    println!("CPU time per operation (µs), median of {ROUNDS} rounds [min-max]");
    for workers in sizes {
        let broadcast = rounds(|| per_broadcast(workers));
        let wake = rounds(|| per_wake(workers));
        println!(
            "{workers:>4} workers: broadcast from outside {}, wake for one task {}",
            summary(broadcast),
            summary(wake)
        );
    }
}

fn rounds(mut round: impl FnMut() -> f64) -> Vec<f64> {
    let mut samples: Vec<f64> = (0..ROUNDS).map(|_| round()).collect();
    samples.sort_by(f64::total_cmp);
    samples
}

fn summary(sorted: Vec<f64>) -> String {
    format!(
        "{:.0} [{:.0}-{:.0}]",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    )
}

fn pool(workers: usize) -> pilfer::ThreadPool {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(workers)
        .build()
        .expect("a pool");
    // Every worker started, searched and fell asleep before the count
    // begins.
    let sleeps = pool.metrics().parks();
    pool.broadcast(|_| ());
    settle(&pool, sleeps + workers as u64);
    pool
}

/// Waits until the pool's workers have fallen asleep `sleeps` times in all.
fn settle(pool: &pilfer::ThreadPool, sleeps: u64) {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    while pool.metrics().parks() < sleeps {
        assert!(
            Instant::now() < deadline,
            "the pool did not fall asleep again"
        );
        std::thread::sleep(POLL);
    }
}

/// CPU µs per broadcast of an empty closure, and the searches after it:
/// every worker is woken for its share, then searches and sleeps again.
fn per_broadcast(workers: usize) -> f64 {
    let pool = pool(workers);
    let started = cpu_time();
    for _ in 0..BROADCASTS {
        let sleeps = pool.metrics().parks();
        pool.broadcast(|context| std::hint::black_box(context.index()));
        settle(&pool, sleeps + workers as u64);
    }
    micros(cpu_time() - started) / f64::from(BROADCASTS)
}

/// CPU µs per task spawned into an idle pool, and the search after it.
fn per_wake(workers: usize) -> f64 {
    let pool = pool(workers);
    let started = cpu_time();
    for _ in 0..WAKES {
        let sleeps = pool.metrics().parks();
        let (done, finished) = mpsc::channel();
        pool.spawn(move || done.send(()).expect("the receiver waits"));
        finished
            .recv_timeout(SETTLE_DEADLINE)
            .expect("the task runs");
        settle(&pool, sleeps + 1);
    }
    micros(cpu_time() - started) / f64::from(WAKES)
}

fn micros(time: Duration) -> f64 {
    time.as_secs_f64() * 1e6
}

/// The process's CPU time so far, user and system.
#[cfg(unix)]
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes the struct it is given and nothing else;
    // all-zero bytes are a valid `rusage`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Without `getrusage`, the wall time (which overstates the cost).
#[cfg(not(unix))]
fn cpu_time() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}
