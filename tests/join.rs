//! `join` and `ThreadPool::join`: results, where each half runs, deep
//! recursion, the global pool, and panics.

mod common;

use common::{DEADLINE, expect_panic, fib, fib_sequential, pool, with_deadline};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const SIZES: [usize; 3] = [1, 2, 4];

#[test]
fn join_returns_both_results() {
    for n in SIZES {
        let pool = pool(n);
        let (a, b) = pool.join(|| 6 * 7, || String::from("right"));
        assert_eq!((a, b.as_str()), (42, "right"), "{n} threads");
        let (a, b) = pool.install(|| pilfer::join(|| vec![1, 2, 3], || Some('x')));
        assert_eq!((a, b), (vec![1, 2, 3], Some('x')), "{n} threads");
    }
}

/// `a` runs on the calling thread; both halves run on the pool's workers.
#[test]
fn join_runs_a_on_the_caller_and_both_halves_in_the_pool() {
    for n in SIZES {
        let pool = pool(n);
        pool.install(|| {
            let caller = thread::current().id();
            let ((a_thread, a_index), b_index) = pilfer::join(
                || (thread::current().id(), pilfer::current_worker_index()),
                pilfer::current_worker_index,
            );
            assert_eq!(a_thread, caller, "`a` left the calling thread");
            assert!(a_index.is_some_and(|i| i < n), "{a_index:?}");
            assert!(b_index.is_some_and(|i| i < n), "{b_index:?}");
        });

        // From outside: `ThreadPool::join` moves both halves into the pool.
        let (a_index, b_index) =
            pool.join(pilfer::current_worker_index, pilfer::current_worker_index);
        assert!(a_index.is_some_and(|i| i < n), "{a_index:?}");
        assert!(b_index.is_some_and(|i| i < n), "{b_index:?}");
    }
}

/// Halves may borrow from the caller's stack, mutably and disjointly.
#[test]
fn join_halves_borrow_the_callers_stack() {
    let pool = pool(2);
    let mut data: Vec<u64> = (0..10_000).collect();
    let (left, right) = data.split_at_mut(5_000);
    pool.join(
        || left.iter_mut().for_each(|x| *x *= 2),
        || right.iter_mut().for_each(|x| *x += 1),
    );
    for (i, x) in data.iter().enumerate() {
        let i = i as u64;
        let expected = if i < 5_000 { i * 2 } else { i + 1 };
        assert_eq!(*x, expected, "index {i}");
    }
}

#[test]
fn fib_25_is_correct_on_every_pool_size() {
    for n in SIZES {
        let pool = pool(n);
        assert_eq!(pool.install(|| fib(25)), fib_sequential(25), "{n} threads");
        // Started by `ThreadPool::join` from outside as well.
        let (a, b) = pool.join(|| fib(20), || fib(19));
        assert_eq!(a + b, fib_sequential(21), "{n} threads");
    }
}

/// A sum over a tree of joins touches every leaf exactly once.
#[test]
fn join_tree_visits_every_leaf_once() {
    fn visit(range: std::ops::Range<usize>, seen: &[AtomicBool]) -> usize {
        if range.len() == 1 {
            let first = !seen[range.start].swap(true, Ordering::Relaxed);
            assert!(first, "leaf {} ran twice", range.start);
            return 1;
        }
        let middle = range.start + range.len() / 2;
        let (a, b) = pilfer::join(
            || visit(range.start..middle, seen),
            || visit(middle..range.end, seen),
        );
        a + b
    }
    let pool = pool(4);
    let seen: Vec<AtomicBool> = (0..50_000).map(|_| AtomicBool::new(false)).collect();
    let leaves = pool.install(|| visit(0..seen.len(), &seen));
    assert_eq!(leaves, seen.len());
    assert!(seen.iter().all(|flag| flag.load(Ordering::Relaxed)));
}

fn deep_pool(n: usize) -> pilfer::ThreadPool {
    pilfer::ThreadPool::builder()
        .num_threads(n)
        .pin_workers(false)
        .stack_size(512 << 20)
        .build()
        .unwrap()
}

/// A chain of 10 000 nested joins recursing in `b` (the half that may be
/// stolen).
#[test]
fn deep_join_chain_recursing_in_b() {
    fn chain(depth: usize) -> usize {
        if depth == 0 {
            return 0;
        }
        let (leaf, rest) = pilfer::join(|| 1, || chain(depth - 1));
        leaf + rest
    }
    for n in [1, 2] {
        let pool = deep_pool(n);
        let depth = chain_depth();
        assert_eq!(pool.install(|| chain(depth)), depth, "{n} threads");
    }
}

