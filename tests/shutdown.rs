//! Dropping and shutting down a pool: every accepted task runs first, exit
//! handlers run, and dropping from awkward places does not deadlock.

mod common;

use common::{DEADLINE, pool, wait_for, with_deadline};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

/// Spawns `count` slow-ish tasks that each bump `counter`.
fn spawn_slow_tasks(pool: &pilfer::ThreadPool, count: usize, counter: &Arc<AtomicUsize>) {
    for _ in 0..count {
        let counter = Arc::clone(counter);
        pool.spawn(move || {
            thread::sleep(Duration::from_micros(500));
            counter.fetch_add(1, Ordering::SeqCst);
        });
    }
}

#[test]
fn drop_runs_every_accepted_task_before_returning() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        let counter = Arc::new(AtomicUsize::new(0));
        spawn_slow_tasks(&pool, 300, &counter);
        drop(pool);
        assert_eq!(counter.load(Ordering::SeqCst), 300, "{n} threads");
    }
}

#[test]
fn shutdown_runs_every_accepted_task_before_returning() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        let counter = Arc::new(AtomicUsize::new(0));
        spawn_slow_tasks(&pool, 300, &counter);
        // Also tasks queued on workers' own deques.
        pool.install(|| spawn_slow_tasks(&pool, 100, &counter));
        pool.shutdown();
        assert_eq!(counter.load(Ordering::SeqCst), 400, "{n} threads");
    }
}

/// Tasks still running at shutdown may spawn more; those run too.
#[test]
fn tasks_spawned_during_shutdown_still_run() {
    for n in [1, 2] {
        let pool = pool(n);
        let counter = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let counter = Arc::clone(&counter);
            pool.spawn(move || {
                thread::sleep(Duration::from_micros(500));
                for _ in 0..10 {
                    let counter = Arc::clone(&counter);
                    pilfer::spawn(move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                    });
                }
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(pool);
        assert_eq!(counter.load(Ordering::SeqCst), 50 * 11, "{n} threads");
    }
}

/// Outstanding `Task`s are completed by the shutdown and can be joined after.
#[test]
fn submitted_tasks_complete_across_drop() {
    let pool = pool(2);
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            pool.submit(move || {
                thread::sleep(Duration::from_micros(200));
                i * 3
            })
        })
        .collect();
    drop(pool);
    assert!(
        tasks.iter().all(|t| t.is_finished()),
        "drop left tasks unrun"
    );
    let total: u64 = tasks.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 3 * 199 * 200 / 2);
}

