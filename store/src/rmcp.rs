//! The store as the `EventStore` of `rmcp`'s streamable-HTTP server.
//!
//! `rmcp` 3.9 (`rmcp::transport::streamable_http_server::session::EventStore`)
//! asks an event store for two things:
//!
//! - `store_event(stream_id, event) -> event id`, called by the session
//!   worker for every SSE event on a stream before it is sent, and
//! - `replay_events_after(last_event_id) -> events`, called with the client's
//!   `Last-Event-ID` on a `GET` resume — *without* the session id: the trait
//!   expects the id alone to locate the stream.
//!
//! [`McpEventStore`] maps each `rmcp` stream (`"<session>:common"` for the
//! standalone `GET` stream, a fresh UUID for each request's `POST` stream)
//! to a [`Store`] session with one stream, so every event id is a store
//! [`EventId`]: it locates the stream in O(1) and carries the session secret,
//! so an id cannot be guessed. Payloads are kept as the JSON the client would
//! receive (plus the `retry` hint), so the byte budget measures real sizes.
//!
//! Because `rmcp`'s `LocalSessionManager` does not pass the session to the
//! store when resuming, an id copied from one MCP session would replay in
//! another. [`ScopedSessionManager`] closes that gap: it wraps
//! `LocalSessionManager`, binds each store session to the MCP session whose
//! response stream first carried one of its ids (before the client can see
//! that id), and refuses to resume an id bound to another session. It also
//! frees a session's events when the client deletes the session. In `rmcp`'s
//! stateless mode (`NeverSessionManager::with_event_store`) there is no
//! session to scope to; the id's 64-bit secret is then the only capability.
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
use futures_util::StreamExt;
use parking_lot::Mutex;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, SessionConfig,
};
use rmcp::transport::streamable_http_server::session::{
    EventId as RmcpEventId, EventStore, EventStoreError, EventStream, RestoreOutcome,
    ServerSseMessage, SessionId as McpSessionId, SessionManager,
};

use crate::{EventId, SessionId, Store, StoreError, StoredEvent, StreamId};

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
    /// The store refused (evicted, unknown session, malformed id, ...).
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

/// What the adapter knows about one store session.
#[derive(Debug)]
struct Binding {
    /// The store session.
    session: SessionId,
    /// The `rmcp` stream id it stores.
    stream: String,
    /// The MCP session allowed to resume it, once known.
    owner: Option<McpSessionId>,
}

/// An `rmcp` [`EventStore`] backed by a [`Store`]. See the
/// [module docs](self).
pub struct McpEventStore {
    store: Arc<Store>,
    /// `rmcp` stream id -> store session, sharded by a hash of the id.
    streams: Box<[Mutex<HashMap<String, SessionId>>]>,
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

    fn stream_shard(&self, stream_id: &str) -> &Mutex<HashMap<String, SessionId>> {
        let h = self.hasher.hash_one(stream_id) as usize;
        &self.streams[h % self.streams.len()]
    }

    /// The store session holding `stream_id`, opened on first use (or again
    /// if the store reclaimed the old one).
    fn session_for(&self, stream_id: &str, stale: Option<SessionId>) -> SessionId {
        let mut map = self.stream_shard(stream_id).lock();
        match map.get(stream_id) {
            Some(&s) if Some(s) != stale => return s,
            _ => {}
        }
        let s = self.store.open();
        // A fresh session always gets stream 0.
        let _ = self.store.open_stream(s);
        map.insert(stream_id.to_owned(), s);
        drop(map);
        // The standalone stream names its MCP session; request streams are
        // bound when their first event leaves through the session manager.
        let owner = stream_id.strip_suffix(":common").map(McpSessionId::from);
        if let Some(owner) = &owner {
            self.owned.lock().entry(owner.clone()).or_default().push(s);
        }
        self.bindings.lock().insert(
            s.key(),
            Binding {
                session: s,
                stream: stream_id.to_owned(),
                owner,
            },
        );
        s
    }

