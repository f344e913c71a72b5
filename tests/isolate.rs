//! `isolate`: inside it, a waiting worker runs only the work created
//! inside it, so a lock held across a `join` never meets an unrelated task
//! that takes it on the same thread, and deep recursions do not pile up.

mod common;

use common::{quietly, with_deadline};
use pilfer::Yield;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

thread_local! {
    /// Set while this thread runs a task's critical section: a task that
    /// starts while it is set runs nested inside another task's wait.
    static IN_CRITICAL_SECTION: Cell<bool> = const { Cell::new(false) };
}

/// Small fork-join work whose joins do wait for thieves now and then.
fn work(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = pilfer::join(|| work(n - 1), || work(n - 2));
    a + b
}

/// rayon's issue #592: tasks arrive from outside every 200 µs; each takes
/// one lock and runs fork-join work inside the critical section. Returns
/// how many tasks started nested inside another task's critical section
/// (in a wait that ran unrelated work).
fn tasks_joining_under_one_lock(threads: usize, isolated: bool) -> usize {
    const TASKS: usize = 200;
    let pool = common::pool(threads);
    let lock = Arc::new(Mutex::new(0u64));
    let nested = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let (lock, nested, done) = (Arc::clone(&lock), Arc::clone(&nested), Arc::clone(&done));
        pool.spawn(move || {
            if IN_CRITICAL_SECTION.with(Cell::get) {
                nested.fetch_add(1, Ordering::SeqCst);
            }
            // A nested task taking the lock its own thread holds would
            // deadlock here (or panic: std's mutex may do either).
            let mut total = lock.lock().unwrap();
            IN_CRITICAL_SECTION.with(|flag| flag.set(true));
            let value = if isolated {
                pilfer::isolate(|| work(15))
            } else {
                work(15)
            };
            IN_CRITICAL_SECTION.with(|flag| flag.set(false));
            *total += value;
            done.fetch_add(1, Ordering::SeqCst);
        });
        thread::sleep(Duration::from_micros(200));
    }
    common::wait_for("every task", || done.load(Ordering::SeqCst) == TASKS);
    assert_eq!(*lock.lock().unwrap(), TASKS as u64 * 610);
    nested.load(Ordering::SeqCst)
}

#[test]
fn a_lock_held_across_isolated_joins_never_deadlocks() {
    for threads in [1, 2, 4] {
        let nested = with_deadline("tasks joining under one lock", move || {
            tasks_joining_under_one_lock(threads, true)
        });
        assert_eq!(
            nested, 0,
            "{threads} threads: unrelated tasks ran in an isolated wait"
        );
    }
}

/// The shape of the deadlock, step by step, on two workers: a task holds
/// the lock across a `join` whose second half a thief took; while the
/// task's worker waits for it, an unrelated task that takes the same lock
/// arrives from outside. Returns whether that task ran on the waiting
/// worker, inside the critical section; blocks for good if it then waits
/// for the lock its own thread holds.
fn unrelated_task_meets_a_waiting_lock_holder(isolated: bool) -> bool {
    let pool = Arc::new(common::pool(2));
    let lock = Arc::new(Mutex::new(()));
    let (b_started, u_queued, u_started) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (please_inject, inject) = mpsc::channel::<()>();
    let (holder_done, holder_finished) = mpsc::channel::<()>();
    {
        let (lock, b_started, u_queued, u_started) = (
            Arc::clone(&lock),
            Arc::clone(&b_started),
            Arc::clone(&u_queued),
            Arc::clone(&u_started),
        );
        pool.spawn(move || {
            let _guard = lock.lock().unwrap();
            IN_CRITICAL_SECTION.with(|flag| flag.set(true));
            let run = || {
                pilfer::join(
                    || {
                        spin_until("a thief to take b", &b_started);
                        please_inject.send(()).unwrap();
                        spin_until("the unrelated task to be queued", &u_queued);
                    },
                    || {
                        b_started.store(true, Ordering::SeqCst);
                        spin_until("the unrelated task to start", &u_started);
                    },
                )
            };
            if isolated {
                pilfer::isolate(run);
            } else {
                run();
            }
            IN_CRITICAL_SECTION.with(|flag| flag.set(false));
            holder_done.send(()).unwrap();
        });
    }
    inject
        .recv_timeout(common::DEADLINE)
        .expect("b was never stolen");
    let (nested_tx, nested) = mpsc::channel();
    {
        let (lock, u_started) = (Arc::clone(&lock), Arc::clone(&u_started));
        pool.spawn(move || {
            nested_tx.send(IN_CRITICAL_SECTION.with(Cell::get)).unwrap();
            u_started.store(true, Ordering::SeqCst);
            drop(lock.lock());
        });
    }
    u_queued.store(true, Ordering::SeqCst);
    let ran_nested = nested
        .recv_timeout(common::DEADLINE)
        .expect("the unrelated task never ran");
    holder_finished
        .recv_timeout(common::DEADLINE)
        .expect("the lock holder never finished");
    ran_nested
}

