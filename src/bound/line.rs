//! The bound's state: the count of pending tasks, and the line of producers
//! waiting for a slot, served in arrival order (the module docs of
//! `bound` say why a worker of another pool hands its task over). Closing
//! the pool refuses everyone in line.

use crate::job::JobRef;
use crate::latch::{Latch, SharedLatch};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use crate::sync::{self, Arc, Backoff, Condvar, Mutex, MutexGuard, Waited, lock};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::time::Instant;

/// The bound: a count of pending tasks and a queue of waiting producers.
pub(crate) struct Bound {
    max: usize,
    /// Tasks accepted from outside and not yet started.
    pending: CachePadded<AtomicUsize>,
    /// How many producers are in line; lets `release` skip the lock.
    waiting: AtomicUsize,
    line: Mutex<Line>,
}

/// Producers waiting for a slot, oldest first; no one joins once closed.
struct Line {
    places: VecDeque<Place>,
    closed: bool,
}

/// A producer's place in line.
struct Place {
    producer: Arc<Producer>,
    /// The task a worker of another pool handed over (`hand_to_line`),
    /// queued by whoever takes a slot for it.
    task: Option<JobRef>,
}

/// Tasks whose producers were granted a slot under the lock, to queue (and
/// then tell their producers) once it is released.
type HandedOver = Vec<(Arc<Producer>, JobRef)>;

struct Producer {
    /// Set once the producer's wait is over: under the line's lock for one
    /// that waits by itself, after its task was queued (or handed back) for
    /// one that handed its task over (a worker of another pool, which waits
    /// on it in its pool's way).
    done: SharedLatch,
    /// Set, before `done`, if the pool was closed instead of a slot taken.
    refused: AtomicBool,
    /// A refused producer's handed-over task, given back to it to drop.
    returned: Mutex<Option<JobRef>>,
    /// Signalled with `done`, for a producer outside every pool (or one
    /// waiting with a deadline), which sleeps here under the line's lock.
    condvar: Condvar,
}

impl Producer {
    fn new() -> Arc<Producer> {
        Arc::new(Producer {
            done: SharedLatch::new(),
            refused: AtomicBool::new(false),
            returned: Mutex::new(None),
            condvar: Condvar::new(),
        })
    }

    /// Ends this producer's wait (a slot was taken for it, or it was
    /// refused). Called under the line's lock, after it left the line.
    fn end_wait(&self) {
        self.done.set();
        self.condvar.notify_one();
    }

    /// Marks the producer refused; its task, if it handed one over, is
    /// given back to it.
    fn refuse(&self, task: Option<JobRef>) {
        // Relaxed: read after `done` is set, whose Release publishes it.
        self.refused.store(true, Ordering::Relaxed);
        *lock(&self.returned) = task;
    }
}

/// How a producer's wait for a slot ended.
pub(crate) enum Acquired {
    Slot,
    TimedOut,
    /// The pool was closed.
    ShutDown,
}

