//! The ring's index from caller-supplied ids to sequences, so resuming after
//! a caller id is O(1) like resuming after an auto id.
//!
//! An open-addressing table (linear probing, at most [`MAX_PROBE`] buckets)
//! of (id fingerprint, `seq + 1`) pairs, four buckets per ring slot. Only the
//! writer inserts. A bucket whose sequence has been evicted counts as free
//! for inserts, so the table never fills with dead entries; lookups probe
//! past such buckets (a later id may sit behind one) and stop at a bucket
//! never used. An insert that finds no free bucket within the probe limit
//! overwrites its home bucket.
//!
//! The index is only ever a hint: readers load each bucket's two words
//! racily (`Relaxed`; they may pair a fingerprint with another id's
//! sequence) and every candidate is confirmed against the retained frame's
//! own `id:` line. When a lookup finds nothing, the caller falls back to
//! scanning the ring's fingerprints, so an overwritten bucket costs time,
//! never correctness.

use crate::loom::{AtomicU64, Ordering};

/// Buckets probed per insert or lookup.
const MAX_PROBE: u64 = 16;
/// Buckets per ring slot (keeps the live load factor at or below 1/4).
const BUCKETS_PER_SLOT: usize = 4;

/// See the module docs.
pub(crate) struct IdIndex {
    fingerprints: Box<[AtomicU64]>,
    /// `seq + 1`; 0 = never used.
    seqs: Box<[AtomicU64]>,
    mask: u64,
}

impl IdIndex {
    /// An empty index for a ring of `capacity` slots (a power of two).
    pub(crate) fn new(capacity: usize) -> IdIndex {
        let buckets = capacity * BUCKETS_PER_SLOT;
        IdIndex {
            fingerprints: crate::ring::zeroed_words(buckets),
            seqs: crate::ring::zeroed_words(buckets),
            mask: buckets as u64 - 1,
        }
    }

    fn bucket(&self, fingerprint: u64, probe: u64) -> usize {
        // Fibonacci hashing spreads fingerprints that differ in high bits.
        let home = fingerprint.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        ((home + probe) & self.mask) as usize
    }

    /// Writer only: records that `seq` carries the id with `fingerprint`;
    /// sequences below `tail` are evicted.
    pub(crate) fn insert(&self, fingerprint: u64, seq: u64, tail: u64) {
        let mut target = self.bucket(fingerprint, 0);
        for probe in 0..MAX_PROBE {
            let bucket = self.bucket(fingerprint, probe);
            let stored = self.seqs[bucket].load(Ordering::Relaxed);
            if stored == 0
                || stored - 1 < tail
                || self.fingerprints[bucket].load(Ordering::Relaxed) == fingerprint
            {
                target = bucket;
                break;
            }
        }
        self.fingerprints[target].store(fingerprint, Ordering::Relaxed);
        self.seqs[target].store(seq + 1, Ordering::Relaxed);
    }

    /// Sequences in `[tail, head)` the index associates with `fingerprint`
    /// (to be confirmed by the caller).
    pub(crate) fn candidates(
        &self,
        fingerprint: u64,
        tail: u64,
        head: u64,
    ) -> impl Iterator<Item = u64> + '_ {
        (0..MAX_PROBE)
            .map(move |probe| self.bucket(fingerprint, probe))
            .map(|bucket| {
                (
                    self.seqs[bucket].load(Ordering::Relaxed),
                    self.fingerprints[bucket].load(Ordering::Relaxed),
                )
            })
            .take_while(|&(stored, _)| stored != 0)
            .filter(move |&(stored, found)| {
                found == fingerprint && (tail..head).contains(&(stored - 1))
            })
            .map(|(stored, _)| stored - 1)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Fingerprints that all share one home bucket in `index`.
    fn colliding(index: &IdIndex, count: usize) -> Vec<u64> {
        let home = index.bucket(1, 0);
        (1..)
            .filter(|&f| index.bucket(f, 0) == home)
            .take(count)
            .collect()
    }

    #[test]
    fn finds_colliding_ids_within_the_probe_limit() {
        let index = IdIndex::new(16);
        let ids = colliding(&index, MAX_PROBE as usize + 1);
        for (seq, &fingerprint) in ids.iter().enumerate().take(MAX_PROBE as usize) {
            index.insert(fingerprint, seq as u64, 0);
        }
        for (seq, &fingerprint) in ids.iter().enumerate().take(MAX_PROBE as usize) {
            let found: Vec<u64> = index.candidates(fingerprint, 0, 100).collect();
            assert_eq!(found, [seq as u64]);
        }
        // One more than the probe limit overwrites the home bucket: the
        // index loses the first id (the ring's scan fallback finds it).
        let last = MAX_PROBE;
        index.insert(ids[last as usize], last, 0);
        assert_eq!(
            index
                .candidates(ids[last as usize], 0, 100)
                .collect::<Vec<_>>(),
            [last]
        );
        assert!(index.candidates(ids[0], 0, 100).next().is_none());
    }

    #[test]
    fn evicted_entries_are_reused_and_never_returned() {
        let index = IdIndex::new(16);
        let ids = colliding(&index, 3);
        index.insert(ids[0], 0, 0);
        index.insert(ids[1], 1, 0);
        // Sequence 0 is evicted (tail 1): its bucket is free for the next id.
        index.insert(ids[2], 2, 1);
        assert!(index.candidates(ids[0], 1, 3).next().is_none());
        assert_eq!(index.candidates(ids[1], 1, 3).collect::<Vec<_>>(), [1]);
        assert_eq!(index.candidates(ids[2], 1, 3).collect::<Vec<_>>(), [2]);
        // The same id again points at its newest sequence.
        index.insert(ids[1], 3, 1);
        assert_eq!(index.candidates(ids[1], 1, 4).collect::<Vec<_>>(), [3]);
    }
}
