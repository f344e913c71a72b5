//! A lock-free work-stealing thread pool.
//!
//! # Why a pool
//!
//! Starting an OS thread per task costs a system call, a stack (up to 8 MiB
//! of address space) and scheduler churn: tens of microseconds per task. A
//! pool starts a fixed set of workers once and feeds them tasks through
//! queues, at well under a microsecond per task.
//!
//! # How work moves
//!
//! Each worker owns a double-ended queue (a crossbeam-deque `Worker`) and is
//! pinned to a core of its own (unless the pool cannot have one free core
//! per worker: more workers than cores, or cores held by other pools).
//! It pushes and pops its own work at one end, last in first out, so what
//! it touched last (still in its cache) runs first.
//! A worker that runs dry *steals* from the other end of a peer's deque,
//! starting at a random peer: the oldest work, usually the largest piece.
//! Threads outside the pool submit through a global *injector*, from which
//! workers take batches. Idle workers spin briefly, then sleep; new work
//! wakes one sleeper at a time (see the `sleep` module's documentation).
//!
//! [`join`] is the building block of fork-join parallelism: `join(a, b)`
//! runs `a` here and offers `b` to thieves. Offering is lazy: `b` stays in a
//! private frame, costing little more than a function call, until a thief
//! asks this worker for work; only then is the oldest such frame published
//! to the deque.
//!
//! # Example
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! let pool = pilfer::ThreadPool::builder().num_threads(4).build().unwrap();
//!
//! // Fork-join: split a sum in two, recursively.
//! fn sum(values: &[u64]) -> u64 {
//!     if values.len() <= 1024 {
//!         return values.iter().sum();
//!     }
//!     let (left, right) = values.split_at(values.len() / 2);
//!     let (a, b) = pilfer::join(|| sum(left), || sum(right));
//!     a + b
//! }
//! let values: Vec<u64> = (0..100_000).collect();
//! assert_eq!(pool.install(|| sum(&values)), 4_999_950_000);
//!
//! // Scoped tasks may borrow from the stack.
//! let mut halves = [0u64; 2];
//! pool.scope(|s| {
//!     let (first, second) = halves.split_at_mut(1);
//!     s.spawn(|_| first[0] = values[..50_000].iter().sum());
//!     s.spawn(|_| second[0] = values[50_000..].iter().sum());
//! });
//! assert_eq!(halves[0] + halves[1], 4_999_950_000);
//!
//! // Detached tasks; dropping the pool waits for them.
//! static DONE: AtomicUsize = AtomicUsize::new(0);
//! for _ in 0..100 {
//!     pool.spawn(|| {
//!         DONE.fetch_add(1, Ordering::Relaxed);
//!     });
//! }
//! drop(pool);
//! assert_eq!(DONE.load(Ordering::Relaxed), 100);
//! ```

#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod bound;
mod broadcast;
mod builder;
#[cfg(doctest)]
mod compile_fail;
mod config;
mod context;
mod current;
mod end;
mod frames;
mod global;
mod install;
mod isolate;
mod job;
mod join;
mod latch;
mod metrics;
mod parker;
mod pin;
mod pool;
mod publish;
mod queue;
mod registry;
mod rng;
mod scope;
mod shutdown;
mod sleep;
mod spares;
mod spawn;
mod start;
mod sync;
mod table;
mod task;
mod unwind;
mod worker;

pub use bound::{FullPolicy, TrySpawnError};
pub use broadcast::{broadcast, spawn_broadcast};
pub use builder::{CustomSpawn, DefaultSpawn, ThreadPoolBuilder, ThreadSpawn};
pub use config::{BuildError, NUM_THREADS_ENV, RAYON_NUM_THREADS_ENV};
pub use worker::block_in_place;

/// rayon-core's name for [`BuildError`], so that code written against it
/// compiles unchanged.
pub type ThreadPoolBuildError = BuildError;
pub use context::BroadcastContext;
pub use current::{
    Yield, current_num_threads, current_thread_has_pending_tasks, current_thread_index,
    current_worker_index, max_num_threads, yield_local, yield_now,
};
pub use isolate::isolate;
pub use join::{FnContext, join, join_context};
pub use metrics::{Metrics, SEARCH_BUCKET_BOUNDS, WorkerMetrics};
pub use pool::ThreadPool;
pub use scope::{Scope, ScopeFifo, in_place_scope, in_place_scope_fifo, scope, scope_fifo};
pub use spawn::{spawn, spawn_fifo};
pub use start::ThreadBuilder;
pub use task::{Task, TaskError};

/// What the pool does to shared memory, counted: only with the `traffic`
/// feature, a build for measuring (`examples/traffic.rs`;
/// BENCHMARKS.md has the table). Not part of the stable API.
#[cfg(all(feature = "traffic", not(any(loom, shuttle))))]
pub mod traffic {
    pub use crate::sync::traffic::{Event, Traffic};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
