//! Small workloads that go through every `unsafe` path of the crate: stack
//! jobs run inline, popped back or stolen; heap jobs, and closures carried
//! inside a job reference; every kind of latch; scope pointers; task
//! results; panics on each path. `scripts/miri.sh` runs this file under
//! Miri, where the sizes shrink.

mod common;

use common::quietly;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

// Work sizes: small under Miri, larger natively. Under Miri, fib still
// nests 11 first halves: past the limit on open join frames, where a join
// records a frame only when a thief asks.
const FIB_N: u64 = if cfg!(miri) { 12 } else { 20 };
const TASKS: usize = if cfg!(miri) { 16 } else { 2_000 };
const ROUNDS: usize = if cfg!(miri) { 2 } else { 20 };

fn pool(threads: usize) -> pilfer::ThreadPool {
    pilfer::ThreadPool::builder()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = pilfer::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

fn fib_reference(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

#[test]
fn join_halves_inline_popped_and_stolen() {
    let pool = pool(2);
    for _ in 0..ROUNDS {
        assert_eq!(pool.install(|| fib(FIB_N)), fib_reference(FIB_N));
    }
    // A `b` that borrows the caller's stack, mutably.
    let mut left = [0u8; 64];
    let mut right = [0u8; 64];
    pool.join(|| left.fill(1), || right.fill(2));
    assert!(left.iter().all(|&x| x == 1) && right.iter().all(|&x| x == 2));
}

#[test]
fn join_panics_wait_for_the_other_half() {
    let pool = pool(2);
    for _ in 0..ROUNDS {
        let finished = AtomicUsize::new(0);
        let result = quietly(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.join(
                    || panic!("a"),
                    || {
                        fib(FIB_N);
                        finished.fetch_add(1, Ordering::SeqCst);
                    },
                )
            }))
        });
        assert!(result.is_err());
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        let result = quietly(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.join(|| fib(FIB_N), || panic!("b"))
            }))
        });
        assert_eq!(*result.unwrap_err().downcast::<&str>().unwrap(), "b");
    }
}

#[test]
fn scope_tasks_borrow_and_nest() {
    let pool = pool(2);
    let mut cells = vec![0usize; TASKS.min(256)];
    let nested = AtomicUsize::new(0);
    pool.scope(|s| {
        for (i, cell) in cells.iter_mut().enumerate() {
            let nested = &nested;
            s.spawn(move |s| {
                *cell = i;
                s.spawn(move |_| {
                    nested.fetch_add(1, Ordering::SeqCst);
                });
            });
        }
    });
    assert!(cells.iter().enumerate().all(|(i, &cell)| cell == i));
    assert_eq!(nested.load(Ordering::SeqCst), cells.len());

    // A body that captures nothing: with the scope's pointer, one word,
    // carried inside the job reference.
    static CAPTURELESS: AtomicUsize = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..ROUNDS {
            s.spawn(|_| {
                CAPTURELESS.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(CAPTURELESS.load(Ordering::SeqCst), ROUNDS);

    let result = quietly(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| s.spawn(|_| panic!("task")))
        }))
    });
    assert!(result.is_err());
}

#[test]
fn install_from_outside_and_across_pools() {
    let outer = pool(1);
    let inner = pool(2);
    assert_eq!(
        outer.install(|| inner.install(|| outer.install(|| fib(FIB_N)))),
        fib_reference(FIB_N)
    );
    let result = quietly(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            outer.install(|| inner.install(|| panic!("deep")))
        }))
    });
    assert!(result.is_err());
}

#[test]
fn tasks_from_outside_and_from_workers() {
    let pool = pool(2);
    let tasks: Vec<_> = (0..TASKS.min(64))
        .map(|i| pool.submit(move || i * 2))
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.join().unwrap(), i * 2);
    }
    // Joined from a worker of the same pool: the worker runs it while waiting.
    let single = self::pool(1);
    let value = single.install(pilfer::current_num_threads);
    assert_eq!(value, 1);
    let nested = single.install(|| {
        let pool = &single;
        pool.submit(|| 7).join().unwrap()
    });
    assert_eq!(nested, 7);
    // Dropped unjoined: the result is freed with the last reference.
    drop(pool.submit(|| vec![1u8; 32]));
    let failed = quietly(|| pool.submit(|| -> u32 { panic!("task") }).join());
    assert!(failed.is_err());
}

#[test]
fn detached_tasks_and_their_panics() {
    let (sender, receiver) = mpsc::channel();
    let pool = pilfer::ThreadPool::builder()
        .num_threads(2)
        .panic_handler(move |payload| {
            let _ = sender.send(payload.downcast_ref::<&str>().copied());
        })
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let ran = Arc::clone(&ran);
        pool.spawn(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    quietly(|| {
        pool.spawn(|| panic!("detached"));
        assert_eq!(
            receiver.recv_timeout(Duration::from_secs(60)).unwrap(),
            Some("detached")
        );
    });
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), TASKS);
}

