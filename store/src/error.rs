//! The error type of the session event store.

use std::fmt;

/// Why a store operation failed.
///
/// Every variant is a clear, permanent answer about the request: the store
/// never returns a partial replay, so a caller that gets `Ok` has every event
/// after the index it asked for, and a caller that gets an error has nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The session was never opened, was closed, was reclaimed as idle, or
    /// the id's session secret does not match.
    UnknownSession,
    /// The session exists but has no stream with this number (never opened
    /// or closed).
    UnknownStream,
    /// At least one event after the requested index was evicted to keep the
    /// store within its byte budget; `first` is the oldest index still held.
    Evicted {
        /// The oldest index the stream still holds.
        first: u64,
    },
    /// The index has not been issued yet; `last` is the newest index issued
    /// (0 when the stream has no events).
    FutureIndex {
        /// The newest index issued on the stream.
        last: u64,
    },
    /// The event id is not of the form `<session-token>/<stream>/<index>`.
    MalformedId,
    /// The event id names a stream of another session.
    WrongSession,
    /// The message alone costs more than the whole budget.
    TooLarge {
        /// What the message would cost (payload plus fixed overhead).
        cost: u64,
        /// The store's budget.
        budget: u64,
    },
    /// The session already has the maximum number of streams.
    TooManyStreams,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownSession => f.write_str("unknown session"),
            Self::UnknownStream => f.write_str("unknown stream"),
            Self::Evicted { first } => {
                write!(f, "events evicted (oldest retained index {first})")
            }
            Self::FutureIndex { last } => {
                write!(f, "index not yet issued (last issued {last})")
            }
            Self::MalformedId => f.write_str("malformed event id"),
            Self::WrongSession => f.write_str("event id belongs to another session"),
            Self::TooLarge { cost, budget } => {
                write!(f, "message too large ({cost} bytes, budget {budget})")
            }
            Self::TooManyStreams => f.write_str("too many streams in session"),
        }
    }
}

impl std::error::Error for StoreError {}
