//! A task's and a pool's lifecycle: `Task` as a future (two executors),
//! `TaskError`, `Task::abort`, `ThreadPool::close`, `shutdown_timeout` and
//! `shutdown_now`.
#![cfg(not(loom))]

mod common;

use common::{DEADLINE, expect_panic, occupy, panic_message, pool, quietly, with_deadline};
use pilfer::{TaskError, ThreadPool, TrySpawnError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Records, when dropped, that it was and on which thread.
struct DropProbe {
    drops: Arc<AtomicUsize>,
    thread: Arc<Mutex<Option<ThreadId>>>,
}

impl DropProbe {
    fn new() -> (DropProbe, Arc<AtomicUsize>, Arc<Mutex<Option<ThreadId>>>) {
        let drops = Arc::new(AtomicUsize::new(0));
        let thread = Arc::new(Mutex::new(None));
        let probe = DropProbe {
            drops: Arc::clone(&drops),
            thread: Arc::clone(&thread),
        };
        (probe, drops, thread)
    }
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        *self.thread.lock().unwrap() = Some(thread::current().id());
    }
}

fn bounded(threads: usize, max_pending: usize) -> ThreadPool {
    common::arm_watchdog();
    ThreadPool::builder()
        .num_threads(threads)
        .pin_workers(false)
        .max_pending(max_pending)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Task as a future.

#[test]
fn a_task_is_a_future_on_the_futures_executor() {
    let pool = pool(2);
    let tasks: Vec<_> = (0..50u64).map(|i| pool.submit(move || i * i)).collect();
    let values = with_deadline("block_on", move || {
        futures::executor::block_on(async move {
            let mut values = Vec::new();
            for task in tasks {
                values.push(task.await.unwrap());
            }
            values
        })
    });
    assert_eq!(values, (0..50u64).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn a_task_is_a_future_on_tokios_current_thread_runtime() {
    let pool = Arc::new(pool(2));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let total = runtime.block_on(async {
        // Several tasks awaited concurrently from one executor thread,
        // each finishing later than it was first polled.
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                let task = pool.submit(move || {
                    thread::sleep(Duration::from_millis(2));
                    i
                });
                tokio::spawn(async move { task.await.unwrap() })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total
    });
    assert_eq!(total, 28);
}

#[test]
fn awaiting_a_panicked_task_yields_its_payload() {
    let pool = pool(1);
    let task = pool.submit(|| -> u8 { std::panic::panic_any(7_u32) });
    let error = quietly(|| futures::executor::block_on(task)).unwrap_err();
    assert!(error.is_panic() && !error.is_cancelled());
    assert_eq!(*error.into_panic().downcast::<u32>().unwrap(), 7);
}

#[test]
fn a_task_awaited_on_its_own_single_worker_runs_there() {
    let pool = Arc::new(pool(1));
    let inner = Arc::clone(&pool);
    let value = with_deadline("block_on on the only worker", move || {
        pool.install(move || {
            // Submitted from the worker: it goes to the worker's own deque,
            // which nobody else will ever take from.
            let task = inner.submit(|| 6 * 7);
            futures::executor::block_on(task).unwrap()
        })
    });
    assert_eq!(value, 42);
}

#[test]
fn a_waker_registered_before_completion_is_woken() {
    let pool = pool(1);
    let (release, blocked) = mpsc::channel::<()>();
    let task = pool.submit(move || {
        blocked.recv().unwrap();
        "done"
    });
    let (polled, was_polled) = mpsc::channel();
    let waiter = thread::spawn(move || {
        futures::executor::block_on(async move {
            polled.send(()).unwrap();
            task.await.unwrap()
        })
    });
    was_polled.recv_timeout(DEADLINE).unwrap();
    thread::sleep(Duration::from_millis(10));
    release.send(()).unwrap();
    assert_eq!(waiter.join().unwrap(), "done");
}

// ---------------------------------------------------------------------------
// TaskError.

#[test]
fn task_error_says_what_happened() {
    let pool = pool(1);
    let error = quietly(|| pool.submit(|| -> () { panic!("boom") }).join()).unwrap_err();
    assert!(error.is_panic());
    assert_eq!(error.to_string(), "the task panicked");
    assert_eq!(format!("{error:?}"), "TaskError::Panic(..)");
    let error: Box<dyn std::error::Error> = Box::new(error);
    let error = match error.downcast::<TaskError>() {
        Ok(error) => *error,
        Err(_) => panic!("not a TaskError"),
    };
    assert_eq!(panic_message(&*error.try_into_panic().unwrap()), "boom");

    let occupied = occupy(&pool);
    let task = pool.submit(|| ());
    assert!(task.abort());
    let error = task.join().unwrap_err();
    assert!(error.is_cancelled() && !error.is_panic());
    assert_eq!(
        error.to_string(),
        "the task was cancelled before it started"
    );
    assert_eq!(format!("{error:?}"), "TaskError::Cancelled");
    let error = error.try_into_panic().unwrap_err();
    let message = expect_panic(move || error.into_panic());
    assert!(message.contains("cancelled"), "{message}");
    occupied.release();
}

// ---------------------------------------------------------------------------
// Task::abort.

#[test]
fn abort_drops_the_closure_at_once_on_the_calling_thread() {
    let pool = pool(1);
    let occupied = occupy(&pool);
    let (probe, drops, dropped_on) = DropProbe::new();
    let task = pool.submit(move || {
        let _probe = probe;
        "ran"
    });
    assert!(!task.is_finished());
    assert!(task.abort(), "the closure had not started");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped at once");
    assert_eq!(*dropped_on.lock().unwrap(), Some(thread::current().id()));
    assert!(task.is_finished());
    assert!(!task.abort(), "a second abort finds it cancelled");
    assert_eq!(pool.metrics().cancelled(), 1);
    occupied.release();
    let error = task.join().unwrap_err();
    assert!(error.is_cancelled());
    // The worker later finds the cancelled job and leaves it alone.
    drop(pool);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
}

#[test]
fn abort_after_the_start_lets_the_task_finish() {
    let pool = pool(1);
    let (started, is_started) = mpsc::channel();
    let (release, blocked) = mpsc::channel::<()>();
    let task = pool.submit(move || {
        started.send(()).unwrap();
        blocked.recv().unwrap();
        5
    });
    is_started.recv_timeout(DEADLINE).unwrap();
    assert!(!task.abort(), "already started");
    release.send(()).unwrap();
    assert_eq!(task.join().unwrap(), 5);
    assert_eq!(pool.metrics().cancelled(), 0);
}

#[test]
fn abort_gives_the_slot_of_the_bound_back_at_once() {
    let pool = bounded(1, 2);
    let occupied = occupy(&pool);
    let first = pool.submit(|| 1);
    let second = pool.submit(|| 2);
    assert_eq!(pool.pending(), 2);
    assert!(matches!(pool.try_spawn(|| ()), Err(TrySpawnError::Full(_))));
    assert!(first.abort());
    assert_eq!(pool.pending(), 1, "the slot came back with the abort");
    pool.try_spawn(|| ()).expect("room again");
    occupied.release();
    assert_eq!(second.join().unwrap(), 2);
    assert!(first.join().unwrap_err().is_cancelled());
}

#[test]
fn a_panicking_destructor_of_an_aborted_closure_goes_to_the_handler() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("closure dropped");
        }
    }
    let (pool, handled) = common::pool_recording_panics(1);
    let occupied = occupy(&pool);
    let bomb = PanicsOnDrop;
    let task = pool.submit(move || drop(bomb));
    assert!(quietly(|| task.abort()));
    assert_eq!(*handled.lock().unwrap(), ["closure dropped"]);
    assert!(task.join().unwrap_err().is_cancelled());
    occupied.release();
}

