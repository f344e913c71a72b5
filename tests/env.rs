//! `PILFER_NUM_THREADS`: the default thread count of a builder without
//! `num_threads`, and of the lazily built global pool. The variable is
//! process-wide, so this file is its own process and its tests take turns.

mod common;

use pilfer::{BuildError, NUM_THREADS_ENV, ThreadPool};
use std::sync::{Mutex, MutexGuard};

static ENV: Mutex<()> = Mutex::new(());

/// Holds the environment for one test, restoring "unset" afterwards.
struct EnvGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

impl EnvGuard {
    fn lock() -> EnvGuard {
        common::arm_watchdog();
        EnvGuard(ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn set(&self, value: &str) {
        // SAFETY: every test of this process that touches or reads the
        // environment holds `ENV`, and no other thread reads it meanwhile.
        unsafe { std::env::set_var(NUM_THREADS_ENV, value) };
    }

    fn unset(&self) {
        // SAFETY: as in `set`.
        unsafe { std::env::remove_var(NUM_THREADS_ENV) };
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        self.unset();
    }
}

#[test]
fn the_variable_has_the_documented_name() {
    assert_eq!(NUM_THREADS_ENV, "PILFER_NUM_THREADS");
}

#[test]
fn env_sets_the_default_thread_count() {
    let env = EnvGuard::lock();
    for n in [1usize, 3, 5] {
        env.set(&n.to_string());
        let pool = ThreadPool::builder().pin_workers(false).build().unwrap();
        assert_eq!(pool.num_threads(), n);
        assert_eq!(pool.install(pilfer::current_num_threads), n);
        assert_eq!(pool.metrics().workers().len(), n);
    }
}

#[test]
fn explicit_num_threads_overrides_env() {
    let env = EnvGuard::lock();
    env.set("5");
    let pool = ThreadPool::builder().num_threads(2).build().unwrap();
    assert_eq!(pool.num_threads(), 2);
    // Even an invalid value is not consulted then.
    env.set("not a number");
    let pool = ThreadPool::builder().num_threads(3).build().unwrap();
    assert_eq!(pool.num_threads(), 3);
}

#[test]
fn invalid_env_values_are_build_errors() {
    let env = EnvGuard::lock();
    for value in ["0", "-1", "abc", "", "2.5", "99999999999999999999999"] {
        env.set(value);
        match ThreadPool::builder().build() {
            Err(BuildError::InvalidEnvironment { value: reported }) => {
                assert_eq!(reported, value);
            }
            Err(other) => panic!("{value:?}: expected InvalidEnvironment, got {other:?}"),
            Ok(pool) => panic!("{value:?} accepted: {} threads", pool.num_threads()),
        }
        let message = ThreadPool::builder().build().unwrap_err().to_string();
        assert!(message.contains(NUM_THREADS_ENV), "{message}");
    }
}

#[test]
fn unset_env_means_available_parallelism() {
    let env = EnvGuard::lock();
    env.unset();
    let expected = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ThreadPool::builder().pin_workers(false).build().unwrap();
    assert_eq!(pool.num_threads(), expected);
}

/// The global pool, built lazily on first use, takes its size from the
/// variable too. (Only this test touches the global pool in this process.)
#[test]
fn global_pool_takes_its_size_from_env() {
    let env = EnvGuard::lock();
    env.set("3");
    assert_eq!(pilfer::current_num_threads(), 3);
    let (a, b) = pilfer::join(pilfer::current_num_threads, pilfer::current_worker_index);
    assert_eq!(a, 3);
    assert!(b.is_some_and(|i| i < 3));
}
