//! Panics raised where the scheduler, not a task body, runs user code: the
//! `Drop` of a result nobody joined, of a panic payload, of a losing scope
//! panic, of `b`'s value when `a` panicked; and where a panic is routed
//! (`CallerRuns`, one-thread `join`).
//! None may unwind through a worker (which would kill it, or free stack
//! frames other threads still use).

mod common;

use common::{DEADLINE, occupy, quietly, with_deadline};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

/// Panics when dropped (unless already unwinding).
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("Bomb dropped");
        }
    }
}

fn one_thread_pool() -> Arc<pilfer::ThreadPool> {
    Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(1)
            .build()
            .unwrap(),
    )
}

/// `pool.install(f)` on a helper thread, failing the test after `DEADLINE`.
fn install_within_deadline<R: Send + 'static>(
    pool: &Arc<pilfer::ThreadPool>,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let pool = Arc::clone(pool);
    with_deadline("install", move || pool.install(f))
}

#[test]
fn unjoined_task_whose_result_panics_on_drop_leaves_the_worker_alive() {
    let pool = one_thread_pool();
    quietly(|| {
        drop(pool.submit(|| Bomb));
        // The only worker survived: it still runs work.
        assert_eq!(install_within_deadline(&pool, || 7), 7);
    });
    common::wait_for("the drop panic to be counted", || {
        pool.metrics().detached_panics() == 1
    });
}

#[test]
fn panic_payload_that_panics_on_drop_leaves_the_worker_alive() {
    let pool = one_thread_pool();
    quietly(|| {
        pool.spawn(|| panic::panic_any(Bomb));
        assert_eq!(install_within_deadline(&pool, || 7), 7);
    });
    assert!(pool.metrics().detached_panics() >= 1);
}

#[test]
fn panicking_drop_in_one_task_does_not_unwind_a_waiting_scope() {
    let pool = one_thread_pool();
    let inner = Arc::clone(&pool);
    let sum = quietly(|| {
        install_within_deadline(&pool, move || {
            let data: Vec<u64> = (0..1000).collect();
            let sum = AtomicUsize::new(0);
            pilfer::scope(|s| {
                let (data, sum) = (&data, &sum);
                s.spawn(move |_| {
                    sum.store(data.iter().sum::<u64>() as usize, Ordering::SeqCst);
                });
                // Same deque, so it runs first while the scope waits.
                drop(inner.submit(|| Bomb));
            });
            sum.load(Ordering::SeqCst)
        })
    });
    assert_eq!(sum, 499_500);
}

#[test]
fn losing_scope_panic_that_panics_on_drop_is_contained() {
    let pool = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let result = quietly(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for _ in 0..4 {
                    s.spawn(|_| panic::panic_any(Bomb));
                }
            })
        }))
    });
    // One panic reaches the caller (it is a `Bomb`; forget it rather than
    // set it off here).
    let payload = result.expect_err("the scope must re-raise a task's panic");
    assert!(payload.is::<Bomb>());
    std::mem::forget(payload);
    assert_eq!(install_within_deadline(&pool, || 1), 1);
}

/// With one thread `b` runs after `a`'s panic was caught, as it does with
/// more threads: not while unwinding.
#[test]
fn one_thread_join_runs_b_outside_unwinding() {
    for threads in [1, 2] {
        let pool = pilfer::ThreadPool::builder()
            .num_threads(threads)
            .build()
            .unwrap();
        let b_saw_panicking = Arc::new(AtomicUsize::new(2));
        let seen = Arc::clone(&b_saw_panicking);
        let result = quietly(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.join(
                    || panic!("a"),
                    move || seen.store(thread::panicking() as usize, Ordering::SeqCst),
                )
            }))
        });
        assert!(result.is_err());
        assert_eq!(
            b_saw_panicking.load(Ordering::SeqCst),
            0,
            "{threads} threads"
        );
    }
}

/// A `CallerRuns` task that panics on the submitting thread goes to the
/// pool's handler and metrics, whichever thread submitted it.
#[test]
fn caller_runs_panics_reach_the_pools_handler() {
    let (sender, handled) = mpsc::channel();
    let pool = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(1)
            .max_pending(1)
            .when_full(pilfer::FullPolicy::CallerRuns)
            .panic_handler(move |_| sender.send(()).unwrap())
            .build()
            .unwrap(),
    );
    // Occupy the worker and the one pending slot.
    let occupied = occupy(&pool);
    pool.spawn(|| ());
    let other = pilfer::ThreadPool::builder()
        .num_threads(1)
        .build()
        .unwrap();
    quietly(|| {
        // From an outside thread, and from a worker of another pool.
        pool.spawn(|| panic!("caller runs"));
        let pool_in_other = Arc::clone(&pool);
        other.install(move || pool_in_other.spawn(|| panic!("caller runs, other pool")));
    });
    occupied.release();
    for _ in 0..2 {
        handled
            .recv_timeout(DEADLINE)
            .expect("the pool's panic handler was called");
    }
    assert_eq!(pool.metrics().detached_panics(), 2);
    assert_eq!(other.metrics().detached_panics(), 0);
}

/// `a` panics and `b` returns a value whose `Drop` panics: `join` drops that
/// value while it handles `a`'s panic, and `a`'s panic is still the one that
/// reaches the caller, on the frame-less path (one thread: no frames) and
/// on the frame path (two threads: the outermost joins record frames).
#[test]
fn join_keeps_as_panic_when_bs_value_panics_on_drop() {
    for threads in [1, 2] {
        let pool = pilfer::ThreadPool::builder()
            .num_threads(threads)
            .build()
            .unwrap();
        let result = quietly(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.join(|| -> u8 { panic::panic_any("a") }, || Bomb)
            }))
        });
        let payload = match result {
            Ok(_) => panic!("{threads} threads: a's panic did not reach the caller"),
            Err(payload) => payload,
        };
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"a"),
            "{threads} threads: b's panicking Drop replaced a's panic"
        );
    }
}
