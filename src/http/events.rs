//! `GET /events`: one subscription streamed as a `text/event-stream` body.
//!
//! The body is the subscription's own byte stream ([`crate::SseStream`]): each
//! item is a batch of frames the hub encoded once at publish, handed to hyper
//! as one chunk (one socket write), so the HTTP layer never re-encodes or
//! splits frames. In front of it goes one `: ok` comment, so hyper writes the
//! status and headers at once even when nothing is published (a client sees
//! the connection open without waiting for the first event or keep-alive).
//!
//! The stream ends by itself on reset, shutdown or lag with a final
//! `: end <reason>` comment (and at a signed token's expiry with
//! `: end token_expired`); a client that reconnects from a position that
//! is gone gets 410. Each connection logs one line when it opens and one when
//! it closes, with the reason — never a line per event.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::access::admit;
use super::error::ApiError;
use super::AppState;
use crate::{Resume, SseStream};

/// The first chunk of every stream: flushes the headers.
const OPENING: &[u8] = b": ok\n\n";

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// A process-wide number for a new stream's log lines.
pub(crate) fn next_connection_number() -> u64 {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1
}

/// `GET /events`.
pub(crate) async fn subscribe(State(state): State<AppState>, request: Request) -> Response {
    match open(&state, &request) {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(
                status = error.status.as_u16(),
                code = error.code,
                "subscribe refused"
            );
            error.into_response()
        }
    }
}

fn open(state: &AppState, request: &Request) -> Result<Response, ApiError> {
    let hub = &state.hub;
    let admission = admit(
        state.subscriber_token.as_deref(),
        state.jwt.as_deref(),
        request.headers(),
        request.uri().query(),
        hub.config().max_types,
    )?;
    let resume = describe(&admission.options.resume);
    let types = admission.options.types.join(",");
    let (expires, subject) = (admission.expires(), admission.subject().to_owned());
    let subscription = hub.subscribe(admission.options)?;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let connection = next_connection_number();
    tracing::info!(
        connection,
        peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
        generation = subscription.generation(),
        types = %types,
        resume = %resume,
        sub = %subject,
        "stream opened"
    );
    let body = Body::from_stream(EventBody {
        opening: Some(Bytes::from_static(OPENING)),
        expiry: expires.map(|at| Box::pin(tokio::time::sleep_until(deadline(at)))),
        expired: false,
        stream: subscription.into_stream(),
        connection,
        opened: Instant::now(),
        chunks: 0,
    });
    let mut response = (StatusCode::OK, body).into_response();
    set_stream_headers(response.headers_mut());
    Ok(response)
}

/// The headers of every `text/event-stream` response: the type, no caching,
/// and no buffering by a proxy in front (nginx honours `X-Accel-Buffering`).
pub(crate) fn set_stream_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// How a resume point reads in the "stream opened" log line.
pub(crate) fn describe(resume: &Resume) -> String {
    match resume {
        Resume::Live => "live".to_owned(),
        Resume::AfterId(id) => format!("after {id:?}"),
        Resume::FromTimestamp(nanos) => format!("from {nanos}ns"),
    }
}

/// The final comment of a stream whose signed token expired.
pub(crate) const END_TOKEN_EXPIRED: &[u8] = b": end token_expired\n\n";

/// The runtime instant of a wall-clock time (now if past; far ahead of
/// what a timer can hold is clamped to a year).
pub(crate) fn deadline(at: SystemTime) -> tokio::time::Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .min(YEAR);
    tokio::time::Instant::now() + left
}

/// The response body: the opening comment, then the subscription's stream,
/// cut with `: end token_expired` when a signed token's `exp` passes.
/// Logs the connection's close, with its reason, when hyper drops it.
struct EventBody {
    opening: Option<Bytes>,
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
    stream: SseStream,
    connection: u64,
    opened: Instant,
    chunks: u64,
}

impl futures_core::Stream for EventBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(opening) = self.opening.take() {
            return Poll::Ready(Some(Ok(opening)));
        }
        if self.expired {
            return Poll::Ready(None);
        }
        if let Some(expiry) = &mut self.expiry {
            if expiry.as_mut().poll(cx).is_ready() {
                self.expired = true;
                return Poll::Ready(Some(Ok(Bytes::from_static(END_TOKEN_EXPIRED))));
            }
        }
        let item = Pin::new(&mut self.stream).poll_next(cx);
        if let Poll::Ready(Some(_)) = item {
            self.chunks += 1;
        }
        item
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        let reason = match self.stream.end_reason() {
            Some(reason) => reason.as_str(),
            None if self.expired => "token_expired",
            None => "client_closed",
        };
        tracing::info!(
            connection = self.connection,
            reason,
            chunks = self.chunks,
            duration_ms = self.opened.elapsed().as_millis() as u64,
            "stream closed"
        );
    }
}