/// Many tasks, each raced by an `abort` from another thread against the
/// worker that starts it: each closure runs or is cancelled, never both or
/// neither, and is dropped exactly once.
#[test]
fn abort_racing_the_start_settles_every_task_once() {
    let pool = Arc::new(pool(2));
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    const TASKS: usize = 4_000;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (ran, dropped) = (Arc::clone(&ran), Arc::clone(&dropped));
            let guard = CountDrop(dropped);
            pool.submit(move || {
                let _guard = guard;
                ran.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let tasks = Arc::new(tasks);
    let cancelled: usize = (0..2)
        .map(|half| {
            let tasks = Arc::clone(&tasks);
            thread::spawn(move || {
                tasks
                    .iter()
                    .skip(half)
                    .step_by(2)
                    .filter(|task| task.abort())
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|aborter| aborter.join().unwrap())
        .sum();
    let tasks = Arc::into_inner(tasks).unwrap();
    let mut outcomes = (0, 0);
    for task in tasks {
        match task.join() {
            Ok(()) => outcomes.0 += 1,
            Err(error) if error.is_cancelled() => outcomes.1 += 1,
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    drop(Arc::into_inner(pool).unwrap());
    assert_eq!(outcomes.1, cancelled);
    assert_eq!(outcomes.0 + outcomes.1, TASKS);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        outcomes.0,
        "ran = not cancelled"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        TASKS,
        "each closure dropped once"
    );
}

struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// close.

#[test]
fn close_refuses_outside_work_and_hands_closures_back() {
    let pool = pool(2);
    let accepted = pool.submit(|| "accepted before");
    pool.close();
    assert!(pool.is_closed());
    let (probe, drops, _) = DropProbe::new();
    match pool.try_spawn(move || drop(probe)) {
        Err(TrySpawnError::ShutDown(closure)) => {
            assert_eq!(drops.load(Ordering::SeqCst), 0, "handed back intact");
            closure();
        }
        other => panic!("expected ShutDown, got {other:?}"),
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(pool.try_submit(|| ()).unwrap_err().is_shut_down());
    assert!(
        pool.spawn_timeout(|| (), DEADLINE)
            .unwrap_err()
            .is_shut_down()
    );
    assert!(
        pool.submit_timeout(|| (), DEADLINE)
            .unwrap_err()
            .is_shut_down()
    );
    assert!(expect_panic(|| pool.spawn(|| ())).contains("closed pool"));
    assert!(expect_panic(|| pool.submit(|| ())).contains("closed pool"));
    assert!(expect_panic(|| pool.install(|| ())).contains("closed pool"));
    assert!(expect_panic(|| pool.join(|| (), || ())).contains("closed pool"));
    assert!(expect_panic(|| pool.scope(|_| ())).contains("closed pool"));
    assert_eq!(accepted.join().unwrap(), "accepted before");
}

#[test]
fn a_closed_pool_still_runs_what_its_tasks_spawn() {
    let pool = Arc::new(pool(2));
    let (go, wait) = mpsc::channel::<()>();
    let (done, is_done) = mpsc::channel();
    let inner = Arc::clone(&pool);
    pool.spawn(move || {
        wait.recv().unwrap();
        // On a worker of the closed pool: its own work is not refused.
        let child = inner.submit(|| 21 * 2);
        inner.spawn(move || done.send(child.join().unwrap()).unwrap());
    });
    pool.close();
    go.send(()).unwrap();
    assert_eq!(is_done.recv_timeout(DEADLINE).unwrap(), 42);
}

#[test]
fn close_wakes_producers_blocked_on_a_full_bound() {
    let pool = Arc::new(bounded(1, 1));
    let occupied = occupy(&pool);
    pool.spawn(|| ()); // fills the bound
    let waiting = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..3)
        .map(|i| {
            let (pool, waiting) = (Arc::clone(&pool), Arc::clone(&waiting));
            thread::spawn(move || {
                waiting.fetch_add(1, Ordering::SeqCst);
                if i == 0 {
                    // `spawn` under `Block` cannot return the refusal.
                    let message = quietly(|| expect_panic(|| pool.spawn(|| ())));
                    assert!(message.contains("closed pool"), "{message}");
                    true
                } else {
                    pool.spawn_timeout(|| (), DEADLINE)
                        .unwrap_err()
                        .is_shut_down()
                }
            })
        })
        .collect();
    common::wait_for("producers waiting", || waiting.load(Ordering::SeqCst) == 3);
    thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    pool.close();
    for producer in producers {
        assert!(producer.join().unwrap(), "refused with ShutDown");
    }
    assert!(start.elapsed() < DEADLINE / 2);
    occupied.release();
}

#[test]
fn close_refuses_a_worker_of_another_pool_waiting_in_line() {
    let target = Arc::new(bounded(1, 1));
    let occupied = occupy(&target);
    target.spawn(|| ()); // fills the bound
    let other = pool(1);
    let (probe, drops, _) = DropProbe::new();
    let (in_line, is_in_line) = mpsc::channel();
    let outcome = {
        let target = Arc::clone(&target);
        thread::spawn(move || {
            other.install(move || {
                in_line.send(()).unwrap();
                quietly(|| expect_panic(|| target.spawn(move || drop(probe))))
            })
        })
    };
    is_in_line.recv_timeout(DEADLINE).unwrap();
    thread::sleep(Duration::from_millis(20));
    target.close();
    let message = outcome.join().unwrap();
    assert!(message.contains("closed pool"), "{message}");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the refused closure was dropped"
    );
    occupied.release();
}

// ---------------------------------------------------------------------------
// shutdown_timeout and shutdown_now.

#[test]
fn shutdown_timeout_waits_for_accepted_tasks() {
    let pool = pool(2);
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let done = Arc::clone(&done);
        pool.spawn(move || {
            thread::sleep(Duration::from_millis(1));
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert!(pool.shutdown_timeout(DEADLINE));
    assert_eq!(done.load(Ordering::SeqCst), 20);
}

#[test]
fn shutdown_timeout_returns_in_time_when_a_task_never_ends() {
    let pool = pool(1);
    let (release, blocked) = mpsc::channel::<()>();
    let (finished, has_finished) = mpsc::channel();
    pool.spawn(move || {
        let _ = blocked.recv();
        finished.send(()).unwrap();
    });
    let start = Instant::now();
    assert!(!pool.shutdown_timeout(Duration::from_millis(50)));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(50),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The worker finishes in the background once the task can.
    release.send(()).unwrap();
    has_finished.recv_timeout(DEADLINE).unwrap();
}

#[test]
fn shutdown_now_discards_what_has_not_started() {
    let (pool, handled) = common::pool_recording_panics(1);
    let (started, is_started) = mpsc::channel();
    let (release, blocked) = mpsc::channel::<()>();
    let running = pool.submit(move || {
        started.send(()).unwrap();
        blocked.recv().unwrap();
        "finished"
    });
    is_started.recv_timeout(DEADLINE).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (counter, guard) = (Arc::clone(&ran), CountDrop(Arc::clone(&dropped)));
        tasks.push(pool.submit(move || {
            let _guard = guard;
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let (counter, guard) = (Arc::clone(&ran), CountDrop(Arc::clone(&dropped)));
        pool.spawn(move || {
            let _guard = guard;
            counter.fetch_add(1, Ordering::SeqCst);
        });
    }
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("discarded closure dropped");
        }
    }
    let bomb = PanicsOnDrop;
    pool.spawn(move || drop(bomb));
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        release.send(()).unwrap();
    });
    let discarded = quietly(|| pool.shutdown_now());
    releaser.join().unwrap();
    assert_eq!(discarded, 11);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "nothing discarded ran");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        10,
        "each dropped exactly once"
    );
    assert_eq!(
        running.join().unwrap(),
        "finished",
        "the running task finished"
    );
    for task in tasks {
        assert!(task.join().unwrap_err().is_cancelled());
    }
    assert_eq!(*handled.lock().unwrap(), ["discarded closure dropped"]);
}

#[test]
fn shutdown_now_on_an_idle_pool_discards_nothing() {
    let pool = pool(2);
    assert_eq!(pool.install(|| 1 + 1), 2);
    let metrics = pool.metrics();
    assert_eq!(pool.shutdown_now(), 0);
    assert_eq!(metrics.cancelled(), 0);
}

/// Once a shutdown that waited returns, the pool's state is gone: what its
/// handlers captured has been dropped, as after a plain drop.
#[test]
fn shutdown_timeout_and_shutdown_now_free_the_pool() {
    type Shutdown = fn(ThreadPool);
    let shutdowns: [(&str, Shutdown); 3] = [
        ("drop", drop),
        ("shutdown_timeout", |pool| {
            assert!(pool.shutdown_timeout(DEADLINE))
        }),
        ("shutdown_now", |pool| assert_eq!(pool.shutdown_now(), 0)),
    ];
    for (how, shutdown) in shutdowns {
        common::arm_watchdog();
        let captured = Arc::new(());
        let held = Arc::clone(&captured);
        let pool = ThreadPool::builder()
            .num_threads(2)
            .pin_workers(false)
            .panic_handler(move |_| drop(Arc::clone(&held)))
            .build()
            .unwrap();
        assert_eq!(pool.install(|| 1 + 1), 2);
        shutdown(pool);
        assert_eq!(
            Arc::strong_count(&captured),
            1,
            "{how}: the pool's panic handler is still alive"
        );
    }
}

/// Producers, `abort` callers and `shutdown_now` all at once: every task
/// accepted is either executed or cancelled, exactly, and every closure is
/// dropped exactly once.
#[test]
fn accepted_is_executed_plus_cancelled_under_a_race() {
    for round in 0..10 {
        let pool = Arc::new(bounded(2, 16));
        let executed = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let cancelled_by_abort = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..3)
            .map(|producer| {
                let pool = Arc::clone(&pool);
                let made = Arc::clone(&made);
                let (executed, dropped) = (Arc::clone(&executed), Arc::clone(&dropped));
                let (accepted, aborted) = (Arc::clone(&accepted), Arc::clone(&cancelled_by_abort));
                thread::spawn(move || {
                    for i in 0.. {
                        made.fetch_add(1, Ordering::SeqCst);
                        let (executed, guard) =
                            (Arc::clone(&executed), CountDrop(Arc::clone(&dropped)));
                        let work = move || {
                            let _guard = guard;
                            executed.fetch_add(1, Ordering::SeqCst);
                        };
                        let submitted = if (i + producer) % 2 == 0 {
                            pool.try_submit(work)
                                .map(Some)
                                .map_err(TrySpawnError::into_inner)
                        } else {
                            pool.try_spawn(work)
                                .map(|()| None)
                                .map_err(TrySpawnError::into_inner)
                        };
                        match submitted {
                            Ok(task) => {
                                accepted.fetch_add(1, Ordering::SeqCst);
                                let abort = i % 3 == 0;
                                if task.is_some_and(|task| abort && task.abort()) {
                                    aborted.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            // Rejected (full, or shut down): handed back, dropped here.
                            Err(work) => {
                                drop(work);
                                if pool.is_closed() {
                                    return;
                                }
                                thread::yield_now();
                            }
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(2 + round));
        pool.close();
        for producer in producers {
            producer.join().unwrap();
        }
        let pool = Arc::into_inner(pool).expect("producers are done");
        let metrics_before = pool.metrics().cancelled() as usize;
        let discarded = pool.shutdown_now();
        let executed = executed.load(Ordering::SeqCst);
        let accepted = accepted.load(Ordering::SeqCst);
        let aborted = cancelled_by_abort.load(Ordering::SeqCst);
        assert_eq!(metrics_before, aborted, "round {round}");
        assert_eq!(
            executed + aborted + discarded,
            accepted,
            "round {round}: {executed} executed, {aborted} aborted, {discarded} discarded"
        );
        // Every closure made was dropped once: the accepted ones and the
        // rejected ones alike.
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            made.load(Ordering::SeqCst),
            "round {round}: closures dropped"
        );
    }
}