impl Bound {
    pub(crate) fn new(max: usize) -> Bound {
        debug_assert!(max > 0);
        Bound {
            max,
            pending: CachePadded::new(AtomicUsize::new(0)),
            waiting: AtomicUsize::new(0),
            line: Mutex::new(Line {
                places: VecDeque::new(),
                closed: false,
            }),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes a slot if one is free and no producer is waiting for one
    /// (waiting producers are served first).
    pub(super) fn try_acquire(&self) -> bool {
        // SeqCst, like the increment in `join_line`: a producer that sees
        // nobody waiting may take a free slot directly.
        self.waiting.load(Ordering::SeqCst) == 0 && self.take_slot()
    }

    /// Busy-waits briefly for a slot (`Backoff`'s spinning rounds, a few
    /// microseconds): when workers start tasks every few microseconds one
    /// frees up almost at once, and taking it then costs neither this
    /// thread nor the releasing worker a system call.
    pub(super) fn spin_for_slot(&self) -> bool {
        let mut backoff = Backoff::new();
        loop {
            if self.try_acquire() {
                return true;
            }
            if !backoff.spin() {
                return self.try_acquire();
            }
        }
    }

    /// Takes a slot, waiting in line until `deadline` (forever if `None`)
    /// with the calling thread blocked. `inject` queues the tasks handed
    /// over by producers this call grants a slot to.
    pub(super) fn acquire(&self, deadline: Option<Instant>, inject: impl Fn(JobRef)) -> Acquired {
        if self.spin_for_slot() {
            return Acquired::Slot;
        }
        self.wait_for_slot(deadline, inject)
    }

    /// For a worker of another pool: hands the task that `make_job` builds
    /// (given the producer's ticket) to the line. Whoever takes a slot for
    /// it (this call, or a releaser) queues it with `inject`, then sets the
    /// ticket's latch; the caller waits on that latch in its own pool's
    /// way (running its pool's work meanwhile). If the pool is closed
    /// first, the ticket is refused and the task given back.
    #[cold]
    pub(crate) fn hand_to_line(
        &self,
        make_job: impl FnOnce(Ticket) -> JobRef,
        inject: impl Fn(JobRef),
    ) -> Ticket {
        let me = Producer::new();
        let task = make_job(Ticket(Arc::clone(&me)));
        let line = lock(&self.line);
        let Some(mut line) = self.join_line(line, &me, Some(task)) else {
            return Ticket(me);
        };
        // Slots freed while nobody was seen waiting: for those first in line.
        let handed_over = self.grant_while_free(&mut line);
        drop(line);
        queue_handed_over(handed_over, &inject);
        Ticket(me)
    }

    /// Gives back the slot of a task that a worker is starting (or that
    /// was cancelled), handing it to the longest-waiting producer if there
    /// is one (`inject` queues that producer's task if it handed one over).
    pub(crate) fn release(&self, inject: impl Fn(JobRef)) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the fence in `join_line`: either this load sees the
        // producer, or the producer's own grant, after its fence, sees the slot
        // this freed.
        fence(Ordering::SeqCst);
        // `--cfg pilfer_bug="no_grant"` drops the hand-over, to show that the
        // loom models catch a producer left waiting (loom/README.md).
        if self.waiting.load(Ordering::Relaxed) != 0 && cfg!(not(pilfer_bug = "no_grant")) {
            self.grant_to_first_in_line(inject);
        }
    }

    /// Closes the line: every producer in it is refused and woken (a
    /// handed-over task is given back to its producer), and nobody joins it
    /// again.
    pub(crate) fn close(&self) {
        let refused: Vec<Arc<Producer>> = {
            let mut line = lock(&self.line);
            line.closed = true;
            // `--cfg pilfer_bug="no_close_wake"` leaves the line alone, to
            // show that the loom models catch a producer never woken.
            if cfg!(pilfer_bug = "no_close_wake") {
                return;
            }
            let mut refused = Vec::new();
            while let Some(place) = line.places.pop_front() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                let handed_over = place.task.is_some();
                place.producer.refuse(place.task);
                if handed_over {
                    refused.push(place.producer);
                } else {
                    place.producer.end_wait();
                }
            }
            refused
        };
        // As in `queue_handed_over`: outside the lock.
        for producer in refused {
            producer.done.set();
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

    /// Puts `me` in line (with its handed-over `task`, if any) and returns
    /// the lock; if the line is closed, refuses `me` instead and returns
    /// `None`.
    fn join_line<'a>(
        &self,
        mut line: MutexGuard<'a, Line>,
        me: &Arc<Producer>,
        task: Option<JobRef>,
    ) -> Option<MutexGuard<'a, Line>> {
        if line.closed {
            me.refuse(task);
            me.done.set();
            return None;
        }
        line.places.push_back(Place {
            producer: Arc::clone(me),
            task,
        });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `release` (see there).
        fence(Ordering::SeqCst);
        Some(line)
    }

