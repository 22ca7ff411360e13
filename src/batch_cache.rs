//! Sharing batches between subscribers at the same position.
//!
//! Subscribers without a type filter that sit at the same cursor read the
//! same bytes. Copying them out of the ring once per subscriber costs a
//! memcpy per frame per subscriber, which dominates fan-out to thousands of
//! subscribers. So the first subscriber to read a batch starting at sequence
//! `s` leaves an immutable copy here (`Bytes`), keyed by `s`; the others
//! clone it (one refcount increment per batch, not per frame) and continue
//! from where it ends. Readers woken by the same publish converge on the
//! same batch boundaries, so in steady state one subscriber copies and the
//! rest share.
//!
//! Correctness does not depend on the cache: an entry is an exact copy of
//! frames `[from, next)` that was validated against the ring when it was
//! made, so a subscriber at `from` may deliver it whole (no gap, no
//! duplicate). A miss just means reading the ring. Entries are replaced
//! through `arc-swap`, whose deferred reclamation keeps a loaded entry alive
//! while it is used; the cache belongs to one generation, so a sequence
//! number identifies one batch start forever.

use std::sync::Arc;

use bytes::Bytes;

/// Slots in the cache; a power of two.
#[cfg(not(loom))]
const SLOTS: usize = 256;
/// Two under loom, so the models' few batch starts share slots.
#[cfg(loom)]
const SLOTS: usize = 2;

#[cfg(not(loom))]
type Slot = arc_swap::ArcSwapOption<CachedBatch>;
/// Loom cannot see inside `arc-swap`; a loom mutex stands in for it.
#[cfg(loom)]
type Slot = crate::loom::Mutex<Option<Arc<CachedBatch>>>;

/// One shared batch: frames `[from, next)` (all types) as wire bytes.
#[derive(Debug)]
pub(crate) struct CachedBatch {
    pub(crate) from: u64,
    pub(crate) next: u64,
    pub(crate) frames: usize,
    pub(crate) bytes: Bytes,
}

/// A small direct-mapped cache of batches keyed by their first sequence.
#[derive(Debug)]
pub(crate) struct BatchCache {
    slots: Box<[Slot]>,
}

impl Default for BatchCache {
    fn default() -> Self {
        BatchCache {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

impl BatchCache {
    fn slot(&self, from: u64) -> &Slot {
        // Fibonacci hashing: batch starts are often spaced by the batch
        // bound (a power of two), which plain masking would send to one slot.
        let index =
            (from.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize;
        debug_assert!(index < SLOTS);
        &self.slots[index]
    }

    /// The cached batch starting at `from`, if any.
    pub(crate) fn get(&self, from: u64) -> Option<Arc<CachedBatch>> {
        let slot = self.slot(from);
        // Cheap check through a guard before taking a reference.
        #[cfg(not(loom))]
        let guard = slot.load();
        #[cfg(loom)]
        let guard = slot.lock();
        match &*guard {
            Some(batch) if batch.from == from => Some(Arc::clone(batch)),
            _ => None,
        }
    }

    /// Empties every slot.
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            #[cfg(not(loom))]
            slot.store(None);
            #[cfg(loom)]
            {
                *slot.lock() = None;
            }
        }
    }

    /// Offers a batch for others at the same position.
    pub(crate) fn put(&self, batch: CachedBatch) {
        let slot = self.slot(batch.from);
        #[cfg(not(loom))]
        {
            let current = slot.load();
            if current.as_ref().is_some_and(|c| c.from == batch.from) {
                return; // someone shared this start already
            }
            slot.store(Some(Arc::new(batch)));
        }
        #[cfg(loom)]
        {
            let mut current = slot.lock();
            if current.as_ref().is_some_and(|c| c.from == batch.from) {
                return; // someone shared this start already
            }
            *current = Some(Arc::new(batch));
        }
    }
}