/// Drop blocks while a task is still running, and returns once it is done.
#[test]
fn drop_waits_for_a_running_task() {
    let pool = pool(2);
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let finished = Arc::new(AtomicUsize::new(0));
    let task_finished = Arc::clone(&finished);
    pool.spawn(move || {
        started_tx.send(()).unwrap();
        gate.recv().unwrap();
        task_finished.fetch_add(1, Ordering::SeqCst);
    });
    started_rx.recv_timeout(DEADLINE).unwrap();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let dropper = thread::spawn(move || {
        drop(pool);
        dropped_tx.send(()).unwrap();
    });
    // The task cannot finish before we release it, so drop cannot return.
    assert!(
        dropped_rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "drop returned while a task was still running"
    );
    release.send(()).unwrap();
    dropped_rx
        .recv_timeout(DEADLINE)
        .expect("drop did not return after the task finished");
    dropper.join().unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

/// The last handle is dropped by a task on the pool's own worker: that must
/// not deadlock (the worker cannot join itself), and the tasks accepted
/// still run.
#[test]
fn dropping_last_handle_inside_own_worker_does_not_deadlock() {
    common::arm_watchdog();
    for n in [1, 2] {
        let exits = Arc::new(AtomicUsize::new(0));
        let exit_counter = Arc::clone(&exits);
        let pool = Arc::new(
            pilfer::ThreadPool::builder()
                .num_threads(n)
                .pin_workers(false)
                .exit_handler(move |_| {
                    exit_counter.fetch_add(1, Ordering::SeqCst);
                })
                .build()
                .unwrap(),
        );
        let (events, event_rx) = mpsc::channel::<&'static str>();
        let (go, go_rx) = mpsc::channel::<()>();
        let inner = Arc::clone(&pool);
        let task_events = events.clone();
        pool.spawn(move || {
            go_rx.recv().unwrap();
            // The outside clone is gone: this is the last handle.
            let last = Arc::strong_count(&inner) == 1;
            task_events
                .send(if last { "last" } else { "not last" })
                .unwrap();
            // Queue more work, then drop the pool from its own worker.
            for _ in 0..20 {
                let task_events = task_events.clone();
                inner.spawn(move || task_events.send("queued task ran").unwrap());
            }
            drop(inner);
            task_events.send("drop returned").unwrap();
        });
        drop(pool);
        go.send(()).unwrap();
        drop(events);

        let mut seen = Vec::new();
        for _ in 0..22 {
            seen.push(
                event_rx
                    .recv_timeout(DEADLINE)
                    .expect("deadlock: events missing after dropping from a worker"),
            );
        }
        assert_eq!(
            seen[0], "last",
            "test setup: the task did not hold the last handle"
        );
        assert!(seen.contains(&"drop returned"));
        assert_eq!(seen.iter().filter(|e| **e == "queued task ran").count(), 20);
        wait_for("every worker exits", || exits.load(Ordering::SeqCst) == n);
        // Exactly once each, even without a join.
        thread::sleep(Duration::from_millis(20));
        assert_eq!(exits.load(Ordering::SeqCst), n);
    }
}

/// The last handle of pool B is dropped on a worker of pool A. On a worker
/// (of any pool) drop does not wait for B's workers, which could be waiting
/// on that very thread; B still runs every accepted task, then its workers
/// exit.
#[test]
fn dropping_a_pool_from_another_pools_worker() {
    let pool_a = pool(1);
    let pool_b = pilfer::ThreadPool::builder()
        .num_threads(2)
        .thread_name(|i| format!("dropped-b-{i}"))
        .build()
        .unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    spawn_slow_tasks(&pool_b, 100, &counter);
    with_deadline("drop B on A's worker", move || {
        pool_a.install(move || drop(pool_b))
    });
    common::wait_for("B's accepted tasks", || {
        counter.load(Ordering::SeqCst) == 100
    });
    #[cfg(target_os = "linux")]
    common::wait_for("B's workers to exit", || {
        common::threads_named("dropped-b-").is_empty()
    });
}

/// (handler, index passed to it, `current_worker_index()`, thread name)
type HandlerCall = (&'static str, usize, Option<usize>, Option<String>);

/// Exit handlers run once on every worker, on that worker, at shutdown;
/// start handlers once on every worker before.
#[test]
fn exit_handler_runs_on_every_worker() {
    common::arm_watchdog();
    for n in [1, 2, 5] {
        let log: Arc<Mutex<Vec<HandlerCall>>> = Arc::default();
        let (start_log, exit_log) = (Arc::clone(&log), Arc::clone(&log));
        let pool = pilfer::ThreadPool::builder()
            .num_threads(n)
            .pin_workers(false)
            .start_handler(move |i| {
                let name = thread::current().name().map(str::to_string);
                let index = pilfer::current_worker_index();
                start_log.lock().unwrap().push(("start", i, index, name));
            })
            .exit_handler(move |i| {
                let name = thread::current().name().map(str::to_string);
                let index = pilfer::current_worker_index();
                exit_log.lock().unwrap().push(("exit", i, index, name));
            })
            .build()
            .unwrap();
        pool.install(|| ());
        drop(pool);
        let log = log.lock().unwrap();
        for kind in ["start", "exit"] {
            let mut indices: Vec<usize> = log
                .iter()
                .filter(|entry| entry.0 == kind)
                .map(|entry| entry.1)
                .collect();
            indices.sort_unstable();
            assert_eq!(indices, (0..n).collect::<Vec<_>>(), "{kind} handlers");
        }
        for (kind, i, index, name) in log.iter() {
            assert_eq!(*index, Some(*i), "{kind} handler {i} ran off its worker");
            assert_eq!(name.as_deref(), Some(format!("pilfer-{i}").as_str()));
        }
        // Each worker starts before it exits.
        for i in 0..n {
            let start = log.iter().position(|e| e.0 == "start" && e.1 == i);
            let exit = log.iter().position(|e| e.0 == "exit" && e.1 == i);
            assert!(start < exit, "worker {i} exited before starting");
        }
    }
}

/// Build-and-drop many pools, idle or just used: a lost wake-up at shutdown
/// would hang here.
#[test]
fn build_and_drop_many_pools() {
    with_deadline("200 pool lifetimes", || {
        for i in 0..200usize {
            let pool = pool(1 + i % 3);
            match i % 4 {
                0 => {}
                1 => pool.spawn(|| ()),
                2 => assert_eq!(pool.install(|| 7), 7),
                _ => {
                    let task = pool.submit(|| 1);
                    drop(pool);
                    assert_eq!(task.join().unwrap(), 1);
                    continue;
                }
            }
            drop(pool);
        }
    });
}

/// Dropping a pool while outside threads are still spawning into a shared
/// handle: the drop happens when the last `Arc` goes, and every spawn made
/// before then runs.
#[test]
fn last_drop_by_one_of_several_spawning_threads() {
    let counter = Arc::new(AtomicUsize::new(0));
    let pool = Arc::new(pool(2));
    let spawners: Vec<_> = (0..4)
        .map(|_| {
            let pool = Arc::clone(&pool);
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..5_000 {
                    let counter = Arc::clone(&counter);
                    pool.spawn(move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                    });
                }
                // Dropping `pool` here: one of these threads drops the last.
            })
        })
        .collect();
    drop(pool);
    for spawner in spawners {
        spawner.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 20_000);
}

