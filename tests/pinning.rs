//! Pinning workers to cores (`pin_workers`), as seen by the workers' own
//! affinity masks and by `Metrics`. Linux only: elsewhere affinity is a hint
//! or unavailable.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};

type Masks = BTreeMap<usize, Vec<usize>>;

/// Builds a pool whose start handler (which runs on the worker, after
/// pinning) records each worker's affinity mask; returns the pool once every
/// worker has started.
fn pool_recording_masks(n: usize, pin: bool) -> (pilfer::ThreadPool, Masks) {
    common::arm_watchdog();
    let masks = Arc::new(Mutex::new(Masks::new()));
    let recorder = Arc::clone(&masks);
    let (started, started_rx) = mpsc::channel();
    let started = Mutex::new(started);
    let pool = pilfer::ThreadPool::builder()
        .num_threads(n)
        .pin_workers(pin)
        .start_handler(move |i| {
            let cores = core_affinity::get_core_ids().unwrap_or_default();
            let ids = cores.into_iter().map(|core| core.id).collect();
            recorder.lock().unwrap().insert(i, ids);
            started.lock().unwrap().send(()).unwrap();
        })
        .build()
        .unwrap();
    for _ in 0..n {
        started_rx
            .recv_timeout(common::DEADLINE)
            .expect("a worker never ran its start handler");
    }
    let masks = masks.lock().unwrap().clone();
    (pool, masks)
}

/// The cores this (unpinned) test thread may run on.
fn allowed_cores() -> Vec<usize> {
    let cores = core_affinity::get_core_ids().expect("reading the affinity mask");
    cores.into_iter().map(|core| core.id).collect()
}

/// As many workers as allowed cores: each pinned to exactly one, all
/// different, and the metrics report them all as pinned.
#[test]
fn pinned_workers_each_get_their_own_core() {
    let allowed = allowed_cores();
    let n = allowed.len();
    let (pool, masks) = pool_recording_masks(n, true);
    assert_eq!(masks.len(), n);
    for (i, mask) in &masks {
        assert_eq!(mask, &vec![allowed[i % allowed.len()]], "worker {i}");
    }
    let metrics = pool.metrics();
    assert_eq!(metrics.pinned_workers(), n, "{metrics:?}");
    assert!(metrics.workers().iter().all(|w| w.pinned));
    // Pinning does not get in the way of work.
    assert_eq!(pool.install(|| common::fib(15)), 610);
}

/// More workers than cores: nobody is pinned (two workers pinned to one
/// core could not be balanced), every worker keeps the full set, and the
/// metrics say so.
#[test]
fn more_workers_than_cores_are_left_unpinned() {
    let allowed = allowed_cores();
    let n = allowed.len() + 2;
    let (pool, masks) = pool_recording_masks(n, true);
    assert_eq!(masks.len(), n);
    for (i, mask) in &masks {
        assert_eq!(mask, &allowed, "worker {i}");
    }
    assert_eq!(pool.metrics().pinned_workers(), 0);
    common::assert_all_workers_alive(&pool);
}

/// Without pinning every worker keeps the process's full set of cores.
#[test]
fn unpinned_workers_keep_the_full_mask() {
    let allowed = allowed_cores();
    let n = allowed.len().max(2);
    let (pool, masks) = pool_recording_masks(n, false);
    assert_eq!(masks.len(), n);
    for (i, mask) in &masks {
        assert_eq!(mask, &allowed, "worker {i}");
    }
    let metrics = pool.metrics();
    assert_eq!(metrics.pinned_workers(), 0);
    assert!(metrics.workers().iter().all(|w| !w.pinned));
}

/// Pinning a pool's workers does not narrow the building thread's own mask.
#[test]
fn pinning_leaves_the_building_thread_alone() {
    let before = allowed_cores();
    let (pool, _) = pool_recording_masks(2, true);
    assert_eq!(allowed_cores(), before);
    drop(pool);
    assert_eq!(allowed_cores(), before);
}

/// Masks of two fresh pools (pinned, unpinned) built by a task running on
/// the single, pinned worker of another pool.
fn masks_of_pools_built_on_a_pinned_worker(n: usize) -> (Masks, Masks) {
    common::arm_watchdog();
    let outer = pilfer::ThreadPool::builder()
        .num_threads(1)
        .pin_workers(true)
        .build()
        .unwrap();
    outer.install(|| {
        let (_pinned_pool, pinned) = pool_recording_masks(n, true);
        let (_unpinned_pool, unpinned) = pool_recording_masks(n, false);
        (pinned, unpinned)
    })
}

/// Builder docs: worker i is pinned to "the i-th core the process may run
/// on". That must hold for a pool built by a task of another, pinned pool
/// too, not only for pools built by unpinned threads. (Regression: such a
/// pool used to pin every worker to the building worker's one core.)
#[test]
fn pool_built_on_a_pinned_worker_spreads_its_pins() {
    let allowed = allowed_cores();
    if allowed.len() < 2 {
        println!("only one allowed core: nothing to spread");
        return;
    }
    let (pinned, _) = masks_of_pools_built_on_a_pinned_worker(allowed.len());
    for (i, mask) in &pinned {
        assert_eq!(mask, &vec![allowed[i % allowed.len()]], "pinned worker {i}");
    }
}

/// With `pin_workers(false)` workers keep the full set of cores, also when
/// the pool is built by a task of another, pinned pool. (Regression: they
/// used to inherit the building worker's one-core mask.)
#[test]
fn unpinned_pool_built_on_a_pinned_worker_keeps_the_full_mask() {
    let allowed = allowed_cores();
    if allowed.len() < 2 {
        println!("only one allowed core: every mask is full");
        return;
    }
    let (_, unpinned) = masks_of_pools_built_on_a_pinned_worker(allowed.len());
    for (i, mask) in &unpinned {
        assert_eq!(mask, &allowed, "unpinned worker {i}");
    }
}
