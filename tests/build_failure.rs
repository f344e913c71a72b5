//! A pool whose *later* workers cannot be started: `build` must report the
//! failing index and stop and join the workers it had already started.
//!
//! The failure is provoked by capping the process's address space
//! (`RLIMIT_AS`) so that only a couple of 1 GiB worker stacks fit. The cap is
//! process-wide, so this file is its own process with a single test.
#![cfg(target_os = "linux")]

mod common;

use pilfer::{BuildError, ThreadPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const GIB: u64 = 1 << 30;

/// A field of `/proc/self/status`, e.g. `VmSize` (kB) or `Threads`.
fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn address_space_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) }, 0);
    limit
}

fn set_address_space_limit(limit: &libc::rlimit) -> bool {
    // SAFETY: `limit` is a valid, initialised struct.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, limit) == 0 }
}

#[test]
fn failing_later_worker_stops_the_started_ones() {
    common::arm_watchdog();
    let original = address_space_limit();
    let threads_before = status_field("Threads");

    let starts = Arc::new(AtomicUsize::new(0));
    let exits = Arc::new(AtomicUsize::new(0));
    let (start_count, exit_count) = (Arc::clone(&starts), Arc::clone(&exits));
    let builder = ThreadPool::builder()
        .num_threads(6)
        .pin_workers(false)
        .stack_size(GIB as usize)
        .thread_name(|i| format!("aslim-{i}"))
        .start_handler(move |_| {
            start_count.fetch_add(1, Ordering::SeqCst);
        })
        .exit_handler(move |_| {
            exit_count.fetch_add(1, Ordering::SeqCst);
        });

    // Room for about two more 1 GiB stacks, not six.
    let cap = status_field("VmSize") * 1024 + 2 * GIB + GIB / 2;
    let capped = libc::rlimit {
        rlim_cur: cap.min(original.rlim_max),
        rlim_max: original.rlim_max,
    };
    if !set_address_space_limit(&capped) {
        println!("cannot cap the address space here; nothing to test");
        return;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.build()));
    assert!(set_address_space_limit(&original), "restoring RLIMIT_AS");

    let error = match result {
        Err(_) => panic!("build() panicked when a worker could not be started"),
        Ok(Ok(_)) => panic!("six 1 GiB stacks fit under a 2.5 GiB cap?"),
        Ok(Err(error)) => error,
    };
    let index = match &error {
        BuildError::Spawn { index, .. } => *index,
        other => panic!("expected Spawn, got {other:?}"),
    };
    println!("worker {index} could not be started: {error}");
    assert!(
        (1..6).contains(&index),
        "test setup: want a failure after some workers started, got index {index}"
    );
    // The started workers ran their start handlers, then were stopped (exit
    // handlers) and joined before `build` returned.
    assert_eq!(starts.load(Ordering::SeqCst), index);
    assert_eq!(exits.load(Ordering::SeqCst), index);
    assert_eq!(common::threads_named("aslim-"), Vec::<String>::new());
    assert_eq!(
        status_field("Threads"),
        threads_before,
        "threads left behind"
    );

    // Without the cap, the same configuration builds.
    let pool = ThreadPool::builder()
        .num_threads(6)
        .pin_workers(false)
        .stack_size(GIB as usize)
        .build()
        .unwrap();
    assert_eq!(pool.install(|| 6 * 7), 42);
}