/// Like dropping from one of the pool's own workers, but one step removed: a
/// task of pool A calls `B.install`, and the closure running on B's worker
/// drops A's last handle. A's worker is waiting for that very closure, so
/// the drop must not wait for A's workers to exit; the tasks A accepted
/// still run eventually.
#[test]
fn dropping_last_handle_inside_a_nested_install_does_not_deadlock() {
    let pool_a = Arc::new(pool(1));
    let pool_b = Arc::new(pool(1));
    let (events, event_rx) = mpsc::channel::<&'static str>();
    let (go, go_rx) = mpsc::channel::<()>();
    let last_a = Arc::clone(&pool_a);
    let b = Arc::clone(&pool_b);
    pool_a.spawn(move || {
        go_rx.recv().unwrap();
        let queued = events.clone();
        last_a.spawn(move || queued.send("queued task ran").unwrap());
        // On B's worker, while this worker of A waits for it.
        b.install(move || drop(last_a));
        events.send("install returned").unwrap();
    });
    drop(pool_a);
    go.send(()).unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(
            event_rx
                .recv_timeout(DEADLINE)
                .expect("deadlock: A's last drop on B's worker never returned"),
        );
    }
    seen.sort_unstable();
    assert_eq!(seen, ["install returned", "queued task ran"]);
    assert_eq!(pool_b.install(|| 1), 1, "pool B is stuck");
}

/// A task spawned by an exit handler (on the exiting worker) is accepted
/// like any other spawn, so it must run before the drop returns; it must not
/// be silently dropped (leaking its closure and everything it captured).
#[test]
fn tasks_spawned_by_exit_handlers_still_run() {
    common::arm_watchdog();
    for n in [1, 2] {
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        let pool = pilfer::ThreadPool::builder()
            .num_threads(n)
            .pin_workers(false)
            .exit_handler(move |_| {
                let counter = Arc::clone(&counter);
                pilfer::spawn(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            })
            .build()
            .unwrap();
        assert_eq!(pool.install(|| 1), 1);
        drop(pool);
        // Drop joined every worker: whatever was going to run has run.
        assert_eq!(ran.load(Ordering::SeqCst), n, "{n} threads");
    }
}