/// How deep the join chains below go: 10 000, or 1 000 under a sanitizer
/// (`scripts/tsan.sh` sets `PILFER_SANITIZER`), whose per-thread shadow call
/// stack is smaller than 10 000 nested joins need.
fn chain_depth() -> usize {
    if std::env::var_os("PILFER_SANITIZER").is_some() {
        1_000
    } else {
        10_000
    }
}

/// A chain of 10 000 nested joins recursing in `a`: 10 000 open join frames
/// on one worker at once.
#[test]
fn deep_join_chain_recursing_in_a() {
    fn chain(depth: usize, leaves: &AtomicUsize) -> usize {
        if depth == 0 {
            return 0;
        }
        let (rest, leaf) = pilfer::join(
            || chain(depth - 1, leaves),
            || {
                leaves.fetch_add(1, Ordering::Relaxed);
                1
            },
        );
        rest + leaf
    }
    for n in [1, 2] {
        let pool = deep_pool(n);
        let leaves = AtomicUsize::new(0);
        let depth = chain_depth();
        assert_eq!(pool.install(|| chain(depth, &leaves)), depth);
        assert_eq!(leaves.load(Ordering::Relaxed), depth, "{n} threads");
    }
}

/// Outside every pool, `pilfer::join` runs in the (lazily built) global pool.
#[test]
fn join_outside_any_pool_uses_the_global_pool() {
    common::arm_watchdog();
    let caller = thread::current().id();
    let global_threads = pilfer::current_num_threads();
    let ((a_thread, a_index, a_threads), b_index) = pilfer::join(
        || {
            (
                thread::current().id(),
                pilfer::current_worker_index(),
                pilfer::current_num_threads(),
            )
        },
        pilfer::current_worker_index,
    );
    assert_ne!(a_thread, caller, "ran on the outside thread, not in a pool");
    assert!(a_index.is_some_and(|i| i < global_threads), "{a_index:?}");
    assert!(b_index.is_some_and(|i| i < global_threads), "{b_index:?}");
    assert_eq!(a_threads, global_threads);
    assert_eq!(pilfer::current_worker_index(), None);
    assert_eq!(pilfer::join(|| fib(15), || fib(16)), (610, 987));
}

/// `a` panics while `b` is still working: the panic reaches the caller only
/// after `b` finished (it may borrow from the caller's frame).
#[test]
fn panic_in_a_waits_for_b_then_reaches_the_caller() {
    for n in SIZES {
        let pool = pool(n);
        let b_done = AtomicBool::new(false);
        let message = expect_panic(|| {
            pool.join(
                || panic!("a failed"),
                || {
                    thread::sleep(Duration::from_millis(20));
                    b_done.store(true, Ordering::SeqCst);
                },
            )
        });
        assert_eq!(message, "a failed");
        assert!(b_done.load(Ordering::SeqCst), "`b` unfinished at unwind");

        // Same from inside the pool.
        let b_done = AtomicBool::new(false);
        let message = pool.install(|| {
            expect_panic(|| {
                pilfer::join(
                    || panic!("inner a failed"),
                    || {
                        thread::sleep(Duration::from_millis(20));
                        b_done.store(true, Ordering::SeqCst);
                    },
                )
            })
        });
        assert_eq!(message, "inner a failed");
        assert!(b_done.load(Ordering::SeqCst), "`b` unfinished at unwind");

        assert_eq!(pool.install(|| fib(18)), fib_sequential(18), "pool broken");
    }
}

#[test]
fn panic_in_b_reaches_the_caller_after_a_finished() {
    for n in SIZES {
        let pool = pool(n);
        let a_done = AtomicBool::new(false);
        let message = expect_panic(|| {
            pool.join(
                || {
                    thread::sleep(Duration::from_millis(20));
                    a_done.store(true, Ordering::SeqCst);
                },
                || panic!("b failed {}", 7),
            )
        });
        assert_eq!(message, "b failed 7");
        assert!(a_done.load(Ordering::SeqCst), "`a` unfinished at unwind");
        assert_eq!(pool.install(|| fib(18)), fib_sequential(18), "pool broken");
    }
}

