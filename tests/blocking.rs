//! `block_in_place` and spare workers: a blocked worker's duty is taken
//! over, so that tasks blocking on one another, on I/O or on the pool's
//! own work neither starve the pool nor deadlock it.

mod common;

use common::{DEADLINE, fib, fib_sequential, quietly, wait_for, with_deadline};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

fn pool_with(
    n: usize,
    builder: impl FnOnce(pilfer::ThreadPoolBuilder) -> pilfer::ThreadPoolBuilder,
) -> pilfer::ThreadPool {
    common::arm_watchdog();
    builder(
        pilfer::ThreadPool::builder()
            .num_threads(n)
            .pin_workers(false),
    )
    .build()
    .expect("building a test pool")
}

/// Both workers block at a barrier whose third party is a task queued on
/// the same pool after them: only a spare can run it.
#[test]
fn workers_blocked_at_a_barrier_with_their_own_task_get_through() {
    with_deadline("the barrier", || {
        let pool = common::pool(2);
        let barrier = Arc::new(Barrier::new(3));
        let entered = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let (barrier, entered) = (Arc::clone(&barrier), Arc::clone(&entered));
            pool.spawn(move || {
                entered.fetch_add(1, Ordering::SeqCst);
                pilfer::block_in_place(|| barrier.wait());
            });
        }
        // Both workers are taken before the third party is even queued.
        wait_for("both blocking tasks started", || {
            entered.load(Ordering::SeqCst) == 2
        });
        let (done, finished) = mpsc::channel();
        pool.spawn(move || {
            barrier.wait();
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(DEADLINE)
            .expect("the third party never ran");
        assert!(pool.metrics().spare_workers_started() >= 1);
    });
}

/// A worker blocked with jobs queued on its own deque: a spare steals them.
#[test]
fn a_spare_takes_over_the_blocked_workers_queued_jobs() {
    with_deadline("the queued jobs", || {
        let pool = common::pool(1);
        let ran = pool.install(|| {
            let ran = Arc::new(AtomicUsize::new(0));
            for _ in 0..10 {
                let ran = Arc::clone(&ran);
                // Onto this worker's deque: nobody else would take them.
                pilfer::spawn(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
            let waiting = Arc::clone(&ran);
            pilfer::block_in_place(move || {
                let start = Instant::now();
                while waiting.load(Ordering::SeqCst) < 10 {
                    assert!(start.elapsed() < DEADLINE, "the spare never ran them");
                    thread::sleep(Duration::from_millis(1));
                }
            });
            ran.load(Ordering::SeqCst)
        });
        assert_eq!(ran, 10);
    });
}

/// Fork-join work runs while every worker is blocked, beside a thousand
/// tasks that block for a millisecond each: the workers stay blocked until
/// fib is done, so only spares can run it. (How fast it runs beside them is
/// a benchmark's business, not a test's.)
#[test]
fn fork_join_work_runs_while_every_worker_blocks() {
    with_deadline("fib while every worker blocks", || {
        let pool = common::pool(2);
        let released = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let held = Arc::clone(&released);
        // One share per worker: both block, whichever threads run first.
        pool.spawn_broadcast(move |_| {
            pilfer::block_in_place(|| {
                let (done, changed) = &*held;
                let mut done = done.lock().unwrap();
                while !*done {
                    done = changed.wait(done).unwrap();
                }
            })
        });
        wait_for("both workers blocked", || pool.metrics().blocked_now() == 2);

        let blocked = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let blocked = Arc::clone(&blocked);
            pool.spawn(move || {
                pilfer::block_in_place(|| thread::sleep(Duration::from_millis(1)));
                blocked.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(pool.install(|| fib(25)), fib_sequential(25));
        assert!(
            pool.metrics().blocked_now() >= 2,
            "the workers were still blocked"
        );

        let (done, changed) = &*released;
        *done.lock().unwrap() = true;
        changed.notify_all();
        wait_for("the blocking tasks", || {
            blocked.load(Ordering::Relaxed) == 1000
        });
        assert!(pool.metrics().spare_workers_started() >= 1);
    });
}

#[test]
fn block_in_place_nests_returns_and_reraises_after_restoring_the_pool() {
    assert_eq!(
        pilfer::block_in_place(|| 7),
        7,
        "outside every pool: a call"
    );
    let pool = common::pool(2);
    let value = pool.install(|| {
        pilfer::block_in_place(|| {
            assert_eq!(pilfer::current_thread_index().map(|i| i < 2), Some(true));
            pilfer::block_in_place(|| 6) * 7
        })
    });
    assert_eq!(value, 42);
    let message = quietly(|| {
        common::expect_panic(|| {
            pool.install(|| pilfer::block_in_place(|| panic!("blocked and failed")))
        })
    });
    assert_eq!(message, "blocked and failed");
    assert_eq!(
        pool.metrics().blocked_now(),
        0,
        "the block ended with the panic"
    );
    // Inside `join` and `scope`.
    let (a, b) = pool.join(
        || pilfer::block_in_place(|| 1),
        || pilfer::block_in_place(|| 2),
    );
    assert_eq!((a, b), (1, 2));
    let total = AtomicUsize::new(0);
    pool.scope(|s| {
        for i in 0..10 {
            let total = &total;
            s.spawn(move |_| {
                let got = pilfer::block_in_place(|| i);
                total.fetch_add(got, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(total.load(Ordering::SeqCst), 45);
    common::assert_all_workers_alive(&pool);
}

#[test]
fn blocked_now_counts_the_workers_inside_block_in_place() {
    let pool = common::pool(2);
    let (entered, is_entered) = mpsc::channel();
    let (release, wait) = mpsc::channel::<()>();
    pool.spawn(move || {
        pilfer::block_in_place(|| {
            entered.send(()).unwrap();
            let _ = wait.recv();
        });
    });
    is_entered.recv_timeout(DEADLINE).unwrap();
    assert_eq!(pool.metrics().blocked_now(), 1);
    drop(release);
    wait_for("the block to end", || pool.metrics().blocked_now() == 0);
}

#[test]
fn without_spares_block_in_place_still_runs() {
    let pool = pool_with(1, |builder| builder.max_spare_workers(0));
    let value = pool.install(|| pilfer::block_in_place(|| 5));
    assert_eq!(value, 5);
    let metrics = pool.metrics();
    assert_eq!(metrics.spare_workers_started(), 0);
    assert_eq!(metrics.blocked_now(), 0);
}

#[test]
fn too_many_spare_workers_is_a_build_error() {
    let error = pilfer::ThreadPool::builder()
        .num_threads(2)
        .max_spare_workers(usize::MAX)
        .build()
        .unwrap_err();
    assert!(
        matches!(error, pilfer::BuildError::TooManySpareWorkers { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("max_spare_workers"), "{error}");
}

/// Spares are named and handled like workers (indices from `num_threads`
/// on), run the blocked worker's work, and exit after their keep-alive.
#[test]
fn spares_are_named_handled_and_exit_after_their_keep_alive() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let exited = Arc::new(Mutex::new(Vec::new()));
    let pool = pool_with(1, |builder| {
        let (started, exited) = (Arc::clone(&started), Arc::clone(&exited));
        builder
            .thread_name(|index| format!("spare-test-{index}"))
            .spare_keep_alive(Duration::from_millis(50))
            .start_handler(move |index| started.lock().unwrap().push(index))
            .exit_handler(move |index| exited.lock().unwrap().push(index))
    });
    let (seen, where_it_ran) = mpsc::channel();
    pool.install(|| {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        pilfer::spawn(move || {
            let name = thread::current().name().map(str::to_owned);
            seen.send((name, pilfer::current_thread_index())).unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        pilfer::block_in_place(|| {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                assert!(start.elapsed() < DEADLINE, "the spare never ran the task");
                thread::sleep(Duration::from_millis(1));
            }
        });
    });
    let (name, index) = where_it_ran.recv_timeout(DEADLINE).unwrap();
    assert_eq!(name.as_deref(), Some("spare-test-1"));
    assert_eq!(index, Some(1));
    assert_eq!(pool.metrics().spare_workers_started(), 1);
    wait_for("the spare's keep-alive to run out", || {
        exited.lock().unwrap().contains(&1)
    });
    assert!(started.lock().unwrap().contains(&1));
    // The slot is reused by the next spare.
    pool.install(|| {
        pilfer::block_in_place(|| {
            let (done, is_done) = mpsc::channel();
            pilfer::spawn(move || done.send(pilfer::current_thread_index()).unwrap());
            assert_eq!(is_done.recv_timeout(DEADLINE).unwrap(), Some(1));
        })
    });
    assert_eq!(pool.metrics().spare_workers_started(), 2);
    assert_eq!(
        pool.metrics().spare_workers().len(),
        1,
        "one slot, used twice"
    );
}

/// Dropping a pool while workers are blocked and spares on duty waits for
/// every task and every spare.
#[test]
fn dropping_a_pool_with_spares_runs_everything_and_joins_them() {
    let exits = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = pool_with(2, |builder| {
        let exits = Arc::clone(&exits);
        builder.exit_handler(move |_| {
            exits.fetch_add(1, Ordering::SeqCst);
        })
    });
    for _ in 0..50 {
        let ran = Arc::clone(&ran);
        pool.spawn(move || {
            pilfer::block_in_place(|| thread::sleep(Duration::from_millis(2)));
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    let spares = pool.metrics().spare_workers_started() as usize;
    with_deadline("the drop", move || drop(pool));
    assert_eq!(ran.load(Ordering::SeqCst), 50);
    let exits = exits.load(Ordering::SeqCst);
    assert!(
        exits >= 2 + spares,
        "{exits} exit handlers ran; 2 workers and at least {spares} spares"
    );
}

/// Pool A's tasks install into pool B, which installs back into A: a
/// waiting worker of A picks up more of A's tasks, each waiting on top of
/// the last. Past half its stack a wait runs only its own job's work (and a
/// spare takes over), so the stack never overflows, even with one worker.
#[test]
fn tasks_that_install_into_each_others_pools_never_overflow_the_stack() {
    for workers in [1, 2] {
        with_deadline("A -> B -> A", move || {
            let a = Arc::new(pool_with(workers, |builder| builder.stack_size(256 << 10)));
            let b = Arc::new(pool_with(1, |builder| builder.stack_size(256 << 10)));
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..2000u64 {
                let (a2, b2, done) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&done));
                a.spawn(move || {
                    let value = b2.install(|| a2.install(|| i * 2));
                    assert_eq!(value, i * 2);
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            wait_for("2000 round trips", || done.load(Ordering::SeqCst) == 2000);
            println!(
                "{workers} worker(s) in A: {} spares started in A, {} in B",
                a.metrics().spare_workers_started(),
                b.metrics().spare_workers_started()
            );
        });
    }
}

/// Dropped at once, a pool whose two workers block at a barrier with a
/// third task of its own: the accepted work still runs during the drain,
/// so the blocked workers still get a spare.
#[test]
fn dropping_a_pool_whose_workers_block_on_its_own_task_completes() {
    with_deadline("the drop", || {
        let pool = common::pool(2);
        let barrier = Arc::new(Barrier::new(3));
        let passed = Arc::new(AtomicUsize::new(0));
        for blocks in [true, true, false] {
            let (barrier, passed) = (Arc::clone(&barrier), Arc::clone(&passed));
            pool.spawn(move || {
                if blocks {
                    pilfer::block_in_place(|| barrier.wait());
                } else {
                    barrier.wait();
                }
                passed.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(pool);
        assert_eq!(passed.load(Ordering::SeqCst), 3);
    });
}

/// The thread namer is user code that runs when a spare starts, inside a
/// worker's block: one that panics for a spare's index (written for the
/// workers' indices) leaves the spare its default name, and the pool
/// intact.
#[test]
fn a_namer_that_panics_for_a_spare_leaves_its_default_name() {
    let pool = pool_with(1, |builder| {
        builder.thread_name(|index| {
            let names = ["only-worker"];
            names[index].to_string()
        })
    });
    let name = quietly(|| {
        pool.install(|| {
            pilfer::block_in_place(|| {
                let (done, is_done) = mpsc::channel();
                pilfer::spawn(move || {
                    done.send(thread::current().name().map(str::to_owned))
                        .unwrap();
                });
                is_done.recv_timeout(DEADLINE).unwrap()
            })
        })
    });
    assert_eq!(name.as_deref(), Some("pilfer-1"));
    assert_eq!(pool.metrics().blocked_now(), 0);
    assert_eq!(pool.install(|| 6 * 7), 42);
}
