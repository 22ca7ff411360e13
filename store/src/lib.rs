//! A resumable session event store with one exact byte budget per process.
//!
//! MCP servers on the streamable-HTTP transport must let a client resume a
//! dropped SSE stream with `Last-Event-ID`. A [`Store`] holds, for one
//! process, many sessions, each with many streams of messages:
//! [`open`](Store::open) a session, [`open_stream`](Store::open_stream)s in it,
//! [`append`](Store::append) messages (each gets the next 1-based index), and
//! [`after`](Store::after) an index replays everything after it — or fails if
//! any of it was evicted. A replay is never partial and never skips or
//! repeats an event. [`session_closed`](Store::session_closed) frees a
//! session; [`reclaim_idle`](Store::reclaim_idle) frees sessions that were
//! never closed.
//!
//! # Design
//!
//! Sessions are spread over `N` shards (a power of two, by default four per
//! core); a session key picks its shard. Each shard is a `parking_lot` mutex
//! over its sessions, their streams (one map keyed by session and stream,
//! each stream carrying its session's secret, so an append, a replay or an
//! eviction does one lookup) and its *eviction queue*. Appends to sessions in
//! different shards take different locks, so they scale across cores; they
//! share only two atomics (the byte counter and the global sequence). A
//! replay takes only its session's shard lock — never a global one — and
//! finds its position in O(1): one map lookup, then `index - first` into the
//! stream's deque.
//!
//! Oldest-first eviction across the process comes from a *global append
//! sequence* `gseq`: each message takes the next `gseq` while its shard lock
//! is held, so each shard's queue is sorted, and the oldest message in the
//! process is the minimum of the queue fronts. Each shard publishes its front
//! in an atomic; an evictor scans the `N` hints without locks, locks the shard
//! with the smallest, and evicts its front only if it is still that message
//! (otherwise it re-scans). This is the sharded alternative to a global heap:
//! an eviction is O(N) atomic loads plus one lock, with no global lock.
//!
//! This differs from the Go SDK's `MemoryEventStore`, which holds one mutex
//! for everything and, when over budget, drops the first message of *every*
//! stream per round — over-evicting, and touching every stream of the
//! process.
//!
//! # The bound
//!
//! A message of `len` payload bytes costs [`message_cost`]`(len)` =
//! `len +` [`MESSAGE_OVERHEAD`]. An append first *reserves* its cost with a
//! compare-and-swap that fails if the total would exceed the budget; on
//! failure it evicts the oldest message in the process, returns that
//! message's cost and retries its own reservation in one atomic step, and
//! repeats until it fits. Only then does it take its session's shard lock,
//! so a full store's append takes two locks, one after the other, and never
//! holds one while waiting for another. A message's cost is returned only
//! after it has been removed. Hence at every instant
//!
//! ```text
//! sum of costs of retained messages  <=  reserved  <=  budget
//! ```
//!
//! — the budget is never exceeded, not even by one message. A message whose
//! cost alone exceeds the budget is refused ([`StoreError::TooLarge`]).
//! Memory not charged against the budget: per session and per stream
//! headers (a few dozen bytes each), freed when the session is closed or
//! reclaimed; queue entries left by closed sessions (24 bytes each, at most
//! as many as live entries plus 64 per shard, see the shard docs); and
//! allocator and deque slack (a deque is shrunk once it is a quarter full).
//! A stream emptied by eviction gives its buffer back and keeps only its two
//! indices, so that a late replay can still say "evicted" rather than
//! "not issued yet".
//!
//! Appends to a closed or unknown session or stream store nothing, but since
//! room is made before the session's lock is taken, such an append on a full
//! store may already have evicted the oldest messages (which the next append
//! would have evicted anyway).
//!
//! # Idle reclamation
//!
//! Sessions that are never closed are freed by
//! [`reclaim_idle`](Store::reclaim_idle), called periodically (or by the task
//! [`spawn_reclaimer`](Store::spawn_reclaimer) starts). Activity is stamped
//! with the global sequence rather than a clock, so no append or replay reads
//! the time: each reclaim call records `(clock time, sequence mark)`, and a
//! session is freed once it has been inactive since a mark recorded more
//! than the idle TTL ago — never earlier than the TTL, and at most one
//! reclaim interval (or TTL/8, if longer) later.
//!
//! # Oldest-first, exactly
//!
//! Eviction always removes the message with the smallest `gseq` among
//! messages whose append has completed. An append that is still in flight
//! (it has a `gseq` but has not released its shard lock) is not yet in the
//! store, so two appends racing with an eviction may be ordered either way —
//! the only ordering a concurrent observer could not tell apart anyway.
//!
//! # Scoping and ids
//!
//! A [`SessionId`] is a key plus a 64-bit secret drawn from a per-store keyed
//! SipHash (the std `RandomState`, seeded from OS randomness). Every
//! operation checks both, and event ids ([`EventId`]) carry both, so an id
//! copied from another session is refused by [`Store::after_id`]
//! ([`StoreError::WrongSession`]) and an id with a forged secret names no
//! session. The secret is not an authentication mechanism: the server must
//! still authenticate whoever presents the session.
//!
//! # Orderings
//!
//! All data is guarded by the shard mutexes. The atomics outside them are
//! the byte counter (`Relaxed`: its own read-modify-writes are totally
//! ordered, and it publishes no memory), the `gseq` counter (`Relaxed`:
//! taken under the shard lock, so per-shard order follows from the lock;
//! its relaxed loads as activity stamps only need to fall on the right side
//! of a reclaim call's mark, which the counter's single modification order
//! gives up to the usual staleness of a load), and the per-shard front hints
//! (`Relaxed`: re-checked under the lock before use).
//!
//! # Examples
//!
//! ```
//! use bytes::Bytes;
//! use ssehub_store::{Store, StoreError};
//!
//! let store = Store::new(1 << 20);
//! let session = store.open();
//! let stream = store.open_stream(session)?;
//! let first = store.append(session, stream, Bytes::from_static(b"one"))?;
//! store.append(session, stream, Bytes::from_static(b"two"))?;
//!
//! let rest = store.after(session, stream, first)?;
//! assert_eq!(rest.len(), 1);
//! assert_eq!(rest[0].data, "two");
//!
//! // An id carries the session and stream; another session cannot use it.
//! let id = store.event_id(session, stream, first).to_string();
//! let (_, events) = store.after_id(session, &id)?;
//! assert_eq!(events[0].index, 2);
//! let other = store.open();
//! assert_eq!(store.after_id(other, &id), Err(StoreError::WrongSession));
//! # Ok::<(), StoreError>(())
//! ```
#![warn(missing_docs)]

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

