//! A few seconds of everything at once, from several outside threads: join,
//! scope, spawn, submit, install, nested and short-lived pools, panics of
//! every kind, and pools dropped from outside and from their own workers.
//! Every count is checked at the end.

mod common;

use common::{DEADLINE, expect_panic, fib, fib_sequential, panic_message};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long the outside threads keep going (and at most how many rounds).
const RUN_FOR: Duration = Duration::from_secs(3);
const MAX_ROUNDS: usize = 25_000;
const OUTSIDE_THREADS: usize = 4;

/// Payload prefix of the panics this test causes on purpose.
const EXPECTED: &str = "stress: ";

#[derive(Default)]
struct Counts {
    spawned: AtomicUsize,
    spawned_ran: AtomicUsize,
    detached_panics: AtomicUsize,
    handled_panics: AtomicUsize,
    rounds: AtomicUsize,
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn small_pool(n: usize) -> pilfer::ThreadPool {
    common::pool(n)
}

fn one_round(pool: &Arc<pilfer::ThreadPool>, counts: &Arc<Counts>, rng: &mut XorShift) {
    match rng.below(12) {
        0 => {
            assert_eq!(pool.install(|| fib(12)), 144);
            // Outside every pool: the global pool.
            assert_eq!(pilfer::join(|| fib(8), || fib(9)), (21, 34));
        }
        1 => {
            let mut cells = vec![0usize; 64];
            pool.scope(|s| {
                for (i, pair) in cells.chunks_mut(2).enumerate() {
                    s.spawn(move |s| {
                        let (first, second) = pair.split_at_mut(1);
                        s.spawn(move |_| first[0] = 2 * i);
                        second[0] = 2 * i + 1;
                    });
                }
            });
            assert!(cells.iter().enumerate().all(|(i, &c)| c == i));
        }
        2 => {
            let k = rng.below(64) as usize;
            counts.spawned.fetch_add(k, Ordering::SeqCst);
            for _ in 0..k {
                let counts = Arc::clone(counts);
                pool.spawn(move || {
                    counts.spawned_ran.fetch_add(1, Ordering::SeqCst);
                });
            }
        }
        3 => {
            let tasks: Vec<_> = (0..rng.below(32))
                .map(|i| pool.submit(move || i * 3))
                .collect();
            for (i, task) in tasks.into_iter().enumerate() {
                assert_eq!(task.join().unwrap(), i as u64 * 3);
            }
        }
        4 => {
            // A short-lived nested pool, used in both directions, then
            // dropped with work still queued.
            let nested = small_pool(1 + rng.below(2) as usize);
            let value = pool.install(|| nested.install(|| pool.join(|| fib(6), || fib(7))));
            assert_eq!(value, (8, 13));
            let total = AtomicUsize::new(0);
            nested.scope(|s| {
                s.spawn(|_| {
                    total.fetch_add(pool.install(|| 5), Ordering::SeqCst);
                });
            });
            assert_eq!(total.load(Ordering::SeqCst), 5);
            let ran = Arc::new(AtomicUsize::new(0));
            let k = rng.below(32) as usize;
            for _ in 0..k {
                let ran = Arc::clone(&ran);
                nested.spawn(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
            drop(nested);
            assert_eq!(ran.load(Ordering::SeqCst), k, "drop lost queued tasks");
        }
        5 => {
            let message = expect_panic(|| pool.install(|| panic!("{EXPECTED}install")));
            assert_eq!(message, format!("{EXPECTED}install"));
        }
        6 => {
            let other_done = AtomicUsize::new(0);
            let message = expect_panic(|| {
                pool.join(
                    || other_done.fetch_add(fib(10) as usize, Ordering::SeqCst),
                    || -> () { panic!("{EXPECTED}join b") },
                )
            });
            assert_eq!(message, format!("{EXPECTED}join b"));
            assert_eq!(other_done.load(Ordering::SeqCst), 55);
        }
        7 => {
            counts.detached_panics.fetch_add(1, Ordering::SeqCst);
            pool.spawn(|| panic!("{EXPECTED}detached"));
        }
        8 => {
            let finished = AtomicUsize::new(0);
            let message = expect_panic(|| {
                pool.scope(|s| {
                    for i in 0..8 {
                        let finished = &finished;
                        s.spawn(move |_| {
                            if i == 3 {
                                panic!("{EXPECTED}scope task");
                            }
                            finished.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                })
            });
            assert_eq!(message, format!("{EXPECTED}scope task"));
            assert_eq!(finished.load(Ordering::SeqCst), 7);
        }
        9 => {
            let task = pool.submit(|| -> u8 { panic!("{EXPECTED}task") });
            let payload = task.join().unwrap_err().into_panic();
            assert_eq!(panic_message(&*payload), format!("{EXPECTED}task"));
        }
        10 => {
            // A short-lived pool whose last handle is dropped by its own
            // worker, with tasks queued behind.
            let doomed = Arc::new(small_pool(1 + rng.below(2) as usize));
            let (sender, receiver) = mpsc::channel();
            let inner = Arc::clone(&doomed);
            let (go, go_rx) = mpsc::channel::<()>();
            doomed.spawn(move || {
                go_rx.recv().unwrap();
                for _ in 0..4 {
                    let sender = sender.clone();
                    inner.spawn(move || sender.send(()).unwrap());
                }
                drop(inner);
            });
            drop(doomed);
            go.send(()).unwrap();
            for _ in 0..4 {
                receiver
                    .recv_timeout(DEADLINE)
                    .expect("task queued before a self-drop never ran");
            }
        }
        _ => {
            // A scope on the shared pool whose tasks call into a fresh pool.
            let helper = small_pool(1);
            let mut results = [0u64; 6];
            pool.scope(|s| {
                for (i, slot) in results.iter_mut().enumerate() {
                    let helper = &helper;
                    s.spawn(move |_| *slot = helper.install(|| fib(i as u64 + 5)));
                }
            });
            for (i, r) in results.iter().enumerate() {
                assert_eq!(*r, fib_sequential(i as u64 + 5));
            }
        }
    }
}

#[test]
fn everything_at_once() {
    common::arm_watchdog();
    // Keep the expected panics quiet; anything else is printed as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let expected = payload
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with(EXPECTED));
        if !expected {
            default_hook(info);
        }
    }));

    let counts = Arc::new(Counts::default());
    let handler_counts = Arc::clone(&counts);
    let pool = Arc::new(
        pilfer::ThreadPool::builder()
            .num_threads(3)
            .panic_handler(move |payload| {
                assert_eq!(panic_message(&*payload), format!("{EXPECTED}detached"));
                handler_counts.handled_panics.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap(),
    );

    let start = Instant::now();
    let (done, done_rx) = mpsc::channel();
    for t in 0..OUTSIDE_THREADS {
        let pool = Arc::clone(&pool);
        let counts = Arc::clone(&counts);
        let done = done.clone();
        thread::spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                let mut rounds = 0;
                while start.elapsed() < RUN_FOR && rounds < MAX_ROUNDS {
                    one_round(&pool, &counts, &mut rng);
                    rounds += 1;
                }
                counts.rounds.fetch_add(rounds, Ordering::SeqCst);
            }));
            // Let go of the pool before reporting: the test then holds the
            // last handle.
            drop(pool);
            done.send(result.map_err(|p| panic_message(&*p))).unwrap();
        });
    }
    drop(done);
    for _ in 0..OUTSIDE_THREADS {
        let result = done_rx
            .recv_timeout(DEADLINE)
            .expect("an outside thread is stuck: deadlock?");
        if let Err(message) = result {
            panic!("an outside thread failed: {message}");
        }
    }

    let pool = Arc::try_unwrap(pool).expect("the test holds the last handle");
    let metrics_before_drop = pool.metrics();
    common::with_deadline("dropping the stressed pool", move || drop(pool));

    let rounds = counts.rounds.load(Ordering::SeqCst);
    println!(
        "{rounds} rounds in {:?}; executed before drop: {}",
        start.elapsed(),
        metrics_before_drop.executed()
    );
    assert!(rounds >= OUTSIDE_THREADS, "hardly anything ran");
    assert_eq!(
        counts.spawned_ran.load(Ordering::SeqCst),
        counts.spawned.load(Ordering::SeqCst),
        "spawned tasks lost or duplicated"
    );
    assert_eq!(
        counts.handled_panics.load(Ordering::SeqCst),
        counts.detached_panics.load(Ordering::SeqCst),
        "detached panics lost or duplicated"
    );
    let _ = std::panic::take_hook();
}
