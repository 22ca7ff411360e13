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
//! `: end <reason>` comment; a client that reconnects from a position that
//! is gone gets 410. Each connection logs one line when it opens and one when
//! it closes, with the reason — never a line per event.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::auth;
use super::error::ApiError;
use super::query::{parse_events_query, query_token};
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
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &state.cluster {
        let (parts, _body) = request.into_parts();
        return match open_cluster(&state, cluster, &parts).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(
                    status = error.status.as_u16(),
                    code = error.code,
                    "subscribe refused"
                );
                error.into_response()
            }
        };
    }
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
    let headers = request.headers();
    if let Some(token) = &state.subscriber_token {
        let from_query = query_token(request.uri().query());
        auth::check_subscriber(token, headers, from_query.as_deref())?;
    }
    let query = parse_events_query(request.uri().query(), headers, hub.config().max_types)?;
    let resume = describe(&query.options.resume);
    let types = query.options.types.join(",");
    let subscription = hub.subscribe(query.options)?;
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
        "stream opened"
    );
    let body = Body::from_stream(EventBody {
        opening: Some(Bytes::from_static(OPENING)),
        stream: subscription.into_stream(),
        connection,
        opened: Instant::now(),
        chunks: 0,
    });
    let mut response = (StatusCode::OK, body).into_response();
    set_stream_headers(response.headers_mut());
    Ok(response)
}

/// `GET /events` in cluster mode: the resume point is decided against the
/// cluster's source (see [`crate::cluster::stream`]).
#[cfg(feature = "cluster")]
async fn open_cluster(
    state: &AppState,
    cluster: &crate::cluster::Cluster,
    request: &axum::http::request::Parts,
) -> Result<Response, ApiError> {
    let headers = &request.headers;
    if let Some(token) = &state.subscriber_token {
        let from_query = query_token(request.uri.query());
        auth::check_subscriber(token, headers, from_query.as_deref())?;
    }
    let query = parse_events_query(request.uri.query(), headers, state.hub.config().max_types)?;
    let resume = describe(&query.options.resume);
    let types = query.options.types.join(",");
    let stream = cluster.subscribe(query.options).await?;
    let connection = next_connection_number();
    tracing::info!(connection, types = %types, resume = %resume, "cluster stream opened");
    let body = Body::from_stream(ClusterBody {
        opening: Some(Bytes::from_static(OPENING)),
        stream,
        connection,
        opened: Instant::now(),
    });
    let mut response = (StatusCode::OK, body).into_response();
    set_stream_headers(response.headers_mut());
    Ok(response)
}

/// The cluster-mode response body: the opening comment, then the stream.
#[cfg(feature = "cluster")]
struct ClusterBody {
    opening: Option<Bytes>,
    stream: crate::cluster::ClusterStream,
    connection: u64,
    opened: Instant,
}

#[cfg(feature = "cluster")]
impl futures_core::Stream for ClusterBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(opening) = self.opening.take() {
            return Poll::Ready(Some(Ok(opening)));
        }
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

#[cfg(feature = "cluster")]
impl Drop for ClusterBody {
    fn drop(&mut self) {
        let reason = self
            .stream
            .end_reason()
            .map_or("client_closed", |reason| reason.as_str());
        tracing::info!(
            connection = self.connection,
            reason,
            duration_ms = self.opened.elapsed().as_millis() as u64,
            "stream closed"
        );
    }
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

/// The response body: the opening comment, then the subscription's stream.
/// Logs the connection's close, with its reason, when hyper drops it.
struct EventBody {
    opening: Option<Bytes>,
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
        let item = Pin::new(&mut self.stream).poll_next(cx);
        if let Poll::Ready(Some(_)) = item {
            self.chunks += 1;
        }
        item
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        let reason = self
            .stream
            .end_reason()
            .map_or("client_closed", |reason| reason.as_str());
        tracing::info!(
            connection = self.connection,
            reason,
            chunks = self.chunks,
            duration_ms = self.opened.elapsed().as_millis() as u64,
            "stream closed"
        );
    }
}
