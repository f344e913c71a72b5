//! `build_global`: configuring the global pool explicitly. Its own process,
//! and a single test, since the global pool can be built only once.

mod common;

use pilfer::{BuildError, ThreadPool};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn build_global_once_then_use_it() {
    common::arm_watchdog();
    // An invalid configuration fails without building anything...
    let error = ThreadPool::builder()
        .num_threads(0)
        .build_global()
        .unwrap_err();
    assert!(matches!(error, BuildError::ZeroThreads), "{error:?}");

    // ...so the first valid call still succeeds.
    ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .thread_name(|i| format!("global-{i}"))
        .build_global()
        .expect("first build_global");

    let again = ThreadPool::builder().num_threads(1).build_global();
    assert!(
        matches!(again, Err(BuildError::GlobalPoolExists)),
        "second build_global: {again:?}"
    );
    let message = again.unwrap_err().to_string();
    assert!(message.contains("already"), "{message}");

    // The free functions use the configured pool.
    assert_eq!(pilfer::current_worker_index(), None);
    assert_eq!(pilfer::current_num_threads(), 3);
    let name = || thread::current().name().map(str::to_string);
    let (a, b) = pilfer::join(name, name);
    for n in [a, b] {
        assert!(
            n.as_deref().is_some_and(|n| n.starts_with("global-")),
            "{n:?}"
        );
    }
    let mut names = vec![None; 4];
    let body = pilfer::scope(|s| {
        for slot in names.iter_mut() {
            s.spawn(move |_| *slot = name());
        }
        name()
    });
    names.push(body);
    for n in names {
        assert!(
            n.as_deref().is_some_and(|n| n.starts_with("global-")),
            "{n:?}"
        );
    }
    let (sender, receiver) = mpsc::channel();
    pilfer::spawn(move || {
        sender
            .send((name(), pilfer::current_num_threads()))
            .unwrap()
    });
    let (spawned, threads) = receiver.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(spawned.is_some_and(|n| n.starts_with("global-")));
    assert_eq!(threads, 3);

    // Still exactly one global pool.
    assert!(matches!(
        ThreadPool::builder().build_global(),
        Err(BuildError::GlobalPoolExists)
    ));
}
