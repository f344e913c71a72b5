//! Detached work: `spawn`, `submit` and `Task`, detached panics, and the
//! task counters of `Metrics`.

mod common;

use common::{DEADLINE, panic_message, pool, wait_for, with_deadline};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

const MANY: usize = 100_000;

/// Per-task "ran" flags: records every run and notices duplicates.
struct RunLog {
    ran: Vec<AtomicBool>,
    runs: AtomicUsize,
    duplicates: AtomicUsize,
}

impl RunLog {
    fn new(tasks: usize) -> Arc<RunLog> {
        Arc::new(RunLog {
            ran: (0..tasks).map(|_| AtomicBool::new(false)).collect(),
            runs: AtomicUsize::new(0),
            duplicates: AtomicUsize::new(0),
        })
    }

    fn record(&self, task: usize) {
        if self.ran[task].swap(true, Ordering::Relaxed) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.runs.fetch_add(1, Ordering::SeqCst);
    }

    fn wait_for_all(&self) {
        wait_for("every spawned task ran", || {
            self.runs.load(Ordering::SeqCst) >= self.ran.len()
        });
    }

    fn assert_each_ran_once(&self) {
        assert_eq!(
            self.duplicates.load(Ordering::Relaxed),
            0,
            "a task ran twice"
        );
        let missing = self
            .ran
            .iter()
            .filter(|flag| !flag.load(Ordering::Relaxed))
            .count();
        assert_eq!(missing, 0, "{missing} tasks never ran");
        assert_eq!(self.runs.load(Ordering::SeqCst), self.ran.len());
    }
}

#[test]
fn many_spawns_from_outside_each_run_exactly_once() {
    let pool = pool(2);
    let log = RunLog::new(MANY);
    for task in 0..MANY {
        let log = Arc::clone(&log);
        pool.spawn(move || log.record(task));
    }
    log.wait_for_all();
    let metrics = pool.metrics();
    drop(pool);
    log.assert_each_ran_once();
    assert!(
        metrics.executed() >= MANY as u64,
        "executed() = {} < {MANY}",
        metrics.executed()
    );
    assert!(
        metrics.injector_batches() >= 1,
        "outside spawns bypassed the injector?"
    );
}

/// Spawns from inside a worker go to its own deque; the other workers must
/// steal them, and none may be lost or duplicated.
#[test]
fn many_spawns_from_inside_workers_each_run_exactly_once() {
    for n in [1, 2, 4] {
        let pool = pool(n);
        let log = RunLog::new(MANY);
        pool.install(|| {
            for task in 0..MANY {
                let log = Arc::clone(&log);
                if task % 2 == 0 {
                    pilfer::spawn(move || log.record(task));
                } else {
                    pool.spawn(move || log.record(task));
                }
            }
        });
        log.wait_for_all();
        drop(pool);
        log.assert_each_ran_once();
    }
}

/// Tasks that spawn tasks that spawn tasks.
#[test]
fn spawns_from_spawned_tasks_all_run() {
    fn tree(log: Arc<RunLog>, index: usize) {
        log.record(index);
        for child in [2 * index + 1, 2 * index + 2] {
            if child < log.ran.len() {
                let log = Arc::clone(&log);
                pilfer::spawn(move || tree(log, child));
            }
        }
    }
    let pool = pool(3);
    let log = RunLog::new((1 << 14) - 1);
    let root = Arc::clone(&log);
    pool.spawn(move || tree(root, 0));
    log.wait_for_all();
    drop(pool);
    log.assert_each_ran_once();
}

/// Keeps every worker busy with a relay of local spawns (each task spawns
/// its successor onto its worker's deque) until `stop` is set.
fn start_relays(pool: &Arc<pilfer::ThreadPool>, stop: &Arc<AtomicBool>) {
    fn relay(stop: Arc<AtomicBool>) {
        if !stop.load(Ordering::SeqCst) {
            pilfer::spawn(move || relay(stop));
        }
    }
    for _ in 0..pool.num_threads() {
        let stop = Arc::clone(stop);
        pool.spawn(move || relay(stop));
    }
}

