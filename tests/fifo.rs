//! FIFO order, scope by scope: the orders rayon-core documents and tests
//! for `spawn_fifo`, `scope_fifo` and their mixes with the LIFO forms, on a
//! one-worker pool (no stealing, so the order is exact); and FIFO trees
//! that must not stack their breadth on one worker's stack.

mod common;

use common::pool;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// The values pushed by the tasks `body` spawns (through `record`), in the
/// order they ran, on a one-worker pool.
fn run_order(body: impl FnOnce(&Mutex<Vec<i32>>) + Send) -> Vec<i32> {
    let pool = pool(1);
    let order = Mutex::new(Vec::new());
    pool.install(|| body(&order));
    drop(pool);
    order.into_inner().unwrap()
}

fn record(order: &Mutex<Vec<i32>>, value: i32) {
    order.lock().unwrap().push(value);
}

/// Ten tasks of an outer scope each spawn ten tasks of the same scope
/// (`scope_fifo` when `fifo`), which record `10 * i + j`.
fn one_scope_two_levels(fifo: bool) -> Vec<i32> {
    run_order(|order| {
        if fifo {
            pilfer::scope_fifo(|s| {
                for i in 0..10 {
                    s.spawn_fifo(move |s| {
                        for j in 0..10 {
                            s.spawn_fifo(move |_| record(order, 10 * i + j));
                        }
                    });
                }
            });
        } else {
            pilfer::scope(|s| {
                for i in 0..10 {
                    s.spawn(move |s| {
                        for j in 0..10 {
                            s.spawn(move |_| record(order, 10 * i + j));
                        }
                    });
                }
            });
        }
    })
}

#[test]
fn a_scopes_tasks_start_in_its_order_across_levels() {
    assert_eq!(one_scope_two_levels(true), (0..100).collect::<Vec<_>>());
    assert_eq!(
        one_scope_two_levels(false),
        (0..100).rev().collect::<Vec<_>>()
    );
}

/// An outer scope's ten tasks each open an inner scope of ten tasks; each
/// scope FIFO or not as given.
fn nested_scopes(outer_fifo: bool, inner_fifo: bool) -> Vec<i32> {
    fn inner(order: &Mutex<Vec<i32>>, i: i32, fifo: bool) {
        if fifo {
            pilfer::scope_fifo(|s| {
                for j in 0..10 {
                    s.spawn_fifo(move |_| record(order, 10 * i + j));
                }
            });
        } else {
            pilfer::scope(|s| {
                for j in 0..10 {
                    s.spawn(move |_| record(order, 10 * i + j));
                }
            });
        }
    }
    run_order(|order| {
        if outer_fifo {
            pilfer::scope_fifo(|s| {
                for i in 0..10 {
                    s.spawn_fifo(move |_| inner(order, i, inner_fifo));
                }
            });
        } else {
            pilfer::scope(|s| {
                for i in 0..10 {
                    s.spawn(move |_| inner(order, i, inner_fifo));
                }
            });
        }
    })
}

/// `10 * i + j` for the given orders of `i` and of `j`.
fn grid(outer: impl Iterator<Item = i32>, inner_reversed: bool) -> Vec<i32> {
    outer
        .flat_map(|i| {
            let inner: Vec<i32> = if inner_reversed {
                (0..10).rev().collect()
            } else {
                (0..10).collect()
            };
            inner.into_iter().map(move |j| 10 * i + j)
        })
        .collect()
}

#[test]
fn each_nested_scope_keeps_its_own_order() {
    assert_eq!(nested_scopes(true, true), grid(0..10, false));
    assert_eq!(nested_scopes(false, false), grid((0..10).rev(), true));
    assert_eq!(nested_scopes(false, true), grid((0..10).rev(), false));
    assert_eq!(nested_scopes(true, false), grid(0..10, true));
}

/// Tasks of an outer and an inner scope spawned alternately while both are
/// open: positive values from the outer scope, negative from the inner.
fn interleaved_scopes(outer_fifo: bool, inner_fifo: bool) -> Vec<i32> {
    run_order(|order| {
        let body = |spawn_outer: &(dyn Fn(i32) + Sync)| {
            spawn_outer(0);
            let inner_body = |spawn_inner: &dyn Fn(i32)| {
                spawn_inner(-1);
                spawn_outer(1);
                spawn_inner(-2);
                spawn_outer(2);
                spawn_inner(-3);
            };
            if inner_fifo {
                pilfer::scope_fifo(|s| inner_body(&|v| s.spawn_fifo(move |_| record(order, v))));
            } else {
                pilfer::scope(|s| inner_body(&|v| s.spawn(move |_| record(order, v))));
            }
            spawn_outer(3);
        };
        if outer_fifo {
            pilfer::scope_fifo(|s| body(&|v| s.spawn_fifo(move |_| record(order, v))));
        } else {
            pilfer::scope(|s| body(&|v| s.spawn(move |_| record(order, v))));
        }
    })
}

