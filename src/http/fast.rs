//! The connection front of `ssehub serve`: successful `GET /events`
//! subscriptions are streamed straight onto the socket; everything else is
//! served by hyper with the axum router.
//!
//! # Why
//!
//! A stream is one response that lives for hours and carries nothing but
//! pre-encoded bytes. Through hyper each connection keeps an 8 KiB read
//! buffer and its connection state, and every batch is wrapped in chunked
//! framing. Here, once the request head is parsed, the stream owns the bare
//! socket (TCP, or TLS when ALPN chose HTTP/1.1): one `write` per batch of
//! frames (the hub's shared `Bytes`, no framing, no copy; over TLS one
//! write and one flush, so a batch leaves in as few records as rustls
//! makes of it), a few hundred bytes of state per idle connection.
//!
//! # How
//!
//! 1. Read the request head (bounded: 8 KiB, 10 s).
//! 2. If it is `GET /events` with no body, and the same checks the router
//!    makes pass (credential, query parameters, the signed token's types —
//!    one shared function, `access::admit` — and `Hub::subscribe`), answer
//!    `200` with a close-delimited `text/event-stream` body (HTTP/1.1 allows a
//!    body delimited by closing the connection; a stream ends that way
//!    anyway) and stream the subscription.
//! 3. Otherwise — another route, an error to report, a cross-origin request
//!    when CORS is configured — hand the connection to hyper, replaying the
//!    bytes already read, so the router answers exactly as it would have
//!    (the JSON error envelope included). Nothing is answered twice.
//!    A client that opens with the HTTP/2 preface (`PRI * HTTP/2.0`, h2c
//!    with prior knowledge) fails to parse as HTTP/1 and goes to hyper the
//!    same way, whose auto builder serves it as HTTP/2; TLS connections that
//!    chose `h2` by ALPN go to hyper directly ([`serve_hyper`]). HTTP/2
//!    streams are the router's `/events` bodies, one h2 stream each.
//!
//! The streamed body is byte for byte what the router's `/events` body is:
//! `: ok` first, then batches, keep-alive comments and a final
//! `: end <reason>` comment.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::access::admit;
use super::auth::Token;
use super::jwt::JwtKey;
use crate::{Delivery, Hub, Subscription, KEEP_ALIVE};

/// Longest request head read before deciding (hyper gets longer ones).
const MAX_HEAD: usize = 8 << 10;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most request headers parsed.
const MAX_HEADERS: usize = 64;

/// Status line, headers and the opening comment, in one write.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
connection: close\r\n\
\r\n\
: ok\n\n";

/// What the fast path needs to open a subscription the way the router does.
#[derive(Debug)]
pub(crate) struct FastEvents {
    pub(crate) hub: Hub,
    pub(crate) subscriber_token: Option<Token>,
    /// Verifies signed subscriber tokens, when configured.
    pub(crate) jwt: Option<JwtKey>,
    /// With CORS configured, requests carrying `Origin` go to the router,
    /// whose CORS layer adds the headers.
    pub(crate) cors: bool,
    /// Most concurrent HTTP/2 streams per connection.
    pub(crate) http2_max_streams: u32,
}

/// Serves one accepted connection (see the module docs): a plain TCP
/// socket, or a TLS stream whose ALPN did not choose `h2`.
pub(crate) async fn serve_connection<S>(
    mut stream: S,
    peer: SocketAddr,
    fast: &FastEvents,
    app: Router,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut head = Vec::with_capacity(1024);
    let complete = matches!(
        tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut head)).await,
        Ok(Ok(true))
    );
    if head.is_empty() {
        return; // closed, timed out or failed before sending anything
    }
    if complete {
        if let Some((subscription, opened)) = try_subscribe(fast, &head) {
            drop(head);
            stream_events(stream, peer, subscription, opened).await;
            return;
        }
    }
    let io = Replay {
        prefix: head,
        read: 0,
        stream,
    };
    // Boxed: hyper's HTTP/1 + HTTP/2 connection state would otherwise sit
    // inline in every connection's task, streams included (~7 KB each).
    Box::pin(serve_hyper(io, peer, fast, app, false)).await;
}

