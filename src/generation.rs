//! One generation of the hub: a ring, its random id token, its counters and
//! whether it is still open.
//!
//! The hub holds the current generation in an `ArcSwap`. `reset()` builds a
//! new one, swaps it in, bumps the hub's epoch (which the writer checks on
//! every publish with one `Acquire` load) and then *closes* the old one:
//! `state` leaves `OPEN` and every parked reader is woken. Readers re-check
//! `state` after announcing a park (see `wait`), so none sleeps through the
//! close. Subscriptions keep their generation alive through their `Arc`
//! until they end, so nothing they read can disappear under them.

use crossbeam_utils::CachePadded;

use crate::error::EndReason;
use crate::loom::{Arc, AtomicU64, AtomicUsize, Ordering};
use crate::ring::Ring;

/// Open: publishing and reading.
pub(crate) const OPEN: usize = 0;
/// Closed by `reset()`.
pub(crate) const CLOSED_BY_RESET: usize = 1;
/// Closed by `shutdown()`.
pub(crate) const CLOSED_BY_SHUTDOWN: usize = 2;

/// One generation: ring, identity, counters, open/closed state.
#[derive(Debug)]
pub struct Generation {
    /// 1 for the first generation of this hub, then +1 per reset.
    pub(crate) number: u64,
    /// Random token that auto ids of this generation carry.
    pub(crate) token: u64,
    pub(crate) ring: Arc<Ring>,
    state: AtomicUsize,
    /// Unix nanoseconds when the generation began.
    pub(crate) started_at: u64,
    pub(crate) active_subscribers: CachePadded<AtomicUsize>,
    pub(crate) total_subscribers: AtomicU64,
    pub(crate) lagged_disconnects: AtomicU64,
    /// Batches shared between unfiltered subscribers at the same cursor.
    pub(crate) batches: crate::batch_cache::BatchCache,
}

impl Generation {
    /// A new, open generation.
    pub fn new(number: u64, token: u64, ring: Ring, started_at: u64) -> Generation {
        Generation {
            number,
            token,
            ring: Arc::new(ring),
            state: AtomicUsize::new(OPEN),
            started_at,
            active_subscribers: CachePadded::new(AtomicUsize::new(0)),
            total_subscribers: AtomicU64::new(0),
            lagged_disconnects: AtomicU64::new(0),
            batches: Default::default(),
        }
    }

    /// 1 for a hub's first generation, then +1 per reset.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The random token this generation's auto ids carry.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Unix nanoseconds when the generation began.
    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    /// The generation's ring.
    pub fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    /// Closes the generation. The caller then wakes parked readers.
    pub fn close(&self, reason: EndReason) {
        let state = match reason {
            EndReason::Shutdown => CLOSED_BY_SHUTDOWN,
            _ => CLOSED_BY_RESET,
        };
        // Release: readers that see the close also see everything published
        // before it (they drain nothing more, but counters are consistent).
        // compare_exchange keeps the first reason (shutdown after reset stays
        // "reset" for the old generation).
        let _ = self
            .state
            .compare_exchange(OPEN, state, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Drops the batches cached for sharing (after a close: nobody needs
    /// them any more, and they may hold up to a ring's worth of bytes).
    pub(crate) fn release_caches(&self) {
        self.batches.clear();
    }

    /// Why the generation is closed, or `None` while it is open.
    pub fn closed(&self) -> Option<EndReason> {
        match self.state.load(Ordering::Acquire) {
            OPEN => None,
            CLOSED_BY_SHUTDOWN => Some(EndReason::Shutdown),
            _ => Some(EndReason::Reset),
        }
    }
}