mod budget;
mod error;
mod id;
#[cfg(feature = "rmcp")]
pub mod rmcp;
mod session;
mod shard;

pub use budget::{message_cost, MESSAGE_OVERHEAD};
pub use error::StoreError;
pub use id::{EventId, SessionId, StreamId};
pub use session::StoredEvent;
/// The engine's clock: one [`Clock`] trait serves the hub and the store.
pub use ssehub::clock::{Clock, ManualClock, SystemClock};

use budget::Budget;
use session::{SessionState, StreamLog};
use shard::Shard;

/// How a [`Store`] is set up.
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use ssehub_store::{Config, ManualClock, Store};
///
/// let clock = Arc::new(ManualClock::default());
/// let store = Store::with_config(
///     Config::new(8 << 20)
///         .idle_ttl(Duration::from_secs(60))
///         .shards(16)
///         .clock(clock.clone()),
/// );
/// assert_eq!(store.budget(), 8 << 20);
/// ```
#[derive(Clone)]
pub struct Config {
    budget: u64,
    idle_ttl: Duration,
    shards: usize,
    clock: Arc<dyn Clock>,
}

impl Config {
    /// Default idle time after which [`Store::reclaim_idle`] frees a session.
    pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(600);

    /// A budget of `budget` bytes for the whole store, with defaults for the
    /// rest: idle TTL [`DEFAULT_IDLE_TTL`](Self::DEFAULT_IDLE_TTL), four
    /// shards per core, and a [`SystemClock`].
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            idle_ttl: Self::DEFAULT_IDLE_TTL,
            shards: 0,
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Sessions untouched (no open, append or replay) for longer than `ttl`
    /// are freed by [`Store::reclaim_idle`] (a little after that; see
    /// there for how much).
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// The number of shards, rounded up to a power of two (0: automatic).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// The clock [`Store::now`] reads, for callers of
    /// [`Store::reclaim_idle`] and for its background task. Appends and
    /// replays never read it: activity is stamped in logical time.
    ///
    /// This is the engine's [`Clock`], the one a hub stamps events with. The
    /// default [`SystemClock`] follows the OS wall clock, so a step of the
    /// wall clock shifts reclamation: a step back delays it until the clock
    /// has caught up; a step forward can free sessions idle for less than
    /// the TTL (never one active since the previous reclaim call). Pass a
    /// clock that does not step if that matters.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("budget", &self.budget)
            .field("idle_ttl", &self.idle_ttl)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// The process-wide store of resumable session streams. See the
/// [module docs](self) for the design and the bound.
pub struct Store {
    shards: Box<[CachePadded<Shard>]>,
    mask: u64,
    budget: Budget,
    gseq: CachePadded<AtomicU64>,
    next_key: AtomicU64,
    secrets: RandomState,
    idle_ttl: Duration,
    clock: Arc<dyn Clock>,
    /// `(time, mark)` of earlier `reclaim_idle` calls, oldest first.
    marks: Mutex<VecDeque<(Duration, u64)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .field("budget", &self.budget.limit())
            .field("used", &self.budget.used())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store holding at most `budget` bytes (see [`message_cost`]), with
    /// the other settings at their [`Config`] defaults.
    pub fn new(budget: u64) -> Self {
        Self::with_config(Config::new(budget))
    }