/// A worker that always has local work still takes tasks submitted from
/// outside (it tries the injector first every so often); otherwise they
/// would wait for as long as the local stream lasts.
#[test]
fn outside_tasks_run_while_workers_always_have_local_work() {
    for threads in [1, 2] {
        with_deadline("an outside task behind endless local work", move || {
            let pool = Arc::new(pool(threads));
            let stop = Arc::new(AtomicBool::new(false));
            start_relays(&pool, &stop);
            let values: Vec<usize> = (0..4)
                .map(|i| pool.submit(move || i))
                .map(|task| task.join().unwrap())
                .collect();
            assert_eq!(values, [0, 1, 2, 3], "{threads} threads");
            stop.store(true, Ordering::SeqCst);
        });
    }
}

#[test]
fn concurrent_spawns_from_several_outside_threads() {
    const THREADS: usize = 4;
    const EACH: usize = MANY / THREADS;
    let pool = Arc::new(pool(2));
    let log = RunLog::new(MANY);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = Arc::clone(&pool);
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for i in 0..EACH {
                    let log = Arc::clone(&log);
                    pool.spawn(move || log.record(t * EACH + i));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    log.wait_for_all();
    drop(pool);
    log.assert_each_ran_once();
}

#[test]
fn submit_returns_each_tasks_value() {
    for n in [1, 2] {
        let pool = pool(n);
        let tasks: Vec<_> = (0..10_000u64).map(|i| pool.submit(move || i * i)).collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let i = i as u64;
            assert_eq!(task.join().unwrap(), i * i);
        }
        // Values that own heap data.
        let task = pool.submit(|| vec![String::from("a"); 3]);
        assert_eq!(task.join().unwrap(), vec!["a", "a", "a"]);
    }
}

#[test]
fn submit_panic_becomes_err_and_pool_keeps_working() {
    for n in [1, 2] {
        let pool = pool(n);
        let failing = pool.submit(|| -> u32 { panic!("submitted {}", 42) });
        let payload = failing.join().expect_err("a panicking task returned Ok");
        assert_eq!(panic_message(&*payload.into_panic()), "submitted 42");
        let tasks: Vec<_> = (0..100).map(|i| pool.submit(move || i + 1)).collect();
        let total: i32 = tasks.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 5_050);
        // A panicking `submit` is the caller's to handle: not a detached panic.
        assert_eq!(pool.metrics().detached_panics(), 0);
        common::assert_all_workers_alive(&pool);
    }
}

/// `is_finished` is false while the task is blocked, true once it is done.
#[test]
fn is_finished_tracks_completion() {
    let pool = pool(2);
    let (release, gate) = mpsc::channel::<()>();
    let task = pool.submit(move || {
        gate.recv().unwrap();
        "done"
    });
    assert!(
        !task.is_finished(),
        "finished before it could run to the end"
    );
    release.send(()).unwrap();
    wait_for("is_finished() becomes true", || task.is_finished());
    assert!(task.is_finished());
    assert_eq!(task.join().unwrap(), "done");

    let failing = pool.submit(|| panic!("finished by panicking"));
    wait_for("a panicked task is finished", || failing.is_finished());
    assert!(failing.join().is_err());
}

/// A task joins a task it submitted to its own one-thread pool: the join must
/// run the queued task instead of blocking the only worker.
#[test]
fn task_join_inside_a_one_thread_pool_does_not_deadlock() {
    let pool = Arc::new(pool(1));
    with_deadline("join on own one-thread pool", move || {
        let value = pool.install(|| {
            let task = pool.submit(|| 6 * 7);
            task.join().unwrap()
        });
        assert_eq!(value, 42);

        // Recursively: each task submits and joins its children.
        fn sum_below(pool: &Arc<pilfer::ThreadPool>, n: u64) -> u64 {
            if n == 0 {
                return 0;
            }
            let child_pool = Arc::clone(pool);
            let child = pool.submit(move || sum_below(&child_pool, n - 1));
            n + child.join().unwrap()
        }
        let inner = Arc::clone(&pool);
        let task = pool.submit(move || sum_below(&inner, 200));
        assert_eq!(task.join().unwrap(), 200 * 201 / 2);
    });
}

