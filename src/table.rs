//! `GrowTable`: a table with a fixed part, filled when it is made, and
//! room for entries appended later (the slots and parkers of spare
//! workers), which readers on other threads may reach while it grows.
//!
//! Entries are never removed or moved until the table drops, so a
//! reference to one stays valid for the table's life. Appending is
//! serialized by the caller (a mutex); reading needs no lock.

use crate::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::GrowTable;

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
}
