//! The bound's state: the count of pending tasks, and the line of producers
//! waiting for a slot, served in arrival order (the module docs of
//! `bound` say why a worker of another pool hands its task over).

use crate::job::JobRef;
use crate::latch::{Latch, SharedLatch};
use crate::sync::atomic::{AtomicUsize, Ordering, fence};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, hint, lock};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::time::Instant;

/// Rounds of exponential busy-waiting (2^0 .. 2^(n-1) spin hints, a few
/// microseconds in all) before a producer queues up and sleeps. None under
/// loom, where spinning only multiplies the interleavings.
const SPIN_ROUNDS: u32 = if cfg!(loom) { 0 } else { 6 };

/// The bound: a count of pending tasks and a queue of waiting producers.
pub(crate) struct Bound {
    max: usize,
    /// Tasks accepted from outside and not yet started.
    pending: CachePadded<AtomicUsize>,
    /// How many producers are in `waiters`; lets `release` skip the lock.
    waiting: AtomicUsize,
    /// Producers waiting for a slot, oldest first.
    waiters: Mutex<VecDeque<Place>>,
}

/// A producer's place in line.
struct Place {
    waiter: Arc<Waiter>,
    /// The task a worker of another pool handed over (`hand_to_line`),
    /// queued by whoever takes a slot for it.
    task: Option<JobRef>,
}

/// Tasks whose producers were granted a slot under the lock, to queue (and
/// then tell their producers) once it is released.
type HandedOver = Vec<(Arc<Waiter>, JobRef)>;

struct Waiter {
    /// Set once a slot was taken for this producer: under the `waiters`
    /// lock for one that waits by itself, after its task was queued for one
    /// that handed its task over (a worker of another pool, which waits on
    /// it in its pool's way).
    granted: SharedLatch,
    /// Signalled with `granted`, for a producer outside every pool (or one
    /// waiting with a deadline), which sleeps here under the `waiters` lock.
    condvar: Condvar,
}

impl Waiter {
    fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            granted: SharedLatch::new(),
            condvar: Condvar::new(),
        })
    }

    /// Hands this producer the slot just taken for it. Called under the
    /// `waiters` lock, after it was taken out of the line.
    fn grant(&self) {
        self.granted.set();
        self.condvar.notify_one();
    }
}

impl Bound {
    pub(crate) fn new(max: usize) -> Bound {
        debug_assert!(max > 0);
        Bound {
            max,
            pending: CachePadded::new(AtomicUsize::new(0)),
            waiting: AtomicUsize::new(0),
            waiters: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes a slot if one is free and no producer is waiting for one
    /// (waiting producers are served first).
    pub(super) fn try_acquire(&self) -> bool {
        // SeqCst, like the increment in `wait_for_slot`: a producer that
        // sees nobody waiting may take a free slot directly.
        self.waiting.load(Ordering::SeqCst) == 0 && self.take_slot()
    }

    /// Busy-waits briefly for a slot: when workers start tasks every few
    /// microseconds one frees up almost at once, and taking it then costs
    /// neither this thread nor the releasing worker a system call.
    pub(super) fn spin_for_slot(&self) -> bool {
        for round in 0..SPIN_ROUNDS {
            if self.try_acquire() {
                return true;
            }
            for _ in 0..1 << round {
                hint::spin_loop();
            }
        }
        self.try_acquire()
    }

    /// Takes a slot, waiting in line until `deadline` (forever if `None`)
    /// with the calling thread blocked. Returns whether a slot was taken.
    /// `inject` queues the tasks handed over by producers this call grants
    /// a slot to.
    pub(super) fn acquire(&self, deadline: Option<Instant>, inject: impl Fn(JobRef)) -> bool {
        self.spin_for_slot() || self.wait_for_slot(deadline, inject)
    }

    /// For a worker of another pool: hands `task` to the line. Whoever
    /// takes a slot for it (this call, or a releaser) queues it with
    /// `inject`, then sets the returned latch; the caller waits on that
    /// latch in its own pool's way (running its pool's work meanwhile).
    ///
    /// Nothing here checks for shutdown: the caller borrows the pool, which
    /// therefore cannot be shutting down (it shuts down when dropped), so
    /// every task in line is queued into a live pool, and the line is empty
    /// when the `Bound` drops.
    #[cold]
    pub(crate) fn hand_to_line(&self, task: JobRef, inject: impl Fn(JobRef)) -> Granted {
        let me = Waiter::new();
        let mut waiters = lock(&self.waiters);
        waiters.push_back(Place {
            waiter: Arc::clone(&me),
            task: Some(task),
        });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (see there).
        fence(Ordering::SeqCst);
        // Slots freed while nobody was seen waiting: for those first in line.
        let handed_over = self.grant_while_free(&mut waiters);
        drop(waiters);
        queue_handed_over(handed_over, &inject);
        Granted(me)
    }

    /// Gives back the slot of a task that a worker is starting, handing it
    /// to the longest-waiting producer if there is one (`inject` queues
    /// that producer's task if it handed one over).
    pub(crate) fn release(&self, inject: impl Fn(JobRef)) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the fence in `wait_for_slot` and `wait_in_line_with`:
        // either this load sees the waiter, or the waiter's own grant, after
        // its fence, sees the slot this freed.
        fence(Ordering::SeqCst);
        // `--cfg pilfer_bug="no_grant"` drops the hand-over, to show that the
        // loom models catch a producer left waiting (loom/README.md).
        if self.waiting.load(Ordering::Relaxed) != 0 && cfg!(not(pilfer_bug = "no_grant")) {
            self.grant_to_first_waiter(inject);
        }
    }

    /// Increments `pending` if it is below the bound.
    fn take_slot(&self) -> bool {
        self.pending
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |pending| {
                (pending < self.max).then_some(pending + 1)
            })
            .is_ok()
    }

