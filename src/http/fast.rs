//! The connection front of [`serve`](super::serve): successful `GET /events`
//! subscriptions are streamed straight onto the socket; everything else is
//! served by hyper with the axum router.
//!
//! # Why
//!
//! A stream is one response that lives for hours and carries nothing but
//! pre-encoded bytes. Through hyper each connection keeps a read buffer and
//! its connection state, and every batch is wrapped in chunked framing.
//! Here, once the request head is parsed, the stream owns the bare socket
//! (TCP, or TLS when ALPN chose HTTP/1.1): one `write` per batch of frames
//! (the hub's shared `Bytes`, no framing, no copy; over TLS one write and
//! one flush), a few hundred bytes of state per idle connection.
//!
//! # How
//!
//! 1. Read the request head until [`head::classify`] decides: at most
//!    [`MAX_HEAD`] bytes, within the connection's head budget
//!    ([`FrontLimits::head_timeout`], one budget for both paths). A client
//!    that sends nothing in time is dropped.
//! 2. A bodyless `GET /events` (without `Origin` when CORS is configured)
//!    goes to the admission module. Admitted: answer `200` with a
//!    close-delimited `text/event-stream` body (HTTP/1.1 allows a body
//!    delimited by closing the connection; a stream ends that way anyway)
//!    and stream the subscription.
//! 3. Everything else — another route, a refusal, a head hyper must judge,
//!    a cross-origin request — goes to hyper, replaying the bytes already
//!    read, so the router answers exactly as it would have (the JSON error
//!    envelope included). A refusal travels with the request ([`Refused`]),
//!    so the router renders it without deciding again.
//!
//! Hyper gets the same bounds: [`MAX_HEAD`] for its read buffer and head
//! size, what is left of the head budget for the first head (enforced by
//! the socket wrapper, [`Replay`]) and the whole budget for later heads on
//! the connection. Every write on either path gives up after
//! [`FrontLimits::write_timeout`] on a client that does not read; the
//! stream's close line then says `write_timeout`.
//!
//! HTTP/2 goes to hyper's auto builder: on the plain listener when the
//! client opens with the preface (h2c with prior knowledge), over TLS when
//! ALPN chose `h2` ([`serve_h2`]). Each HTTP/2 stream is the router's
//! `/events` body; a stream's end ends that stream, not the connection.
//! A connection hyper serves is shut down gracefully once it has had no
//! request in progress for the head budget (`idle.rs`): HTTP/2 has no
//! header timeout of its own to close an idle connection.
//!
//! The streamed body is byte for byte what the router's `/events` body is:
//! `: ok` first, then batches, keep-alive comments and a final
//! `: end <reason>` comment.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::admission::{self, Admitted, CLIENT_CLOSED, OPENING, TOKEN_EXPIRED, WRITE_TIMEOUT};
use super::events::Refused;
use super::head::{self, Head, MAX_HEAD};
use super::idle::{self, Activity};
use super::response::WriteTimedOut;
use super::AppState;

/// The status line and headers of a streamed response.
const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
content-type: text/event-stream\r\n\
cache-control: no-cache\r\n\
x-accel-buffering: no\r\n\
connection: close\r\n\
\r\n";

/// Time limits of a connection, shared by both paths.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrontLimits {
    /// The whole budget for one request head, from accept (or, for later
    /// requests on a keep-alive connection, from when hyper waits for it).
    pub(crate) head_timeout: Duration,
    /// How long one write may block on a client that does not read.
    pub(crate) write_timeout: Duration,
    /// Most concurrent streams of one HTTP/2 connection.
    pub(crate) http2_max_streams: u32,
}

/// What the front needs to decide a connection the way the router does.
#[derive(Debug)]
pub(crate) struct Front {
    pub(crate) state: AppState,
    pub(crate) app: Router,
    /// With CORS configured, requests carrying `Origin` go to the router,
    /// whose CORS layer adds the headers.
    pub(crate) cors: bool,
    pub(crate) limits: FrontLimits,
}