fn spin_until(what: &str, flag: &AtomicBool) {
    let start = std::time::Instant::now();
    while !flag.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < common::DEADLINE,
            "waited too long for {what}"
        );
        thread::yield_now();
    }
}

#[test]
fn an_isolated_wait_leaves_an_unrelated_task_to_others() {
    let nested = with_deadline("the lock holder and the unrelated task", || {
        unrelated_task_meets_a_waiting_lock_holder(true)
    });
    assert!(!nested, "the unrelated task ran inside the isolated wait");
}

/// The same without `isolate`: the waiting worker runs the unrelated task,
/// which blocks on the lock its own thread holds. Ignored: it deadlocks by
/// design; `cargo test --test isolate -- --ignored` shows it.
#[test]
#[ignore = "shows the deadlock that isolate prevents"]
fn without_isolate_the_waiting_lock_holder_deadlocks() {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let outcome =
            std::panic::catch_unwind(|| unrelated_task_meets_a_waiting_lock_holder(false));
        let _ = sender.send(outcome);
    });
    match receiver.recv_timeout(Duration::from_secs(10)) {
        Err(_) => println!("deadlocked, as expected without isolate"),
        Ok(outcome) => panic!(
            "finished without isolate: {:?}",
            outcome.map_err(|_| "panicked")
        ),
    }
}