/// Starts `pool.install(|| task.join())` on a helper thread. Returns the
/// index of the worker that joins, its `parks` count just before it starts
/// waiting, and a receiver for the joined value.
fn join_on_a_worker<T: Send + 'static>(
    pool: &Arc<pilfer::ThreadPool>,
    task: pilfer::Task<T>,
) -> (usize, u64, mpsc::Receiver<T>) {
    let (before_tx, before_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let pool = Arc::clone(pool);
    thread::spawn(move || {
        let value = pool.install(|| {
            let index = pilfer::current_worker_index().unwrap();
            let parks = pool.metrics().workers()[index].parks;
            before_tx.send((index, parks)).unwrap();
            task.join().unwrap()
        });
        let _ = result_tx.send(value);
    });
    let (index, parks) = before_rx.recv_timeout(DEADLINE).unwrap();
    (index, parks, result_rx)
}

/// A worker of pool A waits in `Task::join` for a task of pool B, long
/// enough to fall asleep; the task's completion must wake it.
#[test]
fn task_join_on_a_sleeping_worker_wakes_for_another_pools_task() {
    let pool_a = Arc::new(pool(1));
    let pool_b = pool(1);
    let (release, gate) = mpsc::channel::<()>();
    let task = pool_b.submit(move || {
        gate.recv().unwrap();
        42
    });
    let (joiner, parks_before, result) = join_on_a_worker(&pool_a, task);
    // The joining worker has nothing else to do: wait until it is asleep.
    wait_for("the joining worker parks", || {
        pool_a.metrics().workers()[joiner].parks > parks_before
    });
    release.send(()).unwrap();
    assert_eq!(
        result.recv_timeout(DEADLINE),
        Ok(42),
        "the worker in Task::join was never woken"
    );
}

/// Same within one pool: worker 0 runs the task, worker 1 joins it and
/// falls asleep meanwhile; the task's completion must wake worker 1.
#[test]
fn task_join_on_a_sleeping_worker_wakes_for_a_peers_task() {
    let pool = Arc::new(pool(2));
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let task = pool.submit(move || {
        started_tx.send(pilfer::current_worker_index()).unwrap();
        gate.recv().unwrap();
        7
    });
    let runner = started_rx.recv_timeout(DEADLINE).unwrap().unwrap();
    // The runner is blocked in the task: the other worker takes the install.
    let (joiner, parks_before, result) = join_on_a_worker(&pool, task);
    assert_ne!(joiner, runner);
    wait_for("the joining worker parks", || {
        pool.metrics().workers()[joiner].parks > parks_before
    });
    release.send(()).unwrap();
    assert_eq!(
        result.recv_timeout(DEADLINE),
        Ok(7),
        "the worker in Task::join was never woken"
    );
}

/// Dropping a `Task` detaches it; the closure still runs.
#[test]
fn dropped_task_still_runs() {
    let pool = pool(2);
    let (sender, receiver) = mpsc::channel();
    for i in 0..100 {
        let sender = sender.clone();
        drop(pool.submit(move || sender.send(i).unwrap()));
    }
    drop(sender);
    let mut got: Vec<i32> = receiver.iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

/// With a panic handler, the payload of a detached panic arrives there, and
/// the worker survives.
#[test]
fn detached_panic_goes_to_the_panic_handler() {
    common::arm_watchdog();
    for n in [1, 2] {
        let (sender, receiver) = mpsc::channel();
        let sender = Mutex::new(sender);
        let pool = pilfer::ThreadPool::builder()
            .num_threads(n)
            .pin_workers(false)
            .panic_handler(move |payload| {
                let message = panic_message(&*payload);
                let index = pilfer::current_worker_index();
                sender.lock().unwrap().send((message, index)).unwrap();
            })
            .build()
            .unwrap();
        for i in 0..n * 3 {
            pool.spawn(move || panic!("detached failure {i}"));
        }
        let mut messages: Vec<String> = (0..n * 3)
            .map(|_| {
                let (message, index) = receiver
                    .recv_timeout(DEADLINE)
                    .expect("panic handler never called");
                assert!(index.is_some_and(|i| i < n), "handler ran off-pool");
                message
            })
            .collect();
        messages.sort();
        let mut expected: Vec<String> = (0..n * 3)
            .map(|i| format!("detached failure {i}"))
            .collect();
        expected.sort();
        assert_eq!(messages, expected);

        // Workers still alive, and later tasks still run.
        common::assert_all_workers_alive(&pool);
        let task = pool.submit(|| "after the panics");
        assert_eq!(task.join().unwrap(), "after the panics");
        drop(pool);
        assert!(receiver.try_recv().is_err(), "handler called too often");
    }
}

/// Without a handler, detached panics are counted and nothing else breaks.
#[test]
fn detached_panic_without_handler_is_counted() {
    for n in [1, 2] {
        let pool = pool(n);
        assert_eq!(pool.metrics().detached_panics(), 0);
        for _ in 0..5 {
            pool.spawn(|| panic!("counted detached panic"));
        }
        // Also from inside a worker.
        pool.install(|| pilfer::spawn(|| panic!("counted detached panic")));
        wait_for("six detached panics counted", || {
            pool.metrics().detached_panics() >= 6
        });
        common::assert_all_workers_alive(&pool);
        let counter = Arc::new(AtomicUsize::new(0));
        for _ in 0..1_000 {
            let counter = Arc::clone(&counter);
            pool.spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            });
        }
        let metrics = pool.metrics();
        drop(pool);
        assert_eq!(counter.load(Ordering::Relaxed), 1_000);
        assert_eq!(metrics.detached_panics(), 6);
    }
}