/// Serves one accepted connection (see the module docs).
pub(crate) async fn serve_connection<S>(mut stream: S, peer: SocketAddr, front: &Front)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + front.limits.head_timeout;
    let mut head = Vec::with_capacity(1024);
    let verdict = match tokio::time::timeout_at(deadline, read_head(&mut stream, &mut head)).await {
        Ok(Ok(Some(verdict))) => verdict,
        // Closed, failed or out of time before a head hyper could judge:
        // nothing to answer (hyper, too, closes on a head timeout).
        _ => return,
    };
    let mut refused = None;
    if let Head::Events(events) = verdict {
        // With CORS, cross-origin requests go to the router (its layer adds
        // the headers); so do cluster resumes (see `needs_cluster_source`).
        let to_router = (front.cors && events.headers.contains_key("origin"))
            || needs_cluster_source(front, events.query.as_deref(), &events.headers);
        if !to_router {
            match admission::admit(
                &front.state,
                events.query.as_deref(),
                &events.headers,
                Some(peer),
            ) {
                Ok(admitted) => {
                    drop(head);
                    stream_events(stream, admitted, front.limits.write_timeout).await;
                    return;
                }
                Err(error) => refused = Some(Refused(error)),
            }
        }
    }
    // Boxed: hyper's connection state would otherwise sit inline in every
    // connection's task, streams included.
    Box::pin(serve_with_hyper(
        stream, peer, front, head, deadline, refused,
    ))
    .await;
}

/// Cluster mode: a stream with a resume point is decided against the
/// cluster's source, which the router's handler does; live streams read the
/// node's ring and stay on this path.
#[cfg(feature = "cluster")]
fn needs_cluster_source(front: &Front, query: Option<&str>, headers: &HeaderMap) -> bool {
    front.state.cluster.is_some()
        && super::query::parse_events_query(query, headers, front.state.hub.config().max_types)
            .map_or(true, |parsed| {
                !matches!(parsed.options.resume, crate::Resume::Live)
            })
}

#[cfg(not(feature = "cluster"))]
fn needs_cluster_source(_: &Front, _: Option<&str>, _: &HeaderMap) -> bool {
    false
}

/// Reads until [`head::classify`] decides; `None` if the client closed first.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &mut Vec<u8>,
) -> io::Result<Option<Head>> {
    loop {
        let room = (MAX_HEAD - head.len()) as u64;
        if (&mut *stream).take(room).read_buf(head).await? == 0 {
            return Ok(None);
        }
        match head::classify(head) {
            Head::Partial => {}
            verdict => return Ok(Some(verdict)),
        }
    }
}

/// Hands the connection to hyper, replaying the bytes already read:
/// HTTP/1.1, or HTTP/2 when the client opened with the HTTP/2 preface (h2c
/// with prior knowledge, which the head classifier leaves to hyper).
async fn serve_with_hyper<S>(
    stream: S,
    peer: SocketAddr,
    front: &Front,
    head: Vec<u8>,
    first_head_deadline: Instant,
    refused: Option<Refused>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let write_timed_out = WriteTimedOut::default();
    let first_head_done = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Replay {
        prefix: head,
        read: 0,
        stream,
        first_head_deadline: Some(Box::pin(tokio::time::sleep_until(first_head_deadline))),
        first_head_done: first_head_done.clone(),
        write_timeout: front.limits.write_timeout,
        write_timer: None,
        write_timed_out: write_timed_out.clone(),
    });
    let service = WithConnection {
        inner: TowerToHyperService::new(front.app.clone()),
        peer,
        write_timed_out,
        first_head_done,
        refused: Mutex::new(refused),
        activity: Activity::new(),
    };
    serve_hyper(io, service, front, false, peer).await;
}

/// Serves a connection with hyper's auto builder (HTTP/1.1, or HTTP/2 by
/// its preface; only HTTP/2 when `h2_only`: TLS chose `h2` by ALPN), with
/// the front's bounds on heads and streams.
async fn serve_hyper<I>(
    io: I,
    service: WithConnection,
    front: &Front,
    h2_only: bool,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(MAX_HEAD)
        .header_read_timeout(front.limits.head_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD as u32)
        .max_concurrent_streams(front.limits.http2_max_streams);
    if h2_only {
        builder = builder.http2_only();
    }
    let activity = service.activity.clone();
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = activity.idle_for(front.limits.head_timeout) => {
            tracing::debug!(%peer, "idle connection closed");
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// A TLS connection whose ALPN chose `h2`: straight to hyper's HTTP/2.
pub(crate) async fn serve_h2<S>(stream: S, peer: SocketAddr, front: &Front)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let write_timed_out = WriteTimedOut::default();
    let first_head_done = Arc::new(AtomicBool::new(true));
    let io = TokioIo::new(Replay {
        prefix: Vec::new(),
        read: 0,
        stream,
        first_head_deadline: None,
        first_head_done: first_head_done.clone(),
        write_timeout: front.limits.write_timeout,
        write_timer: None,
        write_timed_out: write_timed_out.clone(),
    });
    let service = WithConnection {
        inner: TowerToHyperService::new(front.app.clone()),
        peer,
        write_timed_out,
        first_head_done,
        refused: Mutex::new(None),
        activity: Activity::new(),
    };
    Box::pin(serve_hyper(io, service, front, true, peer)).await;
}

/// The router as hyper's service, with what the connection knows added to
/// each request: the peer, the write-timeout flag, and for the first
/// request a verdict the front already reached.
struct WithConnection {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    write_timed_out: WriteTimedOut,
    first_head_done: Arc<AtomicBool>,
    refused: Mutex<Option<Refused>>,
    /// Requests in progress, for closing the connection once idle.
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithConnection {
    type Response = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Response;
    type Error =
        <TowerToHyperService<Router> as hyper::service::Service<hyper::Request<Incoming>>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.first_head_done.store(true, Ordering::Relaxed);
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(self.peer));
        extensions.insert(self.write_timed_out.clone());
        let refused = match self.refused.lock() {
            Ok(mut refused) => refused.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(refused) = refused {
            extensions.insert(refused);
        }
        let in_progress = self.activity.begin();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| idle::tracked(body, in_progress)))
        })
    }
}

