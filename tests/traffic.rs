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
//! puts an atomic on these paths fails here. And a worker searching a pool
//! whose deques are all empty only looks at them: it never makes the steal
//! attempt (an epoch pin) that a look exists to spare.

use pilfer::ThreadPool;
use pilfer::traffic::{Event, Traffic};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

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

/// Polls `done` until it holds, failing the test after ten seconds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_search_of_empty_deques_only_looks() {
    let _alone = counting_alone();
    let pool = ThreadPool::builder()
        .num_threads(2)
        .build()
        .expect("a two-worker pool");
    // Both workers searched and fell asleep.
    wait_for("the workers to sleep", || pool.metrics().parks() >= 2);
    let before = Traffic::now();
    let parks = pool.metrics().parks();
    // One task from outside: it goes through the injector, and a batch of
    // one leaves nothing on the taker's deque, so every deque stays empty.
    let (done, finished) = mpsc::channel();
    pool.spawn(move || done.send(()).expect("the test waits"));
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the task ran within ten seconds");
    // The woken worker searches (looking at its peer's deque) before it
    // sleeps again.
    wait_for("a visit to a peer's deque", || {
        let traffic = Traffic::now().since(&before);
        traffic.get(Event::Look) + traffic.get(Event::Steal) > 0
    });
    wait_for("the woken worker to sleep again", || {
        pool.metrics().parks() > parks
    });
    let traffic = Traffic::now().since(&before);
    assert_eq!(traffic.get(Event::Steal), 0, "{}", describe(&traffic));
}