/// Detached closures of every small shape: those of at most one word
/// travel inside the job reference (nothing captured, a byte, a padded
/// pair, a `Box`, an `Arc`), larger ones are boxed. Each must run once, see
/// the values it captured, and drop them once, spawned from outside and
/// from a worker.
#[test]
fn detached_closures_inline_and_boxed() {
    #[derive(Clone, Copy)]
    struct Padded {
        tag: u8,
        value: u32,
    }
    fn spawn_sized<F: FnOnce() + Send + 'static>(pool: &pilfer::ThreadPool, inline: bool, f: F) {
        let word = std::mem::size_of::<usize>();
        let size = std::mem::size_of::<F>();
        assert_eq!(size <= word, inline, "a closure of {size} bytes");
        pool.spawn(f);
    }
    let pool = pool(2);
    let sum = Arc::new(AtomicUsize::new(0));
    let spawn_all = |sum: &Arc<AtomicUsize>| {
        let pool = &pool;
        for _ in 0..ROUNDS {
            spawn_sized(pool, true, || {});
            let byte = 0xA5u8;
            spawn_sized(pool, true, move || assert_eq!(byte, 0xA5));
            let padded = Padded {
                tag: 0x5A,
                value: 0xDEAD_BEEF,
            };
            spawn_sized(pool, true, move || {
                assert_eq!((padded.tag, padded.value), (0x5A, 0xDEAD_BEEF));
            });
            let boxed = Box::new(0x1234_5678u64);
            spawn_sized(pool, true, move || assert_eq!(*boxed, 0x1234_5678));
            let one = Arc::clone(sum);
            spawn_sized(pool, true, move || {
                one.fetch_add(1, Ordering::SeqCst);
            });
            // Three words: boxed.
            let (other, add, take) = (Arc::clone(sum), 5usize, 5usize);
            spawn_sized(pool, false, move || {
                other.fetch_add(add - take, Ordering::SeqCst);
            });
        }
    };
    spawn_all(&sum);
    let inner = Arc::clone(&sum);
    pool.install(move || spawn_all(&inner));
    let metrics = pool.metrics();
    drop(pool);
    // A task that saw a wrong value panicked, and its panic was counted.
    assert_eq!(metrics.detached_panics(), 0);
    // Each of 2 x ROUNDS rounds added 1 (the `Arc` closure) and 0 (boxed).
    assert_eq!(sum.load(Ordering::SeqCst), 2 * ROUNDS);
    // Every captured clone was dropped: only this handle is left.
    assert_eq!(Arc::strong_count(&sum), 1);
}

#[test]
fn bounded_submission_paths() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(1)
        .max_pending(2)
        .build()
        .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel();
    pool.spawn(move || {
        started.send(()).unwrap();
        gate.recv().unwrap();
    });
    is_started.recv().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let ran = Arc::clone(&ran);
        pool.try_spawn(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let rejected = pool.try_submit(|| 1).unwrap_err();
    assert_eq!((rejected.into_inner())(), 1);
    assert!(
        pool.spawn_timeout(|| (), Duration::from_millis(10))
            .unwrap_err()
            .is_full()
    );
    release.send(()).unwrap();
    drop(pool);
    assert_eq!(ran.load(Ordering::SeqCst), 2);

    let caller_runs = pilfer::ThreadPool::builder()
        .num_threads(1)
        .max_pending(1)
        .when_full(pilfer::FullPolicy::CallerRuns)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..8).map(|i| caller_runs.submit(move || i)).collect();
    let values: Vec<_> = tasks.into_iter().map(|task| task.join().unwrap()).collect();
    assert_eq!(values, (0..8).collect::<Vec<_>>());
}

/// A one-worker pool bounded to one queued task, its worker held until
/// the returned sender sends (or drops).
fn held_bounded_pool() -> (Arc<pilfer::ThreadPool>, mpsc::Sender<()>) {
    let bounded = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(1)
            .max_pending(1)
            .build()
            .unwrap(),
    );
    let (release, gate) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel();
    bounded.spawn(move || {
        started.send(()).unwrap();
        let _ = gate.recv();
    });
    is_started.recv().unwrap();
    (bounded, release)
}

/// Tasks handed to the line of a full pool by a worker of another pool: the
/// job travels in the line and is queued by whichever thread takes a slot
/// for it. Each runs once, its `Task` result read once.
#[test]
fn tasks_handed_over_by_a_worker_of_another_pool() {
    // Its worker held, so that submissions must wait in line.
    let (bounded, release) = held_bounded_pool();
    let home = pool(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let outer = Arc::clone(&bounded);
    let sum = home.install(move || {
        // Queued on this worker's own deque: it runs only once the worker
        // waits in line below, and lets the bounded pool's worker go.
        pilfer::spawn(move || release.send(()).unwrap());
        let tasks: Vec<_> = (0..4u64)
            .map(|i| {
                let ran = Arc::clone(&ran);
                // Boxed: the closure holds more than one word.
                outer.submit(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    i * 10
                })
            })
            .collect();
        let sum: u64 = tasks.into_iter().map(|task| task.join().unwrap()).sum();
        assert_eq!(ran.load(Ordering::SeqCst), 4);
        sum
    });
    assert_eq!(sum, 60);
    drop(home);
    drop(Arc::into_inner(bounded).expect("the only reference"));
}

