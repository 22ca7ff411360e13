//! Turning a resume point (an event id, a timestamp, or "live") into a
//! starting cursor in a generation's ring, or `Gone`.
//!
//! Rules:
//! - **After an id** (exclusive). An auto id of this generation maps straight
//!   to a sequence, O(1). An auto id of another generation is `Gone`. A
//!   caller-supplied id is looked up by its fingerprint: the ring's id
//!   index gives the newest sequence with it in O(1), confirmed against the
//!   frame's own `id:` line; should the index have lost it, a scan of the
//!   retained fingerprints (newest first) finds it. Not retained is `Gone`. An auto id newer than anything
//!   published means "live from now". An empty id counts as absent.
//! - **From a timestamp** (inclusive). `Gone` only if this generation has
//!   overwritten an event with a timestamp at or after it (a gap is then
//!   certain); otherwise the first retained event at or after it, or live
//!   when there is none (a future timestamp).
//! - A point exactly at the oldest retained event is still served; one event
//!   older is `Gone`.

use crate::error::{GoneReason, SubscribeError};
use crate::frame::frame_id;
use crate::generation::Generation;
use crate::id::parse_auto_id;
use crate::tag::fnv1a;

/// Where a subscription starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Resume {
    /// Only events published from now on.
    #[default]
    Live,
    /// Events after the one with this id.
    AfterId(String),
    /// Retained events with a timestamp at or after this many Unix
    /// nanoseconds, then live.
    FromTimestamp(u64),
}

/// The first sequence a subscription resuming at `resume` should read.
pub(crate) fn resolve(generation: &Generation, resume: &Resume) -> Result<u64, SubscribeError> {
    let ring = &generation.ring;
    match resume {
        Resume::Live => Ok(ring.head()),
        Resume::AfterId(id) if id.is_empty() => Ok(ring.head()),
        Resume::AfterId(id) => match parse_auto_id(id) {
            Some((token, _)) if token != generation.token => {
                Err(SubscribeError::Gone(GoneReason::OtherGeneration))
            }
            Some((_, number)) => {
                let cursor = number.min(ring.head());
                let tail = ring.tail();
                if cursor < tail {
                    return Err(SubscribeError::Gone(GoneReason::Overwritten {
                        missed: tail - cursor,
                    }));
                }
                Ok(cursor)
            }
            None => find_custom_id(generation, id)
                .map(|seq| seq + 1)
                .ok_or(SubscribeError::Gone(GoneReason::UnknownId)),
        },
        Resume::FromTimestamp(at) => {
            let gone = Err(SubscribeError::Gone(GoneReason::TimestampOverwritten));
            if ring
                .evicted_timestamp()
                .is_some_and(|evicted| evicted >= *at)
            {
                return gone;
            }
            let cursor = ring.seek_timestamp(*at).or(gone.clone())?;
            // An eviction during the search may have passed the point.
            if ring
                .evicted_timestamp()
                .is_some_and(|evicted| evicted >= *at)
                || cursor < ring.tail()
            {
                return gone;
            }
            Ok(cursor)
        }
    }
}

/// The newest retained sequence whose frame carries the caller id `id`.
fn find_custom_id(generation: &Generation, id: &str) -> Option<u64> {
    let ring = &generation.ring;
    let hash = fnv1a(id.as_bytes()).max(1);
    let mut frame = Vec::new();
    for seq in ring.find_id_hash(hash) {
        frame.clear();
        if ring.read(seq, &mut frame).is_ok() && frame_id(&frame) == Some(id) {
            return Some(seq);
        }
    }
    None
}
