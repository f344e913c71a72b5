//! Per-worker state set up and collected with `broadcast`.
//!
//! ```text
//! cargo run --release --example broadcast -- [--workers N] [--items N]
//! ```
//!
//! Each worker gets its own histogram in a thread-local, so the tasks that
//! fill it never share a lock or a cache line. Three steps:
//!
//! 1. `broadcast` runs a set-up closure once on every worker: it installs
//!    an empty histogram in that worker's thread-local.
//! 2. A scope spawns the tasks; each adds its items to the histogram of the
//!    worker it runs on.
//! 3. A second `broadcast` takes every worker's histogram back, indexed by
//!    worker, and the main thread merges them and checks the sum against
//!    the serial count.

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: broadcast [--workers N] [--items N]";
const BUCKETS: usize = 16;
const ITEMS_PER_TASK: u64 = 4096;

thread_local! {
    /// The histogram of the worker this thread is; `None` until set up.
    static HISTOGRAM: RefCell<Option<[u64; BUCKETS]>> = const { RefCell::new(None) };
}

/// A cheap, well-mixed value for item `i` (SplitMix64's finaliser).
fn value(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn bucket(i: u64) -> usize {
    (value(i) % BUCKETS as u64) as usize
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(Option<usize>, u64), String> {
    let mut workers = None;
    let mut items = 10_000_000;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number\n{USAGE}"))?;
        match flag.as_str() {
            "--workers" => workers = Some(number as usize),
            "--items" => items = number,
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    Ok((workers, items))
}

fn main() -> ExitCode {
    let (workers, items) = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut builder = pilfer::ThreadPool::builder();
    if let Some(workers) = workers {
        builder = builder.num_threads(workers);
    }
    let pool = match builder.build() {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("cannot build the pool: {error}");
            return ExitCode::FAILURE;
        }
    };

    // 1. Set up: once on every worker, each with its own index.
    let ready = pool.broadcast(|ctx| {
        HISTOGRAM.with(|histogram| *histogram.borrow_mut() = Some([0; BUCKETS]));
        ctx.index()
    });
    println!(
        "set up a histogram on workers {ready:?} of {}",
        pool.num_threads()
    );

    // 2. Fill: tasks add to the histogram of whichever worker runs them.
    let start = Instant::now();
    pool.scope(|scope| {
        let mut first = 0;
        while first < items {
            let last = (first + ITEMS_PER_TASK).min(items);
            scope.spawn(move |_| {
                HISTOGRAM.with(|histogram| {
                    let mut histogram = histogram.borrow_mut();
                    let histogram = histogram.as_mut().expect("every worker was set up");
                    for i in first..last {
                        histogram[bucket(i)] += 1;
                    }
                });
            });
            first = last;
        }
    });
    let parallel = start.elapsed();

    // 3. Collect: each worker hands its histogram back, indexed by worker.
    let per_worker: Vec<[u64; BUCKETS]> =
        pool.broadcast(|_| HISTOGRAM.with(|histogram| histogram.take().expect("set up")));
    let mut merged = [0u64; BUCKETS];
    for histogram in &per_worker {
        for (total, count) in merged.iter_mut().zip(histogram) {
            *total += count;
        }
    }

    let start = Instant::now();
    let mut serial = [0u64; BUCKETS];
    for i in 0..items {
        serial[bucket(i)] += 1;
    }
    let serial_time = start.elapsed();

    for (index, histogram) in per_worker.iter().enumerate() {
        let counted: u64 = histogram.iter().sum();
        println!(
            "worker {index}: {counted} items ({:.1}%)",
            100.0 * counted as f64 / items.max(1) as f64
        );
    }
    println!(
        "pool {:.1} ms, serial {:.1} ms: {:.2}x the serial speed",
        parallel.as_secs_f64() * 1e3,
        serial_time.as_secs_f64() * 1e3,
        serial_time.as_secs_f64() / parallel.as_secs_f64()
    );
    if merged == serial {
        println!("merged histogram matches the serial count");
        ExitCode::SUCCESS
    } else {
        eprintln!("merged histogram {merged:?} differs from the serial count {serial:?}");
        ExitCode::FAILURE
    }
}