#[test]
fn the_fifo_order_of_one_scope_does_not_reach_into_another() {
    // While the inner scope waits, the newest stand-in on the deque is
    // always that of the last spawn, whichever scope it was for; each
    // stand-in starts the oldest task of *its* scope.
    assert_eq!(interleaved_scopes(true, true), [-1, 0, -2, 1, -3, 2, 3]);
    assert_eq!(interleaved_scopes(false, false), [-3, 2, -2, 1, -1, 3, 0]);
    assert_eq!(interleaved_scopes(false, true), [-1, 2, -2, 1, -3, 3, 0]);
    assert_eq!(interleaved_scopes(true, false), [-3, 0, -2, 1, -1, 2, 3]);
}

/// Ten detached tasks, spawned by the worker with `outer`, each spawn ten
/// with `inner`; the values sent, in the order the tasks ran.
fn detached_two_levels(outer_fifo: bool, inner_fifo: bool) -> Vec<i32> {
    fn spawn_with(fifo: bool, task: impl FnOnce() + Send + 'static) {
        if fifo {
            pilfer::spawn_fifo(task);
        } else {
            pilfer::spawn(task);
        }
    }
    let pool = pool(1);
    let (sender, received) = mpsc::channel();
    pool.install(move || {
        for i in 0..10 {
            let sender = sender.clone();
            spawn_with(outer_fifo, move || {
                for j in 0..10 {
                    let sender = sender.clone();
                    spawn_with(inner_fifo, move || sender.send(10 * i + j).unwrap());
                }
            });
        }
    });
    drop(pool);
    received.iter().collect()
}

#[test]
fn detached_fifo_spawns_keep_their_order_across_levels() {
    assert_eq!(detached_two_levels(true, true), grid(0..10, false));
    assert_eq!(
        detached_two_levels(false, false),
        (0..100).rev().collect::<Vec<_>>()
    );
    assert_eq!(detached_two_levels(false, true), grid((0..10).rev(), false));
    assert_eq!(detached_two_levels(true, false), grid(0..10, true));
}

#[test]
fn detached_fifo_and_lifo_spawns_interleaved() {
    fn interleaved(first_fifo: bool) -> Vec<i32> {
        let pool = pool(1);
        let (sender, received) = mpsc::channel();
        pool.install(move || {
            for (k, value) in [0, -1, 1, -2, 2, -3, 3].into_iter().enumerate() {
                let sender = sender.clone();
                let task = move || sender.send(value).unwrap();
                if (k % 2 == 0) == first_fifo {
                    pilfer::spawn_fifo(task);
                } else {
                    pilfer::spawn(task);
                }
            }
        });
        drop(pool);
        received.iter().collect()
    }
    assert_eq!(interleaved(false), [3, -1, 2, -2, 1, -3, 0]);
    assert_eq!(interleaved(true), [0, -3, 1, -2, 2, -1, 3]);
}

/// A node of a tree of FIFO scopes: it opens a scope and spawns `width`
/// children into it, down to `depth` levels; counts the nodes.
fn fifo_tree(depth: u32, width: usize, nodes: &AtomicUsize) {
    nodes.fetch_add(1, Ordering::Relaxed);
    if depth > 0 {
        pilfer::scope_fifo(|s| {
            for _ in 0..width {
                s.spawn_fifo(move |_| fifo_tree(depth - 1, width, nodes));
            }
        });
    }
}

/// Nodes of a full tree of `width` children per node and `depth` levels
/// below the root.
fn tree_size(depth: u32, width: usize) -> usize {
    (0..=depth).map(|level| width.pow(level)).sum()
}

#[test]
fn a_tree_of_fifo_scopes_holds_one_frame_per_level() {
    // 349 525 nodes at depth 9 with 4 children. With one FIFO queue per
    // worker shared by every scope, a waiting node ran the oldest queued
    // node of *any* scope, and a default stack overflowed at depth 7.
    for threads in [1, 2] {
        let pool = pool(threads);
        let nodes = AtomicUsize::new(0);
        pool.install(|| fifo_tree(9, 4, &nodes));
        assert_eq!(nodes.into_inner(), tree_size(9, 4), "{threads} threads");
    }
}

/// A node of a tree of detached FIFO spawns, each of which waits in a
/// scope while its children's stand-ins sit on top of the deque: the wait
/// runs them, and they start the worker's *oldest* FIFO spawns, other
/// nodes' work.
fn detached_fifo_tree(depth: u32, sender: mpsc::Sender<()>) {
    sender.send(()).unwrap();
    if depth == 0 {
        return;
    }
    pilfer::scope(|s| {
        s.spawn(|_| std::hint::black_box(()));
        for _ in 0..3 {
            let sender = sender.clone();
            pilfer::spawn_fifo(move || detached_fifo_tree(depth - 1, sender));
        }
    });
}

#[test]
fn waiting_detached_fifo_spawns_do_not_stack_the_whole_queue() {
    let pool = pool(1);
    let (sender, received) = mpsc::channel();
    pool.spawn(move || detached_fifo_tree(10, sender));
    drop(pool);
    assert_eq!(received.iter().count(), tree_size(10, 3));
}
