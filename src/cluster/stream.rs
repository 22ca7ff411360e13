//! Opening a stream on a cluster node: the resume point is decided against
//! the source, older events are replayed from it, and the stream then joins
//! the node's ring at the exact next sequence.
//!
//! # Resolving (DESIGN.md §3 rules, with the source as the judge)
//!
//! - Live (or an empty id): the node's ring from its head.
//! - An auto id `<token>-<N>`: another token than the source's current one
//!   is 410. Otherwise the stream starts after event `N`, or after the
//!   source's last event when `N` is newer (live). 410 when event `N + 1` is
//!   no longer retained by the source.
//! - A caller id: the source's newest retained event with it (410 if none).
//! - A timestamp `T`: 410 if the source trimmed an event stamped at or after
//!   `T`; else from the first retained event at or after `T`.
//!
//! # Joining
//!
//! With the start decided (the stream delivers events numbered after
//! `cursor`), the stream joins the ring as soon as the ring retains
//! sequence `cursor` (= event `cursor + 1`) of the same generation — or has
//! not reached it yet; [`Hub::subscribe_at`](crate::Hub::subscribe_at)
//! then waits for the tail. Until then it reads the source in pages
//! ([`PAGE`] events) and delivers them, filtered like the ring would, moving
//! `cursor` past each page. Events come from one numbering, so the replayed
//! part and the ring part meet with no gap and no duplicate. If the source
//! trimmed events while the stream was replaying, it ends as `lagged`
//! (reconnecting then gets 410); if the generation changed, as `reset`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::node::{head, ClusterError, Inner};
use super::{BoxFuture, Lookup, SourceEvent};
use crate::{EndReason, GoneReason, Resume, SseStream, SubscribeError, SubscribeOptions, TypeTag};

/// Events read from the source per page while replaying.
pub const PAGE: usize = 256;
/// How long a replaying stream waits for the node's tail to adopt the
/// source's generation before it ends (`reset`).
const ADOPT_WAIT: Duration = Duration::from_secs(2);

type Step = Result<Phase, EndReason>;

enum Phase {
    /// Replayed bytes (possibly empty) and where to continue.
    Replayed(Bytes, Replay),
    /// Joined the ring.
    Live(SseStream),
}

/// What a replaying stream needs to go on.
struct Replay {
    inner: Arc<Inner>,
    token: u64,
    /// The stream delivers events numbered after this.
    cursor: u64,
    types: Vec<String>,
    tags: Vec<TypeTag>,
    waited: Duration,
}

enum State {
    Replaying(BoxFuture<'static, Step>),
    Live(SseStream),
    Ending(EndReason),
    Done,
}

/// The byte stream of a cluster subscription: replayed frames, then the
/// node's own subscription; ends with a `: end <reason>` comment as
/// [`SseStream`] does.
pub struct ClusterStream {
    state: State,
    ended: Option<EndReason>,
}

impl std::fmt::Debug for ClusterStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ClusterStream {
    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        match &self.state {
            State::Live(stream) => stream.end_reason(),
            _ => self.ended,
        }
    }

    /// The generation number of the node's subscription, once joined.
    pub fn generation(&self) -> Option<u64> {
        match &self.state {
            State::Live(stream) => Some(stream.subscription().generation()),
            _ => None,
        }
    }
}

impl futures_core::Stream for ClusterStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut self.state {
                State::Live(stream) => return Pin::new(stream).poll_next(cx),
                State::Done => return Poll::Ready(None),
                State::Ending(reason) => {
                    let reason = *reason;
                    self.ended = Some(reason);
                    self.state = State::Done;
                    let last = format!(": end {}\n\n", reason.as_str());
                    return Poll::Ready(Some(Ok(Bytes::from(last))));
                }
                State::Replaying(step) => match std::task::ready!(step.as_mut().poll(cx)) {
                    Ok(Phase::Live(stream)) => self.state = State::Live(stream),
                    Ok(Phase::Replayed(bytes, replay)) => {
                        self.state = State::Replaying(Box::pin(replay.step()));
                        if !bytes.is_empty() {
                            return Poll::Ready(Some(Ok(bytes)));
                        }
                    }
                    Err(reason) => self.state = State::Ending(reason),
                },
            }
        }
    }
}

