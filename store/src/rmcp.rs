//! The store as the `EventStore` of `rmcp`'s streamable-HTTP server.
//!
//! `rmcp` 3.9 (`rmcp::transport::streamable_http_server::session::EventStore`)
//! asks an event store for two things:
//!
//! - `store_event(stream_id, event) -> event id`, called for every SSE event
//!   on a stream before it is sent, and
//! - `replay_events_after(last_event_id) -> events`, called with the client's
//!   `Last-Event-ID` — *without* the MCP session: the trait expects the id
//!   alone to locate the stream.
//!
//! [`McpEventStore`] maps each `rmcp` stream (`"<session>:common"` for a
//! session's standalone `GET` stream, a fresh UUID for each request's
//! stream) to a [`Store`] session with one stream, so every event id is a
//! store [`EventId`]: it locates the stream in O(1) and carries the session
//! secret, so an id cannot be guessed. Payloads are kept as the JSON the
//! client would receive (plus the `retry` hint), so the byte budget measures
//! real sizes.
//!
//! # Scoping: who may replay an id
//!
//! Every stream has a scope, fixed when its first event is stored:
//!
//! - **Session streams** belong to an MCP session (protocol versions up to
//!   `2025-11-25`, served by [`ScopedSessionManager`]). Only that session
//!   may replay them, through the session manager's `resume`, which checks
//!   the owner. A replay that starts without the owning session is refused,
//!   even before the owner is known: `rmcp`'s `GET` on protocol
//!   `2026-07-28` and later goes straight to `replay_events_after`,
//!   whatever `Mcp-Session-Id` it carries, and [`McpEventStore::replay`]
//!   has no session either. The standalone stream names its session;
//!   [`ScopedSessionManager`] stores a request's events through a handle of
//!   its own, so they are session streams from the first event, and binds
//!   them to their MCP session as the first one leaves (before the client
//!   can see an id).
//! - **Stateless streams** have no MCP session (protocol `2026-07-28`, or
//!   `rmcp`'s stateless mode): the id's 64-bit secret is the capability,
//!   and `replay_events_after` serves them.
//!
//! Used without [`ScopedSessionManager`] (a plain `LocalSessionManager`
//! given this store), request streams are stored as stateless streams, so
//! nothing but the secret guards them: use [`ScopedSessionManager`].
//!
//! # Resuming
//!
//! A resume delivers what is stored after the id, then each event as it is
//! stored. A request's stream stays open until the call is answered and
//! ends after the JSON-RPC response; a standalone stream goes on like the
//! live one. Either ends early if the store session goes away (closed with
//! its MCP session, reclaimed as idle) or the events it needs were evicted.
//! A refused or failed resume is, as `rmcp` answers it, an empty stream
//! that closes at once.
//!
//! Check `Last-Event-ID` with [`check_last_event_id`] in front of `rmcp`:
//! `rmcp` treats a non-ASCII value as absent and opens a live stream.
//!
//! Memory: the budget is exact as for any [`Store`]. The maps from `rmcp`
//! stream ids and MCP sessions to store sessions hold one entry per live
//! stream; [`McpEventStore::reclaim_idle`] (or
//! [`McpEventStore::spawn_reclaimer`]) drops the entries of sessions the
//! store reclaimed as idle — request streams are never closed explicitly, so
//! the idle TTL is also how long a finished request stays resumable.
//!
//! # Examples
//!
//! ```no_run
//! use std::sync::Arc;
//! use ssehub_store::{rmcp::{McpEventStore, ScopedSessionManager}, Store};
//!
//! let events = Arc::new(McpEventStore::new(Arc::new(Store::new(64 << 20))));
//! let sessions = Arc::new(ScopedSessionManager::new(events.clone()));
//! // StreamableHttpService::new(|| Ok(MyServer), sessions, config)
//! # let _ = sessions;
//! ```

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use rmcp::model::ServerJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManagerError;
use rmcp::transport::streamable_http_server::session::{
    EventId as RmcpEventId, EventStore, EventStoreError, EventStream, ServerSseMessage,
    SessionId as McpSessionId,
};
use tokio::sync::Notify;

use crate::{EventId, SessionId, Store, StoreError, StoredEvent, StreamId};

mod follow;
mod last_event_id;
mod scoped;

use follow::follow;
pub use last_event_id::{check_last_event_id, LastEventIdError};
pub use scoped::ScopedSessionManager;

