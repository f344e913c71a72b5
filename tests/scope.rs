//! `ThreadPool::scope` and `pilfer::scope`: waiting for every task
//! (transitively), borrowing from the stack, and panics.

mod common;

use common::{expect_panic, fib, fib_sequential, pool, with_deadline};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const SIZES: [usize; 3] = [1, 2, 4];

#[test]
fn scope_returns_the_bodys_value() {
    for n in SIZES {
        let pool = pool(n);
        let value = pool.scope(|s| {
            s.spawn(|_| ());
            "body value"
        });
        assert_eq!(value, "body value");
    }
}

/// The scope must not return while any task still runs; some tasks are slow
/// so that an early return would be seen.
#[test]
fn scope_waits_for_every_task() {
    for n in SIZES {
        let pool = pool(n);
        let done = AtomicUsize::new(0);
        pool.scope(|s| {
            for i in 0..1_000 {
                let done = &done;
                s.spawn(move |_| {
                    if i % 100 == 0 {
                        thread::sleep(Duration::from_millis(5));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), 1_000, "{n} threads");
    }
}

/// Tasks spawn tasks (through the `&Scope` they receive) several levels
/// deep; the scope waits for the whole tree.
#[test]
fn scope_waits_for_nested_spawns_transitively() {
    fn grow<'a>(s: &pilfer::Scope<'a>, depth: u32, count: &'a AtomicUsize) {
        count.fetch_add(1, Ordering::Relaxed);
        if depth == 0 {
            // Slow leaves: an early return would miss them.
            thread::sleep(Duration::from_micros(200));
            return;
        }
        s.spawn(move |s| grow(s, depth - 1, count));
        s.spawn(move |s| grow(s, depth - 1, count));
    }
    for n in SIZES {
        let pool = pool(n);
        let count = AtomicUsize::new(0);
        pool.scope(|s| s.spawn(|s| grow(s, 10, &count)));
        assert_eq!(count.load(Ordering::Relaxed), (1 << 11) - 1, "{n} threads");
    }
}

/// Tasks write disjoint chunks of a vector on the caller's stack and read a
/// shared slice.
#[test]
fn scope_tasks_borrow_the_callers_stack() {
    for n in SIZES {
        let pool = pool(n);
        let input: Vec<u64> = (0..10_000).collect();
        let mut output = vec![0u64; 10_000];
        let mut sums = vec![0u64; 100];
        pool.scope(|s| {
            for ((chunk_in, chunk_out), sum) in input
                .chunks(100)
                .zip(output.chunks_mut(100))
                .zip(sums.iter_mut())
            {
                s.spawn(move |_| {
                    for (x, y) in chunk_in.iter().zip(chunk_out.iter_mut()) {
                        *y = x * 3;
                    }
                    *sum = chunk_in.iter().sum();
                });
            }
        });
        assert!(output.iter().enumerate().all(|(i, &y)| y == 3 * i as u64));
        assert_eq!(sums.iter().sum::<u64>(), input.iter().sum::<u64>());
    }
}

/// Scopes inside scope tasks inside scopes, and joins inside scope tasks.
#[test]
fn nested_scopes_and_joins() {
    for n in SIZES {
        let pool = pool(n);
        let mut grid = vec![vec![0u64; 64]; 16];
        pool.scope(|outer| {
            for (r, row) in grid.iter_mut().enumerate() {
                outer.spawn(move |_| {
                    pilfer::scope(|inner| {
                        for (c, cell) in row.iter_mut().enumerate() {
                            inner.spawn(move |_| {
                                let (a, b) = pilfer::join(|| r as u64, || c as u64);
                                *cell = a * 100 + b;
                            });
                        }
                    });
                });
            }
        });
        for (r, row) in grid.iter().enumerate() {
            for (c, &cell) in row.iter().enumerate() {
                assert_eq!(cell, (r * 100 + c) as u64, "{n} threads");
            }
        }
    }
}

/// A panic in the body is re-raised only after every task finished.
#[test]
fn panic_in_body_is_reraised_after_tasks_finish() {
    for n in SIZES {
        let pool = pool(n);
        let done = AtomicUsize::new(0);
        let message = expect_panic(|| {
            pool.scope(|s| {
                for _ in 0..8 {
                    s.spawn(|_| {
                        thread::sleep(Duration::from_millis(10));
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
                panic!("body failed");
            })
        });
        assert_eq!(message, "body failed");
        assert_eq!(done.load(Ordering::SeqCst), 8, "{n} threads");
        assert_eq!(pool.install(|| fib(15)), fib_sequential(15), "pool broken");
    }
}

/// A panic in one task is re-raised after the other (slower) tasks, and
/// their nested spawns, finished.
#[test]
fn panic_in_task_is_reraised_after_other_tasks_finish() {
    for n in SIZES {
        let pool = pool(n);
        let done = AtomicUsize::new(0);
        let message = expect_panic(|| {
            pool.scope(|s| {
                s.spawn(|_| panic!("task failed"));
                for _ in 0..8 {
                    s.spawn(|s| {
                        thread::sleep(Duration::from_millis(5));
                        s.spawn(|_| {
                            thread::sleep(Duration::from_millis(5));
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        });
        assert_eq!(message, "task failed");
        assert_eq!(done.load(Ordering::SeqCst), 16, "{n} threads");
        assert_eq!(pool.install(|| fib(15)), fib_sequential(15), "pool broken");
    }
}

/// Several tasks and the body panic: one of those panics comes out, after
/// all tasks ran.
#[test]
fn many_panics_in_one_scope_reraise_one_of_them() {
    for n in SIZES {
        let pool = pool(n);
        let ran = AtomicUsize::new(0);
        let message = expect_panic(|| {
            pool.scope(|s| {
                for i in 0..20 {
                    let ran = &ran;
                    s.spawn(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        panic!("task {i} failed");
                    });
                }
                panic!("body failed");
            })
        });
        assert!(
            message == "body failed"
                || (message.starts_with("task ") && message.ends_with(" failed")),
            "unexpected payload {message:?}"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 20, "{n} threads");
        common::assert_all_workers_alive(&pool);
    }
}

/// Outside every pool, `pilfer::scope` runs its body in the global pool.
#[test]
fn scope_outside_any_pool_uses_the_global_pool() {
    common::arm_watchdog();
    let caller = thread::current().id();
    let mut results = [None; 4];
    let body_thread = pilfer::scope(|s| {
        for slot in results.iter_mut() {
            s.spawn(move |_| *slot = pilfer::current_worker_index());
        }
        thread::current().id()
    });
    assert_ne!(body_thread, caller, "scope body ran outside the pool");
    let global = pilfer::current_num_threads();
    assert!(
        results.iter().all(|r| r.is_some_and(|i| i < global)),
        "{results:?}"
    );
}

/// Inside `install`, `pilfer::scope` uses that pool, not the global one.
#[test]
fn scope_inside_install_uses_the_installing_pool() {
    let pool = pilfer::ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .thread_name(|i| format!("scoped-{i}"))
        .build()
        .unwrap();
    let names = pool.install(|| {
        let mut names = vec![String::new(); 32];
        pilfer::scope(|s| {
            for name in names.iter_mut() {
                s.spawn(move |_| {
                    assert_eq!(pilfer::current_num_threads(), 3);
                    *name = thread::current().name().unwrap_or("").to_string();
                });
            }
        });
        names
    });
    assert!(names.iter().all(|n| n.starts_with("scoped-")), "{names:?}");
}

/// A task spawned into a scope from a worker of *another* pool still counts:
/// the scope waits for it.
#[test]
fn scope_spawn_from_another_pools_worker_is_awaited() {
    let pool_a = pool(1);
    let pool_b = pool(1);
    let done = AtomicBool::new(false);
    with_deadline("cross-pool scope spawn", move || {
        pool_a.scope(|s| {
            pool_b.install(|| {
                s.spawn(|_| {
                    thread::sleep(Duration::from_millis(20));
                    done.store(true, Ordering::SeqCst);
                });
            });
        });
        assert!(
            done.load(Ordering::SeqCst),
            "scope returned before its task"
        );
    });
}

/// An empty scope, and many scopes in a row, return promptly (no lost
/// wake-up when the count drops to zero).
#[test]
fn many_small_scopes_in_a_row() {
    for n in SIZES {
        let pool = pool(n);
        with_deadline("10 000 small scopes", move || {
            for i in 0..10_000u64 {
                let mut x = 0;
                pool.scope(|s| {
                    if i % 2 == 0 {
                        s.spawn(|_| x = i);
                    }
                });
                assert_eq!(x, if i % 2 == 0 { i } else { 0 });
            }
        });
    }
}