    /// A store set up by `config`.
    pub fn with_config(config: Config) -> Self {
        let shards = if config.shards == 0 {
            std::thread::available_parallelism().map_or(8, |n| n.get() * 4)
        } else {
            config.shards
        };
        let shards = shards.clamp(1, 1 << 16).next_power_of_two();
        Self {
            shards: (0..shards)
                .map(|_| CachePadded::new(Shard::new()))
                .collect(),
            mask: shards as u64 - 1,
            budget: Budget::new(config.budget),
            // Starts at 1 so that every stamp is above the initial mark 0.
            gseq: CachePadded::new(AtomicU64::new(1)),
            next_key: AtomicU64::new(1),
            secrets: RandomState::new(),
            idle_ttl: config.idle_ttl,
            clock: config.clock,
            marks: Mutex::new(VecDeque::new()),
        }
    }

    fn shard(&self, key: u64) -> &Shard {
        // The mask keeps the index below `shards.len()`.
        &self.shards[(key & self.mask) as usize]
    }

    /// The current logical time: the global sequence. Reading it is one
    /// relaxed load of a counter appends already share, instead of a clock
    /// read on every operation.
    fn stamp(&self) -> u64 {
        // Relaxed: only its order relative to `reclaim_idle`'s fetch_add
        // matters, and operations on one atomic are totally ordered.
        self.gseq.load(Ordering::Relaxed)
    }

    /// The store's clock reading (the [`Clock`]'s Unix time), as
    /// [`reclaim_idle`](Self::reclaim_idle) expects it.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.clock.now_unix_nanos())
    }

    /// The byte budget.
    pub fn budget(&self) -> u64 {
        self.budget.limit()
    }

    /// Bytes currently charged: retained messages plus in-flight appends.
    /// Never more than [`budget`](Self::budget).
    pub fn used_bytes(&self) -> u64 {
        self.budget.used()
    }

