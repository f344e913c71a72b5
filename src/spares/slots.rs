//! Where a spare thread runs: the pool slot it takes (an index past the
//! workers' and the owner's end of a deque), kept for the next spare when
//! it exits unused; and its thread's name and stack size.

use crate::job::JobRef;
use crate::queue::LocalQueue;
use crate::sync::{Mutex, lock};
use crate::unwind;

/// The slots spares left, and how their threads are made.
pub(crate) struct SpareSlots {
    state: Mutex<SlotState>,
}

/// Names spare `index`'s thread (the builder's `thread_name`, or its
/// default).
pub(crate) type SpareNamer = Box<dyn FnMut(usize) -> String + Send>;

struct SlotState {
    namer: SpareNamer,
    stack_size: Option<usize>,
    /// The slots of spares that exited, each with its (empty) deque.
    free: Vec<(usize, LocalQueue<JobRef>)>,
}

/// A slot of the pool for a spare thread about to start.
pub(crate) struct SpareSlot {
    pub(crate) index: usize,
    pub(crate) deque: LocalQueue<JobRef>,
    pub(crate) name: String,
    pub(crate) stack_size: Option<usize>,
}

impl SpareSlots {
    /// Spares' threads named by `namer`, with stacks of `stack_size` bytes
    /// (the platform's default if `None`).
    pub(crate) fn new(namer: SpareNamer, stack_size: Option<usize>) -> SpareSlots {
        SpareSlots {
            state: Mutex::new(SlotState {
                namer,
                stack_size,
                free: Vec::new(),
            }),
        }
    }

    /// A slot for a new spare thread: one an exited spare left, or else
    /// the one `add` makes; `None` if `add` finds the pool full (spares/
    /// counts the spares, so only one that failed to start can have used
    /// a slot up).
    pub(crate) fn take(
        &self,
        add: impl FnOnce() -> Option<(usize, LocalQueue<JobRef>)>,
    ) -> Option<SpareSlot> {
        let mut state = lock(&self.state);
        let (index, deque) = match state.free.pop() {
            Some(free) => free,
            None => add()?,
        };
        // The user's namer runs here, inside a worker's block: a panic (a
        // namer written for the workers' indices only) or a name the OS
        // cannot take falls back to the default name.
        let namer = &mut state.namer;
        let name = unwind::halt_unwinding(|| namer(index))
            .ok()
            .filter(|name| !name.contains('\0'))
            .unwrap_or_else(|| format!("pilfer-{index}"));
        Some(SpareSlot {
            index,
            deque,
            name,
            stack_size: state.stack_size,
        })
    }

    /// An exiting spare gives its slot back (its deque is empty).
    pub(crate) fn give_back(&self, index: usize, deque: LocalQueue<JobRef>) {
        lock(&self.state).free.push((index, deque));
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_slot_given_back_is_reused_and_a_bad_name_falls_back_to_the_default() {
        let slots = SpareSlots::new(
            Box::new(|index| match index {
                4 => panic!("a namer written for the workers only"),
                5 => "a\0b".to_owned(),
                _ => format!("spare-{index}"),
            }),
            Some(1 << 20),
        );
        let next = Cell::new(3);
        let add = || {
            next.set(next.get() + 1);
            Some((next.get(), LocalQueue::new()))
        };
        let first = slots.take(add).unwrap();
        assert_eq!((first.index, first.name.as_str()), (4, "pilfer-4"));
        assert_eq!(first.stack_size, Some(1 << 20));
        let second = slots.take(add).unwrap();
        assert_eq!((second.index, second.name.as_str()), (5, "pilfer-5"));
        slots.give_back(first.index, first.deque);
        let reused = slots
            .take(|| panic!("a free slot was left unused"))
            .unwrap();
        assert_eq!(reused.index, 4);
        assert!(slots.take(|| None).is_none(), "a full pool has no slot");
        let third = slots.take(add).unwrap();
        assert_eq!((third.index, third.name.as_str()), (6, "spare-6"));
    }
}