#[test]
fn waits_inside_isolate_run_only_the_regions_tasks() {
    assert_eq!(pilfer::isolate(|| 3), 3, "outside every pool: a call");
    let pool = common::pool(1);
    pool.install(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        // An unrelated task on this worker's own deque.
        pilfer::spawn(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        pilfer::isolate(|| {
            assert_eq!(pilfer::yield_now(), Some(Yield::Idle), "not the region's");
            let inner = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&inner);
            pilfer::spawn(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(
                pilfer::yield_now(),
                Some(Yield::Executed),
                "the region's own"
            );
            assert_eq!(inner.load(Ordering::SeqCst), 1);
            // Nested: the outer region's tasks are not the inner one's.
            let outer_task = Arc::clone(&inner);
            pilfer::spawn(move || {
                outer_task.fetch_add(1, Ordering::SeqCst);
            });
            pilfer::isolate(|| assert_eq!(pilfer::yield_now(), Some(Yield::Idle)));
            assert_eq!(pilfer::yield_now(), Some(Yield::Executed));
            assert_eq!(inner.load(Ordering::SeqCst), 2);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        // Outside the region the unrelated task may run again.
        assert_eq!(pilfer::yield_now(), Some(Yield::Executed));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_panic_leaves_the_region() {
    let pool = common::pool(1);
    pool.install(|| {
        pilfer::spawn(|| ());
        let message =
            quietly(|| common::expect_panic(|| pilfer::isolate(|| panic!("region failed"))));
        assert_eq!(message, "region failed");
        assert_eq!(
            pilfer::yield_now(),
            Some(Yield::Executed),
            "isolation was lifted"
        );
    });
}

/// Waits inside a region for work it may not run (a task submitted before
/// it; a scope's FIFO tasks; a broadcast): a one-worker pool still gets
/// through, with a spare running what the isolated worker may not.
#[test]
fn an_isolated_wait_on_outside_work_gets_through_on_one_worker() {
    with_deadline("isolated waits on one worker", || {
        let pool = common::pool(1);
        let value = pool.install(|| {
            // Queued on this worker's deque before the region began.
            let task = pool.submit(|| 42);
            pilfer::isolate(|| task.join().unwrap())
        });
        assert_eq!(value, 42);
        let order = pool.install(|| {
            pilfer::isolate(|| {
                let order = Mutex::new(Vec::new());
                pilfer::scope_fifo(|s| {
                    for i in 0..5 {
                        let order = &order;
                        s.spawn_fifo(move |_| order.lock().unwrap().push(i));
                    }
                });
                let mut order = order.into_inner().unwrap();
                order.sort();
                order
            })
        });
        assert_eq!(order, [0, 1, 2, 3, 4]);
        let pool = common::pool(2);
        let indices = pool.install(|| pilfer::isolate(|| pilfer::broadcast(|ctx| ctx.index())));
        assert_eq!(indices, [0, 1]);
    });
}

/// A recursion of joins with big frames, deep enough to fill a good part
/// of a small stack.
fn deep(depth: u32) -> u64 {
    let frame = black_box([depth as u8; 1024]);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    let (a, b) = pilfer::join(|| deep(depth - 1), || work(8));
    a + b + u64::from(frame[1023])
}

/// Many equally deep recursions on a small stack: inside `isolate`, a
/// waiting worker never runs another one on top of its own.
#[test]
fn isolated_deep_recursions_do_not_stack_on_each_other() {
    with_deadline("deep recursions", || {
        let pool = pilfer::ThreadPool::builder()
            .num_threads(2)
            .pin_workers(false)
            .stack_size(1 << 20)
            .build()
            .unwrap();
        // Fits the stack when it runs alone (about 1.5 KiB a level in a
        // debug build, more with the waits' own frames).
        let depth = 150;
        let expected = pool.install(|| pilfer::isolate(|| deep(depth)));
        let results = Mutex::new(Vec::new());
        pool.scope(|s| {
            for _ in 0..64 {
                s.spawn(|_| {
                    let value = pilfer::isolate(|| deep(depth));
                    results.lock().unwrap().push(value);
                });
            }
        });
        let results = results.into_inner().unwrap();
        assert_eq!(results.len(), 64);
        assert!(results.iter().all(|&value| value == expected));
    });
}

#[test]
fn isolated_and_plain_work_side_by_side_agree() {
    let pool = common::pool(2);
    let (plain, isolated) = pool.join(|| work(18), || pilfer::isolate(|| work(18)));
    assert_eq!((plain, isolated), (2584, 2584));
}

/// A broadcast share runs in an isolated wait (nobody else may run it),
/// but the tasks it spawns are not the region's: they go to other workers.
#[test]
fn tasks_spawned_by_a_broadcast_share_leave_the_isolated_wait() {
    with_deadline("a broadcast into an isolated wait", || {
        let pool = Arc::new(common::pool(2));
        let b_started = Arc::new(AtomicBool::new(false));
        let region_worker = Arc::new(AtomicUsize::new(usize::MAX));
        let (done, finished) = mpsc::channel();
        {
            let (b_started, region_worker) = (Arc::clone(&b_started), Arc::clone(&region_worker));
            pool.spawn(move || {
                region_worker.store(pilfer::current_thread_index().unwrap(), Ordering::SeqCst);
                pilfer::isolate(|| {
                    IN_CRITICAL_SECTION.with(|flag| flag.set(true));
                    pilfer::join(
                        || spin_until("a thief to take b", &b_started),
                        || {
                            b_started.store(true, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(300));
                        },
                    );
                    IN_CRITICAL_SECTION.with(|flag| flag.set(false));
                });
                done.send(()).unwrap();
            });
        }
        spin_until("b to start", &b_started);
        // The region's worker now waits for `b`, isolated.
        thread::sleep(Duration::from_millis(20));
        let waiting = region_worker.load(Ordering::SeqCst);
        let (inside_tx, inside) = mpsc::channel();
        let inside_tx = Mutex::new(inside_tx);
        pool.broadcast(move |ctx| {
            if ctx.index() == waiting {
                let inside_tx = inside_tx.lock().unwrap().clone();
                pilfer::spawn(move || {
                    inside_tx.send(IN_CRITICAL_SECTION.with(Cell::get)).unwrap();
                });
            }
        });
        let ran_inside = inside
            .recv_timeout(common::DEADLINE)
            .expect("the spawned task never ran");
        assert!(
            !ran_inside,
            "a broadcast's task ran inside the isolated wait"
        );
        finished.recv_timeout(common::DEADLINE).unwrap();
    });
}

/// Dropped while a task waits, isolated, for a task from outside its
/// region: the drain still gives it a spare to run that task.
#[test]
fn dropping_a_pool_while_an_isolated_wait_needs_a_spare_completes() {
    with_deadline("the drop", || {
        let pool = Arc::new(common::pool(1));
        let (got, value) = mpsc::channel();
        let (let_go, released) = mpsc::channel::<()>();
        {
            let inner = Arc::clone(&pool);
            pool.spawn(move || {
                // On this worker's deque, before the region.
                let task = inner.submit(|| 7);
                drop(inner);
                let_go.send(()).unwrap();
                // The pool is being dropped meanwhile.
                thread::sleep(Duration::from_millis(100));
                got.send(pilfer::isolate(|| task.join().unwrap())).unwrap();
            });
        }
        released.recv_timeout(common::DEADLINE).unwrap();
        drop(Arc::into_inner(pool).expect("the task let go of the pool"));
        assert_eq!(value.recv_timeout(common::DEADLINE).unwrap(), 7);
    });
}
