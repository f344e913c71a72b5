//! Pinning workers to cores (`pin_workers`), as seen by the workers' own
//! affinity masks and by `Metrics`. Linux only: elsewhere affinity is a hint
//! or unavailable.
//!
//! Which cores are free depends on every pinned pool alive in the process,
//! so the tests here take turns (`one_at_a_time`).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

static TURN: Mutex<()> = Mutex::new(());

/// Held by every test while its pools are alive.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

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
            // Spares started later find nobody listening: not an error.
            let _ = started.lock().unwrap().send(());
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
    let _turn = one_at_a_time();
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
    let _turn = one_at_a_time();
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
    let _turn = one_at_a_time();
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
    let _turn = one_at_a_time();
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
    let (pools, masks) = outer.install(|| {
        let (pinned_pool, pinned) = pool_recording_masks(n, true);
        let (unpinned_pool, unpinned) = pool_recording_masks(n, false);
        ((pinned_pool, unpinned_pool), (pinned, unpinned))
    });
    // Dropped here, not on `outer`'s worker: a pool dropped on a worker
    // does not wait for its workers, so its cores would come back only
    // later, and the next test could find them still held.
    drop(pools);
    masks
}

/// A pool built by a task of another, pinned pool pins its workers to the
/// cores that are still free, one each, not to the building worker's one
/// core. (Regression: such a pool used to pin every worker to that core.)
#[test]
fn pool_built_on_a_pinned_worker_spreads_its_pins() {
    let _turn = one_at_a_time();
    let allowed = allowed_cores();
    if allowed.len() < 2 {
        println!("only one allowed core: nothing to spread");
        return;
    }
    // The outer pool holds the first core; the other cores are free.
    let (pinned, _) = masks_of_pools_built_on_a_pinned_worker(allowed.len() - 1);
    assert_eq!(pinned.len(), allowed.len() - 1);
    for (i, mask) in &pinned {
        assert_eq!(mask, &vec![allowed[i + 1]], "pinned worker {i}");
    }
}

/// Separate pinned pools take different cores: two one-worker pools do not
/// both pin to the first core (where they could never run at once).
#[test]
fn separate_pools_pin_to_different_cores() {
    let _turn = one_at_a_time();
    let allowed = allowed_cores();
    if allowed.len() < 2 {
        println!("only one allowed core: nothing to share out");
        return;
    }
    let (first, first_masks) = pool_recording_masks(1, true);
    let (second, second_masks) = pool_recording_masks(1, true);
    assert_eq!(first_masks[&0], vec![allowed[0]]);
    assert_eq!(second_masks[&0], vec![allowed[1]]);
    assert_eq!(first.metrics().pinned_workers(), 1);
    assert_eq!(second.metrics().pinned_workers(), 1);
}

/// A pool that cannot get a free core for every worker is not pinned at
/// all, and once the pool holding the cores is dropped they are free again.
#[test]
fn cores_held_by_a_live_pool_are_not_shared_and_come_back_on_drop() {
    let _turn = one_at_a_time();
    let allowed = allowed_cores();
    let (holder, _) = pool_recording_masks(allowed.len(), true);
    assert_eq!(holder.metrics().pinned_workers(), allowed.len());

    let (crowded, masks) = pool_recording_masks(1, true);
    assert_eq!(masks[&0], allowed, "a worker pinned onto a held core");
    assert_eq!(crowded.metrics().pinned_workers(), 0);
    drop(crowded);

    drop(holder);
    let (after, masks) = pool_recording_masks(allowed.len(), true);
    assert_eq!(after.metrics().pinned_workers(), allowed.len());
    for (i, mask) in &masks {
        assert_eq!(mask, &vec![allowed[*i]], "worker {i} after the drop");
    }
}

