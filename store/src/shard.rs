//! A shard: a lock, the sessions it owns, their streams (one map keyed by
//! session and stream), and their eviction queue.
//!
//! The queue lists `(gseq, session, stream)` for every message appended to
//! the shard's sessions, in append order. The global sequence `gseq` is
//! taken under the shard lock, so each queue is sorted by `gseq`, and the
//! oldest message in the process is the smallest front over all shards.
//!
//! Closing a session or stream leaves its queue entries behind as dead
//! entries (a live entry's stream still holds a message with that `gseq`).
//! Dead entries at the front are skipped before the front is published, and
//! the whole queue is compacted once more than half of it is dead, so dead
//! entries cost O(1) amortised and never more than the live ones plus 64.
//! The count of dead entries is exact, so while it is zero no liveness
//! lookup (which would touch another session's memory) is made at all.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::session::{SessionState, StreamLog};
use super::{SessionId, StoreError};

/// Dead entries tolerated before a compaction is considered.
const DEAD_SLACK: usize = 64;

/// Session keys come from a counter the store controls, not from clients, so
/// a multiplicative hash is enough and much cheaper than SipHash.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

#[derive(Debug, Clone, Copy)]
struct QueueEntry {
    gseq: u64,
    session: u64,
    stream: u32,
}

/// The state behind a shard's lock.
#[derive(Debug, Default)]
pub(crate) struct ShardInner {
    pub(crate) sessions: KeyMap<u64, SessionState>,
    /// Every stream of the shard's sessions, by (session key, stream).
    pub(crate) streams: KeyMap<(u64, u32), StreamLog>,
    queue: VecDeque<QueueEntry>,
    dead: usize,
}

impl ShardInner {
    /// The stream `id`/`stream` names, if it exists and the secret matches
    /// (one map probe; see [`missing`](Self::missing) for why not).
    pub(crate) fn find_stream(&mut self, id: SessionId, stream: u32) -> Option<&mut StreamLog> {
        self.streams
            .get_mut(&(id.key, stream))
            .filter(|log| log.secret == id.secret)
    }

    /// Why [`find_stream`](Self::find_stream) found nothing.
    pub(crate) fn missing(&mut self, id: SessionId) -> StoreError {
        match self.session_mut(id) {
            Ok(_) => StoreError::UnknownStream,
            Err(e) => e,
        }
    }

    /// Removes a session and its streams; returns their messages and cost.
    pub(crate) fn remove_session(&mut self, key: u64) -> Option<(usize, u64)> {
        let sess = self.sessions.remove(&key)?;
        Some(sess.streams.iter().fold((0, 0), |(n, b), &t| {
            self.streams
                .remove(&(key, t))
                .map_or((n, b), |log| (n + log.len(), b + log.bytes()))
        }))
    }

    /// When `key`'s session or any of its streams was last active.
    pub(crate) fn last_active(&self, key: u64) -> Option<u64> {
        let sess = self.sessions.get(&key)?;
        Some(
            sess.streams
                .iter()
                .filter_map(|&t| self.streams.get(&(key, t)))
                .map(|log| log.last_active)
                .fold(sess.last_active, std::cmp::max),
        )
    }

    /// The session `id` names, if it exists and the secret matches.
    pub(crate) fn session_mut(&mut self, id: SessionId) -> Result<&mut SessionState, StoreError> {
        self.sessions
            .get_mut(&id.key)
            .filter(|s| s.secret == id.secret)
            .ok_or(StoreError::UnknownSession)
    }

    /// Records that `gseq` was appended to `session`/`stream`.
    pub(crate) fn enqueue(&mut self, gseq: u64, session: u64, stream: u32) {
        debug_assert!(self.queue.back().is_none_or(|e| e.gseq < gseq));
        self.queue.push_back(QueueEntry {
            gseq,
            session,
            stream,
        });
    }

    /// Notes that `n` queue entries just lost their message.
    pub(crate) fn mark_dead(&mut self, n: usize) {
        self.dead += n;
        self.skip_dead();
        if self.dead > DEAD_SLACK && self.dead * 2 > self.queue.len() {
            let streams = &self.streams;
            self.queue.retain(|e| is_live(streams, e));
            self.dead = 0;
            self.shrink();
        }
    }

    fn skip_dead(&mut self) {
        // With no dead entries every entry is live: skip the lookups (they
        // touch another session's memory, usually a cache miss).
        if self.dead == 0 {
            return;
        }
        while let Some(e) = self.queue.front() {
            if is_live(&self.streams, e) {
                break;
            }
            self.queue.pop_front();
            self.dead -= 1;
            if self.dead == 0 {
                break;
            }
        }
    }

    fn shrink(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        } else if self.queue.capacity() > 256 && self.queue.len() * 4 < self.queue.capacity() {
            self.queue.shrink_to(self.queue.len() * 2);
        }
    }

    /// The `gseq` of the oldest live message, or `u64::MAX` if none.
    pub(crate) fn front(&self) -> u64 {
        self.queue.front().map_or(u64::MAX, |e| e.gseq)
    }

    /// Evicts the oldest message if it is still `expected`; returns its cost.
    pub(crate) fn evict_front(&mut self, expected: u64) -> Option<u64> {
        self.skip_dead();
        let e = *self.queue.front()?;
        if e.gseq != expected {
            return None;
        }
        let log = self.streams.get_mut(&(e.session, e.stream))?;
        debug_assert_eq!(log.front_gseq(), Some(e.gseq));
        let cost = log.pop_front()?;
        self.queue.pop_front();
        self.skip_dead();
        if self.queue.len() < 64 || self.queue.len().is_multiple_of(64) {
            self.shrink();
        }
        Some(cost)
    }
}

/// A live entry's stream still holds its message: the stream exists and its
/// oldest message is no newer than the entry (streams are contiguous).
fn is_live(streams: &KeyMap<(u64, u32), StreamLog>, e: &QueueEntry) -> bool {
    streams
        .get(&(e.session, e.stream))
        .and_then(|log| log.front_gseq())
        .is_some_and(|front| front <= e.gseq)
}

/// One shard: its lock and a published hint of its oldest `gseq`.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) inner: Mutex<ShardInner>,
    /// `inner.front()` as of the last change, for lock-free scans. A hint:
    /// evictors re-check it under the lock.
    front: AtomicU64,
}

impl Shard {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(ShardInner::default()),
            front: AtomicU64::new(u64::MAX),
        }
    }

    /// The published oldest `gseq` (`u64::MAX` when empty).
    pub(crate) fn front_hint(&self) -> u64 {
        // Relaxed: a hint re-checked under the lock.
        self.front.load(Ordering::Relaxed)
    }

    /// Publishes `inner`'s front; call with the lock held after a change.
    pub(crate) fn publish(&self, inner: &ShardInner) {
        let front = inner.front();
        // Relaxed: a hint; the store is made while holding the lock, so the
        // last store to happen is always the current front.
        if self.front.load(Ordering::Relaxed) != front {
            self.front.store(front, Ordering::Relaxed);
        }
    }
}
