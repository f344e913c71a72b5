//! Programs the type system must reject, checked as `compile_fail` doc
//! tests (with the expected error code, so a test cannot pass by failing
//! for some other reason).
//!
//! A scope task cannot borrow something that dies before the scope ends:
//!
//! ```compile_fail,E0597
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! pool.scope(|s| {
//!     let local = vec![1, 2, 3];
//!     s.spawn(|_| println!("{local:?}"));
//! });
//! ```
//!
//! ...nor can it escape the scope through a borrow the caller keeps:
//!
//! ```compile_fail,E0521
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! let mut leaked = None;
//! pool.scope(|s| leaked = Some(s));
//! ```
//!
//! An `Rc` (not `Send`) cannot go into a detached task...
//!
//! ```compile_fail,E0277
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! let shared = std::rc::Rc::new(1);
//! pool.spawn(move || drop(shared));
//! ```
//!
//! ...nor into either half of a `join`...
//!
//! ```compile_fail,E0277
//! let shared = std::rc::Rc::new(1);
//! pilfer::join(move || drop(shared), || ());
//! ```
//!
//! ...nor into a scope task.
//!
//! ```compile_fail,E0277
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! let shared = std::rc::Rc::new(1);
//! pool.scope(|s| s.spawn(move |_| drop(shared)));
//! ```
//!
//! A detached task cannot borrow a local: it may outlive it.
//!
//! ```compile_fail,E0373
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! let local = 5;
//! pool.spawn(|| println!("{local}"));
//! ```
//!
//! The same holds for `submit`:
//!
//! ```compile_fail,E0373
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! let local = 5;
//! let task = pool.submit(|| local + 1);
//! ```
//!
//! For contrast, the accepted forms:
//!
//! ```
//! let pool = pilfer::ThreadPool::builder().num_threads(2).build().unwrap();
//! let local = vec![1, 2, 3];
//! pool.scope(|s| s.spawn(|_| println!("{local:?}")));
//! let shared = std::sync::Arc::new(1);
//! pool.spawn(move || drop(shared));
//! pool.spawn(move || println!("{local:?}"));
//! ```
