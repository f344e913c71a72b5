//! Tables whose entries other threads may reach while the table fills.
//!
//! * `GrowTable`: a fixed part, filled when it is made, and room for
//!   entries appended later (the slots and parkers of spare workers).
//!   Appending is serialized by the caller (a mutex); reading needs no lock.
//! * `LazyTable`: one entry per index, each made on first use (a FIFO
//!   scope's queues, one per worker that spawns into it), with no lock.
//!
//! In both, entries are never removed or moved until the table drops, so a
//! reference to one stays valid for the table's life.

use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::marker::PhantomData;
use std::ptr;

pub(crate) struct GrowTable<T> {
    fixed: Box<[T]>,
    /// Appended entries, boxed; null past `extra_len`.
    extra: Box<[AtomicPtr<T>]>,
    extra_len: AtomicUsize,
}

impl<T> GrowTable<T> {
    /// A table holding `fixed`, with room for `extra_capacity` more.
    pub(crate) fn new(fixed: Vec<T>, extra_capacity: usize) -> GrowTable<T> {
        GrowTable {
            fixed: fixed.into_boxed_slice(),
            extra: (0..extra_capacity)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            extra_len: AtomicUsize::new(0),
        }
    }

    /// The entries filled at creation.
    #[inline]
    pub(crate) fn fixed(&self) -> &[T] {
        &self.fixed
    }

    /// How many entries the table holds now.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // Acquire: pairs with the Release in `push`; every index below the
        // length read here has its entry visible.
        self.fixed.len() + self.extra_len.load(Ordering::Acquire)
    }

    /// Entry `index`, which must be below a length read before.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> &T {
        match self.fixed.get(index) {
            Some(entry) => entry,
            None => self.get_extra(index - self.fixed.len()),
        }
    }

    #[cold]
    fn get_extra(&self, index: usize) -> &T {
        // Acquire: pairs with the Release store in `push`.
        let entry = self.extra[index].load(Ordering::Acquire);
        assert!(
            !entry.is_null(),
            "pilfer: table entry read before it was added"
        );
        // SAFETY: non-null entries point to boxes made by `push` and freed
        // only when the table drops, after every borrow of it.
        unsafe { &*entry }
    }

    /// How many entries the table can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.fixed.len() + self.extra.len()
    }

    /// Every entry, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len()).map(|index| self.get(index))
    }

    /// Appends `value` and returns its index, or gives it back when the
    /// table is full. Callers serialize their calls.
    pub(crate) fn push(&self, value: T) -> Result<usize, T> {
        let extra_len = self.extra_len.load(Ordering::Relaxed);
        let Some(slot) = self.extra.get(extra_len) else {
            return Err(value);
        };
        // Release (both stores): a reader that sees the new length or the
        // pointer also sees the entry's contents.
        slot.store(Box::into_raw(Box::new(value)), Ordering::Release);
        self.extra_len.store(extra_len + 1, Ordering::Release);
        Ok(self.fixed.len() + extra_len)
    }
}

impl<T> Drop for GrowTable<T> {
    fn drop(&mut self) {
        for slot in self.extra.iter() {
            let entry = slot.load(Ordering::Relaxed);
            if !entry.is_null() {
                // SAFETY: made by `Box::into_raw` in `push`, freed once,
                // here; `&mut self` excludes every reader.
                drop(unsafe { Box::from_raw(entry) });
            }
        }
    }
}

/// How many entries of a `LazyTable` are allocated together.
const CHUNK: usize = 16;

/// Entries by index, each made on first use; the index space is allocated
/// in chunks of `CHUNK`, also on first use.
pub(crate) struct LazyTable<T> {
    chunks: Box<[AtomicPtr<[AtomicPtr<T>; CHUNK]>]>,
    /// Owns its entries: `Send` and `Sync` only as `T` is.
    _entries: PhantomData<Box<T>>,
}

