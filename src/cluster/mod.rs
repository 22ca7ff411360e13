//! Cluster mode: many `ssehub serve` nodes sharing one history, with Redis
//! Streams as the source of truth (`ssehub serve --redis URL`).
//!
//! # Design
//!
//! ```text
//!  POST on any node ─► EventSource::publish ─► Redis: one Lua script per batch
//!                          (generation token, counter n, XADD <n>-0 {frame, type, id, time})
//!  every node: tail task ─ XREAD BLOCK ─► Publisher::append_at ─► its own Ring ─► local subscribers
//!  resume older than the ring ─ EventSource::range (XRANGE) ─► joined to the ring by sequence
//! ```
//!
//! - **Ids and order are decided once, in the source.** A publish goes to
//!   the source, which assigns the batch consecutive numbers `n` of the
//!   current generation and stamps it with its own clock, atomically. The
//!   auto id is the single-node form `<16-hex token>-<n>`, so every node
//!   prints the same id; a caller id is kept as is. The publishing node
//!   encodes each frame once; the other nodes copy its bytes.
//! - **The ring keeps its single writer.** Each node runs one tail task
//!   ([`node`]) that reads the source in order and appends every frame to the
//!   node's hub with [`Publisher::append_at`](crate::Publisher::append_at):
//!   sequence `n - 1`, the source's token and time. The publish → subscriber
//!   path on a node is the single-node one (lock-free); the node never
//!   writes an event the source did not order.
//! - **410 is decided against the source**, not one node's ring: a resume
//!   point still in the source but older than the node's ring is replayed
//!   from the source and joined to the ring at the exact next sequence (see
//!   [`stream`]); no gap, no duplicate.
//! - **Generations.** A reset on any node starts a new generation in the
//!   source and notifies every tail, which moves its hub to the new token
//!   ([`Hub::reset_to`](crate::Hub::reset_to)); open streams end. When the
//!   source lost entries (Redis restarted empty, or failed over to a replica
//!   that missed the newest writes), a node that has seen a higher `n` than
//!   the source holds reports it with every call ([`Seen`]), and the source
//!   moves to a new generation instead of numbering events again: an id
//!   never names two different events.
//! - **No local ids.** When the source cannot be reached, a publish fails
//!   with [`ClusterError::Unavailable`] (HTTP 503 `backend_unavailable`).
//!
//! The source is the [`EventSource`] trait; [`RedisSource`] is the Redis
//! Streams implementation (see [`redis`] for the data model and scripts).
//! Another log (NATS JetStream, Kafka) can implement the trait: it needs
//! atomic numbering of a batch, a generation token, ordered reads after a
//! position with a bounded wait, and range reads.
//!
//! This lives in the `ssehub` crate behind the `cluster` feature rather than
//! in a crate of its own because `ssehub serve` (in this crate) must build a
//! [`RedisSource`] from `--redis`, and a separate crate depending on `ssehub`
//! cannot be a dependency of `ssehub` (cargo forbids the cycle). Apart from
//! the crate's id helpers (parse, format, fresh token) it uses only the
//! public engine API, so it can move to its
//! own crate once the binary lives in one.

pub mod node;
pub mod redis;
pub mod stream;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::EncodedEvent;

pub use self::redis::RedisSource;
pub use node::{Cluster, ClusterError, ClusterStats};
pub use stream::ClusterStream;

/// A boxed, sendable future (the trait's methods return these so the trait
/// stays object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The newest position a node has seen: a generation token and the highest
/// event number of it. Sent with every call that may start a generation, so
/// a source that holds fewer events of `token` than this knows it lost some.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Generation token (0: nothing seen yet).
    pub token: u64,
    /// Highest event number seen in it.
    pub number: u64,
}

/// One event as the source holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEvent {
    /// Its number in the generation (1 for the first; the ring's sequence + 1).
    pub number: u64,
    /// Its type (what subscribers filter on).
    pub event_type: String,
    /// The caller-supplied id, if any (else the auto id `<token>-<number>`).
    pub id: Option<String>,
    /// The encoded frame without its `id:` line ([`EncodedEvent::body`]).
    pub body: Bytes,
    /// The source's time when it was published, Unix nanoseconds.
    pub timestamp: u64,
}