/// With `pin_workers(false)` workers keep the full set of cores, also when
/// the pool is built by a task of another, pinned pool. (Regression: they
/// used to inherit the building worker's one-core mask.)
#[test]
fn unpinned_pool_built_on_a_pinned_worker_keeps_the_full_mask() {
    let _turn = one_at_a_time();
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

/// Blocks every worker of `pool` in `block_in_place` at a barrier whose
/// last party is a task that only a spare can run; returns that spare's
/// index and affinity mask.
fn mask_of_a_spare_while_all_workers_block(
    pool: &pilfer::ThreadPool,
    n: usize,
) -> (usize, Vec<usize>) {
    let barrier = Arc::new(std::sync::Barrier::new(n + 1));
    // One share per worker: every worker blocks, whichever threads the OS
    // runs first (plain spawns could pile on one worker, or on a spare,
    // and leave a worker free to take the last party).
    let blocking = Arc::clone(&barrier);
    pool.spawn_broadcast(move |_| {
        pilfer::block_in_place(|| blocking.wait());
    });
    common::wait_for("every worker blocked", || pool.metrics().blocked_now() == n);
    let (sent, seen) = mpsc::channel();
    pool.spawn(move || {
        let index = pilfer::current_thread_index().expect("on a spare");
        sent.send((index, allowed_cores())).unwrap();
        barrier.wait();
    });
    seen.recv_timeout(common::DEADLINE)
        .expect("no spare ran the last party")
}

/// A spare standing in for a blocked, pinned worker runs on the core that
/// worker left idle; a spare of an unpinned pool runs on every core.
#[test]
fn a_spare_takes_the_core_its_blocked_worker_left_idle() {
    let _turn = one_at_a_time();
    let allowed = allowed_cores();
    let n = allowed.len();

    let (pool, masks) = pool_recording_masks(n, true);
    assert_eq!(pool.metrics().pinned_workers(), n);
    let (spare, mask) = mask_of_a_spare_while_all_workers_block(&pool, n);
    assert!(spare >= n, "the last party ran on worker {spare}");
    assert_eq!(mask.len(), 1, "the spare is pinned: {mask:?}");
    assert!(
        masks.values().any(|worker_mask| worker_mask == &mask),
        "the spare's core {mask:?} is a blocked worker's ({masks:?})"
    );
    let metrics = pool.metrics();
    assert!(metrics.spare_workers_started() >= 1, "{metrics:?}");
    drop(pool);

    let (pool, _) = pool_recording_masks(n, false);
    let (spare, mask) = mask_of_a_spare_while_all_workers_block(&pool, n);
    assert!(spare >= n, "the last party ran on worker {spare}");
    assert_eq!(mask, allowed, "a spare of an unpinned pool is not pinned");
}

/// A spare pinned to a blocked worker's core is moved off it the moment
/// the worker is back, in the middle of the spare's job: it never crowds
/// the worker that came back.
#[test]
fn a_spare_leaves_the_core_as_soon_as_its_worker_is_back() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let _turn = one_at_a_time();
    let allowed = allowed_cores();
    let n = allowed.len();
    let (pool, _) = pool_recording_masks(n, true);
    assert_eq!(pool.metrics().pinned_workers(), n);
    let (release, back) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    // One share per worker, as above.
    let (blocking, returned) = (release.clone(), back.clone());
    pool.spawn_broadcast(move |_| {
        pilfer::block_in_place(|| {
            while !blocking.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        returned.fetch_add(1, Ordering::SeqCst);
    });
    common::wait_for("every worker blocked", || pool.metrics().blocked_now() == n);
    let (sent, seen) = mpsc::channel();
    pool.spawn(move || {
        let seated = allowed_cores();
        release.store(true, Ordering::SeqCst);
        common::wait_for("every worker back", || back.load(Ordering::SeqCst) == n);
        sent.send((seated, allowed_cores())).unwrap();
    });
    let (seated, after) = seen.recv_timeout(common::DEADLINE).unwrap();
    assert_eq!(seated.len(), 1, "on its worker's core while it stood in");
    assert_eq!(after, allowed, "on every core once the worker is back");
}
