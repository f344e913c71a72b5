//! Where the package keeps rayon-core's behaviour over pilfer's: what a
//! program written for rayon relies on. (rayon's and rayon-core's own
//! suites run on the package too: scripts/rayon-suite.sh.)

use rayon_core::{ThreadPool, ThreadPoolBuilder};
use std::sync::mpsc;
use std::time::Duration;

/// Long enough for anything here to happen, short enough to fail a hang.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn zero_threads_means_the_default() {
    let pool = ThreadPoolBuilder::new().num_threads(0).build().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The variables may set it in the environment of the test run.
    let configured = [
        "PILFER_NUM_THREADS",
        "RAYON_NUM_THREADS",
        "RAYON_RS_NUM_CPUS",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some());
    if !configured {
        assert_eq!(pool.current_num_threads(), cores);
    }
    assert!(pool.current_num_threads() >= 1);
    // The last call counts, as in rayon.
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .num_threads(0)
        .build()
        .unwrap();
    assert!(pool.current_num_threads() >= 1);
    let pool = ThreadPoolBuilder::new()
        .num_threads(0)
        .num_threads(2)
        .build()
        .unwrap();
    assert_eq!(pool.current_num_threads(), 2);
}

#[test]
fn dropping_a_pool_does_not_wait_for_its_tasks() {
    // A task that waits for the thread dropping its pool: pilfer's waiting
    // drop would deadlock here; rayon's, and this package's, returns.
    let pool = ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (release, released) = mpsc::channel::<()>();
    let (finished, done) = mpsc::channel();
    pool.spawn(move || {
        released.recv().unwrap();
        finished.send("ran").unwrap();
    });
    // Dropped on a thread of its own, so that a drop that waits fails the
    // test by the deadline instead of hanging it.
    let (dropped, is_dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(pool);
        dropped.send(()).unwrap();
    });
    is_dropped
        .recv_timeout(DEADLINE)
        .expect("the drop waited for a task that waits for the dropping thread");
    release.send(()).unwrap();
    // Accepted work still runs, in the background.
    assert_eq!(done.recv_timeout(DEADLINE), Ok("ran"));
}

#[test]
fn a_dropped_pool_still_runs_what_its_tasks_spawn() {
    let pool = ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let (finished, done) = mpsc::channel();
    pool.spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        rayon_core::spawn(move || finished.send(rayon_core::current_thread_index()).unwrap());
    });
    drop(pool);
    let index = done.recv_timeout(DEADLINE).unwrap();
    assert!(index.is_some_and(|index| index < 2), "{index:?}");
}

#[test]
fn build_scoped_hands_the_rayon_core_pool_type() {
    fn threads(pool: &ThreadPool) -> usize {
        pool.install(rayon_core::current_num_threads)
    }
    let seen = ThreadPoolBuilder::new()
        .num_threads(2)
        .build_scoped(|thread| thread.run(), threads)
        .unwrap();
    assert_eq!(seen, 2);
}

#[test]
fn build_errors_read_as_rayon_cores() {
    use std::error::Error;
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .unwrap();
    let error = ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "The current thread is already part of another thread pool."
    );
    assert!(error.source().is_none());
    assert!(matches!(
        error.into_pilfer(),
        rayon_core::BuildError::CurrentThreadInPool
    ));
    drop(pool);

    let refused = std::io::Error::other("no threads today");
    let error = ThreadPoolBuilder::new()
        .num_threads(1)
        .spawn_handler(move |_| Err(std::io::Error::other(refused.to_string())))
        .build()
        .unwrap_err();
    assert_eq!(error.to_string(), "no threads today");
    assert!(error.source().is_some());
}