/// Both halves panic: the caller gets `a`'s panic (documented), and only
/// once both have finished.
#[test]
fn panic_in_both_halves_reraises_a() {
    for n in SIZES {
        let pool = pool(n);
        let finished = AtomicUsize::new(0);
        let message = expect_panic(|| {
            pool.join(
                || {
                    finished.fetch_add(1, Ordering::SeqCst);
                    panic!("from a")
                },
                || {
                    thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::SeqCst);
                    panic!("from b")
                },
            )
        });
        assert_eq!(message, "from a");
        assert_eq!(finished.load(Ordering::SeqCst), 2);
        assert_eq!(pool.install(|| fib(18)), fib_sequential(18), "pool broken");
    }
}

/// `b` is stolen by another worker (made likely by `a` offering work until
/// `b` starts) and panics there: the panic crosses threads to the caller.
#[test]
fn panic_in_stolen_b_crosses_to_the_caller() {
    let pool = pool(2);
    // `b` is only offered to thieves, not forced on one: retry until a
    // thief took it (almost always the first attempt), with a deadline.
    let start = Instant::now();
    loop {
        let b_started = AtomicBool::new(false);
        let b_thread = Mutex::new(None);
        let caller = Mutex::new(None);
        let message = pool.install(|| {
            *caller.lock().unwrap() = Some(thread::current().id());
            expect_panic(|| {
                pilfer::join(
                    || {
                        // Each nested join is a point where a thief's
                        // request to publish `b` is answered.
                        let start = Instant::now();
                        while !b_started.load(Ordering::SeqCst)
                            && start.elapsed() < Duration::from_secs(5)
                        {
                            pilfer::join(|| (), || ());
                            thread::yield_now();
                        }
                    },
                    || {
                        *b_thread.lock().unwrap() = Some(thread::current().id());
                        b_started.store(true, Ordering::SeqCst);
                        panic!("stolen b failed")
                    },
                )
            })
        });
        assert_eq!(message, "stolen b failed");
        let stolen = *b_thread.lock().unwrap() != *caller.lock().unwrap();
        if stolen {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no thief took `b` within {DEADLINE:?}"
        );
    }
    assert_eq!(pool.install(|| fib(18)), fib_sequential(18), "pool broken");
}

/// Opens `depth` nested joins with empty second halves, then calls `inner`
/// inside the innermost `a`.
fn nested_joins(depth: usize, inner: &(dyn Fn() + Sync)) {
    if depth == 0 {
        inner();
    } else {
        pilfer::join(|| nested_joins(depth - 1, inner), || ());
    }
}

/// Past a job's limit of open frames a `join` records nothing unless a
/// thief is asking; a thief's request must still be answered there. With
/// twelve joins open above (more than the limit; their `b`s are empty), the
/// joins of a loop must soon hand a `b` to the other worker.
#[test]
fn joins_past_the_open_frame_limit_still_feed_a_thief() {
    let pool = pool(2);
    let stolen = pool.install(|| {
        let caller = thread::current().id();
        let stolen = AtomicBool::new(false);
        nested_joins(12, &|| {
            let start = Instant::now();
            while !stolen.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(10) {
                pilfer::join(thread::yield_now, || {
                    if thread::current().id() != caller {
                        stolen.store(true, Ordering::SeqCst);
                    }
                });
            }
        });
        stolen.into_inner()
    });
    assert!(
        stolen,
        "no `b` past the open-frame limit reached the idle worker in 10 s"
    );
}

/// Many joins panicking inside a recursive tree: every one reaches its
/// caller, and the pool stays usable.
#[test]
fn panics_deep_in_a_join_tree_propagate_to_the_root() {
    fn tree(depth: u32, ran: &AtomicUsize) -> u32 {
        ran.fetch_add(1, Ordering::Relaxed);
        if depth == 0 {
            panic!("leaf panic");
        }
        let (a, b) = pilfer::join(|| tree(depth - 1, ran), || tree(depth - 1, ran));
        a + b
    }
    for n in SIZES {
        let pool = pool(n);
        let ran = AtomicUsize::new(0);
        let message = pool.install(|| expect_panic(|| tree(8, &ran)));
        assert_eq!(message, "leaf panic");
        // Every `b` runs even though every `a` panics: a complete tree.
        assert_eq!(ran.load(Ordering::Relaxed), (1 << 9) - 1, "{n} threads");
        common::assert_all_workers_alive(&pool);
    }
}

/// `pool.join` from many outside threads at once.
#[test]
fn join_from_many_outside_threads() {
    let pool = Arc::new(pool(2));
    with_deadline("16 threads calling pool.join", move || {
        let handles: Vec<_> = (0..16u64)
            .map(|t| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    for i in 0..50 {
                        let (a, b) = pool.join(|| t * i, || fib(10));
                        assert_eq!((a, b), (t * i, 55));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
}
