//! The process-wide byte budget: one atomic counter, reserved before insert.
//!
//! `used` counts the cost of every retained message plus every reservation
//! made by an append that has not yet inserted (or given up). A reservation
//! is a compare-and-swap that only succeeds if the new total stays within the
//! limit, so `used <= limit` holds at every instant, and because a message's
//! cost is released only after the message has been removed,
//! `retained <= used <= limit` holds too.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// Fixed bytes charged per message on top of its payload: the queue entry,
/// the stored `Bytes` handle and the global sequence number, rounded up.
pub const MESSAGE_OVERHEAD: u64 = 64;

/// What a message of `len` payload bytes costs against the budget.
///
/// # Examples
///
/// ```
/// assert_eq!(ssehub_store::message_cost(100), 100 + ssehub_store::MESSAGE_OVERHEAD);
/// ```
pub fn message_cost(len: usize) -> u64 {
    (len as u64).saturating_add(MESSAGE_OVERHEAD)
}

/// An exact byte budget shared by every session of a store.
#[derive(Debug)]
pub(crate) struct Budget {
    used: CachePadded<AtomicU64>,
    limit: u64,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            used: CachePadded::new(AtomicU64::new(0)),
            limit,
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn used(&self) -> u64 {
        // Relaxed: a statistic; the data it accounts for is guarded by locks.
        self.used.load(Ordering::Relaxed)
    }

    /// Reserves `cost` bytes if that keeps the total within the limit.
    pub(crate) fn try_reserve(&self, cost: u64) -> bool {
        // Relaxed: the counter guards no memory (the messages it accounts for
        // are published under shard locks); only its own value matters, and
        // read-modify-write operations on one atomic are totally ordered.
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(cost).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Returns `released` bytes and, in the same atomic step, reserves
    /// `cost` if that then fits; returns whether it did.
    pub(crate) fn release_and_reserve(&self, released: u64, cost: u64) -> bool {
        let mut reserved = false;
        // Relaxed: as in `try_reserve`.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                debug_assert!(used >= released, "budget released more than reserved");
                let after = used - released;
                let total = after.checked_add(cost).filter(|&t| t <= self.limit);
                reserved = total.is_some();
                Some(total.unwrap_or(after))
            });
        reserved
    }

    /// Returns `cost` bytes reserved earlier.
    pub(crate) fn release(&self, cost: u64) {
        if cost == 0 {
            return;
        }
        // Relaxed: as in `try_reserve`.
        let before = self.used.fetch_sub(cost, Ordering::Relaxed);
        debug_assert!(before >= cost, "budget released more than reserved");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_exact_at_the_limit() {
        let b = Budget::new(100);
        assert!(b.try_reserve(60));
        assert!(b.try_reserve(40));
        assert!(!b.try_reserve(1));
        assert_eq!(b.used(), 100);
        b.release(40);
        assert!(!b.try_reserve(41));
        assert!(b.try_reserve(40));
        assert!(!b.try_reserve(u64::MAX));
        assert!(!b.release_and_reserve(10, 11));
        assert_eq!(b.used(), 90);
        assert!(b.release_and_reserve(10, 20));
        assert_eq!(b.used(), 100);
    }
}
