//! `ThreadPool::install`: where the closure runs, its result and panics, and
//! nesting pools inside each other without deadlock.

mod common;

use common::{expect_panic, fib, fib_sequential, pool, with_deadline};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

const SIZES: [usize; 3] = [1, 2, 4];

#[test]
fn install_runs_on_a_worker_of_that_pool() {
    for n in SIZES {
        let pool = pool(n);
        let caller = thread::current().id();
        let (index, threads, thread_id, name) = pool.install(|| {
            (
                pilfer::current_worker_index(),
                pilfer::current_num_threads(),
                thread::current().id(),
                thread::current().name().map(str::to_string),
            )
        });
        assert!(index.is_some_and(|i| i < n), "index {index:?} of {n}");
        assert_eq!(threads, n);
        assert_ne!(thread_id, caller, "install ran on the calling thread");
        assert_eq!(name, Some(format!("pilfer-{}", index.unwrap())));
    }
    assert_eq!(pilfer::current_worker_index(), None);
}

/// The closure may borrow (also mutably) from the caller; its result comes
/// back.
#[test]
fn install_returns_the_result_and_borrows_the_stack() {
    let pool = pool(2);
    let mut numbers: Vec<u64> = (0..1_000).collect();
    let sum = pool.install(|| {
        numbers.iter_mut().for_each(|x| *x *= 2);
        numbers.iter().sum::<u64>()
    });
    assert_eq!(sum, 999 * 1_000);
    assert_eq!(numbers[999], 1_998);
}

#[test]
fn install_panic_reaches_the_caller_and_pool_keeps_working() {
    for n in SIZES {
        let pool = pool(n);
        for round in 0..3 {
            let message = expect_panic(|| pool.install(|| panic!("install failed {round}")));
            assert_eq!(message, format!("install failed {round}"));
        }
        assert_eq!(pool.install(|| fib(15)), fib_sequential(15));
        common::assert_all_workers_alive(&pool);
    }
}

/// `install` on the pool the caller already works for runs inline.
#[test]
fn install_from_own_worker_runs_inline() {
    let pool = pool(2);
    let (outer, inner) = pool.install(|| {
        let outer = (thread::current().id(), pilfer::current_worker_index());
        let inner = pool.install(|| (thread::current().id(), pilfer::current_worker_index()));
        (outer, inner)
    });
    assert_eq!(outer, inner);
}

/// Inside `install`, the free functions use the installing pool.
#[test]
fn free_functions_inside_install_use_that_pool() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .thread_name(|i| format!("installed-{i}"))
        .build()
        .unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    pool.install(|| {
        let (a, b) = pilfer::join(
            || thread::current().name().map(str::to_string),
            || thread::current().name().map(str::to_string),
        );
        sender.send(a).unwrap();
        sender.send(b).unwrap();
        let sender = sender.clone();
        pilfer::spawn(move || {
            sender
                .send(thread::current().name().map(str::to_string))
                .unwrap()
        });
    });
    drop(sender);
    let names: Vec<_> = receiver.iter().collect();
    assert_eq!(names.len(), 3);
    for name in names {
        assert!(
            name.as_deref().is_some_and(|n| n.starts_with("installed-")),
            "{name:?}"
        );
    }
}

/// install / join / scope on pool B from a worker of pool A, for single- and
/// multi-thread pools.
#[test]
fn nested_pools_do_not_deadlock() {
    for (a_threads, b_threads) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        let pool_a = pool(a_threads);
        let pool_b = pool(b_threads);
        with_deadline("nested pools", move || {
            let result = pool_a.install(|| {
                let in_b = pool_b.install(|| {
                    assert_eq!(pilfer::current_num_threads(), b_threads);
                    fib(12)
                });
                assert_eq!(pilfer::current_num_threads(), a_threads);
                let (x, y) = pool_b.join(|| fib(10), || fib(11));
                let mut slots = [0u64; 8];
                pool_b.scope(|s| {
                    for (i, slot) in slots.iter_mut().enumerate() {
                        s.spawn(move |_| *slot = fib(i as u64));
                    }
                });
                in_b + x + y + slots.iter().sum::<u64>()
            });
            let expected = 144 + 55 + 89 + (0..8).map(fib_sequential).sum::<u64>();
            assert_eq!(result, expected, "A={a_threads} B={b_threads}");
        });
    }
}

