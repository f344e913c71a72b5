//! rayon-core's API under pilfer's names: FIFO spawns and scopes, in-place
//! scopes, broadcasts, yielding, `join_context`, the thread queries, the
//! calling thread as a worker, spawn handlers and scoped pools. Each test
//! would fail against a stub.

mod common;

use common::{DEADLINE, expect_panic, on_every_worker, pool, quietly};
use pilfer::{BuildError, ThreadBuilder, ThreadPool, ThreadPoolBuildError, Yield};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// FIFO spawns and scopes.

/// The order in which 20 tasks, spawned with `spawn` by a one-worker
/// pool's only worker, start.
fn start_order(spawn: impl Fn(Box<dyn FnOnce() + Send>) + Sync) -> Vec<usize> {
    let pool = pool(1);
    let (order, received) = mpsc::channel();
    pool.install(|| {
        for i in 0..20 {
            let order = order.clone();
            spawn(Box::new(move || order.send(i).unwrap()));
        }
    });
    drop(order);
    drop(pool);
    received.iter().collect()
}

#[test]
fn spawn_fifo_starts_a_workers_spawns_in_order() {
    let order = start_order(pilfer::spawn_fifo);
    assert_eq!(order, (0..20).collect::<Vec<_>>());
}

#[test]
fn spawn_starts_a_workers_spawns_newest_first() {
    // The contrast that makes the FIFO test meaningful.
    let order = start_order(pilfer::spawn);
    assert_eq!(order, (0..20).rev().collect::<Vec<_>>());
}

#[test]
fn thread_pool_spawn_fifo_from_a_worker_and_from_outside() {
    let pool = Arc::new(pool(1));
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        let order = Arc::clone(&order);
        pool.spawn_fifo(move || order.lock().unwrap().push(i));
    }
    let inner = Arc::clone(&pool);
    let nested = Arc::clone(&order);
    pool.install(move || {
        for i in 5..10 {
            let order = Arc::clone(&nested);
            inner.spawn_fifo(move || order.lock().unwrap().push(i));
        }
    });
    drop(Arc::into_inner(pool).unwrap());
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn scope_fifo_starts_tasks_in_order_and_nests() {
    let pool = pool(1);
    let order = Mutex::new(Vec::new());
    pool.scope_fifo(|s| {
        for i in 0..10 {
            let order = &order;
            s.spawn_fifo(move |s| {
                order.lock().unwrap().push(i);
                if i == 0 {
                    s.spawn_fifo(move |_| order.lock().unwrap().push(100));
                }
            });
        }
    });
    let order = order.into_inner().unwrap();
    assert_eq!(order[..10], (0..10).collect::<Vec<_>>());
    assert_eq!(order[10], 100, "spawned last, started last");
}

#[test]
fn scope_fifo_free_function_and_its_panics() {
    let message = quietly(|| {
        expect_panic(|| {
            pilfer::scope_fifo(|s| {
                s.spawn_fifo(|_| panic!("fifo task failed"));
            })
        })
    });
    assert_eq!(message, "fifo task failed");
}

#[test]
fn spawn_fifo_panics_go_to_the_handler() {
    let (pool, handled) = common::pool_recording_panics(1);
    quietly(|| {
        pool.spawn_fifo(|| panic!("from outside"));
        pool.install(|| pilfer::spawn_fifo(|| panic!("from a worker")));
        drop(pool);
    });
    let mut handled = handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, ["from a worker", "from outside"]);
}

// ---------------------------------------------------------------------------
// In-place scopes.

#[test]
fn in_place_scope_runs_its_body_on_the_calling_thread() {
    let pool = pool(2);
    let me = thread::current().id();
    let workers = Mutex::new(BTreeSet::new());
    pool.in_place_scope(|s| {
        assert_eq!(thread::current().id(), me, "the body stays here");
        assert_eq!(pilfer::current_thread_index(), None);
        for _ in 0..8 {
            s.spawn(|_| {
                let index = pilfer::current_thread_index().expect("tasks run on the pool");
                workers.lock().unwrap().insert(index);
            });
        }
    });
    assert!(!workers.into_inner().unwrap().is_empty());

    // The free functions: on the global pool from here.
    let mut value = 0;
    pilfer::in_place_scope(|s| {
        assert_eq!(thread::current().id(), me);
        s.spawn(|_| value = 7);
    });
    assert_eq!(value, 7);
    let mut value = 0;
    pilfer::in_place_scope_fifo(|s| {
        assert_eq!(thread::current().id(), me);
        s.spawn_fifo(|_| value = 8);
    });
    assert_eq!(value, 8);
}

