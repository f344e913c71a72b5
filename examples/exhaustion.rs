//! Exhaustion: one producer pushes 1M tasks of 512 bytes each into a
//! 2-thread pool, unbounded and with `max_pending(1024)`; reports the total
//! time and how far the resident set grew. Twice: with tasks that do nothing
//! (the producer is the bottleneck) and with tasks that each spin for 2 µs
//! (the workers are, and an unbounded queue grows).
//!
//! ```sh
//! cargo run --release --example exhaustion            # both modes, 5 runs each
//! cargo run --release --example exhaustion -- --runs 1
//! ```
//!
//! Each run is a fresh child process (peak RSS only ever grows within a
//! process); the parent prints the medians.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TASKS: usize = 1_000_000;
const PAYLOAD: usize = 512;
const THREADS: usize = 2;
const BOUND: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, mode, work] if flag == "--child" => match work.parse() {
            Ok(work_ns) => child(mode, work_ns),
            Err(_) => usage(),
        },
        [] => parent(5),
        [flag, runs] if flag == "--runs" => match runs.parse() {
            Ok(runs) if runs > 0 => parent(runs),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: exhaustion [--runs N]");
    std::process::exit(2);
}

/// Runs each mode `runs` times in child processes and prints medians.
fn parent(runs: usize) {
    let exe = std::env::current_exe().expect("the path of this executable");
    println!(
        "{TASKS} tasks of {PAYLOAD} bytes, one producer, {THREADS} workers, {runs} runs per mode (medians)"
    );
    println!(
        "{:<10} {:<22} {:>10} {:>16}",
        "task", "mode", "time ms", "peak RSS +MiB"
    );
    for work_ns in [0u64, 2_000] {
        for mode in ["unbounded", "bounded"] {
            run_mode(&exe, mode, work_ns, runs);
        }
    }
}

fn run_mode(exe: &std::path::Path, mode: &str, work_ns: u64, runs: usize) {
    {
        let mut times = Vec::new();
        let mut growths = Vec::new();
        for _ in 0..runs {
            let output = Command::new(exe)
                .args(["--child", mode, &work_ns.to_string()])
                .output()
                .expect("running a child");
            let text = String::from_utf8_lossy(&output.stdout);
            let Some((time, growth)) = parse(&text) else {
                eprintln!(
                    "child failed: {text}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                std::process::exit(1);
            };
            times.push(time);
            growths.push(growth);
        }
        let label = if mode == "bounded" {
            format!("max_pending({BOUND})")
        } else {
            "unbounded".to_string()
        };
        let task = if work_ns == 0 {
            "empty".to_string()
        } else {
            format!("{} µs", work_ns / 1000)
        };
        println!(
            "{task:<10} {label:<22} {:>10.1} {:>16.1}",
            median(&mut times),
            median(&mut growths)
        );
    }
}

fn parse(text: &str) -> Option<(f64, f64)> {
    let mut fields = text.split_whitespace();
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One run: prints "<ms> <peak RSS growth in MiB>".
fn child(mode: &str, work_ns: u64) {
    let mut builder = pilfer::ThreadPool::builder().num_threads(THREADS);
    if mode == "bounded" {
        builder = builder.max_pending(BOUND);
    }
    let pool = builder.build().expect("building the pool");
    let before = rss_kib("VmRSS");
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for i in 0..TASKS {
        let payload = [i as u8; PAYLOAD];
        let done = Arc::clone(&done);
        pool.spawn(move || {
            std::hint::black_box(&payload);
            spin_for(work_ns);
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
    while done.load(Ordering::Relaxed) < TASKS {
        std::thread::sleep(Duration::from_micros(100));
    }
    let elapsed = start.elapsed();
    let growth = rss_kib("VmHWM").saturating_sub(before);
    println!(
        "{:.3} {:.3}",
        elapsed.as_secs_f64() * 1e3,
        growth as f64 / 1024.0
    );
}

/// Busy-waits for about `nanos` nanoseconds.
fn spin_for(nanos: u64) {
    if nanos == 0 {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_nanos(nanos) {
        std::hint::spin_loop();
    }
}

/// A field of /proc/self/status, in KiB (0 where unavailable).
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
