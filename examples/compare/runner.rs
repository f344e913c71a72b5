//! Taking measurements: one pool at a time, a warm-up, then the median (or
//! percentiles) of several samples; a progress line on stderr.

use crate::workloads::{ForkPool, Workload};
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

pub struct Runner {
    runs: usize,
    progress: Progress,
}

impl Runner {
    /// A runner taking `runs` timed samples per median, expecting
    /// `total_steps` measurements in all (for the progress line).
    pub fn new(runs: usize, total_steps: usize) -> Self {
        Runner {
            runs,
            progress: Progress::new(total_steps),
        }
    }

    /// The median of `workload` on a new `threads`-thread pool of type `P`.
    /// The pool is the only one alive, and is dropped before returning.
    pub fn median<P: ForkPool>(
        &mut self,
        key: &str,
        threads: usize,
        workload: &mut impl Workload<P>,
    ) -> Duration {
        self.progress
            .step(&format!("{key} {} t={threads}", P::NAME));
        let pool = P::with_threads(threads);
        let samples = self.samples(&pool, workload, self.runs);
        drop(pool);
        settle();
        median(samples)
    }

    /// The median of `workload` on `pool` (a serial or OS-thread baseline).
    pub fn median_on<P>(
        &mut self,
        label: &str,
        pool: &P,
        workload: &mut impl Workload<P>,
    ) -> Duration {
        self.progress.step(label);
        median(self.samples(pool, workload, self.runs))
    }

    /// The 50th and 99th percentiles of `count` samples of `workload` on a
    /// new `threads`-thread pool of type `P`.
    pub fn percentiles<P: ForkPool>(
        &mut self,
        key: &str,
        threads: usize,
        count: usize,
        workload: &mut impl Workload<P>,
    ) -> [Duration; 2] {
        self.progress
            .step(&format!("{key} {} t={threads}", P::NAME));
        let pool = P::with_threads(threads);
        let samples = self.samples(&pool, workload, count);
        drop(pool);
        settle();
        [percentile(&samples, 50), percentile(&samples, 99)]
    }

    /// Erases the progress line, before printing results.
    pub fn clear_progress(&self) {
        self.progress.clear();
    }

    /// One warm-up sample, then `count` sorted samples.
    fn samples<P>(&self, pool: &P, workload: &mut impl Workload<P>, count: usize) -> Vec<Duration> {
        workload.sample(pool);
        let mut samples: Vec<Duration> = (0..count).map(|_| workload.sample(pool)).collect();
        samples.sort_unstable();
        samples
    }
}

/// The median of sorted, non-empty samples.
/// Waits (up to a second) until the threads of a dropped pool are gone, so
/// they cannot take CPU from the next measurement: rayon's threads exit
/// after its `ThreadPool` is dropped, not before. Uses the process's thread
/// count where the OS reports it (Linux); elsewhere waits a short moment.
fn settle() {
    let Some(mut threads) = process_threads() else {
        std::thread::sleep(Duration::from_millis(20));
        return;
    };
    let start = std::time::Instant::now();
    // The main thread (and nothing else of ours) is left once pools are gone.
    while threads > 1 && start.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(1));
        threads = process_threads().unwrap_or(1);
    }
}

/// The number of threads of this process, from /proc/self/status.
fn process_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:")?.trim().parse().ok())
}

fn median(sorted: Vec<Duration>) -> Duration {
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// The `pct`-th percentile of sorted, non-empty samples (nearest rank).
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// `[3/24] tree pilfer t=2 ...` on stderr: rewritten in place on a
/// terminal, one line per step otherwise.
struct Progress {
    done: usize,
    total: usize,
    in_place: bool,
}

/// Wide enough to cover the longest progress line.
const PROGRESS_WIDTH: usize = 60;

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            done: 0,
            total,
            in_place: io::stderr().is_terminal(),
        }
    }

    fn step(&mut self, label: &str) {
        self.done += 1;
        let line = format!("[{}/{}] {label} ...", self.done, self.total);
        let mut stderr = io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the run.
        let _ = if self.in_place {
            write!(stderr, "\r{line:PROGRESS_WIDTH$}").and_then(|()| stderr.flush())
        } else {
            writeln!(stderr, "{line}")
        };
    }

    fn clear(&self) {
        if self.in_place {
            let _ = write!(io::stderr(), "\r{:PROGRESS_WIDTH$}\r", "");
        }
    }
}
