//! `ThreadPoolBuilder`: errors, thread names, stack size, handlers.
//! (The environment variable and the global pool have their own files:
//! each test file is its own process.)

mod common;

use pilfer::{BuildError, ThreadPool, ThreadPoolBuilder};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

#[test]
fn zero_threads_is_an_error() {
    let error = ThreadPool::builder().num_threads(0).build().unwrap_err();
    assert!(matches!(error, BuildError::ZeroThreads), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("at least one thread"),
        "message does not say what is wrong: {message:?}"
    );
    assert!(std::error::Error::source(&error).is_none());
}

#[test]
fn too_many_threads_is_an_error_not_an_attempt() {
    common::arm_watchdog();
    let error = ThreadPool::builder()
        .num_threads(10_000_000)
        .build()
        .unwrap_err();
    match &error {
        BuildError::TooManyThreads { requested, max } => {
            assert_eq!(*requested, 10_000_000);
            assert!(*max < 10_000_000 && *max >= 1, "max = {max}");
        }
        other => panic!("expected TooManyThreads, got {other:?}"),
    }
    assert!(error.to_string().contains("10000000"), "{error}");
}

/// `BuildError` is a normal error type: boxable, `Send + Sync`, usable with
/// `?`.
#[test]
fn build_error_is_a_std_error() {
    fn build(n: usize) -> Result<ThreadPool, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ThreadPool::builder().num_threads(n).build()?)
    }
    let error = build(0).unwrap_err();
    assert!(error.downcast_ref::<BuildError>().is_some());
    assert!(build(1).is_ok());
}

/// Stack sizes that the OS refuses (std reports EINVAL for `usize::MAX`, and
/// cannot map 2^50 bytes) give `Err(Spawn)`, not a panic, and no thread of
/// the pool is left.
#[test]
fn zero_stack_size_is_an_error() {
    let error = ThreadPool::builder().stack_size(0).build().unwrap_err();
    assert!(matches!(error, BuildError::ZeroStackSize), "{error:?}");
    assert!(error.to_string().contains("stack_size(0)"), "{error}");
    // The smallest positive size builds (rounded up to the platform's
    // minimum) and runs tasks.
    let pool = ThreadPool::builder()
        .num_threads(1)
        .stack_size(1)
        .pin_workers(false)
        .build()
        .expect("a one-byte stack is rounded up, not refused");
    assert_eq!(pool.install(|| 6 * 7), 42);
}

#[test]
fn absurd_stack_size_is_a_spawn_error() {
    common::arm_watchdog();
    for (size, prefix) in [(usize::MAX, "stkmax-"), (1usize << 50, "stk50-")] {
        let result = std::panic::catch_unwind(|| {
            ThreadPool::builder()
                .num_threads(3)
                .stack_size(size)
                .thread_name(move |i| format!("{prefix}{i}"))
                .build()
        });
        let error = match result {
            Ok(Ok(_)) => panic!("a {size}-byte stack was accepted"),
            Ok(Err(error)) => error,
            Err(_) => panic!("build() panicked for stack size {size}"),
        };
        match &error {
            BuildError::Spawn { index, error: io } => {
                assert_eq!(*index, 0, "{io}");
            }
            other => panic!("expected Spawn, got {other:?}"),
        }
        assert!(std::error::Error::source(&error).is_some());
        assert!(error.to_string().contains("worker"), "{error}");
        #[cfg(target_os = "linux")]
        assert_eq!(common::threads_named(prefix), Vec::<String>::new());
    }
}

#[test]
fn default_thread_names_are_pilfer_index() {
    common::arm_watchdog();
    let pool = ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .build()
        .unwrap();
    let names = names_by_worker(&pool);
    assert_eq!(names.len(), 3, "{names:?}");
    for (index, name) in names {
        assert_eq!(name, format!("pilfer-{index}"));
    }
}

#[test]
fn custom_thread_names_are_used_per_index() {
    common::arm_watchdog();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&calls);
    let pool = ThreadPool::builder()
        .num_threads(3)
        .pin_workers(false)
        .thread_name(move |i| {
            recorded.lock().unwrap().push(i);
            format!("compute-{i}")
        })
        .build()
        .unwrap();
    let names = names_by_worker(&pool);
    assert_eq!(names.len(), 3, "{names:?}");
    for (index, name) in names {
        assert_eq!(name, format!("compute-{index}"));
    }
    let (index, name) = pool.install(|| {
        let name = thread::current().name().map(str::to_string);
        (pilfer::current_worker_index().unwrap(), name)
    });
    assert_eq!(name, Some(format!("compute-{index}")));
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_unstable();
    assert_eq!(calls, [0, 1, 2], "thread_name called once per index");
}

/// Every worker's thread name, by worker index.
fn names_by_worker(pool: &ThreadPool) -> BTreeMap<usize, String> {
    common::on_every_worker(pool, || thread::current().name().unwrap().to_string())
}