    #[cold]
    fn wait_for_slot(&self, deadline: Option<Instant>, inject: impl Fn(JobRef)) -> Acquired {
        let me = Producer::new();
        let Some(mut line) = self.join_line(lock(&self.line), &me, None) else {
            return Acquired::ShutDown;
        };
        // Slots freed while nobody was seen waiting: for those first in line,
        // perhaps this producer.
        let handed_over = self.grant_while_free(&mut line);
        if !handed_over.is_empty() {
            drop(line);
            queue_handed_over(handed_over, &inject);
            line = lock(&self.line);
        }
        loop {
            // How the wait ended is settled under the lock.
            if me.done.probe() {
                return if me.refused.load(Ordering::Relaxed) {
                    Acquired::ShutDown
                } else {
                    Acquired::Slot
                };
            }
            line = match sync::wait_before(&me.condvar, line, deadline) {
                Waited::Woken(line) => line,
                Waited::Expired(mut line) => {
                    line.places
                        .retain(|place| !Arc::ptr_eq(&place.producer, &me));
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    // A slot it was about to miss goes to the next ones.
                    let handed_over = self.grant_while_free(&mut line);
                    drop(line);
                    queue_handed_over(handed_over, &inject);
                    return Acquired::TimedOut;
                }
            };
        }
    }

    #[cold]
    fn grant_to_first_in_line(&self, inject: impl Fn(JobRef)) {
        let handed_over = self.grant_while_free(&mut lock(&self.line));
        queue_handed_over(handed_over, &inject);
    }

    /// Takes a free slot for each producer in line, oldest first, until the
    /// line or the free slots run out. A producer that waits by itself is
    /// told at once; the tasks handed over by the others are returned, to be
    /// queued after the lock is released.
    fn grant_while_free(&self, line: &mut MutexGuard<'_, Line>) -> HandedOver {
        let mut handed_over = Vec::new();
        while !line.places.is_empty() && self.take_slot() {
            let first = line.places.pop_front().expect("checked above");
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            match first.task {
                Some(task) => handed_over.push((first.producer, task)),
                None => first.producer.end_wait(),
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
    for (producer, task) in handed_over {
        inject(task);
        producer.done.set();
    }
}

/// A worker of another pool's place in line (`Bound::hand_to_line`): it
/// waits on the latch, set once its task is queued, or once the pool was
/// closed and the task given back.
#[derive(Clone)]
pub(crate) struct Ticket(Arc<Producer>);

impl Ticket {
    pub(crate) fn latch(&self) -> &SharedLatch {
        &self.0.done
    }

    /// Whether the pool was closed instead (meaningful once the latch is
    /// set, or when called from the task, which then never was queued).
    pub(crate) fn is_refused(&self) -> bool {
        self.0.refused.load(Ordering::Relaxed)
    }

    /// The task of a refused producer, to be run once (it drops what it
    /// carries, seeing the ticket refused).
    pub(crate) fn take_returned(&self) -> Option<JobRef> {
        lock(&self.0.returned).take()
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
        let first = bound.hand_to_line(|_| task(1), queue);
        let second = bound.hand_to_line(|_| task(2), queue);
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
    fn closing_refuses_the_line_and_gives_tasks_back() {
        let bound = Bound::new(1);
        assert!(bound.try_acquire());
        let ticket = bound.hand_to_line(|_| task(7), queue);
        assert!(!ticket.latch().probe());
        bound.close();
        assert!(ticket.latch().probe() && ticket.is_refused());
        let returned = ticket.take_returned().expect("the task comes back");
        queue(returned);
        assert_eq!(queued(), [7], "given back, not queued by the bound");
        // Closed: a newcomer is refused at once.
        let late = bound.hand_to_line(|_| task(8), queue);
        assert!(late.is_refused());
        queue(late.take_returned().expect("the task comes back"));
        assert!(matches!(
            bound.acquire(None, queue),
            super::Acquired::ShutDown
        ));
        bound.release(queue);
    }

    #[test]
    fn a_deadline_gives_up_and_leaves_the_line() {
        let bound = Bound::new(1);
        assert!(bound.try_acquire());
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(5);
        assert!(
            matches!(
                bound.acquire(Some(deadline), queue),
                super::Acquired::TimedOut
            ),
            "no slot came free"
        );
        // It left the line: the next freed slot is free for anyone.
        bound.release(queue);
        assert!(bound.try_acquire());
    }
}
