//! `PILFER_NUM_THREADS`, then rayon's `RAYON_NUM_THREADS` and
//! `RAYON_RS_NUM_CPUS`: the default thread count of a builder without
//! `num_threads`, and of the lazily built global pool. The variables are
//! process-wide, so this file is its own process and its tests take turns.

mod common;

use pilfer::{BuildError, NUM_THREADS_ENV, RAYON_NUM_THREADS_ENV, ThreadPool};
use std::sync::{Mutex, MutexGuard};

static ENV: Mutex<()> = Mutex::new(());

/// rayon's older name for `RAYON_NUM_THREADS`.
const RAYON_RS_NUM_CPUS: &str = "RAYON_RS_NUM_CPUS";

/// The thread count a builder without `num_threads` gives now.
fn default_count() -> usize {
    ThreadPool::builder()
        .pin_workers(false)
        .build()
        .unwrap()
        .num_threads()
}

/// Holds the environment for one test, restoring "unset" afterwards.
struct EnvGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

impl EnvGuard {
    fn lock() -> EnvGuard {
        common::arm_watchdog();
        EnvGuard(ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn set(&self, value: &str) {
        self.set_var(NUM_THREADS_ENV, value);
    }

    fn set_var(&self, name: &str, value: &str) {
        // SAFETY: every test of this process that touches or reads the
        // environment holds `ENV`, and no other thread reads it meanwhile.
        unsafe { std::env::set_var(name, value) };
    }

    fn unset(&self) {
        for name in [NUM_THREADS_ENV, RAYON_NUM_THREADS_ENV, RAYON_RS_NUM_CPUS] {
            // SAFETY: as in `set_var`.
            unsafe { std::env::remove_var(name) };
        }
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        self.unset();
    }
}

#[test]
fn the_variables_have_the_documented_names() {
    assert_eq!(NUM_THREADS_ENV, "PILFER_NUM_THREADS");
    assert_eq!(RAYON_NUM_THREADS_ENV, "RAYON_NUM_THREADS");
}

#[test]
fn rayon_variables_are_read_as_rayon_reads_them_after_pilfers() {
    let env = EnvGuard::lock();
    env.unset();
    let cores = default_count();
    env.set_var(RAYON_NUM_THREADS_ENV, "3");
    assert_eq!(default_count(), 3);
    // pilfer's own variable comes first.
    env.set("2");
    assert_eq!(default_count(), 2);
    env.unset();
    // rayon's 0 means the default; a value that is not a count is ignored,
    // then the older variable is read.
    env.set_var(RAYON_NUM_THREADS_ENV, "0");
    env.set_var(RAYON_RS_NUM_CPUS, "4");
    assert_eq!(default_count(), cores);
    env.set_var(RAYON_NUM_THREADS_ENV, "lots");
    assert_eq!(default_count(), 4);
    env.set_var(RAYON_RS_NUM_CPUS, "-1");
    assert_eq!(default_count(), cores);
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