/// Serves a connection with hyper and the router: HTTP/1.1, or HTTP/2 when
/// the client starts with the HTTP/2 preface (h2c with prior knowledge) or
/// when `h2_only` (TLS chose `h2` by ALPN).
pub(crate) async fn serve_hyper<S>(
    io: S,
    peer: SocketAddr,
    fast: &FastEvents,
    app: Router,
    h2_only: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(fast.http2_max_streams);
    if h2_only {
        builder = builder.http2_only();
    }
    let served = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// Reads until the end of the request head; false if it did not arrive
/// whole within [`MAX_HEAD`] bytes.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, head: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let searched_from = head.len().saturating_sub(3);
        if head.len() >= MAX_HEAD || stream.read_buf(head).await? == 0 {
            return Ok(false);
        }
        if head[searched_from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(true);
        }
    }
}

/// What the "stream opened" log line says about a request.
struct Opened {
    types: String,
    resume: String,
    /// The signed token's `sub`, or `-`.
    subject: String,
    /// When the signed token expires: the stream ends then.
    expires: Option<tokio::time::Instant>,
}

/// The subscription for a `GET /events` head that the router would accept,
/// or `None` for anything the router should answer.
fn try_subscribe(fast: &FastEvents, head: &[u8]) -> Option<(Subscription, Opened)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    if request.method != Some("GET") {
        return None;
    }
    let (path, query) = match request.path?.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.path?, None),
    };
    if path != "/events" {
        return None;
    }
    let mut map = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        map.append(name, value);
    }
    let has_body = map.contains_key("transfer-encoding")
        || map
            .get("content-length")
            .is_some_and(|length| length.as_bytes() != b"0");
    if has_body || (fast.cors && map.contains_key("origin")) {
        return None;
    }
    let admission = admit(
        fast.subscriber_token.as_ref(),
        fast.jwt.as_ref(),
        &map,
        query,
        fast.hub.config().max_types,
    )
    .ok()?;
    let opened = Opened {
        types: admission.options.types.join(","),
        resume: super::events::describe(&admission.options.resume),
        subject: admission.subject().to_owned(),
        expires: admission.expires().map(super::events::deadline),
    };
    let subscription = fast.hub.subscribe(admission.options).ok()?;
    Some((subscription, opened))
}

/// Streams `subscription` onto the socket until it ends or the client goes.
async fn stream_events<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    mut subscription: Subscription,
    opened_as: Opened,
) {
    let opened = Instant::now();
    let connection = super::events::next_connection_number();
    tracing::info!(
        connection,
        %peer,
        generation = subscription.generation(),
        types = %opened_as.types,
        resume = %opened_as.resume,
        sub = %opened_as.subject,
        "stream opened"
    );
    let expiry = tokio::time::sleep_until(
        opened_as
            .expires
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(expiry);
    let mut probe = [0u8; 64];
    let mut chunks = 0u64;
    let mut reason = "client_closed";
    let mut pending: Option<bytes::Bytes> = Some(bytes::Bytes::from_static(RESPONSE_HEAD));
    loop {
        if let Some(bytes) = pending.take() {
            // flush: a no-op on TCP; over TLS it pushes the record out.
            let write = async {
                stream.write_all(&bytes).await?;
                stream.flush().await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => chunks += 1,
                Ok(Err(_)) => break,
                Err(_) => {
                    reason = "write_timeout";
                    break;
                }
            }
        }
        tokio::select! {
            delivery = subscription.recv() => match delivery {
                Delivery::Batch(batch) => pending = Some(batch.into_bytes()),
                Delivery::KeepAlive => pending = Some(bytes::Bytes::from_static(KEEP_ALIVE)),
                Delivery::End(end) => {
                    reason = end.as_str();
                    let last = format!(": end {}\n\n", end.as_str());
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(last.as_bytes())).await;
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                    break;
                }
            },
            () = &mut expiry, if opened_as.expires.is_some() => {
                reason = "token_expired";
                let last = super::events::END_TOKEN_EXPIRED;
                let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(last)).await;
                let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
                break;
            }
            read = stream.read(&mut probe) => match read {
                // The client closed (or reset) its side: the stream is over.
                Ok(0) | Err(_) => break,
                // Anything a client sends after its request is ignored.
                Ok(_) => {}
            },
        }
    }
    tracing::info!(
        connection,
        reason,
        chunks,
        duration_ms = opened.elapsed().as_millis() as u64,
        "stream closed"
    );
}

/// A socket whose first reads replay bytes already consumed.
struct Replay<S> {
    prefix: Vec<u8>,
    read: usize,
    stream: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read < self.prefix.len() {
            let rest = &self.prefix[self.read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.read += n;
            if self.read == self.prefix.len() {
                self.prefix = Vec::new();
                self.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
