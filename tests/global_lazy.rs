//! The global pool built lazily on first use: afterwards `build_global`
//! reports that it exists. Its own process, with a single test.

mod common;

use pilfer::{BuildError, ThreadPool};

#[test]
fn first_use_builds_the_global_pool_and_build_global_then_fails() {
    common::arm_watchdog();
    // Nothing has touched the global pool yet: this join builds it.
    let (a, b) = pilfer::join(|| 1, || 2);
    assert_eq!((a, b), (1, 2));
    let threads = pilfer::current_num_threads();
    let expected = match std::env::var(pilfer::NUM_THREADS_ENV) {
        Ok(value) => value
            .trim()
            .parse()
            .expect("test run with a bad PILFER_NUM_THREADS"),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    assert_eq!(threads, expected);

    let result = ThreadPool::builder().num_threads(2).build_global();
    assert!(
        matches!(result, Err(BuildError::GlobalPoolExists)),
        "{result:?}"
    );
    // The lazily built pool is unaffected.
    assert_eq!(pilfer::current_num_threads(), threads);
    assert_eq!(pilfer::join(|| 3, || 4), (3, 4));
}