/// A panic handler that itself panics does not take the worker down.
#[test]
fn panicking_panic_handler_does_not_kill_workers() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .panic_handler(|_| panic!("the handler panics too"))
        .build()
        .unwrap();
    for _ in 0..4 {
        pool.spawn(|| panic!("detached"));
    }
    wait_for("four detached panics", || {
        pool.metrics().detached_panics() >= 4
    });
    common::assert_all_workers_alive(&pool);
    assert_eq!(pool.submit(|| 1).join().unwrap(), 1);
}

/// `executed()` counts at least every spawned task of a fresh pool, and the
/// per-worker view has one entry per worker, in order.
#[test]
fn metrics_count_executed_tasks_per_worker() {
    for n in [1, 3] {
        let pool = pool(n);
        let fresh = pool.metrics();
        assert_eq!(fresh.workers().len(), n);
        assert_eq!(fresh.detached_panics(), 0);

        const TASKS: usize = 5_000;
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..TASKS {
            let done = Arc::clone(&done);
            pool.spawn(move || {
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        wait_for("all counted tasks ran", || {
            done.load(Ordering::SeqCst) == TASKS
        });
        let metrics = pool.metrics();
        assert_eq!(metrics.workers().len(), n);
        for (i, worker) in metrics.workers().iter().enumerate() {
            assert_eq!(worker.index, i);
        }
        let per_worker: u64 = metrics.workers().iter().map(|w| w.executed).sum();
        assert_eq!(per_worker, metrics.executed());
        assert!(
            metrics.executed() >= TASKS as u64,
            "executed() = {} < {TASKS}",
            metrics.executed()
        );
        // Counters only grow.
        let later = pool.metrics();
        assert!(later.executed() >= metrics.executed());
        assert!(later.injector_batches() >= metrics.injector_batches());
    }
}

/// `pilfer::spawn` outside every pool runs on the global pool.
#[test]
fn free_spawn_outside_any_pool_uses_the_global_pool() {
    common::arm_watchdog();
    let (sender, receiver) = mpsc::channel();
    pilfer::spawn(move || {
        sender
            .send((
                pilfer::current_worker_index(),
                pilfer::current_num_threads(),
            ))
            .unwrap()
    });
    let (index, threads) = receiver.recv_timeout(DEADLINE).unwrap();
    assert_eq!(threads, pilfer::current_num_threads());
    assert!(index.is_some_and(|i| i < threads), "{index:?}");
}
