//! A resumed stream that goes on as events are stored.
//!
//! A client that lost an SSE stream resumes with `Last-Event-ID`. Replaying
//! only what is stored at that instant and closing would hand it the first
//! half of a call and leave it to poll for the rest. A [`follow`] stream
//! instead replays what is stored after the id, then waits on the stream's
//! wake-up and replays again whenever something new is appended. A
//! request's stream ends after it has delivered a JSON-RPC response or
//! error (the end of a request's stream); a standalone stream goes on like
//! the live one. Either ends when the store session is gone (closed with
//! its MCP session, or reclaimed as idle) or the events it needs were
//! evicted: the client then has everything the store could give it, and a
//! further resume fails cleanly.
//!
//! Following the store, rather than re-attaching to the session's live
//! channel, leaves no gap when the server has not yet noticed that the old
//! connection is gone (its events then go to the dead connection and to
//! the store, and the follower delivers them from the store).
//!
//! No lost wake-up: each round registers for the wake-up *before* reading
//! the store, so an append that lands after the read wakes it. No duplicate
//! or gap: each round replays strictly after the last index it delivered,
//! and the store never returns a partial replay.

use std::collections::VecDeque;
use std::sync::Arc;

use rmcp::model::JsonRpcMessage;
use rmcp::transport::streamable_http_server::session::{EventStream, ServerSseMessage};
use tokio::sync::Notify;

use super::decode;
use crate::{EventId, Store};

/// Where a follower stands.
struct Follower {
    store: Arc<Store>,
    wake: Arc<Notify>,
    /// The last event delivered (or the client's `Last-Event-ID`).
    last: EventId,
    /// Replayed but not yet delivered.
    pending: VecDeque<ServerSseMessage>,
    /// No more rounds: the response was replayed or the session is gone.
    finished: bool,
    /// Whether a response or error ends the stream (a request's stream).
    ends_at_response: bool,
}

impl Follower {
    /// One round: queues everything stored after `last` (up to a response
    /// that ends the stream), or sets `finished` if there will never be
    /// more. Returns `false` if there was nothing yet: wait for a wake-up.
    fn replay_round(&mut self) -> bool {
        let events = match self
            .store
            .after(self.last.session, self.last.stream, self.last.index)
        {
            Ok(events) => events,
            Err(_) => {
                self.finished = true;
                return true;
            }
        };
        if events.is_empty() {
            return false;
        }
        for event in events {
            let Ok(mut msg) = decode(&event.data) else {
                self.finished = true;
                break;
            };
            self.last.index = event.index;
            msg.event_id = Some(self.last.to_string());
            let answered = self.ends_at_response
                && msg.message.as_deref().is_some_and(|m| {
                    matches!(m, JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_))
                });
            self.pending.push_back(msg);
            if answered {
                self.finished = true;
                break;
            }
        }
        true
    }

    async fn next(mut self) -> Option<(ServerSseMessage, Self)> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Some((msg, self));
            }
            if self.finished {
                return None;
            }
            let wake = self.wake.clone();
            let notified = wake.notified();
            tokio::pin!(notified);
            // Registered before the read: an append after it wakes us.
            notified.as_mut().enable();
            if !self.replay_round() {
                notified.await;
            }
        }
    }
}

/// The events of `after`'s stream after it, as they are stored, until the
/// first response or error if `ends_at_response` (see the
/// [module docs](self)). `wake` must be notified after every append to the
/// stream and when its store session goes away.
pub(super) fn follow(
    store: Arc<Store>,
    wake: Arc<Notify>,
    after: EventId,
    ends_at_response: bool,
) -> EventStream {
    let follower = Follower {
        store,
        wake,
        last: after,
        pending: VecDeque::new(),
        finished: false,
        ends_at_response,
    };
    Box::pin(futures_util::stream::unfold(follower, Follower::next))
}