    /// Bytes of retained messages, summed shard by shard under each lock
    /// (O(sessions); for tests and diagnostics). When no append is in
    /// flight this equals [`used_bytes`](Self::used_bytes).
    pub fn retained_bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                s.inner
                    .lock()
                    .streams
                    .values()
                    .map(|log| log.bytes())
                    .sum::<u64>()
            })
            .sum()
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.inner.lock().sessions.len())
            .sum()
    }

    /// Opens a new session with no streams.
    pub fn open(&self) -> SessionId {
        // Relaxed: only uniqueness matters.
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let secret = self.secrets.hash_one(key);
        let now = self.stamp();
        let shard = self.shard(key);
        shard
            .inner
            .lock()
            .sessions
            .insert(key, SessionState::new(secret, now));
        SessionId { key, secret }
    }

    /// Whether `session` is open (not closed, not reclaimed). Does not count
    /// as activity.
    pub fn is_open(&self, session: SessionId) -> bool {
        self.shard(session.key)
            .inner
            .lock()
            .session_mut(session)
            .is_ok()
    }

    /// Opens the session's next stream (numbered 0, 1, 2, ...).
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownSession`] if the session is closed or reclaimed;
    /// [`StoreError::TooManyStreams`] after `u32::MAX` streams.
    pub fn open_stream(&self, session: SessionId) -> Result<StreamId, StoreError> {
        let now = self.stamp();
        let mut inner = self.shard(session.key).inner.lock();
        let sess = inner.session_mut(session)?;
        let n = sess.next_stream;
        sess.next_stream = n.checked_add(1).ok_or(StoreError::TooManyStreams)?;
        sess.streams.push(n);
        sess.last_active = now;
        inner
            .streams
            .insert((session.key, n), StreamLog::new(session.secret, now));
        Ok(StreamId(n))
    }

    /// Appends `data` to a stream and returns its index (1 for the first).
    ///
    /// If the budget is full, the oldest messages in the whole store are
    /// evicted first, one at a time, until this one fits.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownSession`], [`StoreError::UnknownStream`], or
    /// [`StoreError::TooLarge`] if [`message_cost`]`(data.len())` exceeds the
    /// budget. On error nothing was stored (though the oldest messages may
    /// have been evicted to make room first: room is made before the
    /// session's lock is taken, so that no lock is held while evicting).
    pub fn append(
        &self,
        session: SessionId,
        stream: StreamId,
        data: Bytes,
    ) -> Result<u64, StoreError> {
        let cost = message_cost(data.len());
        if cost > self.budget.limit() {
            return Err(StoreError::TooLarge {
                cost,
                budget: self.budget.limit(),
            });
        }
        // Reserve first, evicting the oldest messages as needed, and only
        // then take this session's shard lock: a full store's append takes
        // two locks (the evicted shard's and ours), never one inside another.
        if !self.budget.try_reserve(cost) {
            loop {
                match self.evict_oldest() {
                    // One atomic operation returns the evicted bytes and
                    // takes ours if they now fit.
                    Some(freed) if self.budget.release_and_reserve(freed, cost) => break,
                    Some(_) => {}
                    None => {
                        // Everything charged belongs to appends in flight;
                        // they hold no lock we need and finish promptly.
                        std::thread::yield_now();
                        if self.budget.try_reserve(cost) {
                            break;
                        }
                    }
                }
            }
        }
        let shard = self.shard(session.key);
        let mut guard = shard.inner.lock();
        let inner = &mut *guard;
        let log = match inner.find_stream(session, stream.0) {
            Some(log) => log,
            None => {
                let e = inner.missing(session);
                drop(guard);
                self.budget.release(cost);
                return Err(e);
            }
        };
        // Relaxed: taken under the shard lock, which orders it with every
        // other gseq of this shard; across shards only uniqueness and
        // monotonicity of the counter matter.
        let gseq = self.gseq.fetch_add(1, Ordering::Relaxed);
        log.last_active = gseq;
        let index = log.push(gseq, data);
        inner.enqueue(gseq, session.key, stream.0);
        shard.publish(inner);
        Ok(index)
    }

    /// Evicts the oldest message in the store and returns its cost, still
    /// charged: the caller must release it. `None` if there is none.
    fn evict_oldest(&self) -> Option<u64> {
        loop {
            let mut best = u64::MAX;
            let mut at = None;
            for (i, s) in self.shards.iter().enumerate() {
                let f = s.front_hint();
                if f < best {
                    best = f;
                    at = Some(i);
                }
            }
            let i = at?;
            let shard = &self.shards[i];
            let mut inner = shard.inner.lock();
            let evicted = inner.evict_front(best);
            shard.publish(&inner);
            drop(inner);
            if evicted.is_some() {
                return evicted;
            }
        }
    }

    /// Everything in the stream after `index` (0 for everything), oldest
    /// first. O(1) to locate, then one reference-count bump per event.
    ///
    /// # Errors
    ///
    /// [`StoreError::Evicted`] if any event after `index` was evicted — the
    /// store never returns a partial replay; [`StoreError::FutureIndex`] if
    /// `index` was never issued; [`StoreError::UnknownSession`] or
    /// [`StoreError::UnknownStream`].
    pub fn after(
        &self,
        session: SessionId,
        stream: StreamId,
        index: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let now = self.stamp();
        let mut inner = self.shard(session.key).inner.lock();
        let Some(log) = inner.find_stream(session, stream.0) else {
            return Err(inner.missing(session));
        };
        log.last_active = now;
        log.after(index)
    }

    /// Replays after an event id presented on behalf of `session` (e.g. a
    /// `Last-Event-ID` header): returns the id's stream and the events after
    /// it.
    ///
    /// # Errors
    ///
    /// [`StoreError::MalformedId`], [`StoreError::WrongSession`] if the id
    /// belongs to another session, and the errors of [`after`](Self::after).
    pub fn after_id(
        &self,
        session: SessionId,
        id: &str,
    ) -> Result<(StreamId, Vec<StoredEvent>), StoreError> {
        let id = EventId::parse(id)?;
        if id.session != session {
            return Err(StoreError::WrongSession);
        }
        Ok((id.stream, self.after(session, id.stream, id.index)?))
    }

    /// Replays after `id` with the id itself as the capability: for callers
    /// that have no session context (the id's secret is still checked).
    ///
    /// # Errors
    ///
    /// As [`after`](Self::after).
    pub fn replay(&self, id: &EventId) -> Result<Vec<StoredEvent>, StoreError> {
        self.after(id.session, id.stream, id.index)
    }

    /// The id of event `index` of `stream` in `session`.
    pub fn event_id(&self, session: SessionId, stream: StreamId, index: u64) -> EventId {
        EventId {
            session,
            stream,
            index,
        }
    }

    /// Drops one stream and all its messages. Its number is not reused.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownSession`] or [`StoreError::UnknownStream`].
    pub fn close_stream(&self, session: SessionId, stream: StreamId) -> Result<(), StoreError> {
        let shard = self.shard(session.key);
        let mut inner = shard.inner.lock();
        if inner.find_stream(session, stream.0).is_none() {
            return Err(inner.missing(session));
        }
        let log = inner
            .streams
            .remove(&(session.key, stream.0))
            .ok_or(StoreError::UnknownStream)?;
        let sess = inner.session_mut(session)?;
        sess.streams.retain(|&t| t != stream.0);
        // Keep the stream's activity: the session was active then.
        sess.last_active = sess.last_active.max(log.last_active);
        inner.mark_dead(log.len());
        shard.publish(&inner);
        drop(inner);
        self.budget.release(log.bytes());
        Ok(())
    }

    /// Frees a finished session and all its streams. Returns false if the
    /// session was already gone.
    pub fn session_closed(&self, session: SessionId) -> bool {
        let shard = self.shard(session.key);
        let mut inner = shard.inner.lock();
        if inner.session_mut(session).is_err() {
            return false;
        }
        let Some((msgs, bytes)) = inner.remove_session(session.key) else {
            return false;
        };
        inner.mark_dead(msgs);
        shard.publish(&inner);
        drop(inner);
        self.budget.release(bytes);
        true
    }

    /// Frees idle sessions and returns how many. Call it periodically with
    /// the store's clock reading (see [`now`](Self::now)), or let
    /// [`spawn_reclaimer`](Self::spawn_reclaimer) do it.
    ///
    /// Idleness is tracked in logical time so that appends and replays never
    /// read a clock: each call records a mark in the global sequence, and a
    /// session is freed once it has had no activity since a call made more
    /// than the idle TTL before `now`. A session is therefore never freed
    /// before it has been idle for the TTL, and with calls every `I` it is
    /// freed at most TTL + max(`I`, TTL/8) after its last activity (marks are
    /// kept at least TTL/8 apart, so at most ten are held however often this
    /// is called). The first call only records a mark. If `now` goes backwards
    /// between calls, nothing is freed until it has caught up. Takes one
    /// shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use ssehub_store::{Config, ManualClock, Store};
    ///
    /// let clock = Arc::new(ManualClock::default());
    /// let store = Store::with_config(
    ///     Config::new(1 << 20).idle_ttl(Duration::from_secs(60)).clock(clock.clone()),
    /// );
    /// let session = store.open();
    /// assert_eq!(store.reclaim_idle(store.now()), 0); // records a mark
    /// clock.advance(Duration::from_secs(61));
    /// assert_eq!(store.reclaim_idle(store.now()), 1); // idle since before it
    /// assert!(!store.is_open(session));
    /// ```
    pub fn reclaim_idle(&self, now: Duration) -> usize {
        // Relaxed: as in `stamp`; activity stamped before this is <= mark,
        // activity after it is > mark.
        let mark = self.gseq.fetch_add(1, Ordering::Relaxed);
        let cutoff = {
            let mut marks = self.marks.lock();
            let expired = |t: Duration| now.saturating_sub(t) > self.idle_ttl;
            // Keep only the newest expired mark (and everything newer).
            while marks.len() >= 2 && marks.get(1).is_some_and(|&(t, _)| expired(t)) {
                marks.pop_front();
            }
            let cutoff = marks.front().filter(|&&(t, _)| expired(t)).map(|&(_, m)| m);
            // Marks at least TTL/8 apart: however often this is called,
            // at most ten are kept.
            if marks
                .back()
                .is_none_or(|&(t, _)| now.saturating_sub(t) >= self.idle_ttl / 8)
            {
                marks.push_back((now, mark));
            }
            cutoff
        };
        let Some(cutoff) = cutoff else {
            return 0;
        };
        let mut freed = 0;
        for shard in self.shards.iter() {
            let mut inner = shard.inner.lock();
            let (mut msgs, mut bytes) = (0, 0);
            let idle: Vec<u64> = inner
                .sessions
                .keys()
                .copied()
                .filter(|&k| inner.last_active(k).is_some_and(|stamp| stamp <= cutoff))
                .collect();
            for key in idle {
                if let Some((m, b)) = inner.remove_session(key) {
                    msgs += m;
                    bytes += b;
                    freed += 1;
                }
            }
            if msgs > 0 {
                inner.mark_dead(msgs);
                shard.publish(&inner);
            }
            if inner.sessions.capacity() > 64
                && inner.sessions.len() * 4 < inner.sessions.capacity()
            {
                inner.sessions.shrink_to_fit();
            }
            if inner.streams.capacity() > 64 && inner.streams.len() * 4 < inner.streams.capacity() {
                inner.streams.shrink_to_fit();
            }
            drop(inner);
            self.budget.release(bytes);
        }
        freed
    }

    /// Spawns a tokio task that calls [`reclaim_idle`](Self::reclaim_idle)
    /// every `every` with the store's clock, so sessions go at most `every`
    /// after their idle TTL. The task holds only a weak reference and ends
    /// once the store is dropped (or when the handle is aborted).
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime.
    pub fn spawn_reclaimer(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        spawn_periodic(Arc::downgrade(self), every, |store: &Self| {
            store.reclaim_idle(store.now());
        })
    }
}

/// Spawns a tokio task that calls `tick` on `target` every `every` (the
/// first call one interval from now) until `target` is dropped. Holds only
/// a weak reference, so it never keeps `target` alive.
///
/// # Panics
///
/// If called outside a tokio runtime.
pub(crate) fn spawn_periodic<T: Send + Sync + 'static>(
    target: Weak<T>,
    every: Duration,
    tick: impl Fn(&T) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            let Some(target) = target.upgrade() else {
                return;
            };
            tick(&target);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaim_marks_stay_few_however_often_it_runs() {
        let clock = Arc::new(ManualClock::default());
        let store = Store::with_config(
            Config::new(1 << 20)
                .idle_ttl(Duration::from_secs(80))
                .clock(clock.clone()),
        );
        let s = store.open();
        for _ in 0..100_000 {
            clock.advance(Duration::from_millis(1));
            store.reclaim_idle(store.now());
            assert!(store.marks.lock().len() <= 10);
        }
        // 100 s idle with an 80 s TTL: gone by now.
        assert!(!store.is_open(s));
    }
}