/// A → B → A → B: each pool's worker waits on the other while the other
/// calls back into it. With one thread each, the only way through is for a
/// waiting worker to keep running its own pool's work.
#[test]
fn pools_calling_back_into_each_other() {
    for threads in [1, 2] {
        let pool_a = Arc::new(pool(threads));
        let pool_b = Arc::new(pool(threads));
        with_deadline("A -> B -> A -> B", move || {
            let depth = pool_a.install(|| {
                pool_b.install(|| {
                    let a_index = pool_a.install(|| {
                        pool_b.install(|| assert!(pilfer::current_worker_index().is_some()));
                        pilfer::current_worker_index()
                    });
                    assert!(a_index.is_some_and(|i| i < threads));
                    pool_a.join(|| 1, || 2).0 + pool_b.join(|| 1, || 2).1
                })
            });
            assert_eq!(depth, 3);
        });
    }
}

/// Both pools keep crossing over many times from several workers at once.
#[test]
fn pools_cross_calling_concurrently() {
    let pool_a = Arc::new(pool(2));
    let pool_b = Arc::new(pool(2));
    let calls = Arc::new(AtomicUsize::new(0));
    with_deadline("concurrent cross-pool calls", move || {
        pool_a.scope(|s| {
            for i in 0..64u64 {
                let pool_a = &pool_a;
                let pool_b = &pool_b;
                let calls = &calls;
                s.spawn(move |_| {
                    let value = pool_b.install(|| pool_a.install(|| fib(i % 12)));
                    assert_eq!(value, fib_sequential(i % 12));
                    calls.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(calls.load(Ordering::Relaxed), 64);
    });
}

/// Many outside threads install on the same small pool at once.
#[test]
fn many_outside_threads_install_concurrently() {
    for n in [1, 2] {
        let pool = Arc::new(pool(n));
        with_deadline("16 threads installing", move || {
            let handles: Vec<_> = (0..16u64)
                .map(|t| {
                    let pool = Arc::clone(&pool);
                    thread::spawn(move || {
                        for i in 0..200u64 {
                            let (value, index) =
                                pool.install(|| (t * 1_000 + i, pilfer::current_worker_index()));
                            assert_eq!(value, t * 1_000 + i);
                            assert!(index.is_some_and(|x| x < n));
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("an installing thread panicked");
            }
        });
    }
}

/// A panic inside a nested pool's install crosses both pools.
#[test]
fn panic_crosses_nested_pools() {
    let pool_a = pool(1);
    let pool_b = pool(1);
    let message = with_deadline("panic across pools", move || {
        let message = expect_panic(|| {
            pool_a.install(|| pool_b.install(|| pool_a.install(|| panic!("deep panic"))))
        });
        assert_eq!(pool_a.install(|| pool_b.install(|| 5)), 5);
        message
    });
    assert_eq!(message, "deep panic");
}

/// A panic payload that is not a string comes out unchanged (same type and
/// value) through install, join, scope, and `Task::join`.
#[test]
fn non_string_panic_payloads_arrive_intact() {
    #[derive(Debug, PartialEq)]
    struct Custom(u32);

    fn payload_of<R>(f: impl FnOnce() -> R) -> Box<dyn std::any::Any + Send> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(_) => panic!("expected a panic"),
            Err(payload) => payload,
        }
    }

    for n in [1, 2] {
        let pool = pool(n);
        let from_install = payload_of(|| pool.install(|| std::panic::panic_any(Custom(1))));
        assert_eq!(from_install.downcast_ref::<Custom>(), Some(&Custom(1)));

        let from_join =
            payload_of(|| pool.join(|| (), || -> () { std::panic::panic_any(Custom(2)) }));
        assert_eq!(from_join.downcast_ref::<Custom>(), Some(&Custom(2)));

        let from_scope = payload_of(|| {
            pool.scope(|s| s.spawn(|_| std::panic::panic_any(Custom(3))));
        });
        assert_eq!(from_scope.downcast_ref::<Custom>(), Some(&Custom(3)));

        let task = pool.submit(|| -> () { std::panic::panic_any(Custom(4)) });
        let from_task = task.join().unwrap_err().into_panic();
        assert_eq!(from_task.downcast_ref::<Custom>(), Some(&Custom(4)));
    }
}