    #[cold]
    fn wait_for_slot(&self, deadline: Option<Instant>, inject: impl Fn(JobRef)) -> bool {
        let me = Waiter::new();
        let mut waiters = lock(&self.waiters);
        waiters.push_back(Place {
            waiter: Arc::clone(&me),
            task: None,
        });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (see there).
        fence(Ordering::SeqCst);
        // Slots freed while nobody was seen waiting: for those first in line,
        // perhaps this producer.
        let handed_over = self.grant_while_free(&mut waiters);
        if !handed_over.is_empty() {
            drop(waiters);
            queue_handed_over(handed_over, &inject);
            waiters = lock(&self.waiters);
        }
        loop {
            // Granted or not is settled under the lock.
            if me.granted.probe() {
                return true;
            }
            waiters = match deadline {
                None => me
                    .condvar
                    .wait(waiters)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        waiters.retain(|in_line| !Arc::ptr_eq(&in_line.waiter, &me));
                        self.waiting.fetch_sub(1, Ordering::SeqCst);
                        // A slot it was about to miss goes to the next ones.
                        let handed_over = self.grant_while_free(&mut waiters);
                        drop(waiters);
                        queue_handed_over(handed_over, &inject);
                        return false;
                    }
                    let (guard, _) = me
                        .condvar
                        .wait_timeout(waiters, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    guard
                }
            };
        }
    }

    #[cold]
    fn grant_to_first_waiter(&self, inject: impl Fn(JobRef)) {
        let handed_over = self.grant_while_free(&mut lock(&self.waiters));
        queue_handed_over(handed_over, &inject);
    }

    /// Takes a free slot for each producer in line, oldest first, until the
    /// line or the free slots run out. A producer that waits by itself is
    /// told at once; the tasks handed over by the others are returned, to be
    /// queued after the lock is released.
    fn grant_while_free(&self, waiters: &mut MutexGuard<'_, VecDeque<Place>>) -> HandedOver {
        let mut handed_over = Vec::new();
        while !waiters.is_empty() && self.take_slot() {
            let first = waiters.pop_front().expect("checked above");
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            match first.task {
                Some(task) => handed_over.push((first.waiter, task)),
                None => first.waiter.grant(),
            }
        }
        handed_over
    }
}

/// Queues the tasks of producers granted a slot, then lets each producer
/// return: once it does, its task is in the pool. Runs no user code: setting
/// the latch wakes the producer and drops at most a handle on its pool's
/// sleep state.
fn queue_handed_over(handed_over: HandedOver, inject: &impl Fn(JobRef)) {
    for (waiter, task) in handed_over {
        inject(task);
        waiter.granted.set();
    }
}

/// The latch a worker of another pool waits on after handing its task to
/// the line (`Bound::hand_to_line`): set once its task is queued.
pub(crate) struct Granted(Arc<Waiter>);

impl Granted {
    pub(crate) fn latch(&self) -> &SharedLatch {
        &self.0.granted
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Bound;
    use crate::job::{self, JobRef};
    use crate::latch::Latch;
    use std::cell::RefCell;

    thread_local! {
        static QUEUED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    /// A task that records `id` when it runs.
    fn task(id: usize) -> JobRef {
        let record = move || QUEUED.with(|queued| queued.borrow_mut().push(id));
        // SAFETY: captures a `usize` only; every task made here is run once,
        // by `queue` below, as the bound hands it over.
        unsafe { job::detached_job(record) }
    }

    /// Stands for injecting a task into the pool: runs it, so that the
    /// order of `QUEUED` is the order the bound queued them in.
    fn queue(task: JobRef) {
        // SAFETY: each task is handed over, and so run, once.
        unsafe { task.execute() }
    }

    fn queued() -> Vec<usize> {
        QUEUED.with(|queued| queued.borrow().clone())
    }

    #[test]
    fn freed_slots_go_to_the_line_in_arrival_order() {
        let bound = Bound::new(1);
        assert!(bound.try_acquire(), "the only slot is free");
        let first = bound.hand_to_line(task(1), queue);
        let second = bound.hand_to_line(task(2), queue);
        assert!(queued().is_empty(), "no slot was free for either");
        assert!(!bound.try_acquire(), "producers in line are served first");

        // The task holding the slot starts: its slot goes to the first in
        // line, whose task is queued before its latch is set.
        bound.release(queue);
        assert_eq!(queued(), [1]);
        assert!(first.latch().probe() && !second.latch().probe());
        assert_eq!(bound.pending(), 1);

        bound.release(queue);
        assert_eq!(queued(), [1, 2]);
        assert!(second.latch().probe());

        bound.release(queue);
        assert_eq!(bound.pending(), 0);
        assert!(bound.try_acquire(), "nobody waits: the slot is free again");
    }

    #[test]
    fn a_deadline_gives_up_and_leaves_the_line() {
        let bound = Bound::new(1);
        assert!(bound.try_acquire());
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(5);
        assert!(!bound.acquire(Some(deadline), queue), "no slot came free");
        // It left the line: the next freed slot is free for anyone.
        bound.release(queue);
        assert!(bound.try_acquire());
    }
}
