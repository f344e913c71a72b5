//! What the cheapest paths do to shared memory, counted (the `traffic`
//! feature; cargo builds this file only with it):
//!
//! ```text
//! cargo test --release --features traffic --test traffic
//! ```
//!
//! On a pool's only worker nothing else runs, so the counts are exact: a
//! `join` that records no frame touches no shared memory at all, and a
//! scoped spawn on a worker costs a push, a fence (the notification) and a
//! pop, with no read-modify-write but the scope's count. A change that
//! puts an atomic on these paths fails here.

use pilfer::ThreadPool;
use pilfer::traffic::{Event, Traffic};
use std::sync::{Mutex, MutexGuard};

/// The counters are the process's: one test counts at a time.
fn counting_alone() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn one_worker() -> ThreadPool {
    ThreadPool::builder()
        .num_threads(1)
        .build()
        .expect("a one-worker pool")
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        return n.into();
    }
    let (a, b) = pilfer::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

/// Everything counted in `traffic`, by name, for a failure's message.
fn describe(traffic: &Traffic) -> String {
    Event::ALL
        .iter()
        .map(|event| format!("{} {}", event.name(), traffic.get(*event)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn a_join_without_a_frame_touches_no_shared_memory() {
    let _alone = counting_alone();
    let pool = one_worker();
    let traffic = pool.install(|| {
        let before = Traffic::now();
        assert_eq!(fib(20), 6765);
        Traffic::now().since(&before)
    });
    assert_eq!(
        traffic,
        Traffic::default(),
        "fib(20)'s 10,945 joins counted: {}",
        describe(&traffic)
    );
}

#[test]
fn a_scoped_spawn_on_a_worker_is_a_push_a_fence_and_a_pop() {
    const TASKS: u64 = 1_000;
    let _alone = counting_alone();
    let pool = one_worker();
    let traffic = pool.install(|| {
        let before = Traffic::now();
        // The only worker runs the tasks once the scope's closure returns
        // and the scope waits, so a reading taken as the closure returns
        // splits spawning from running.
        let ran = std::sync::atomic::AtomicU64::new(0);
        let traffic = pilfer::in_place_scope(|scope| {
            for _ in 0..TASKS {
                scope.spawn(|_| {
                    ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                });
            }
            Traffic::now()
        });
        let after = Traffic::now();
        assert_eq!(ran.into_inner(), TASKS);
        (traffic.since(&before), after.since(&traffic))
    });
    let (spawning, running) = traffic;
    let per_task = |traffic: &Traffic, event| traffic.get(event) as f64 / TASKS as f64;
    // Spawning: a push and the notification's fence per task; the scope's
    // count is one read-modify-write per task (its increment).
    assert_eq!(
        per_task(&spawning, Event::DequePush),
        1.0,
        "{}",
        describe(&spawning)
    );
    assert_eq!(
        per_task(&spawning, Event::Fence),
        1.0,
        "{}",
        describe(&spawning)
    );
    assert_eq!(
        per_task(&spawning, Event::Rmw),
        1.0,
        "{}",
        describe(&spawning)
    );
    assert_eq!(spawning.get(Event::Store), 0, "{}", describe(&spawning));
    // Running: a pop and the scope's decrement per task, nothing else but
    // the scope's end (at most a few read-modify-writes on its latch).
    assert_eq!(
        per_task(&running, Event::DequePop),
        1.0,
        "{}",
        describe(&running)
    );
    let rmw = running.get(Event::Rmw);
    assert!((TASKS..=TASKS + 4).contains(&rmw), "{}", describe(&running));
    assert_eq!(running.get(Event::Lock), 0, "{}", describe(&running));
}
