//! Loom models of pilfer's protocols. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

fn pool(threads: usize) -> pilfer::ThreadPool {
    pilfer::ThreadPool::builder()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// A one-worker pool with room for one pending task from outside.
fn bounded_pool() -> pilfer::ThreadPool {
    pilfer::ThreadPool::builder()
        .num_threads(1)
        .max_pending(1)
        .build()
        .unwrap()
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.max_branches = 100_000;
    static ITERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    ITERATIONS.store(0, std::sync::atomic::Ordering::Relaxed);
    builder.check(move || {
        ITERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!(
        "explored {} interleavings",
        ITERATIONS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn task_pushed_while_worker_falls_asleep_runs() {
    model(|| {
        let pool = pool(1);
        let task = pool.submit(|| 7);
        assert_eq!(task.join().unwrap(), 7);
        drop(pool);
    });
}

#[test]
fn two_workers_two_producers() {
    model(|| {
        let pool = Arc::new(pool(2));
        let other = {
            let pool = pool.clone();
            loom::thread::spawn(move || pool.submit(|| 1).join().unwrap())
        };
        let mine = pool.submit(|| 2).join().unwrap();
        assert_eq!(mine + other.join().unwrap(), 3);
    });
}

#[test]
fn join_result_reaches_waiter() {
    model(|| {
        let pool = pool(2);
        let (a, b) = pool.install(|| pilfer::join(|| 1, || 2));
        assert_eq!((a, b), (1, 2));
    });
}

#[test]
fn shutdown_runs_accepted_tasks() {
    model(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = pool(1);
        let counter = ran.clone();
        pool.spawn(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        drop(pool);
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn scope_waits_for_nested_tasks() {
    model(|| {
        let pool = pool(2);
        let count = AtomicUsize::new(0);
        pool.scope(|s| {
            s.spawn(|s| {
                count.fetch_add(1, Ordering::Relaxed);
                s.spawn(|_| {
                    count.fetch_add(1, Ordering::Relaxed);
                });
            });
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn scope_delivers_a_task_panic_once() {
    silence_panics();
    model(|| {
        let pool = pool(2);
        let finished = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.spawn(|_| panic!("task"));
                s.spawn(|_| {
                    finished.fetch_add(1, Ordering::Relaxed);
                });
            })
        }));
        let payload = result.expect_err("the task's panic must reach the scope's caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"task"));
        // Re-raised only after the sibling finished.
        assert_eq!(finished.load(Ordering::Relaxed), 1);
        // The pool still works.
        assert_eq!(pool.install(|| 5), 5);
    });
}

#[test]
fn task_handle_gets_panic() {
    silence_panics();
    model(|| {
        let pool = pool(1);
        let task = pool.submit(|| -> u32 { panic!("boom") });
        let error = task.join().expect_err("the panic must reach the handle");
        let payload = error.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    });
}

#[test]
fn nothing_runs_after_drop_returns() {
    model(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = pool(2);
        for _ in 0..2 {
            let (dropped, ran) = (dropped.clone(), ran.clone());
            pool.spawn(move || {
                assert_eq!(
                    dropped.load(Ordering::Relaxed),
                    0,
                    "task ran after drop returned"
                );
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
        drop(pool);
        dropped.store(1, Ordering::Relaxed);
        assert_eq!(ran.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn nested_pools_do_not_deadlock() {
    model(|| {
        let outer = pool(1);
        let inner = pool(1);
        let value = outer.install(|| inner.install(|| outer.install(|| 3)));
        assert_eq!(value, 3);
    });
}

/// Expected panics would otherwise print once per explored interleaving.
fn silence_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn bounded_pool_blocks_then_rejects_and_hands_the_task_back() {
    model(|| {
        let pool = bounded_pool();
        let gate = Arc::new((loom::sync::Mutex::new(false), loom::sync::Condvar::new()));
        let ran = Arc::new(AtomicUsize::new(0));
        {
            // Occupies the only worker until the gate opens.
            let (gate, ran) = (gate.clone(), ran.clone());
            pool.spawn(move || {
                let (open, condvar) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = condvar.wait(open).unwrap();
                }
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
        {
            // Waits (Block policy) until the worker starts the first task.
            let ran = ran.clone();
            pool.spawn(move || {
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(pool.pending() <= 1);
        // The second task cannot start before the gate opens: no room.
        let handed_back = Arc::new(AtomicUsize::new(0));
        let marker = handed_back.clone();
        let rejected = pool
            .try_spawn(move || {
                marker.fetch_add(1, Ordering::Relaxed);
            })
            .expect_err("the pool is full");
        assert!(rejected.is_full());
        (rejected.into_inner())();
        assert_eq!(handed_back.load(Ordering::Relaxed), 1);
        {
            let (open, condvar) = &*gate;
            *open.lock().unwrap() = true;
            condvar.notify_one();
        }
        drop(pool);
        assert_eq!(ran.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn bounded_pool_with_two_producers_runs_every_accepted_task() {
    model(|| {
        let pool = Arc::new(bounded_pool());
        let ran = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (pool, ran) = (pool.clone(), ran.clone());
            loom::thread::spawn(move || {
                pool.spawn(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                });
                assert!(pool.pending() <= 1);
            })
        };
        let counter = ran.clone();
        pool.spawn(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        assert!(pool.pending() <= 1);
        producer.join().unwrap();
        drop(
            Arc::try_unwrap(pool)
                .ok()
                .expect("the producer dropped its handle"),
        );
        assert_eq!(ran.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn worker_of_another_pool_waiting_for_room_is_woken_by_the_grant() {
    model(|| {
        let bounded = Arc::new(bounded_pool());
        let home = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let (bounded, ran) = (bounded.clone(), ran.clone());
            // The second spawn may find the bound full: `home`'s only worker
            // then waits in its own pool's protocol (nothing else to run, so
            // it sleeps on its parker) until a grant wakes it.
            home.install(move || {
                for _ in 0..2 {
                    let ran = ran.clone();
                    bounded.spawn(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
        drop(
            Arc::try_unwrap(bounded)
                .ok()
                .expect("the installed closure dropped its handle"),
        );
        assert_eq!(ran.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn nested_waits_for_room_on_one_worker_all_get_through() {
    model(|| {
        let bounded = Arc::new(bounded_pool());
        let home = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        {
            let (bounded, ran) = (bounded.clone(), ran.clone());
            home.install(move || {
                // Queued on this worker's own deque: run while the worker
                // waits for room below, so its spawn may wait in line
                // behind the one that is suspended under it.
                let (inner, counter) = (bounded.clone(), ran.clone());
                pilfer::spawn(move || {
                    inner.spawn(move || {
                        counter.fetch_add(1, Ordering::Relaxed);
                    });
                });
                for _ in 0..2 {
                    let ran = ran.clone();
                    bounded.spawn(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
        // `home` runs its detached task before its drop returns.
        drop(home);
        drop(
            Arc::try_unwrap(bounded)
                .ok()
                .expect("home's tasks dropped their handles"),
        );
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn task_joined_on_a_sleeping_worker_wakes_it() {
    model(|| {
        let waiter = pool(1);
        let runner = pool(1);
        // `waiter`'s only worker has nothing else to do, so it sleeps on its
        // pool's parker until the task, run by `runner`, completes.
        let value = waiter.install(|| runner.submit(|| 5).join().unwrap());
        assert_eq!(value, 5);
    });
}

#[test]
fn shutdown_waits_for_work_queued_by_a_running_task() {
    model(|| {
        let pool = pool(2);
        let done = Arc::new((loom::sync::Mutex::new(false), loom::sync::Condvar::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        {
            let (done, seen) = (done.clone(), seen.clone());
            pool.spawn(move || {
                // Queued on this worker's own deque; this task then blocks
                // until it ran, so another worker must run it, also after
                // shutdown has begun.
                let child_done = done.clone();
                pilfer::spawn(move || {
                    let (flag, condvar) = &*child_done;
                    *flag.lock().unwrap() = true;
                    condvar.notify_one();
                });
                let (flag, condvar) = &*done;
                let mut flag = flag.lock().unwrap();
                while !*flag {
                    flag = condvar.wait(flag).unwrap();
                }
                seen.fetch_add(1, Ordering::Relaxed);
            });
        }
        drop(pool);
        assert_eq!(seen.load(Ordering::Relaxed), 1);
    });
}

/// A gate a task waits at until the model opens it.
type Gate = Arc<(loom::sync::Mutex<bool>, loom::sync::Condvar)>;

fn gate() -> Gate {
    Arc::new((loom::sync::Mutex::new(false), loom::sync::Condvar::new()))
}

fn wait_at(gate: &Gate) {
    let (open, condvar) = &**gate;
    let mut open = open.lock().unwrap();
    while !*open {
        open = condvar.wait(open).unwrap();
    }
}

fn open(gate: &Gate) {
    let (open, condvar) = &**gate;
    *open.lock().unwrap() = true;
    condvar.notify_all();
}

#[test]
fn abort_racing_the_start_settles_the_task_once() {
    model(|| {
        let pool = Arc::new(pool(1));
        let ran = Arc::new(AtomicUsize::new(0));
        let task = Arc::new({
            let ran = ran.clone();
            pool.submit(move || {
                ran.fetch_add(1, Ordering::Relaxed);
                5
            })
        });
        let aborter = {
            let task = task.clone();
            loom::thread::spawn(move || task.abort())
        };
        let aborted = aborter.join().unwrap();
        let task = Arc::try_unwrap(task).ok().expect("the aborter is done");
        let outcome = task.join();
        drop(pool);
        // Exactly one of "ran" and "cancelled", and `abort` says which.
        match outcome {
            Ok(5) => assert!(!aborted && ran.load(Ordering::Relaxed) == 1),
            Err(error) => {
                assert!(error.is_cancelled() && aborted);
                assert_eq!(ran.load(Ordering::Relaxed), 0);
            }
            Ok(other) => panic!("joined {other}"),
        }
    });
}

#[test]
fn a_task_awaited_from_outside_wakes_its_waker() {
    model(|| {
        let pool = pool(1);
        let task = pool.submit(|| 7);
        assert_eq!(loom::future::block_on(task).unwrap(), 7);
        drop(pool);
    });
}

#[test]
fn close_refuses_a_producer_blocked_on_the_bound() {
    model(|| {
        silence_panics();
        let pool = Arc::new(bounded_pool());
        let release = gate();
        let started = gate();
        {
            // Occupies the only worker until released.
            let (release, started) = (release.clone(), started.clone());
            pool.spawn(move || {
                open(&started);
                wait_at(&release);
            });
        }
        wait_at(&started);
        // Fills the bound: it cannot start while the worker is busy.
        pool.spawn(|| ());
        let producer = {
            let pool = pool.clone();
            loom::thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.spawn(|| ())))
            })
        };
        pool.close();
        // No slot can free up before the release below: the producer gets
        // through only by being refused.
        assert!(
            producer.join().unwrap().is_err(),
            "spawn on a closed pool panics"
        );
        open(&release);
        drop(Arc::try_unwrap(pool).ok().expect("the producer is done"));
    });
}

#[test]
fn broadcast_runs_once_on_each_worker_and_completes() {
    model(|| {
        let pool = pool(2);
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let indices = pool.broadcast(move |ctx| {
            counter.fetch_add(1, Ordering::Relaxed);
            ctx.index()
        });
        assert_eq!(indices, [0, 1]);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        drop(pool);
    });
}

#[test]
fn use_current_thread_hands_the_thread_back_with_its_work_done() {
    model(|| {
        let pool = pilfer::ThreadPoolBuilder::new()
            .num_threads(2)
            .use_current_thread()
            .build()
            .unwrap();
        assert_eq!(pilfer::current_thread_index(), Some(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        // Queued on this thread's own deque: the other worker steals it, or
        // the shutdown finds it there.
        pool.install(move || {
            pilfer::spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
        });
        drop(pool);
        assert_eq!(pilfer::current_thread_index(), None);
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn a_spare_runs_the_blocked_workers_queued_task_then_retires() {
    model(|| {
        let pool = pilfer::ThreadPool::builder()
            .num_threads(1)
            .max_spare_workers(1)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let task = pool.submit(move || {
            let (done, is_done) = loom::sync::mpsc::channel();
            // Onto this worker's deque: only a spare can run it while the
            // worker blocks below.
            pilfer::spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                done.send(()).unwrap();
            });
            pilfer::block_in_place(|| is_done.recv().unwrap());
            7
        });
        assert_eq!(task.join().unwrap(), 7);
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        // The surplus spare retires or the shutdown finds it on duty; either
        // way the drop waits for it.
        drop(pool);
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    });
}
