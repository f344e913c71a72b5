//! Idle workers sleep: an idle pool burns (almost) no CPU, and wakes up
//! again for new work. The CPU measurement covers the whole process, so the
//! tests of this file take a lock and run one at a time.
#![cfg(unix)]

mod common;

use common::{DEADLINE, fib, fib_sequential, pool, wait_for};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// User plus system CPU time of the whole process.
fn process_cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we pass it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// A burst of every kind of work, waited for completely.
fn burst(pool: &pilfer::ThreadPool) {
    assert_eq!(pool.install(|| fib(20)), fib_sequential(20));
    let counter = Arc::new(AtomicUsize::new(0));
    for _ in 0..10_000 {
        let counter = Arc::clone(&counter);
        pool.spawn(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
    }
    let mut cells = vec![0u64; 256];
    pool.scope(|s| {
        for (i, cell) in cells.iter_mut().enumerate() {
            s.spawn(move |_| *cell = i as u64);
        }
    });
    assert_eq!(cells[255], 255);
    wait_for("burst spawns done", || {
        counter.load(Ordering::SeqCst) == 10_000
    });
}

/// After a burst of work and a short settle, several idle pools together
/// burn well under 5% of one core (the real figure should be ~0).
#[test]
fn idle_pools_burn_almost_no_cpu() {
    let _guard = exclusive();
    let pools: Vec<_> = [2, 3, 1].into_iter().map(pool).collect();
    // A pinned pool too (the default).
    let pinned = pilfer::ThreadPool::builder()
        .num_threads(2)
        .build()
        .unwrap();
    for pool in pools.iter().chain([&pinned]) {
        burst(pool);
    }
    thread::sleep(Duration::from_millis(100));

    const WINDOW: Duration = Duration::from_millis(500);
    let before = process_cpu_time();
    thread::sleep(WINDOW);
    let used = process_cpu_time() - before;
    println!("CPU used by 4 idle pools (8 workers) over {WINDOW:?}: {used:?}");
    assert!(
        used < Duration::from_millis(25),
        "idle pools used {used:?} of CPU in {WINDOW:?}: workers are not sleeping"
    );

    // Asleep, not gone: each pool still runs new work on every worker.
    for pool in pools.iter().chain([&pinned]) {
        common::assert_all_workers_alive(pool);
        assert!(pool.metrics().parks() >= 1, "no worker ever parked");
    }
}

/// A pool left idle long enough for its workers to park wakes up for work
/// from outside, from a worker, and for a task joined from outside.
#[test]
fn parked_workers_wake_for_new_work() {
    let _guard = exclusive();
    for n in [1, 2, 4] {
        let pool = pool(n);
        burst(&pool);
        // Let every worker run out of spinning and park.
        thread::sleep(Duration::from_millis(300));
        let task = pool.submit(|| "first after idle");
        assert_eq!(task.join().unwrap(), "first after idle");
        // Some worker parked while idle.
        assert!(pool.metrics().parks() >= 1, "{:?}", pool.metrics());
        for round in 0..20u64 {
            thread::sleep(Duration::from_millis(2));
            let task = pool.submit(move || round * 2);
            assert_eq!(task.join().unwrap(), round * 2);
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        thread::sleep(Duration::from_millis(50));
        pool.spawn(move || sender.send("woken").unwrap());
        assert_eq!(receiver.recv_timeout(DEADLINE), Ok("woken"));
        thread::sleep(Duration::from_millis(50));
        assert_eq!(pool.install(|| fib(15)), 610);
        // Work spawned inside a worker wakes the sleeping peers too.
        thread::sleep(Duration::from_millis(50));
        common::assert_all_workers_alive(&pool);
    }
}

/// `WorkerMetrics::parks` is "times the worker parked". A worker that has
/// been asleep for a while has parked at least once, even if nothing has
/// woken it yet. (Regression: parks used to be counted only on wake-up.)
#[test]
fn parks_count_a_worker_that_is_still_asleep() {
    let _guard = exclusive();
    let pool = pool(1);
    assert_eq!(pool.install(|| 1), 1);
    // Idle for up to 5 s; the single worker parks within microseconds.
    let mut parks = 0;
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(100));
        parks = pool.metrics().parks();
        if parks > 0 {
            break;
        }
    }
    assert!(parks >= 1, "worker idle for 5 s, parks() = {parks}");
}

/// A spare of a pool whose only worker is the adopted calling thread
/// (`use_current_thread`, not counted among the running workers) retires
/// and sleeps once the block is over, even with a job broadcast to the
/// adopted thread still queued: it used to take itself for the last
/// running worker of a shutdown and spin.
#[test]
fn a_retired_spare_of_an_adopted_pool_sleeps() {
    let _guard = exclusive();
    common::arm_watchdog();
    let pool = pilfer::ThreadPool::builder()
        .num_threads(1)
        .use_current_thread()
        .build()
        .unwrap();
    let (posted, wait_for_post) = std::sync::mpsc::channel::<()>();
    let ran = std::sync::atomic::AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(50));
            pool.spawn_broadcast(|_| ());
            posted.send(()).unwrap();
        });
        pool.install(move || pilfer::block_in_place(|| wait_for_post.recv().unwrap()));
    });
    assert_eq!(pool.metrics().spare_workers_started(), 1);
    thread::sleep(Duration::from_millis(100));

    const WINDOW: Duration = Duration::from_millis(500);
    let before = process_cpu_time();
    thread::sleep(WINDOW);
    let used = process_cpu_time() - before;
    assert!(
        used < Duration::from_millis(25),
        "{used:?} of CPU in {WINDOW:?} after the block: the retired spare spins"
    );
    // The pool still runs work (on the spare, called back by the block).
    pool.install(|| {
        pilfer::block_in_place(|| {
            let (done, is_done) = std::sync::mpsc::channel();
            pilfer::spawn(move || done.send(()).unwrap());
            is_done.recv_timeout(common::DEADLINE).unwrap();
        });
        ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    assert_eq!(ran.into_inner(), 1);
    drop(pool);
}
