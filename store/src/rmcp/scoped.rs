//! `rmcp`'s `LocalSessionManager` with every resume scoped to its session
//! (see [`ScopedSessionManager`]).

use std::sync::Arc;

use futures_util::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::session::{
    EventId as RmcpEventId, EventStore, EventStoreError, EventStream, RestoreOutcome,
    ServerSseMessage, SessionId as McpSessionId, SessionManager,
};

use super::{AdapterError, McpEventStore};
use crate::EventId;

/// The handle `LocalSessionManager` stores a session's streams through:
/// every stream it opens is a session stream.
#[derive(Debug)]
struct SessionEvents(Arc<McpEventStore>);

#[async_trait::async_trait]
impl EventStore for SessionEvents {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<RmcpEventId, EventStoreError> {
        Ok(self.0.append_scoped(stream_id, event, true)?.to_string())
    }

    /// Only `LocalSessionManager::resume` calls this, and
    /// [`ScopedSessionManager`] replaces that; it carries no session, so it
    /// gets the session-less answer.
    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        self.0.replay_events_after(last_event_id).await
    }
}

/// `rmcp`'s `LocalSessionManager` with resumption scoped to the session.
///
/// `LocalSessionManager` hands the `Last-Event-ID` of a resume to the event
/// store alone, so an id copied from one MCP session would replay in
/// another. This wraps it:
///
/// - the inner manager stores its streams through a handle that makes every
///   stream it opens a session stream from its first event, so no replay
///   without the owning session can reach it, even before the owner is
///   known;
/// - each stream is bound to the MCP session whose response stream first
///   carries one of its ids, before the client can see that id (and bound
///   again if the store reclaimed it and it continues in a new store
///   session);
/// - `resume` replays only ids bound to the session asking, and follows
///   the stream as events are stored (a request's until its response);
/// - closing the session frees its events.
///
/// See [the adapter docs](crate::rmcp) for scopes and resuming.
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
        let mut inner = LocalSessionManager::default()
            .with_event_store(Arc::new(SessionEvents(events.clone())));
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
        // The store session last bound: a stream the store reclaimed as
        // idle continues in a new one, which is bound in turn.
        let mut bound_key = None;
        stream.map(move |msg| {
            let key = msg
                .event_id
                .as_deref()
                .and_then(|e| EventId::parse(e).ok())
                .map(|e| e.session.key());
            if key.is_some() && key != bound_key {
                if let Some(event_id) = &msg.event_id {
                    if events.bind(event_id, &owner) {
                        bound_key = key;
                    }
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
        let from = EventId::parse(&last_event_id)?;
        let permit = self.events.permit(&from, Some(id))?;
        self.events.follow_permitted(from, permit)
    }

    async fn restore_session(
        &self,
        id: McpSessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        SessionManager::restore_session(&self.inner, id)
            .await
            .map_err(AdapterError::Session)
    }

    /// The store without a session: `rmcp` uses it for its stateless
    /// streams and its session-less `GET` resume, which refuse session
    /// streams.
    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        Some(self.events.clone())
    }
}