#[test]
fn in_place_scope_from_workers_of_the_same_and_of_another_pool() {
    let pool = Arc::new(pool(2));
    let other = common::pool(1);
    let inner = Arc::clone(&pool);
    let (same, from_other) = other.install(move || {
        let here = thread::current().id();
        // From a worker of another pool: the body stays on this worker.
        let mut seen = None;
        inner.in_place_scope(|s| {
            assert_eq!(thread::current().id(), here);
            s.spawn(|_| seen = pilfer::current_thread_index());
        });
        // From a worker of the same pool: a plain scope there.
        let same = inner.install(|| {
            let worker = thread::current().id();
            inner.in_place_scope_fifo(|_| thread::current().id() == worker)
        });
        (same, seen)
    });
    assert!(same);
    assert!(from_other.is_some_and(|index| index < 2));
}

#[test]
fn in_place_scope_panics_reach_the_caller() {
    let pool = pool(2);
    let finished = AtomicUsize::new(0);
    let message = quietly(|| {
        expect_panic(|| {
            pool.in_place_scope(|s| {
                s.spawn(|_| panic!("in-place task failed"));
                s.spawn(|_| {
                    thread::sleep(Duration::from_millis(5));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            })
        })
    });
    assert_eq!(message, "in-place task failed");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "re-raised after the sibling finished"
    );
}

// ---------------------------------------------------------------------------
// Broadcasts.

#[test]
fn broadcast_runs_once_on_every_worker() {
    for threads in [1, 2, 4] {
        let pool = pool(threads);
        let runs = AtomicUsize::new(0);
        let results = pool.broadcast(|ctx| {
            runs.fetch_add(1, Ordering::SeqCst);
            assert_eq!(ctx.num_threads(), threads);
            (ctx.index(), pilfer::current_thread_index())
        });
        assert_eq!(runs.load(Ordering::SeqCst), threads, "once per worker");
        for (index, (ctx_index, ran_on)) in results.into_iter().enumerate() {
            assert_eq!(ctx_index, index, "results are indexed by worker");
            assert_eq!(ran_on, Some(index), "ran on the worker it names");
        }
    }
}

#[test]
fn broadcast_from_a_worker_and_the_free_function() {
    let pool = pool(3);
    let indices = pool.install(|| pilfer::broadcast(|ctx| ctx.index()));
    assert_eq!(indices, [0, 1, 2]);
    // Outside every pool: the global pool's workers.
    let global = pilfer::broadcast(|ctx| ctx.num_threads());
    assert_eq!(global.len(), pilfer::current_num_threads());
}

#[test]
fn broadcast_sets_up_per_worker_state() {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let pool = pool(2);
    pool.broadcast(|ctx| BUFFER.with(|buffer| buffer.borrow_mut().resize(ctx.index() + 1, 1)));
    let sizes = on_every_worker(&pool, || BUFFER.with(|buffer| buffer.borrow().len()));
    assert_eq!(sizes.into_values().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn broadcast_panics_reach_the_caller_after_every_worker_ran() {
    let pool = pool(2);
    let runs = AtomicUsize::new(0);
    let message = quietly(|| {
        expect_panic(|| {
            pool.broadcast(|ctx| {
                runs.fetch_add(1, Ordering::SeqCst);
                if ctx.index() == 1 {
                    panic!("worker 1 failed");
                }
            })
        })
    });
    assert_eq!(message, "worker 1 failed");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn spawn_broadcast_is_detached_and_its_panics_go_to_the_handler() {
    let (pool, handled) = common::pool_recording_panics(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    {
        let seen = Arc::clone(&seen);
        pool.spawn_broadcast(move |ctx| {
            seen.lock().unwrap().push(ctx.index());
            assert_eq!(pilfer::current_thread_index(), Some(ctx.index()));
        });
    }
    quietly(|| {
        pool.install(|| pilfer::spawn_broadcast(|ctx| panic!("broadcast {}", ctx.index())));
        drop(pool);
    });
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [0, 1]);
    let mut handled = handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, ["broadcast 0", "broadcast 1"]);
}

#[test]
fn scopes_spawn_broadcasts_that_borrow() {
    let pool = pool(3);
    let hits = [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ];
    pool.scope(|s| {
        s.spawn_broadcast(|_, ctx| {
            hits[ctx.index()].fetch_add(1, Ordering::SeqCst);
        })
    });
    pool.scope_fifo(|s| {
        s.spawn_broadcast(|_, ctx| {
            hits[ctx.index()].fetch_add(1, Ordering::SeqCst);
        })
    });
    assert!(hits.iter().all(|hit| hit.load(Ordering::SeqCst) == 2));
}

// ---------------------------------------------------------------------------
// Yielding.

#[test]
fn yield_now_runs_a_pending_task_then_is_idle() {
    assert_eq!(pilfer::yield_now(), None);
    assert_eq!(pilfer::yield_local(), None);
    let pool = pool(1);
    assert_eq!(pool.yield_now(), None, "not a worker of this pool");
    pool.install(|| {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        pilfer::spawn(move || flag.store(true, Ordering::SeqCst));
        assert_eq!(pilfer::current_thread_has_pending_tasks(), Some(true));
        assert_eq!(pilfer::yield_local(), Some(Yield::Executed));
        assert!(ran.load(Ordering::SeqCst));
        assert_eq!(pilfer::current_thread_has_pending_tasks(), Some(false));
        assert_eq!(pilfer::yield_local(), Some(Yield::Idle));
        assert_eq!(pilfer::yield_now(), Some(Yield::Idle));
    });
    let inner = Arc::new(pool);
    let outer = Arc::clone(&inner);
    inner.install(move || {
        outer.spawn(|| ());
        assert_eq!(outer.yield_now(), Some(Yield::Executed));
        assert_eq!(outer.yield_local(), Some(Yield::Idle));
    });
}

#[test]
fn yield_now_takes_work_from_the_injector_and_yield_local_does_not() {
    let pool = Arc::new(pool(1));
    let inner = Arc::clone(&pool);
    let (go, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let outcome = thread::spawn(move || {
        inner.install(|| {
            wait.lock().unwrap().recv().unwrap();
            // A task from outside is in the injector now.
            let local = pilfer::yield_local();
            let any = pilfer::yield_now();
            (local, any)
        })
    });
    thread::sleep(Duration::from_millis(10));
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    pool.spawn(move || flag.store(true, Ordering::SeqCst));
    go.send(()).unwrap();
    let (local, any) = outcome.join().unwrap();
    assert_eq!(local, Some(Yield::Idle));
    assert_eq!(any, Some(Yield::Executed));
    assert!(ran.load(Ordering::SeqCst));
}

// ---------------------------------------------------------------------------
// join_context.

#[test]
fn join_context_is_never_migrated_on_one_thread() {
    let pool = pool(1);
    for _ in 0..100 {
        let (a, b) =
            pool.install(|| pilfer::join_context(|ctx| ctx.migrated(), |ctx| ctx.migrated()));
        assert_eq!((a, b), (false, false));
    }
}

#[test]
fn join_context_reports_a_stolen_b_as_migrated() {
    let pool = pool(2);
    let start = Instant::now();
    loop {
        let (a_migrated, b_migrated) = pool.install(|| {
            pilfer::join_context(
                |ctx| {
                    // Give a thief time to take `b`.
                    thread::sleep(Duration::from_millis(2));
                    ctx.migrated()
                },
                |ctx| (ctx.migrated(), pilfer::current_thread_index()),
            )
        });
        assert!(!a_migrated, "`a` runs on the caller");
        if b_migrated.0 {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "`b` was never stolen");
    }
}

#[test]
fn join_context_from_outside_migrates_both() {
    let (a, b) = pilfer::join_context(|ctx| ctx.migrated(), |ctx| ctx.migrated());
    assert!(a && b);
    let message = quietly(|| expect_panic(|| pilfer::join_context(|_| panic!("a failed"), |_| ())));
    assert_eq!(message, "a failed");
}

// ---------------------------------------------------------------------------
// Thread queries.

#[test]
fn thread_queries_answer_for_the_right_pool() {
    assert_eq!(pilfer::current_thread_index(), None);
    assert_eq!(pilfer::current_thread_has_pending_tasks(), None);
    assert!(pilfer::max_num_threads() >= 1024);
    let pool = pool(3);
    let other = common::pool(1);
    assert_eq!(pool.current_num_threads(), 3);
    assert_eq!(pool.current_thread_index(), None);
    assert_eq!(pool.current_thread_has_pending_tasks(), None);
    let seen = pool.install(|| {
        (
            pilfer::current_thread_index(),
            pool.current_thread_index(),
            other.current_thread_index(),
            pool.current_thread_has_pending_tasks(),
        )
    });
    assert!(seen.0.is_some() && seen.0 == seen.1);
    assert_eq!(seen.2, None, "not a worker of the other pool");
    assert_eq!(seen.3, Some(false));
}

// ---------------------------------------------------------------------------
// The calling thread as a worker.

#[test]
fn use_current_thread_makes_the_caller_worker_zero() {
    common::arm_watchdog();
    let me = thread::current().id();
    let pool = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .use_current_thread()
        .build()
        .unwrap();
    assert_eq!(pilfer::current_thread_index(), Some(0));
    // Its own calls run right here.
    assert_eq!(pool.install(|| thread::current().id()), me);
    assert_eq!(pool.install(|| pilfer::join(|| 1, || 2)), (1, 2));
    // A second pool cannot adopt it.
    let error = ThreadPool::builder()
        .num_threads(2)
        .use_current_thread()
        .build()
        .unwrap_err();
    assert!(matches!(error, BuildError::CurrentThreadInPool));
    // While it is busy elsewhere, the other worker runs spawned work.
    let (done, is_done) = mpsc::channel();
    pool.spawn(move || done.send(pilfer::current_thread_index()).unwrap());
    assert_eq!(is_done.recv_timeout(DEADLINE).unwrap(), Some(1));
    // Broadcasts reach it while it waits in the pool.
    let indices = pool.broadcast(|ctx| ctx.index());
    assert_eq!(indices, [0, 1]);
    drop(pool);
    assert_eq!(
        pilfer::current_thread_index(),
        None,
        "dropping the pool lets it go"
    );
    // And it can be adopted again.
    let again = ThreadPool::builder()
        .num_threads(1)
        .use_current_thread()
        .build()
        .unwrap();
    assert_eq!(again.install(|| thread::current().id()), me);
}

/// A job of a one-thread pool that drops the pool on the adopted thread
/// lets the thread go while the job still runs: afterwards the thread is
/// a plain one, whose joins go to the global pool. (The job's end once
/// left the thread's joins reading a worker's request it no longer had:
/// a segmentation fault at the next `join`.)
#[test]
fn a_pool_dropped_by_its_own_job_on_the_adopted_thread_lets_it_go() {
    common::arm_watchdog();
    let pool = ThreadPool::builder()
        .num_threads(1)
        .use_current_thread()
        .build()
        .unwrap();
    let slot = Arc::new(Mutex::new(Some(pool)));
    let dropper = Arc::clone(&slot);
    // Onto this thread's own deque (it is the only worker).
    pilfer::spawn(move || drop(dropper.lock().unwrap().take()));
    assert_eq!(pilfer::yield_now(), Some(pilfer::Yield::Executed));
    assert!(slot.lock().unwrap().is_none(), "the job dropped the pool");
    assert_eq!(pilfer::current_thread_index(), None);
    assert_eq!(pilfer::join(|| 1, || 2), (1, 2));
    assert_eq!(pilfer::join(|| pilfer::join(|| 3, || 4), || 5), ((3, 4), 5));
}

#[test]
fn work_queued_by_the_calling_thread_is_stolen_while_it_blocks() {
    common::arm_watchdog();
    let pool = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .use_current_thread()
        .build()
        .unwrap();
    let (ran, has_run) = mpsc::channel();
    pool.install(|| {
        // On worker 0's own deque: worker 1 must steal it.
        pilfer::spawn(move || ran.send(pilfer::current_thread_index()).unwrap());
    });
    assert_eq!(has_run.recv_timeout(DEADLINE).unwrap(), Some(1));
}

// ---------------------------------------------------------------------------
// Spawn handlers and scoped pools.

#[test]
fn spawn_handler_starts_every_worker() {
    let started = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&started);
    let pool = ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .thread_name(|i| format!("handled-{i}"))
        .stack_size(1 << 20)
        .spawn_handler(move |thread: ThreadBuilder| {
            record.lock().unwrap().push((
                thread.index(),
                thread.name().map(str::to_owned),
                thread.stack_size(),
            ));
            thread::Builder::new()
                .name(thread.name().unwrap().to_owned())
                .spawn(move || thread.run())?;
            Ok(())
        })
        .build()
        .unwrap();
    assert_eq!(
        *started.lock().unwrap(),
        (0..3)
            .map(|i| (i, Some(format!("handled-{i}")), Some(1 << 20)))
            .collect::<Vec<_>>()
    );
    let names = pool.broadcast(|_| thread::current().name().map(str::to_owned));
    assert_eq!(names[2].as_deref(), Some("handled-2"));
    drop(pool); // waits for the workers to leave `run`
}

#[test]
fn a_failing_spawn_handler_fails_the_build_and_leaves_no_worker() {
    common::arm_watchdog();
    let exited = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&exited);
    let result: Result<ThreadPool, ThreadPoolBuildError> = ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .exit_handler(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .spawn_handler(|thread| {
            if thread.index() == 2 {
                return Err(std::io::Error::other("no third thread"));
            }
            thread::spawn(move || thread.run());
            Ok(())
        })
        .build();
    match result {
        Err(BuildError::Spawn { index: 2, error }) => {
            assert_eq!(error.to_string(), "no third thread");
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
    assert_eq!(
        exited.load(Ordering::SeqCst),
        2,
        "the started workers were stopped"
    );
}

#[test]
fn build_scoped_runs_workers_on_scoped_threads() {
    let configured = AtomicUsize::new(0);
    let sum = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .build_scoped(
            |thread| {
                configured.fetch_add(1, Ordering::SeqCst);
                thread.run();
            },
            |pool| pool.install(|| pilfer::join(|| 20, || 22)),
        )
        .unwrap();
    assert_eq!(sum, (20, 22));
    assert_eq!(configured.load(Ordering::SeqCst), 2);
}