/// The one stream of each store session the adapter opens.
const STREAM: StreamId = StreamId::new(0);
/// Shards of the `rmcp` stream-id map.
const MAP_SHARDS: usize = 32;

const HAS_RETRY: u8 = 1;
const HAS_MESSAGE: u8 = 2;

/// Why an adapter operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdapterError {
    /// The store refused (evicted, unknown session, malformed id, an id of
    /// another session's stream, ...).
    Store(StoreError),
    /// A message could not be encoded or a stored one decoded.
    Codec(serde_json::Error),
    /// `rmcp`'s local session manager failed.
    Session(LocalSessionManagerError),
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "event store: {e}"),
            Self::Codec(e) => write!(f, "event codec: {e}"),
            Self::Session(e) => write!(f, "session: {e}"),
        }
    }
}

impl std::error::Error for AdapterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::Codec(e) => Some(e),
            Self::Session(e) => Some(e),
        }
    }
}

impl From<StoreError> for AdapterError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Who may replay a store session's events (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// No MCP session: the id's secret is the capability.
    Stateless,
    /// A stream of an MCP session, `None` until the session is known.
    Session(Option<McpSessionId>),
}

/// What the adapter knows about one store session.
#[derive(Debug)]
struct Binding {
    /// The store session.
    session: SessionId,
    /// The `rmcp` stream id it stores.
    stream: String,
    /// Who may replay it.
    scope: Scope,
    /// Woken after every append and when the session goes away.
    wake: Arc<Notify>,
}

/// One `rmcp` stream's store session and its wake-up.
#[derive(Debug, Clone)]
struct Entry {
    session: SessionId,
    wake: Arc<Notify>,
}

/// Where a permitted resume starts.
#[derive(Debug)]
struct Permit {
    /// The stream's wake-up.
    wake: Arc<Notify>,
    /// Whether it is a session's standalone stream.
    standalone: bool,
}

/// An `rmcp` [`EventStore`] backed by a [`Store`]. See the
/// [module docs](self).
pub struct McpEventStore {
    store: Arc<Store>,
    /// `rmcp` stream id -> store session, sharded by a hash of the id.
    streams: Box<[Mutex<HashMap<String, Entry>>]>,
    hasher: RandomState,
    /// Store session key -> binding.
    bindings: Mutex<HashMap<u64, Binding>>,
    /// MCP session -> the store sessions it owns.
    owned: Mutex<HashMap<McpSessionId, Vec<SessionId>>>,
}