/// Resolves `options` against the source and opens the stream.
pub(crate) async fn open(
    inner: Arc<Inner>,
    options: SubscribeOptions,
) -> Result<ClusterStream, ClusterError> {
    let hub = inner.hub.clone();
    let gone = |reason| ClusterError::Subscribe(SubscribeError::Gone(reason));
    let (token, cursor) = match &options.resume {
        Resume::Live => return live(&inner, options),
        Resume::AfterId(id) if id.is_empty() => return live(&inner, options),
        Resume::AfterId(id) => match crate::id::parse_auto_id(id) {
            Some((token, number)) => {
                let head = head(&inner, Lookup::Nothing).await?;
                if token != head.token {
                    return Err(gone(GoneReason::OtherGeneration));
                }
                let cursor = number.min(head.last);
                if cursor + 1 < head.oldest {
                    return Err(gone(GoneReason::Overwritten {
                        missed: head.oldest - cursor - 1,
                    }));
                }
                (head.token, cursor)
            }
            None => {
                let head = head(&inner, Lookup::CallerId(id.clone())).await?;
                let number = head.found.ok_or_else(|| gone(GoneReason::UnknownId))?;
                (head.token, number)
            }
        },
        Resume::FromTimestamp(at) => {
            let head = head(&inner, Lookup::Timestamp(*at)).await?;
            if head.evicted_timestamp.is_some_and(|evicted| evicted >= *at) {
                return Err(gone(GoneReason::TimestampOverwritten));
            }
            let first = head.found.unwrap_or(head.last + 1);
            (head.token, first.saturating_sub(1))
        }
    };
    // Validate the filter (400 for bad types) before anything is streamed.
    let tags = tags_of(&options.types, hub.config().max_types)?;
    let replay = Replay {
        inner,
        token,
        cursor,
        types: options.types,
        tags,
        waited: Duration::ZERO,
    };
    // The first step runs now, so an immediate join (the common case)
    // costs no extra poll and a refused subscription is an error, not a
    // stream that ends at once.
    match replay.try_join() {
        Some(Ok(stream)) => Ok(ClusterStream {
            state: State::Live(stream),
            ended: None,
        }),
        Some(Err(SubscribeError::Gone(_))) | None => Ok(ClusterStream {
            state: State::Replaying(Box::pin(replay.step())),
            ended: None,
        }),
        Some(Err(error)) => Err(ClusterError::Subscribe(error)),
    }
}

fn live(inner: &Inner, options: SubscribeOptions) -> Result<ClusterStream, ClusterError> {
    let subscription = inner
        .hub
        .subscribe(options)
        .map_err(ClusterError::Subscribe)?;
    Ok(ClusterStream {
        state: State::Live(subscription.into_stream()),
        ended: None,
    })
}

fn tags_of(types: &[String], max_types: usize) -> Result<Vec<TypeTag>, ClusterError> {
    let mut tags = Vec::new();
    for event_type in types.iter().filter(|t| !t.is_empty()) {
        crate::frame::validate_type(event_type)
            .map_err(|_| ClusterError::Subscribe(SubscribeError::InvalidType))?;
        let tag = TypeTag::of(event_type);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > max_types {
        return Err(ClusterError::Subscribe(SubscribeError::TooManyTypes {
            requested: tags.len(),
            limit: max_types,
        }));
    }
    Ok(tags)
}

impl Replay {
    /// Joins the ring if it holds (or will hold) sequence `cursor` of the
    /// same generation; `None` while the ring has another generation.
    fn try_join(&self) -> Option<Result<SseStream, SubscribeError>> {
        let hub = &self.inner.hub;
        let generation = hub.generation();
        if generation.token() != self.token {
            return None;
        }
        Some(
            hub.subscribe_at(&self.types, self.token, self.cursor)
                .map(crate::Subscription::into_stream),
        )
    }

    /// One page from the source, or the join.
    async fn step(mut self) -> Step {
        loop {
            match self.try_join() {
                Some(Ok(stream)) => return Ok(Phase::Live(stream)),
                Some(Err(SubscribeError::Gone(_))) | None => {}
                Some(Err(SubscribeError::Shutdown)) => return Err(EndReason::Shutdown),
                Some(Err(_)) => return Err(EndReason::Reset),
            }
            let events = match self.inner.source.range(self.token, self.cursor, PAGE).await {
                Ok(events) => events,
                // The source went away mid-replay: end; the client resumes.
                Err(_) => return Err(EndReason::Reset),
            };
            if let Some(first) = events.first() {
                if first.number != self.cursor + 1 {
                    return Err(EndReason::Lagged {
                        missed: first.number - self.cursor - 1,
                    });
                }
                let bytes = self.encode(&events);
                self.cursor = events.last().map_or(self.cursor, |event| event.number);
                return Ok(Phase::Replayed(bytes, self));
            }
            // Nothing after the cursor in the source: the node's ring has
            // another generation (its tail has not adopted the source's yet),
            // or this generation is gone.
            if self.waited >= ADOPT_WAIT {
                return Err(EndReason::Reset);
            }
            let pause = Duration::from_millis(10);
            tokio::time::sleep(pause).await;
            self.waited += pause;
        }
    }

    /// The frames of `events` that pass the filter, as the ring holds them.
    fn encode(&self, events: &[SourceEvent]) -> Bytes {
        let mut out = BytesMut::new();
        for event in events {
            let tag = TypeTag::of(&event.event_type);
            if !self.tags.is_empty() && !self.tags.contains(&tag) {
                continue;
            }
            out.extend_from_slice(b"id: ");
            match &event.id {
                Some(id) => out.extend_from_slice(id.as_bytes()),
                None => out
                    .extend_from_slice(crate::id::auto_id(self.token, event.number - 1).as_bytes()),
            }
            out.extend_from_slice(b"\n");
            out.extend_from_slice(&event.body);
        }
        out.freeze()
    }
}
