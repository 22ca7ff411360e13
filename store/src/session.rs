//! One session's streams: append-only logs trimmed from the front.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{message_cost, StoreError};

/// One event returned by a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event's 1-based index within its stream.
    pub index: u64,
    /// The payload as appended.
    pub data: Bytes,
}

/// A retained message: its global append sequence and payload.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) gseq: u64,
    pub(crate) data: Bytes,
}

/// One stream's retained messages, indices `first..next`.
///
/// Invariants: `msgs.len() == next - first`; `msgs` is in increasing `gseq`
/// order; `bytes` is the summed cost of `msgs`.
///
/// A stream carries its session's secret and its own last activity so that
/// an append or a replay needs one map lookup, not two.
#[derive(Debug)]
pub(crate) struct StreamLog {
    pub(crate) secret: u64,
    /// Logical time of the last activity (see `Store::stamp`).
    pub(crate) last_active: u64,
    first: u64,
    next: u64,
    msgs: VecDeque<Message>,
    bytes: u64,
}

impl StreamLog {
    pub(crate) fn new(secret: u64, now: u64) -> Self {
        Self {
            secret,
            last_active: now,
            first: 1,
            next: 1,
            msgs: VecDeque::new(),
            bytes: 0,
        }
    }

    pub(crate) fn push(&mut self, gseq: u64, data: Bytes) -> u64 {
        debug_assert!(self.msgs.back().is_none_or(|m| m.gseq < gseq));
        self.bytes += message_cost(data.len());
        self.msgs.push_back(Message { gseq, data });
        let index = self.next;
        self.next += 1;
        index
    }

    /// The global sequence of the oldest retained message.
    pub(crate) fn front_gseq(&self) -> Option<u64> {
        self.msgs.front().map(|m| m.gseq)
    }

    /// Drops the oldest message, returning its cost. An emptied stream gives
    /// its buffer back; only the two indices stay, so a later replay can tell
    /// "evicted" from "not yet issued".
    pub(crate) fn pop_front(&mut self) -> Option<u64> {
        let m = self.msgs.pop_front()?;
        self.first += 1;
        let cost = message_cost(m.data.len());
        self.bytes -= cost;
        if self.msgs.is_empty() {
            self.msgs = VecDeque::new();
        } else if self.msgs.capacity() > 64 && self.msgs.len() * 4 < self.msgs.capacity() {
            self.msgs.shrink_to(self.msgs.len() * 2);
        }
        Some(cost)
    }

    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Everything after `index`, or an error if any of it is gone or `index`
    /// was never issued. O(1) to locate, O(k) to copy k handles.
    pub(crate) fn after(&self, index: u64) -> Result<Vec<StoredEvent>, StoreError> {
        if index >= self.next {
            return Err(StoreError::FutureIndex {
                last: self.next - 1,
            });
        }
        // index < next, so index + 1 cannot overflow.
        if index + 1 < self.first {
            return Err(StoreError::Evicted { first: self.first });
        }
        // first <= index + 1 <= next, so the offset is within 0..=len.
        let skip =
            usize::try_from(index + 1 - self.first).map_err(|_| StoreError::FutureIndex {
                last: self.next - 1,
            })?;
        let mut next_index = index + 1;
        Ok(self
            .msgs
            .range(skip..)
            .map(|m| {
                let e = StoredEvent {
                    index: next_index,
                    data: m.data.clone(),
                };
                next_index += 1;
                e
            })
            .collect())
    }
}

/// One session: its secret, the numbers of its open streams (the streams
/// themselves live in the shard's stream map) and when (in logical time) it
/// was opened or last had a stream opened or closed.
#[derive(Debug)]
pub(crate) struct SessionState {
    pub(crate) secret: u64,
    /// Logical time of the last activity (see `Store::stamp`).
    pub(crate) last_active: u64,
    pub(crate) streams: Vec<u32>,
    pub(crate) next_stream: u32,
}

impl SessionState {
    pub(crate) fn new(secret: u64, now: u64) -> Self {
        Self {
            secret,
            last_active: now,
            streams: Vec::new(),
            next_stream: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_covers_every_boundary() {
        let mut log = StreamLog::new(0, 0);
        assert_eq!(log.after(0), Ok(vec![]));
        assert_eq!(log.after(1), Err(StoreError::FutureIndex { last: 0 }));
        for g in 0..4 {
            log.push(g, Bytes::from(vec![g as u8]));
        }
        assert_eq!(log.after(0).map(|v| v.len()), Ok(4));
        assert_eq!(log.after(4), Ok(vec![]));
        assert_eq!(
            log.after(u64::MAX),
            Err(StoreError::FutureIndex { last: 4 })
        );
        log.pop_front();
        assert_eq!(log.after(0), Err(StoreError::Evicted { first: 2 }));
        let rest = log.after(1).unwrap();
        assert_eq!(rest.iter().map(|e| e.index).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(rest[0].data, Bytes::from_static(&[1]));
        while log.pop_front().is_some() {}
        assert_eq!(log.bytes(), 0);
        assert_eq!(log.msgs.capacity(), 0);
        assert_eq!(log.after(3), Err(StoreError::Evicted { first: 5 }));
        assert_eq!(log.after(4), Ok(vec![]));
    }
}