/// What the source holds of its current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHead {
    /// The generation's token.
    pub token: u64,
    /// Generations the source has started (1 for the first).
    pub generation: u64,
    /// Highest event number handed out (0 when none).
    pub last: u64,
    /// Oldest event number still retained (`last + 1` when none is).
    pub oldest: u64,
    /// Time of the newest event trimmed from this generation, if any.
    pub evicted_timestamp: Option<u64>,
    /// Events retained.
    pub retained: u64,
    /// Bytes retained, as the source counts them.
    pub retained_bytes: u64,
    /// The answer to the [`Lookup`], if one was asked.
    pub found: Option<u64>,
}

/// An extra question for [`EventSource::head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// None.
    Nothing,
    /// The number of the newest retained event with this caller id.
    CallerId(String),
    /// The number of the first retained event at or after this time (Unix
    /// nanoseconds), or `last + 1` when there is none.
    Timestamp(u64),
}

/// Where a publish landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The generation's token.
    pub token: u64,
    /// Number of the batch's first event; the rest follow consecutively.
    pub first: u64,
    /// The source's time stamped on the whole batch, Unix nanoseconds.
    pub timestamp: u64,
}

/// One read of the tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailRead {
    /// Events after the position, in order.
    Events(Vec<SourceEvent>),
    /// The source started another generation (a reset).
    GenerationChanged,
    /// Nothing arrived within the wait.
    Idle,
}

/// Why a source call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The source cannot be reached (connection refused, timed out, lost).
    Unavailable(String),
    /// The source answered something this node cannot use.
    Protocol(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Unavailable(message) => write!(f, "source unavailable: {message}"),
            SourceError::Protocol(message) => write!(f, "unexpected source reply: {message}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// Retention bounds the source applies to each generation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most events retained (`--capacity`).
    pub events: u64,
    /// Most bytes retained (`--max-bytes`), counted as frame body + id.
    pub bytes: u64,
}

/// A node's shared source of events (see the module docs).
///
/// Implementations must number each published batch consecutively within a
/// generation, atomically with respect to every other publish and reset, and
/// must never hand out a number of a generation twice.
pub trait EventSource: Send + Sync + std::fmt::Debug + 'static {
    /// Appends a batch (non-empty) to the current generation, starting one
    /// when there is none or when the source holds fewer events of
    /// `seen.token` than `seen.number`.
    fn publish<'a>(
        &'a self,
        events: &'a [EncodedEvent],
        seen: Seen,
    ) -> BoxFuture<'a, Result<Appended, SourceError>>;

    /// Starts a new generation; with `expected`, only if the current one
    /// still has that token (so nodes racing to replace a lost generation
    /// make one, not several).
    fn reset(&self, expected: Option<u64>) -> BoxFuture<'_, Result<SourceHead, SourceError>>;

    /// The current generation's state (starting one as `publish` does), and
    /// the answer to `lookup`.
    fn head(&self, seen: Seen, lookup: Lookup) -> BoxFuture<'_, Result<SourceHead, SourceError>>;

    /// Up to `max` retained events of generation `token` numbered after
    /// `after`, in order (empty when there is none, or when `token` is not
    /// the current generation).
    fn range(
        &self,
        token: u64,
        after: u64,
        max: usize,
    ) -> BoxFuture<'_, Result<Vec<SourceEvent>, SourceError>>;

    /// For the node's one tail task: marks "now" for generation changes
    /// (a later [`EventSource::tail`] reports any change after it) and
    /// returns the head as [`EventSource::head`] does.
    fn sync(&self, seen: Seen) -> BoxFuture<'_, Result<SourceHead, SourceError>>;

    /// For the node's one tail task: events of `token` after number `after`,
    /// waiting up to `wait` for some, or a generation change since the last
    /// [`EventSource::sync`].
    fn tail(
        &self,
        token: u64,
        after: u64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<TailRead, SourceError>>;
}