#[test]
fn shutdown_drains_queued_work() {
    let ran = Arc::new(AtomicUsize::new(0));
    let pool = pool(2);
    for _ in 0..TASKS {
        let ran = Arc::clone(&ran);
        pool.spawn(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), TASKS);
}

/// A waker that unparks the thread that made it.
struct Unparker(std::thread::Thread);

impl std::task::Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` to completion on this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let waker = Arc::new(Unparker(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => return output,
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

/// A task's cell through each of its ends: awaited (the waker registered,
/// re-registered, woken), aborted before its start (the closure dropped by
/// the caller), discarded by `shutdown_now`, and run inline when polled on
/// its own pool.
#[test]
fn task_cells_awaited_aborted_and_discarded() {
    let pool = Arc::new(pool(1));
    let (release, gate) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel();
    let blocker = pool.submit(move || {
        started.send(()).unwrap();
        gate.recv().unwrap();
        String::from("released")
    });
    is_started.recv().unwrap();
    // Queued behind the blocker: one aborted, one awaited from here.
    let payload = Box::new([1u8; 32]); // on the heap: Miri checks its one drop
    let aborted = pool.submit(move || payload.len());
    assert!(aborted.abort());
    let awaited = pool.submit(|| vec![7u8; 4]);
    let waiter = std::thread::spawn(move || block_on(awaited).unwrap());
    std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 10 }));
    release.send(()).unwrap();
    assert_eq!(waiter.join().unwrap(), [7; 4]);
    assert_eq!(blocker.join().unwrap(), "released");
    assert!(aborted.join().unwrap_err().is_cancelled());

    // Polled on a worker of its own pool before it started: runs there.
    let inner = Arc::clone(&pool);
    let inline = pool.install(move || block_on(inner.submit(|| String::from("inline"))));
    assert_eq!(inline.unwrap(), "inline");

    // Discarded: queued behind a blocker when `shutdown_now` runs.
    let (release, gate) = mpsc::channel::<()>();
    let (started, is_started) = mpsc::channel();
    pool.spawn(move || {
        started.send(()).unwrap();
        gate.recv().unwrap();
    });
    is_started.recv().unwrap();
    let discarded = pool.submit(|| vec![0u8; 8]);
    let dropped = Arc::new(AtomicUsize::new(0));
    let guard = Arc::clone(&dropped);
    pool.spawn(move || drop(guard));
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1));
        release.send(()).unwrap();
    });
    let pool = Arc::into_inner(pool).expect("the only reference");
    assert_eq!(pool.shutdown_now(), 2);
    releaser.join().unwrap();
    assert!(discarded.join().unwrap_err().is_cancelled());
    assert_eq!(
        Arc::strong_count(&dropped),
        1,
        "the discarded closure was dropped"
    );
}

/// A worker of another pool waiting in a full bounded pool's line when the
/// pool is closed: its handed-over job comes back and is run once, only to
/// drop what it carries.
#[test]
fn a_refused_job_comes_back_to_its_producer() {
    // Its worker held, so that submissions must wait in line.
    let (bounded, release) = held_bounded_pool();
    bounded.spawn(|| ()); // fills the bound
    let home = pool(1);
    let carried = Arc::new(AtomicUsize::new(0));
    let (in_line, is_in_line) = mpsc::channel();
    let outcome = {
        let (bounded, carried) = (Arc::clone(&bounded), Arc::clone(&carried));
        std::thread::spawn(move || {
            home.install(move || {
                in_line.send(()).unwrap();
                quietly(|| {
                    panic::catch_unwind(AssertUnwindSafe(|| {
                        bounded.submit(move || carried.load(Ordering::SeqCst))
                    }))
                })
                .is_err()
            })
        })
    };
    is_in_line.recv().unwrap();
    std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 10 }));
    bounded.close();
    assert!(outcome.join().unwrap(), "submit on a closed pool panics");
    assert_eq!(
        Arc::strong_count(&carried),
        1,
        "the refused closure was dropped"
    );
    release.send(()).unwrap();
    drop(Arc::into_inner(bounded).expect("the only reference"));
}

/// A spare thread's slot and parker, appended to the pool's tables while
/// other threads read them, then reused by the next spare; and isolated
/// joins, whose second halves carry the isolation to their thief.
#[test]
fn spares_and_isolated_waits() {
    let one = pilfer::ThreadPool::builder()
        .num_threads(1)
        .pin_workers(false)
        .spare_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    for _ in 0..2 {
        let ran = one.install(|| {
            let (done, is_done) = mpsc::channel();
            // On this worker's deque: only a spare can run it meanwhile.
            pilfer::spawn(move || done.send(7).unwrap());
            pilfer::block_in_place(|| is_done.recv().unwrap())
        });
        assert_eq!(ran, 7);
        // Let the spare's keep-alive run out, so the next one reuses its
        // slot.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(one.metrics().spare_workers_started() >= 1);
    drop(one);
    let two = pool(2);
    let total = two.install(|| pilfer::isolate(|| fib(8)));
    assert_eq!(total, fib_reference(8));
}
