//! [`SseResponse`]: one subscription as an axum response, for `GET /events`
//! and for an embedder's own handlers.
//!
//! The body is `: ok`, then the subscription's deliveries as the admission
//! module maps them to wire bytes (each batch is the hub's pre-encoded
//! buffer, handed to hyper as one chunk), then `: end <reason>` when the hub
//! ends it. When the body is dropped — the stream ended, the client left,
//! or the server cut off a client that stopped reading — the `stream
//! closed` line is logged with the reason.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::admission::{
    self, Admitted, StreamLog, CLIENT_CLOSED, OPENING, TOKEN_EXPIRED, WRITE_TIMEOUT,
};
use crate::Subscription;

/// A `text/event-stream` response carrying one [`Subscription`].
///
/// Return it from an axum handler to stream a subscription the way
/// `GET /events` does: the same headers, the opening `: ok`, the same
/// frames, keep-alive comments and final `: end <reason>` comment.
///
/// # Examples
///
/// ```no_run
/// use axum::{extract::State, routing::get, Router};
/// use ssehub::http::SseResponse;
/// use ssehub::{Hub, SubscribeOptions};
///
/// // Only "order" events, for a route of the user's own.
/// async fn orders(State(hub): State<Hub>) -> Result<SseResponse, ssehub::http::ApiError> {
///     let subscription = hub.subscribe(SubscribeOptions::live().types(["order"]))?;
///     Ok(SseResponse::new(subscription))
/// }
///
/// let app: Router = Router::new()
///     .route("/orders", get(orders))
///     .with_state(Hub::new());
/// ```
#[derive(Debug)]
pub struct SseResponse {
    subscription: Subscription,
    log: Option<StreamLog>,
    write_timed_out: Option<WriteTimedOut>,
    expires: Option<SystemTime>,
}

impl SseResponse {
    /// A response streaming `subscription`.
    pub fn new(subscription: Subscription) -> SseResponse {
        SseResponse {
            subscription,
            log: None,
            write_timed_out: None,
            expires: None,
        }
    }

    /// A response for a subscription the admission module let in: its
    /// `stream closed` line is logged when the body is dropped.
    pub(crate) fn admitted(admitted: Admitted, write_timed_out: Option<WriteTimedOut>) -> Self {
        SseResponse {
            subscription: admitted.subscription,
            log: Some(admitted.log),
            write_timed_out,
            expires: admitted.expires,
        }
    }
}

impl IntoResponse for SseResponse {
    fn into_response(self) -> Response {
        let body = Body::from_stream(EventBody {
            opening: true,
            subscription: self.subscription,
            finished: None,
            log: self.log,
            write_timed_out: self.write_timed_out,
            chunks: 0,
            expiry: self
                .expires
                .map(|at| Box::pin(tokio::time::sleep_until(admission::expiry_deadline(at)))),
        });
        let mut response = (StatusCode::OK, body).into_response();
        set_stream_headers(response.headers_mut());
        response
    }
}

/// Set by the connection when a write to this client timed out, so the
/// stream's close line says `write_timeout` rather than `client_closed`.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteTimedOut(Arc<AtomicBool>);

impl WriteTimedOut {
    /// Records that a write timed out (the accept loop's connections do).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once a write has timed out.
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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

/// The response body (see the module docs).
struct EventBody {
    opening: bool,
    subscription: Subscription,
    /// The end reason, once the final comment went out.
    finished: Option<&'static str>,
    log: Option<StreamLog>,
    write_timed_out: Option<WriteTimedOut>,
    chunks: u64,
    /// A signed token's expiry: the stream ends then (`: end token_expired`).
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl futures_core::Stream for EventBody {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished.is_some() {
            return Poll::Ready(None);
        }
        if std::mem::take(&mut self.opening) {
            self.chunks += 1;
            return Poll::Ready(Some(Ok(Bytes::from_static(OPENING))));
        }
        if let Some(expiry) = &mut self.expiry {
            if expiry.as_mut().poll(cx).is_ready() {
                self.finished = Some(TOKEN_EXPIRED);
                self.chunks += 1;
                return Poll::Ready(Some(Ok(admission::end_comment(TOKEN_EXPIRED))));
            }
        }
        let delivery = std::task::ready!(self.subscription.poll_recv(cx));
        let (bytes, end) = admission::wire_bytes(delivery);
        if let Some(reason) = end {
            self.finished = Some(reason.as_str());
        }
        self.chunks += 1;
        Poll::Ready(Some(Ok(bytes)))
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        let timed_out = self.finished.is_none()
            && self
                .write_timed_out
                .as_ref()
                .is_some_and(WriteTimedOut::get);
        if timed_out {
            // A client that stopped reading could not keep up: lagged.
            self.subscription.end_lagged();
        }
        let Some(log) = &self.log else { return };
        let reason = match &self.finished {
            Some(reason) => reason,
            None if timed_out => WRITE_TIMEOUT,
            None => CLIENT_CLOSED,
        };
        log.closed(reason, self.chunks);
    }
}
