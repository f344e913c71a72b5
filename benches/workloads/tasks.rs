//! The task workloads: detached tasks from outside the pool, scoped tasks,
//! wake-up latency, idle CPU, and one OS thread per task.

use super::{CHUNK_LEN, Fib, ForkPool, OsThreads, TaskPool, Workload, timed};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Counts detached tasks down to zero; the last one wakes the waiting
/// thread. One batch at a time.
struct Countdown {
    remaining: AtomicUsize,
    waiter: Mutex<Option<Thread>>,
}

impl Countdown {
    const fn new() -> Self {
        Countdown {
            remaining: AtomicUsize::new(0),
            waiter: Mutex::new(None),
        }
    }

    /// Expects `count` tasks and makes the calling thread the waiter.
    fn arm(&self, count: usize) {
        *self.waiter.lock().unwrap() = Some(thread::current());
        let pending = self.remaining.swap(count, Ordering::Relaxed);
        assert_eq!(pending, 0, "countdown re-armed before its tasks finished");
    }

    fn count_down(&self) {
        // AcqRel: the waiter's Acquire load sees every task's effects.
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Not `take`n: the last task of the previous batch may still be
            // here when the next batch is armed; its extra unpark is
            // harmless, but the new batch's last task must find the waiter.
            if let Some(waiter) = &*self.waiter.lock().unwrap() {
                waiter.unpark();
            }
        }
    }

    fn wait(&self) {
        while self.remaining.load(Ordering::Acquire) != 0 {
            thread::park();
        }
    }
}

static DETACHED: Countdown = Countdown::new();

/// Spawns `tasks` detached tasks running `work` from the calling thread and
/// waits until all of them have run. Each task captures one word (`work`).
fn spawn_detached(pool: &impl TaskPool, tasks: usize, work: fn()) {
    DETACHED.arm(tasks);
    for _ in 0..tasks {
        pool.spawn(move || {
            work();
            DETACHED.count_down();
        });
    }
    DETACHED.wait();
}

/// As [`spawn_detached`], but each task captures four words (`work` and
/// three more), too many to travel inside a pilfer job: every pool boxes it.
fn spawn_detached_four_words(pool: &impl TaskPool, tasks: usize, work: fn()) {
    DETACHED.arm(tasks);
    for task in 0..tasks {
        let extra = [task as u64; 3];
        pool.spawn(move || {
            black_box(extra);
            work();
            DETACHED.count_down();
        });
    }
    DETACHED.wait();
}

/// How much each task of [`SpawnExternal`] captures.
#[derive(Clone, Copy, Debug)]
pub enum Capture {
    /// One word: what a closure holding one `Arc` or reference captures.
    /// pilfer carries such a closure inside its job, without allocating.
    OneWord,
    /// Four words: boxed by every pool.
    FourWords,
}

/// spawn-ext: tiny detached tasks spawned from a thread outside the pool.
pub struct SpawnExternal {
    tasks: usize,
    capture: Capture,
}

impl SpawnExternal {
    pub fn new(tasks: usize, capture: Capture) -> Self {
        SpawnExternal { tasks, capture }
    }
}

impl<P: TaskPool> Workload<P> for SpawnExternal {
    fn sample(&mut self, pool: &P) -> Duration {
        let spawn = match self.capture {
            Capture::OneWord => spawn_detached,
            Capture::FourWords => spawn_detached_four_words,
        };
        timed(|| spawn(pool, self.tasks, || {})).1
    }
}

/// scope-chunks: one scoped task per chunk, borrowing it.
pub struct ScopeChunks {
    data: Vec<u32>,
}

impl ScopeChunks {
    pub fn new(len: usize) -> Self {
        ScopeChunks {
            data: (0..len as u32).collect(),
        }
    }
}

impl<P: TaskPool> Workload<P> for ScopeChunks {
    fn sample(&mut self, pool: &P) -> Duration {
        let step = |chunk: &mut [u32]| {
            for x in chunk {
                *x = x.wrapping_mul(2).wrapping_add(1);
            }
        };
        timed(|| pool.for_each_chunk(&mut self.data, CHUNK_LEN, &step)).1
    }
}

/// wake: the delay between spawning a task on an idle pool and its start.
pub struct WakeLatency {
    idle: Duration,
}

impl WakeLatency {
    pub fn new(idle: Duration) -> Self {
        WakeLatency { idle }
    }
}

impl<P: TaskPool> Workload<P> for WakeLatency {
    fn sample(&mut self, pool: &P) -> Duration {
        thread::sleep(self.idle);
        let (sender, receiver) = mpsc::sync_channel(1);
        let spawned = Instant::now();
        pool.spawn(move || {
            // The receiver waits for this message; it cannot be gone.
            let _ = sender.send(Instant::now());
        });
        let started = receiver.recv().expect("the wake-latency task never ran");
        started.saturating_duration_since(spawned)
    }
}

/// idle: CPU time the whole process burns while the pool sits idle after a
/// burst of work (spinning workers show up here).
pub struct IdleCpu {
    burst_fib: u32,
    sleep: Duration,
}

impl IdleCpu {
    pub fn new(burst_fib: u32, sleep: Duration) -> Self {
        IdleCpu { burst_fib, sleep }
    }
}

impl<P: ForkPool> Workload<P> for IdleCpu {
    fn sample(&mut self, pool: &P) -> Duration {
        black_box(pool.run(Fib(self.burst_fib)));
        let before = process_cpu_time();
        thread::sleep(self.sleep);
        process_cpu_time().saturating_sub(before)
    }
}

/// User plus system CPU time of the whole process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain old data, for which all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(
        status,
        0,
        "getrusage failed: {}",
        std::io::Error::last_os_error()
    );
    let to_duration = |time: libc::timeval| {
        Duration::new(time.tv_sec as u64, 0) + Duration::from_micros(time.tv_usec as u64)
    };
    to_duration(usage.ru_utime) + to_duration(usage.ru_stime)
}

/// A small piece of work, a few hundred nanoseconds.
fn small_task() {
    let mut sum = 0u64;
    for i in 0..256 {
        sum = black_box(sum.wrapping_add(i));
    }
    black_box(sum);
}

/// spawn-raw: small tasks, each on an OS thread of its own ([`OsThreads`]:
/// spawn them all, then join them all), or as detached tasks on a pool.
pub struct SpawnRaw {
    tasks: usize,
}

impl SpawnRaw {
    pub fn new(tasks: usize) -> Self {
        SpawnRaw { tasks }
    }
}

impl<P: TaskPool> Workload<P> for SpawnRaw {
    fn sample(&mut self, pool: &P) -> Duration {
        timed(|| spawn_detached(pool, self.tasks, small_task)).1
    }
}

impl Workload<OsThreads> for SpawnRaw {
    fn sample(&mut self, _: &OsThreads) -> Duration {
        timed(|| {
            let threads: Vec<_> = (0..self.tasks).map(|_| thread::spawn(small_task)).collect();
            for thread in threads {
                thread.join().expect("a spawn-raw thread panicked");
            }
        })
        .1
    }
}