impl<T> LazyTable<T> {
    /// A table for indices below `capacity`, with no entry yet. (Out of
    /// line: it is made in a FIFO scope's frame, which stays on the stack
    /// while the scope waits.)
    #[inline(never)]
    pub(crate) fn new(capacity: usize) -> LazyTable<T> {
        LazyTable {
            chunks: (0..capacity.div_ceil(CHUNK))
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            _entries: PhantomData,
        }
    }

    /// Entry `index` (below the capacity), made by `make` if there is none.
    #[inline]
    pub(crate) fn get_or_make(&self, index: usize, make: impl FnOnce() -> T) -> &T {
        let chunk = self.chunk(index / CHUNK);
        let slot = &chunk[index % CHUNK];
        // Acquire: pairs with the successful exchange in `install`.
        let entry = slot.load(Ordering::Acquire);
        let entry = if entry.is_null() {
            install(slot, Box::new(make()))
        } else {
            entry
        };
        // SAFETY: non-null entries point to boxes installed once and freed
        // only when the table drops, after every borrow of it.
        unsafe { &*entry }
    }

    #[inline]
    fn chunk(&self, chunk: usize) -> &[AtomicPtr<T>; CHUNK] {
        let slot = &self.chunks[chunk];
        // Acquire: pairs with the successful exchange in `install`.
        let entries = slot.load(Ordering::Acquire);
        let entries = if entries.is_null() {
            install(
                slot,
                Box::new(std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()))),
            )
        } else {
            entries
        };
        // SAFETY: as for the entries in `get_or_make`.
        unsafe { &*entries }
    }
}

/// Puts `value` in the empty `slot`, or drops it if another thread filled
/// the slot first; returns what the slot holds.
#[cold]
fn install<T>(slot: &AtomicPtr<T>, value: Box<T>) -> *mut T {
    let mine = Box::into_raw(value);
    // AcqRel: Release publishes the box's contents to the Acquire loads of
    // the slot; Acquire (also on failure) sees the winner's.
    match slot.compare_exchange(ptr::null_mut(), mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => mine,
        Err(theirs) => {
            // SAFETY: `mine` was never shared; it is still this thread's.
            drop(unsafe { Box::from_raw(mine) });
            theirs
        }
    }
}

impl<T> Drop for LazyTable<T> {
    // Out of line, as `new`.
    #[inline(never)]
    fn drop(&mut self) {
        for chunk in self.chunks.iter() {
            let entries = chunk.load(Ordering::Relaxed);
            if entries.is_null() {
                continue;
            }
            // SAFETY: installed by `install` from a box, freed once, here;
            // `&mut self` excludes every reader.
            let entries = unsafe { Box::from_raw(entries) };
            for entry in entries.iter() {
                let entry = entry.load(Ordering::Relaxed);
                if !entry.is_null() {
                    // SAFETY: as for the chunk.
                    drop(unsafe { Box::from_raw(entry) });
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{GrowTable, LazyTable};

    #[test]
    fn entries_keep_their_index_and_address_as_the_table_grows() {
        let table = GrowTable::new(vec![10, 11], 2);
        assert_eq!(table.len(), 2);
        let first = table.get(0) as *const i32;
        assert_eq!(table.push(12), Ok(2));
        let appended = table.get(2) as *const i32;
        assert_eq!(table.push(13), Ok(3));
        assert_eq!(table.push(14), Err(14), "full");
        assert_eq!(table.iter().copied().collect::<Vec<_>>(), [10, 11, 12, 13]);
        assert_eq!(table.get(0) as *const i32, first);
        assert_eq!(table.get(2) as *const i32, appended);
        assert_eq!(table.fixed(), [10, 11]);
    }

    #[test]
    fn lazy_entries_are_made_once_and_stay_put() {
        let table = LazyTable::new(40);
        let made = std::cell::Cell::new(0);
        let make = |value| {
            made.set(made.get() + 1);
            value
        };
        let first = table.get_or_make(3, || make(30)) as *const i32;
        assert_eq!(*table.get_or_make(3, || make(31)), 30, "made once");
        assert_eq!(*table.get_or_make(39, || make(390)), 390, "last chunk");
        assert_eq!(table.get_or_make(3, || make(32)) as *const i32, first);
        assert_eq!(made.get(), 2);
    }
}