/// Streams an admitted subscription onto the socket until it ends or the
/// client goes.
async fn stream_events<S>(mut stream: S, admitted: Admitted, write_timeout: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Admitted {
        mut subscription,
        log,
        expires,
    } = admitted;
    // A signed token's expiry ends the stream; without one, never fires.
    let expiry = tokio::time::sleep_until(
        expires
            .map(admission::expiry_deadline)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600)),
    );
    tokio::pin!(expiry);
    let mut probe = [0u8; 64];
    let mut chunks = 0u64;
    let mut reason = CLIENT_CLOSED;
    let mut opening = Vec::with_capacity(RESPONSE_HEAD.len() + OPENING.len());
    opening.extend_from_slice(RESPONSE_HEAD);
    opening.extend_from_slice(OPENING);
    let mut pending = Some(Bytes::from(opening));
    let mut last = false;
    loop {
        if let Some(bytes) = pending.take() {
            // The flush is a no-op on TCP; over TLS it pushes the record out.
            let write = async {
                stream.write_all(&bytes).await?;
                stream.flush().await
            };
            match tokio::time::timeout(write_timeout, write).await {
                Ok(Ok(())) => chunks += 1,
                Ok(Err(_)) => break,
                Err(_) => {
                    reason = WRITE_TIMEOUT;
                    subscription.end_lagged();
                    break;
                }
            }
            if last {
                let _ = tokio::time::timeout(write_timeout, stream.shutdown()).await;
                break;
            }
        }
        tokio::select! {
            delivery = subscription.recv() => {
                let (bytes, end) = admission::wire_bytes(delivery);
                if let Some(end) = end {
                    reason = end.as_str();
                    last = true;
                }
                pending = Some(bytes);
            }
            () = &mut expiry, if expires.is_some() => {
                reason = TOKEN_EXPIRED;
                last = true;
                pending = Some(admission::end_comment(TOKEN_EXPIRED));
            }
            read = stream.read(&mut probe) => match read {
                // The client closed (or reset) its side: the stream is over.
                Ok(0) | Err(_) => break,
                // Anything a client sends after its request is ignored.
                Ok(_) => {}
            },
        }
    }
    log.closed(reason, chunks);
}

/// The socket as hyper sees it: first reads replay bytes already consumed;
/// reads fail once the first head's budget is spent before hyper has it;
/// writes fail after blocking for the write timeout.
struct Replay<S> {
    prefix: Vec<u8>,
    read: usize,
    stream: S,
    first_head_deadline: Option<Pin<Box<Sleep>>>,
    first_head_done: Arc<AtomicBool>,
    write_timeout: Duration,
    write_timer: Option<Pin<Box<Sleep>>>,
    write_timed_out: WriteTimedOut,
}

impl<S> Replay<S> {
    /// Applies the write timeout to a write-side poll.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.write_timer = None;
            return poll;
        }
        let timeout = self.write_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            self.write_timer = None;
            self.write_timed_out.set();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
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
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if polled.is_pending() {
            if self.first_head_done.load(Ordering::Relaxed) {
                self.first_head_deadline = None;
            } else if let Some(deadline) = &mut self.first_head_deadline {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received in time",
                    )));
                }
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.bounded(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.bounded(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.bounded(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.bounded(cx, poll)
    }
}