impl fmt::Debug for McpEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpEventStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl McpEventStore {
    /// An adapter over `store` (which may be shared with other users).
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            streams: (0..MAP_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            bindings: Mutex::default(),
            owned: Mutex::default(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn stream_shard(&self, stream_id: &str) -> &Mutex<HashMap<String, Entry>> {
        let h = self.hasher.hash_one(stream_id) as usize;
        &self.streams[h % self.streams.len()]
    }

    /// The store session holding `stream_id`, opened on first use (or again
    /// if the store reclaimed the old one, `stale`). A new one is a session
    /// stream if `stream_id` is a standalone stream or `of_session` says so.
    fn session_for(&self, stream_id: &str, stale: Option<SessionId>, of_session: bool) -> Entry {
        let mut map = self.stream_shard(stream_id).lock();
        match map.get(stream_id) {
            Some(e) if Some(e.session) != stale => return e.clone(),
            _ => {}
        }
        let session = self.store.open();
        // A fresh session always gets stream 0.
        let _ = self.store.open_stream(session);
        let entry = Entry {
            session,
            wake: Arc::new(Notify::new()),
        };
        map.insert(stream_id.to_owned(), entry.clone());
        // The standalone stream names its MCP session; request streams are
        // bound when their first event leaves through the session manager.
        let scope = match stream_id.strip_suffix(":common") {
            Some(owner) => {
                let owner = McpSessionId::from(owner);
                self.owned
                    .lock()
                    .entry(owner.clone())
                    .or_default()
                    .push(session);
                Scope::Session(Some(owner))
            }
            None if of_session => Scope::Session(None),
            None => Scope::Stateless,
        };
        // Bound before the map is unlocked, so before any id of it exists.
        self.bindings.lock().insert(
            session.key(),
            Binding {
                session,
                stream: stream_id.to_owned(),
                scope,
                wake: entry.wake.clone(),
            },
        );
        entry
    }

    /// Stores one event of `rmcp` stream `stream_id`; returns its id. A new
    /// stream is a stateless stream unless it is a standalone stream
    /// (`"<session>:common"`); [`ScopedSessionManager`] stores its request
    /// streams as session streams.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Codec`] if the message cannot be serialised,
    /// [`AdapterError::Store`] if the store refuses it (too large).
    pub fn append(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, AdapterError> {
        self.append_scoped(stream_id, event, false)
    }

    fn append_scoped(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
        of_session: bool,
    ) -> Result<EventId, AdapterError> {
        let data = encode(event)?;
        let mut entry = self.session_for(stream_id, None, of_session);
        let index = match self.store.append(entry.session, STREAM, data.clone()) {
            Err(StoreError::UnknownSession) => {
                // Reclaimed as idle meanwhile: the old ids stay invalid and
                // the stream continues in a new store session.
                entry = self.session_for(stream_id, Some(entry.session), of_session);
                self.store.append(entry.session, STREAM, data)?
            }
            other => other?,
        };
        entry.wake.notify_waiters();
        Ok(self.store.event_id(entry.session, STREAM, index))
    }

    /// Whether `id` may be replayed by `by` (`None`: by a request without an
    /// MCP session).
    fn permit(&self, id: &EventId, by: Option<&McpSessionId>) -> Result<Permit, StoreError> {
        let bindings = self.bindings.lock();
        let binding = bindings
            .get(&id.session.key())
            .filter(|b| b.session == id.session)
            .ok_or(StoreError::UnknownSession)?;
        let permit = || Permit {
            wake: binding.wake.clone(),
            standalone: binding.stream.ends_with(":common"),
        };
        match (&binding.scope, by) {
            (Scope::Stateless, None) => Ok(permit()),
            (Scope::Session(Some(owner)), Some(by)) if owner == by => Ok(permit()),
            (Scope::Session(_), None) | (Scope::Session(Some(_)), Some(_)) => {
                Err(StoreError::WrongSession)
            }
            (Scope::Stateless | Scope::Session(None), Some(_)) => Err(StoreError::UnknownSession),
        }
    }

    /// The events after `last_event_id` with the ids they were sent with,
    /// for a caller without an MCP session: only a stateless stream's.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Store`] for a malformed, forged, evicted or future id,
    /// and with [`StoreError::WrongSession`] for an id of an MCP session's
    /// stream; never a partial replay.
    pub fn replay(&self, last_event_id: &str) -> Result<Vec<ServerSseMessage>, AdapterError> {
        let id = EventId::parse(last_event_id)?;
        self.permit(&id, None)?;
        self.replay_permitted(&id)
    }

    /// As [`replay`](Self::replay), on behalf of MCP session `owner`: only
    /// the streams of that session.
    ///
    /// # Errors
    ///
    /// As [`replay`](Self::replay); [`StoreError::WrongSession`] for an id of
    /// another session's stream, [`StoreError::UnknownSession`] for one of a
    /// stream with no owner.
    pub fn replay_as(
        &self,
        owner: &McpSessionId,
        last_event_id: &str,
    ) -> Result<Vec<ServerSseMessage>, AdapterError> {
        let id = EventId::parse(last_event_id)?;
        self.permit(&id, Some(owner))?;
        self.replay_permitted(&id)
    }

    fn replay_permitted(&self, id: &EventId) -> Result<Vec<ServerSseMessage>, AdapterError> {
        let events = self.store.replay(id)?;
        events
            .into_iter()
            .map(|StoredEvent { index, data }| {
                let mut msg = decode(&data)?;
                msg.event_id = Some(
                    self.store
                        .event_id(id.session, id.stream, index)
                        .to_string(),
                );
                Ok(msg)
            })
            .collect()
    }

    /// The resumed stream after `id`, which the caller was permitted: it
    /// follows a request's stream to the call's response, a standalone
    /// stream for as long as it lasts.
    ///
    /// # Errors
    ///
    /// What a replay from `id` fails with now (unknown, evicted or future
    /// position): a resume that cannot work is refused at once.
    fn follow_permitted(&self, id: EventId, permit: Permit) -> Result<EventStream, AdapterError> {
        self.store.after(id.session, id.stream, id.index)?;
        Ok(follow(
            self.store.clone(),
            permit.wake,
            id,
            !permit.standalone,
        ))
    }

    /// Binds the store session of `event_id` to MCP session `owner` unless
    /// it has an owner already; returns whether `owner` owns it now.
    fn bind(&self, event_id: &str, owner: &McpSessionId) -> bool {
        let Ok(id) = EventId::parse(event_id) else {
            return false;
        };
        let mut bindings = self.bindings.lock();
        let Some(b) = bindings
            .get_mut(&id.session.key())
            .filter(|b| b.session == id.session)
        else {
            return false;
        };
        match &b.scope {
            Scope::Session(Some(o)) => o == owner,
            Scope::Session(None) | Scope::Stateless => {
                b.scope = Scope::Session(Some(owner.clone()));
                drop(bindings);
                self.owned
                    .lock()
                    .entry(owner.clone())
                    .or_default()
                    .push(id.session);
                true
            }
        }
    }

    /// Whether `event_id` belongs to a stream of MCP session `owner`.
    #[cfg(test)]
    fn owns(&self, event_id: &str, owner: &McpSessionId) -> Result<(), StoreError> {
        let id = EventId::parse(event_id)?;
        self.permit(&id, Some(owner)).map(|_| ())
    }

    /// Frees every stream of a finished MCP session.
    pub fn close_mcp_session(&self, owner: &McpSessionId) {
        let Some(sessions) = self.owned.lock().remove(owner) else {
            return;
        };
        for s in sessions {
            self.store.session_closed(s);
            self.forget(s.key());
        }
    }

    fn forget(&self, key: u64) {
        let binding = self.bindings.lock().remove(&key);
        if let Some(b) = binding {
            let mut map = self.stream_shard(&b.stream).lock();
            if map.get(&b.stream).is_some_and(|e| e.session.key() == key) {
                map.remove(&b.stream);
            }
            drop(map);
            // Followers of the stream find the session gone and end.
            b.wake.notify_waiters();
        }
    }

    /// Reclaims idle sessions in the store (as [`Store::reclaim_idle`]) and
    /// drops the adapter's entries for every store session that is gone.
    /// Returns how many store sessions the store freed.
    pub fn reclaim_idle(&self, now: Duration) -> usize {
        let freed = self.store.reclaim_idle(now);
        let gone: HashSet<u64> = self
            .bindings
            .lock()
            .iter()
            .filter(|(_, b)| !self.store.is_open(b.session))
            .map(|(k, _)| *k)
            .collect();
        if gone.is_empty() {
            return freed;
        }
        for key in &gone {
            self.forget(*key);
        }
        self.owned.lock().retain(|_, v| {
            v.retain(|s| !gone.contains(&s.key()));
            !v.is_empty()
        });
        freed
    }

    /// Spawns a tokio task calling [`reclaim_idle`](Self::reclaim_idle)
    /// every `every`; it ends when the adapter is dropped.
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime.
    pub fn spawn_reclaimer(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        crate::spawn_periodic(Arc::downgrade(self), every, |this: &Self| {
            this.reclaim_idle(this.store.now());
        })
    }
}

/// `[flags][retry ms, 8 bytes LE if HAS_RETRY][JSON if HAS_MESSAGE]`.
fn encode(event: &ServerSseMessage) -> Result<Bytes, AdapterError> {
    let mut out = BytesMut::with_capacity(128);
    let flags = u8::from(event.retry.is_some()) * HAS_RETRY
        + u8::from(event.message.is_some()) * HAS_MESSAGE;
    out.put_u8(flags);
    if let Some(retry) = event.retry {
        out.put_u64_le(u64::try_from(retry.as_millis()).unwrap_or(u64::MAX));
    }
    if let Some(message) = &event.message {
        serde_json::to_writer((&mut out).writer(), message.as_ref())
            .map_err(AdapterError::Codec)?;
    }
    Ok(out.freeze())
}

fn decode(data: &[u8]) -> Result<ServerSseMessage, AdapterError> {
    let corrupt = || AdapterError::Store(StoreError::MalformedId);
    let (&flags, mut rest) = data.split_first().ok_or_else(corrupt)?;
    let retry = if flags & HAS_RETRY != 0 {
        let (ms, tail) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        rest = tail;
        Some(Duration::from_millis(u64::from_le_bytes(*ms)))
    } else {
        None
    };
    let mut msg = match retry {
        Some(retry) => ServerSseMessage::retry(retry),
        None => ServerSseMessage::default(),
    };
    if flags & HAS_MESSAGE != 0 {
        let m: ServerJsonRpcMessage = serde_json::from_slice(rest).map_err(AdapterError::Codec)?;
        msg.message = Some(Arc::new(m));
    }
    Ok(msg)
}

/// The store as `rmcp` uses it outside a session: its stateless streams and
/// its session-less `GET` resume (protocol `2026-07-28` and later).
#[async_trait::async_trait]
impl EventStore for McpEventStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<RmcpEventId, EventStoreError> {
        Ok(self.append(stream_id, event)?.to_string())
    }

    /// Refuses an id of an MCP session's stream: this call carries no
    /// session (see the [module docs](self)). A stateless stream's resume
    /// stays open until its call is answered.
    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let id = EventId::parse(last_event_id).map_err(AdapterError::Store)?;
        let permit = self.permit(&id, None).map_err(AdapterError::Store)?;
        Ok(self.follow_permitted(id, permit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(n: u32) -> ServerSseMessage {
        let json = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":"p","progress":{n}}}}}"#
        );
        let message: ServerJsonRpcMessage = serde_json::from_str(&json).expect("valid message");
        ServerSseMessage::from_message(message)
    }

    fn json(m: &ServerSseMessage) -> Option<serde_json::Value> {
        m.message
            .as_ref()
            .map(|m| serde_json::to_value(m.as_ref()).expect("serialisable"))
    }

    fn adapter() -> McpEventStore {
        McpEventStore::new(Arc::new(Store::new(1 << 20)))
    }

    #[test]
    fn messages_round_trip_with_their_ids() {
        let events = adapter();
        let priming = events
            .append(
                "s1:common",
                &ServerSseMessage::retry(Duration::from_secs(3)),
            )
            .expect("stored");
        let ids: Vec<EventId> = (1..=3)
            .map(|n| events.append("s1:common", &progress(n)).expect("stored"))
            .collect();
        assert_eq!(ids[0].index, priming.index + 1);
        let s1: McpSessionId = "s1".into();
        let replay = events
            .replay_as(&s1, &priming.to_string())
            .expect("replayable");
        assert_eq!(replay.len(), 3);
        for (got, (id, n)) in replay.iter().zip(ids.iter().zip(1..)) {
            assert_eq!(got.event_id.as_deref(), Some(id.to_string().as_str()));
            assert_eq!(json(got), json(&progress(n)));
            assert_eq!(got.retry, None);
        }
        let first = events
            .replay_as(
                &s1,
                &events
                    .store
                    .event_id(priming.session, priming.stream, 0)
                    .to_string(),
            )
            .expect("from the start");
        assert_eq!(first[0].retry, Some(Duration::from_secs(3)));
        assert!(first[0].message.is_none());
    }

    #[test]
    fn streams_are_separate_and_ids_scoped_by_binding() {
        let events = adapter();
        let common = events.append("a:common", &progress(1)).expect("stored");
        let request = events.append("uuid-1", &progress(2)).expect("stored");
        assert_ne!(common.session, request.session, "one store session each");
        let (a, b): (McpSessionId, McpSessionId) = ("a".into(), "b".into());
        // The standalone stream names its session; a request stream is bound
        // when its first event goes out.
        assert_eq!(events.owns(&common.to_string(), &a), Ok(()));
        assert_eq!(
            events.owns(&request.to_string(), &a),
            Err(StoreError::UnknownSession)
        );
        assert!(events.bind(&request.to_string(), &a));
        assert!(!events.bind(&request.to_string(), &b), "first binding wins");
        assert_eq!(events.owns(&request.to_string(), &a), Ok(()));
        assert_eq!(
            events.owns(&request.to_string(), &b),
            Err(StoreError::WrongSession)
        );
        assert_eq!(
            events.owns("garbage", &a).err(),
            Some(StoreError::MalformedId)
        );

        events.close_mcp_session(&a);
        assert!(events.replay_as(&a, &common.to_string()).is_err());
        assert!(events.replay_as(&a, &request.to_string()).is_err());
        assert_eq!(events.store.used_bytes(), 0);
        // A new event on a closed stream id starts a fresh store session.
        let again = events.append("uuid-1", &progress(3)).expect("stored");
        assert_ne!(again.session, request.session);
    }

    #[test]
    fn reclaiming_idle_sessions_prunes_the_maps() {
        let clock = Arc::new(crate::ManualClock::default());
        let store = Store::with_config(
            crate::Config::new(1 << 20)
                .idle_ttl(Duration::from_secs(10))
                .clock(clock.clone()),
        );
        let events = McpEventStore::new(Arc::new(store));
        let id = events.append("x:common", &progress(1)).expect("stored");
        assert_eq!(events.reclaim_idle(events.store.now()), 0);
        clock.advance(Duration::from_secs(11));
        assert_eq!(events.reclaim_idle(events.store.now()), 1);
        assert!(events.bindings.lock().is_empty());
        assert!(events.owned.lock().is_empty());
        assert!(events.streams.iter().all(|m| m.lock().is_empty()));
        assert!(events.replay_as(&"x".into(), &id.to_string()).is_err());
    }

    fn response(id: u32) -> ServerSseMessage {
        let json = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
        let message: ServerJsonRpcMessage = serde_json::from_str(&json).expect("valid message");
        ServerSseMessage::from_message(message)
    }

    #[test]
    fn a_replay_without_a_session_gets_only_stateless_streams() {
        let events = adapter();
        let owner: McpSessionId = "a".into();
        let common = events.append("a:common", &progress(1)).expect("stored");
        // A request stream of a session, as `ScopedSessionManager` stores
        // it: refused before its owner is known, and after.
        let request = events
            .append_scoped("uuid-1", &progress(1), true)
            .expect("stored");
        events
            .append_scoped("uuid-1", &progress(2), true)
            .expect("stored");
        let stateless = events.append("uuid-2", &progress(1)).expect("stored");
        events.append("uuid-2", &progress(2)).expect("stored");
        let refused = |id: &EventId| match events.replay(&id.to_string()) {
            Err(AdapterError::Store(e)) => e,
            other => panic!("{id} replayed without a session: {other:?}"),
        };
        assert_eq!(refused(&common), StoreError::WrongSession);
        assert_eq!(refused(&request), StoreError::WrongSession);
        assert!(events.bind(&request.to_string(), &owner));
        assert_eq!(refused(&request), StoreError::WrongSession);
        assert_eq!(
            events
                .replay_as(&owner, &request.to_string())
                .expect("owner")
                .len(),
            1
        );
        assert_eq!(
            events
                .replay(&stateless.to_string())
                .expect("stateless")
                .len(),
            1
        );
        assert!(events.replay_as(&owner, &stateless.to_string()).is_err());
    }

    #[tokio::test]
    async fn a_resume_follows_the_stream_until_the_response() {
        use futures_util::StreamExt;
        let events = Arc::new(adapter());
        let first = events.append("uuid-3", &progress(1)).expect("stored");
        let mut resumed = events
            .replay_events_after(&first.to_string())
            .await
            .expect("stateless stream");
        let writer = {
            let events = events.clone();
            tokio::spawn(async move {
                for n in 2..=4 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    events.append("uuid-3", &progress(n)).expect("stored");
                }
                events.append("uuid-3", &response(7)).expect("stored");
                // Not delivered: the resume ended with the response.
                events.append("uuid-3", &progress(5)).expect("stored");
            })
        };
        let mut got = Vec::new();
        while let Some(msg) = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .expect("the resume moves on")
        {
            got.push(json(&msg).expect("a message"));
        }
        writer.await.expect("writer");
        let progress: Vec<_> = got
            .iter()
            .filter_map(|v| v["params"]["progress"].as_f64())
            .collect();
        assert_eq!(progress, [2.0, 3.0, 4.0]);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[3]["id"], 7);
    }

    #[tokio::test]
    async fn a_resume_ends_when_its_session_goes() {
        use futures_util::StreamExt;
        let events = Arc::new(adapter());
        let owner: McpSessionId = "b".into();
        let request = events
            .append_scoped("uuid-4", &progress(1), true)
            .expect("stored");
        assert!(events.bind(&request.to_string(), &owner));
        let permit = events.permit(&request, Some(&owner)).expect("owner");
        let mut resumed = events.follow_permitted(request, permit).expect("follows");
        let closer = {
            let events = events.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                events.close_mcp_session(&owner);
            })
        };
        let end = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .expect("the resume ends");
        assert!(end.is_none());
        closer.await.expect("closer");
    }
}
