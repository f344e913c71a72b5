//! The nesting forms of the API on one-worker pools with default stacks
//! (the worst case: no other worker takes work off a waiting stack): the
//! shapes that pile unrelated work onto a waiting stack when waits run
//! whatever they find complete, and chains of each form complete at a
//! depth well inside the documented limits (README.md, "Nesting and the
//! stack"; `examples/nesting.rs` measures them). A stack overflow aborts
//! the test binary, which fails the run.

mod common;

use common::pool;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Chains are run this deep: inside the limits of a debug build's larger
/// frames too.
const CHAIN_DEPTH: u64 = if cfg!(debug_assertions) { 150 } else { 1_500 };

/// Tasks queued behind a waiting one in the breadth shapes.
const QUEUED: usize = 10_000;

#[test]
fn installs_while_tasks_queue_do_not_stack_the_queue() {
    // Each of A's queued tasks waits for B, whose job installs back into
    // A. A wait that ran A's other queued tasks meanwhile, each one
    // waiting in turn, would hold one frame per queued task.
    let (a, b) = (pool(1), pool(1));
    let done = AtomicUsize::new(0);
    a.scope(|s| {
        for _ in 0..QUEUED {
            s.spawn(|_| {
                b.install(|| a.install(|| done.fetch_add(1, Ordering::Relaxed)));
            });
        }
    });
    assert_eq!(done.into_inner(), QUEUED);
}

#[test]
fn broadcasts_while_tasks_queue_do_not_stack_the_queue() {
    let pool = pool(1);
    let done = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..QUEUED {
            s.spawn(|_| {
                pilfer::broadcast(|_| done.fetch_add(1, Ordering::Relaxed));
            });
        }
    });
    assert_eq!(done.into_inner(), QUEUED);
}

/// A tree of plain scopes, 4 children per node, `depth` levels.
fn scope_tree(depth: u32, nodes: &AtomicUsize) {
    nodes.fetch_add(1, Ordering::Relaxed);
    if depth > 0 {
        pilfer::scope(|s| {
            for _ in 0..4 {
                s.spawn(move |_| scope_tree(depth - 1, nodes));
            }
        });
    }
}

#[test]
fn a_tree_of_scopes_holds_one_frame_per_level() {
    // The FIFO trees are in tests/fifo.rs.
    let pool = pool(1);
    let nodes = AtomicUsize::new(0);
    pool.install(|| scope_tree(9, &nodes));
    assert_eq!(
        nodes.into_inner(),
        (0..=9).map(|level| 4usize.pow(level)).sum()
    );
}

/// Runs `chain` at `CHAIN_DEPTH` on a one-worker pool and checks that
/// every level ran.
fn chain(run: impl Fn(u64, &AtomicUsize) + Sync) {
    let pool = pool(1);
    let levels = AtomicUsize::new(0);
    pool.install(|| run(CHAIN_DEPTH, &levels));
    assert_eq!(levels.into_inner() as u64, CHAIN_DEPTH + 1);
}

#[test]
fn chains_of_every_waiting_form_complete() {
    fn scope(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::scope(|s| s.spawn(move |_| scope(depth - 1, levels)));
        }
    }
    fn scope_fifo(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::scope_fifo(|s| s.spawn_fifo(move |_| scope_fifo(depth - 1, levels)));
        }
    }
    fn in_place(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::in_place_scope(|s| s.spawn(move |_| in_place(depth - 1, levels)));
        }
    }
    fn in_place_fifo(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::in_place_scope_fifo(|s| {
                s.spawn_fifo(move |_| in_place_fifo(depth - 1, levels))
            });
        }
    }
    fn broadcast(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::broadcast(|_| broadcast(depth - 1, levels));
        }
    }
    fn join(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::join(|| join(depth - 1, levels), || ());
        }
    }
    fn block_in_place(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::block_in_place(|| block_in_place(depth - 1, levels));
        }
    }
    fn isolate(depth: u64, levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pilfer::isolate(|| pilfer::join(|| isolate(depth - 1, levels), || ()));
        }
    }
    chain(scope);
    chain(scope_fifo);
    chain(in_place);
    chain(in_place_fifo);
    chain(broadcast);
    chain(join);
    chain(block_in_place);
    chain(isolate);
}

#[test]
fn a_chain_of_installs_across_pools_outgrows_one_stack() {
    // Past half its stack, a worker's wait runs only its own job's work,
    // so the next level (injected by the other pool) is run by a spare
    // worker on a fresh stack: the chain is not limited to one stack.
    fn across(depth: u64, pools: &[pilfer::ThreadPool; 2], levels: &AtomicUsize) {
        levels.fetch_add(1, Ordering::Relaxed);
        if depth > 0 {
            pools[(depth % 2) as usize].install(|| across(depth - 1, pools, levels));
        }
    }
    let pools = [pool(1), pool(1)];
    let levels = AtomicUsize::new(0);
    let depth = if cfg!(debug_assertions) {
        3_000
    } else {
        30_000
    };
    pools[0].install(|| across(depth, &pools, &levels));
    assert_eq!(levels.into_inner() as u64, depth + 1);
    assert!(pools[0].metrics().spare_workers_started() > 0);
}
