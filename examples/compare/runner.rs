//! Taking measurements: the pools of a comparison take turns over several
//! rounds, each round on a fresh pool (the only one alive) with a warm-up,
//! so that a slow minute on a shared machine hits every pool alike; then
//! the median (or percentiles) of all samples; a progress line on stderr.

use crate::workloads::{ForkPool, Workload};
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// One pool's samples at one thread count.
pub struct Samples {
    /// Sorted.
    pub times: Vec<Duration>,
    /// The share of the pool's worker time (threads × wall time) spent
    /// searching for work during the timed samples, if the pool reports
    /// its search time; the mean over rounds.
    pub search_share: Option<f64>,
}

pub struct Runner {
    runs: usize,
    rounds: usize,
    progress: Progress,
}

impl Runner {
    /// A runner taking `runs` timed samples per median, spread over `rounds`
    /// rounds, expecting `total_steps` measurements in all (for the
    /// progress line; a pool measured in three rounds counts three).
    pub fn new(runs: usize, rounds: usize, total_steps: usize) -> Self {
        Runner {
            runs,
            rounds,
            progress: Progress::new(total_steps),
        }
    }

    /// Timed samples per median.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Rounds per comparison.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// About `count` samples of each of `K` pools, taken in rounds: `round`
    /// measures every pool once, in order, taking the given number of
    /// samples of each (`count` split evenly, rounded up). Returns each
    /// pool's samples from all rounds, sorted.
    pub fn interleaved<const K: usize>(
        &mut self,
        count: usize,
        mut round: impl FnMut(&mut Self, usize) -> [Samples; K],
    ) -> [Samples; K] {
        let per_round = count.div_ceil(self.rounds);
        let mut all: [Samples; K] = std::array::from_fn(|_| Samples {
            times: Vec::new(),
            search_share: None,
        });
        for _ in 0..self.rounds {
            for (pool, samples) in all.iter_mut().zip(round(self, per_round)) {
                pool.times.extend(samples.times);
                if let Some(share) = samples.search_share {
                    // Each round's share counts alike in the mean.
                    let sum = pool.search_share.unwrap_or(0.0) + share / self.rounds as f64;
                    pool.search_share = Some(sum);
                }
            }
        }
        for samples in &mut all {
            samples.times.sort_unstable();
        }
        all
    }

    /// `count` samples of `workload` on a new `threads`-thread pool of type
    /// `P`, after one warm-up. The pool is the only one alive, and is
    /// dropped (its threads gone) before returning.
    pub fn on_new_pool<P: ForkPool>(
        &mut self,
        key: &str,
        threads: usize,
        count: usize,
        workload: &mut impl Workload<P>,
    ) -> Samples {
        self.progress
            .step(&format!("{key} {} t={threads}", P::NAME));
        let pool = P::with_threads(threads);
        workload.sample(&pool);
        let searched_before = pool.search_time();
        let started = Instant::now();
        let mut times: Vec<Duration> = (0..count).map(|_| workload.sample(&pool)).collect();
        let worker_time = started.elapsed().as_secs_f64() * threads as f64;
        let search_share = searched_before
            .zip(pool.search_time())
            .map(|(before, after)| (after - before).as_secs_f64() / worker_time);
        times.sort_unstable();
        drop(pool);
        settle();
        Samples {
            times,
            search_share,
        }
    }

    /// Samples that `take` gets elsewhere (from a child process): counted
    /// as a step of the progress line.
    pub fn external(&mut self, label: &str, take: impl FnOnce() -> Vec<Duration>) -> Samples {
        self.progress.step(label);
        let mut times = take();
        times.sort_unstable();
        Samples {
            times,
            search_share: None,
        }
    }

    /// The median of `workload` on `pool` (a serial or OS-thread baseline).
    pub fn median_on<P>(
        &mut self,
        label: &str,
        pool: &P,
        workload: &mut impl Workload<P>,
    ) -> Duration {
        self.progress.step(label);
        median(&self.samples(pool, workload, self.runs))
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

/// The median of sorted, non-empty samples.
pub fn median(sorted: &[Duration]) -> Duration {
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// The `pct`-th percentile of sorted, non-empty samples (nearest rank).
pub fn percentile(sorted: &[Duration], pct: usize) -> Duration {
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