/// The stack size reaches the worker threads (checked with
/// `pthread_getattr_np`), and a recursion too deep for the default stack
/// fits in it.
#[cfg(target_os = "linux")]
#[test]
fn stack_size_is_applied_to_workers() {
    const SIZE: usize = 64 << 20;
    let pool = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .stack_size(SIZE)
        .build()
        .unwrap();
    for (index, measured) in common::on_every_worker(&pool, current_stack_size) {
        assert!(
            measured >= SIZE,
            "worker {index}: stack is {measured} bytes, asked for {SIZE}"
        );
    }

    // Over 10 MiB of frames: overflows the 2 MiB default.
    fn deep(depth: usize) -> u64 {
        let pad = std::hint::black_box([depth as u8; 1024]);
        if depth == 0 {
            return pad[0] as u64;
        }
        deep(depth - 1) + pad[1] as u64 % 2
    }
    assert_eq!(pool.install(|| deep(10_000)), 5_000);
}

#[cfg(target_os = "linux")]
fn current_stack_size() -> usize {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read
    // and destroyed once; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut size = 0usize;
        assert_eq!(libc::pthread_attr_getstacksize(&attr, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        size
    }
}

/// The start handler runs once per worker index, on that worker, before the
/// worker takes any task.
#[test]
fn start_handler_runs_once_per_worker_before_any_task() {
    common::arm_watchdog();
    const N: usize = 4;
    let started: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (flags, log) = (Arc::clone(&started), Arc::clone(&calls));
    let pool = ThreadPool::builder()
        .num_threads(N)
        .pin_workers(false)
        .start_handler(move |i| {
            assert_eq!(pilfer::current_worker_index(), Some(i));
            log.lock().unwrap().push(i);
            flags[i].store(true, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    // Tasks queued at once; whichever worker runs one must have started.
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let flags = Arc::clone(&started);
            pool.submit(move || {
                let index = pilfer::current_worker_index().unwrap();
                flags[index].load(Ordering::SeqCst)
            })
        })
        .collect();
    for task in tasks {
        assert!(
            task.join().unwrap(),
            "a worker ran a task before its start handler"
        );
    }
    common::assert_all_workers_alive(&pool);
    drop(pool);
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_unstable();
    assert_eq!(calls, (0..N).collect::<Vec<_>>());
}

/// Panicking start and exit handlers do not take the pool down; they are
/// counted with the detached panics.
#[test]
fn panicking_lifecycle_handlers_are_contained() {
    common::arm_watchdog();
    let pool = ThreadPool::builder()
        .num_threads(2)
        .pin_workers(false)
        .start_handler(|i| panic!("start handler {i} fails"))
        .exit_handler(|i| panic!("exit handler {i} fails"))
        .build()
        .unwrap();
    common::wait_for("both start-handler panics counted", || {
        pool.metrics().detached_panics() >= 2
    });
    assert_eq!(pool.install(|| 3 + 4), 7);
    common::assert_all_workers_alive(&pool);
    drop(pool);
}

#[test]
fn builder_new_default_and_builder_agree() {
    common::arm_watchdog();
    let configure = |b: ThreadPoolBuilder| b.num_threads(2).pin_workers(false).build().unwrap();
    for pool in [
        configure(ThreadPool::builder()),
        configure(ThreadPoolBuilder::new()),
        configure(ThreadPoolBuilder::default()),
    ] {
        assert_eq!(pool.num_threads(), 2);
        assert_eq!(pool.install(pilfer::current_num_threads), 2);
    }
}

/// A name the OS cannot take (std panics on an interior NUL) for worker 1:
/// `build` reports it as an error instead of panicking, and leaves no worker
/// running. (Regression: the panic used to leak worker 0 for good.)
#[cfg(target_os = "linux")]
#[test]
fn thread_name_with_nul_is_an_error_and_leaves_no_threads() {
    common::arm_watchdog();
    let result = std::panic::catch_unwind(|| {
        ThreadPool::builder()
            .num_threads(3)
            .pin_workers(false)
            .thread_name(|i| {
                if i == 1 {
                    "nul\0name-1".to_string()
                } else {
                    format!("nulname-{i}")
                }
            })
            .build()
    });
    // Give a worker 0 that is being stopped ample time to be gone.
    let mut left = common::threads_named("nulname-");
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
        left = common::threads_named("nulname-");
    }
    assert_eq!(left, Vec::<String>::new(), "workers left running");
    match result {
        Ok(Err(BuildError::InvalidThreadName { index })) => assert_eq!(index, 1),
        Ok(Err(other)) => panic!("expected InvalidThreadName, got {other:?}"),
        Ok(Ok(_)) => panic!("a NUL byte in a thread name was accepted"),
        Err(_) => panic!("build() panicked instead of returning an error"),
    }
}

/// A `thread_name` callback that panics for worker 2: the panic may come out
/// of `build` (or become an error), but the workers started before must not
/// be left running.
#[cfg(target_os = "linux")]
#[test]
fn panicking_thread_name_callback_leaves_no_threads() {
    common::arm_watchdog();
    let result = std::panic::catch_unwind(|| {
        ThreadPool::builder()
            .num_threads(4)
            .pin_workers(false)
            .thread_name(|i| {
                assert!(i != 2, "no name for worker 2");
                format!("pnkname-{i}")
            })
            .build()
    });
    match &result {
        Ok(Ok(_)) => panic!("build succeeded without a name for worker 2"),
        Ok(Err(error)) => println!("build returned an error: {error}"),
        Err(payload) => assert_eq!(common::panic_message(&**payload), "no name for worker 2"),
    }
    let mut left = common::threads_named("pnkname-");
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(10));
        left = common::threads_named("pnkname-");
    }
    assert_eq!(left, Vec::<String>::new(), "workers left running");
}