    /// Stores one event of `rmcp` stream `stream_id`; returns its id.
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
        let data = encode(event)?;
        let mut session = self.session_for(stream_id, None);
        let index = match self.store.append(session, STREAM, data.clone()) {
            Err(StoreError::UnknownSession) => {
                // Reclaimed as idle meanwhile: the old ids stay invalid and
                // the stream continues in a new store session.
                session = self.session_for(stream_id, Some(session));
                self.store.append(session, STREAM, data)?
            }
            other => other?,
        };
        Ok(self.store.event_id(session, STREAM, index))
    }

    /// The events after `last_event_id`, with the ids they were sent with.
    ///
    /// # Errors
    ///
    /// [`AdapterError::Store`] for a malformed, forged, evicted or future id;
    /// never a partial replay.
    pub fn replay(&self, last_event_id: &str) -> Result<Vec<ServerSseMessage>, AdapterError> {
        let id = EventId::parse(last_event_id)?;
        let events = self.store.replay(&id)?;
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

    /// Binds the store session of `event_id` to MCP session `owner` unless
    /// it is bound already; returns whether `owner` owns it now.
    fn bind(&self, event_id: &str, owner: &McpSessionId) -> bool {
        let Ok(id) = EventId::parse(event_id) else {
            return false;
        };
        let mut bindings = self.bindings.lock();
        let Some(b) = bindings.get_mut(&id.session.key()) else {
            return false;
        };
        match &b.owner {
            Some(o) => o == owner,
            None => {
                b.owner = Some(owner.clone());
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
    fn owns(&self, event_id: &str, owner: &McpSessionId) -> Result<(), StoreError> {
        let id = EventId::parse(event_id)?;
        let bindings = self.bindings.lock();
        match bindings
            .get(&id.session.key())
            .and_then(|b| b.owner.as_ref())
        {
            Some(o) if o == owner => Ok(()),
            Some(_) => Err(StoreError::WrongSession),
            None => Err(StoreError::UnknownSession),
        }
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
            if map.get(&b.stream).is_some_and(|s| s.key() == key) {
                map.remove(&b.stream);
            }
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

#[async_trait::async_trait]
impl EventStore for McpEventStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<RmcpEventId, EventStoreError> {
        Ok(self.append(stream_id, event)?.to_string())
    }

    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let events = self.replay(last_event_id)?;
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}

/// `rmcp`'s `LocalSessionManager` with resumption scoped to the session.
/// See the [module docs](self).
#[derive(Debug)]
pub struct ScopedSessionManager {
    inner: LocalSessionManager,
    events: Arc<McpEventStore>,
}

impl ScopedSessionManager {
    /// A session manager storing every SSE event in `events`.
    pub fn new(events: Arc<McpEventStore>) -> Self {
        Self::with_config(events, SessionConfig::default())
    }

    /// As [`new`](Self::new), with `rmcp`'s per-session settings.
    pub fn with_config(events: Arc<McpEventStore>, config: SessionConfig) -> Self {
        let mut inner = LocalSessionManager::default().with_event_store(events.clone());
        inner.session_config = config;
        Self { inner, events }
    }

    /// The event store.
    pub fn events(&self) -> &Arc<McpEventStore> {
        &self.events
    }

    /// Binds the stream's ids to `id` as its events go out.
    fn bound(
        &self,
        id: &McpSessionId,
        stream: impl futures_core::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
    ) -> impl futures_core::Stream<Item = ServerSseMessage> + Send + Sync + 'static {
        let events = self.events.clone();
        let owner = id.clone();
        let mut bound = false;
        stream.map(move |msg| {
            if !bound {
                if let Some(event_id) = &msg.event_id {
                    bound = events.bind(event_id, &owner);
                }
            }
            msg
        })
    }
}

impl SessionManager for ScopedSessionManager {
    type Error = AdapterError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(McpSessionId, Self::Transport), Self::Error> {
        SessionManager::create_session(&self.inner)
            .await
            .map_err(AdapterError::Session)
    }

    async fn initialize_session(
        &self,
        id: &McpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        SessionManager::initialize_session(&self.inner, id, message)
            .await
            .map_err(AdapterError::Session)
    }

    async fn has_session(&self, id: &McpSessionId) -> Result<bool, Self::Error> {
        SessionManager::has_session(&self.inner, id)
            .await
            .map_err(AdapterError::Session)
    }

    async fn close_session(&self, id: &McpSessionId) -> Result<(), Self::Error> {
        let closed = SessionManager::close_session(&self.inner, id).await;
        self.events.close_mcp_session(id);
        closed.map_err(AdapterError::Session)
    }

    async fn create_stream(
        &self,
        id: &McpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<
        impl futures_core::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        Self::Error,
    > {
        let stream = SessionManager::create_stream(&self.inner, id, message)
            .await
            .map_err(AdapterError::Session)?;
        Ok(self.bound(id, stream))
    }

    async fn accept_message(
        &self,
        id: &McpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        SessionManager::accept_message(&self.inner, id, message)
            .await
            .map_err(AdapterError::Session)
    }

    async fn create_standalone_stream(
        &self,
        id: &McpSessionId,
    ) -> Result<
        impl futures_core::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        Self::Error,
    > {
        let stream = SessionManager::create_standalone_stream(&self.inner, id)
            .await
            .map_err(AdapterError::Session)?;
        Ok(self.bound(id, stream))
    }

    async fn resume(
        &self,
        id: &McpSessionId,
        last_event_id: String,
    ) -> Result<
        impl futures_core::Stream<Item = ServerSseMessage> + Send + Sync + 'static,
        Self::Error,
    > {
        self.events.owns(&last_event_id, id)?;
        let events = self.events.replay(&last_event_id)?;
        Ok(futures_util::stream::iter(events))
    }

    async fn restore_session(
        &self,
        id: McpSessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        SessionManager::restore_session(&self.inner, id)
            .await
            .map_err(AdapterError::Session)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        Some(self.events.clone())
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
        let replay = events.replay(&priming.to_string()).expect("replayable");
        assert_eq!(replay.len(), 3);
        for (got, (id, n)) in replay.iter().zip(ids.iter().zip(1..)) {
            assert_eq!(got.event_id.as_deref(), Some(id.to_string().as_str()));
            assert_eq!(json(got), json(&progress(n)));
            assert_eq!(got.retry, None);
        }
        let first = events
            .replay(
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
        assert!(events.replay(&common.to_string()).is_err());
        assert!(events.replay(&request.to_string()).is_err());
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
        assert!(events.replay(&id.to_string()).is_err());
    }
}
