//! `GET /events` on a cluster node (`ssehub serve --redis`): the resume
//! point is decided against the cluster's source, not the node's ring (see
//! [`crate::cluster`]); the body is the node's [`ClusterStream`] after the
//! opening comment.
//!
//! Live streams without a resume point still take the streaming front of
//! [`serve`](super::serve): a node's ring is a faithful copy of the
//! cluster's stream from the moment it joined.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::access;
use super::admission::{self, StreamLog};
use super::error::ApiError;
use super::query::parse_events_query;
use super::response::set_stream_headers;
use super::AppState;
use crate::cluster::{Cluster, ClusterStream};

/// Opens a cluster stream for `request`.
///
/// # Errors
///
/// As [`admission::admit`], plus 503 `backend_unavailable` when a resume
/// point needs the cluster's source and it cannot be reached.
pub(crate) async fn open(
    state: &AppState,
    cluster: &Cluster,
    request: &Parts,
    peer: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    let headers = &request.headers;
    let grant = access::subscriber_grant(
        state.subscriber_token.as_deref(),
        state.jwt.as_deref(),
        headers,
        request.uri.query(),
    )?;
    let mut options =
        parse_events_query(request.uri.query(), headers, state.hub.config().max_types)?.options;
    if let Some(grant) = &grant {
        grant.restrict_subscription(&mut options.types)?;
    }
    let types = options.types.clone();
    let resume = options.resume.clone();
    let subject = grant.as_ref().map_or("-", |grant| grant.subject_for_log());
    let stream = cluster.subscribe(options).await?;
    let log = StreamLog::opened_in(stream.generation(), peer, &types, &resume, subject);
    let expiry = grant
        .and_then(|grant| grant.expires)
        .map(|at| Box::pin(tokio::time::sleep_until(admission::expiry_deadline(at))));
    let body = Body::from_stream(ClusterBody {
        opening: Some(Bytes::from_static(admission::OPENING)),
        stream,
        log,
        chunks: 0,
        expiry,
        expired: false,
    });
    let mut response = (StatusCode::OK, body).into_response();
    set_stream_headers(response.headers_mut());
    Ok(response)
}

/// The cluster-mode response body: the opening comment, then the stream.
struct ClusterBody {
    opening: Option<Bytes>,
    stream: ClusterStream,
    log: StreamLog,
    chunks: u64,
    /// The signed token's expiry: the stream ends then.
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

impl futures_core::Stream for ClusterBody {
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
                let end = admission::end_comment(admission::TOKEN_EXPIRED);
                return Poll::Ready(Some(Ok(end)));
            }
        }
        let polled = Pin::new(&mut self.stream).poll_next(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.chunks += 1;
        }
        polled
    }
}

impl Drop for ClusterBody {
    fn drop(&mut self) {
        let reason = match self.stream.end_reason() {
            Some(reason) => reason.as_str(),
            None if self.expired => admission::TOKEN_EXPIRED,
            None => admission::CLIENT_CLOSED,
        };
        self.log.closed(reason, self.chunks);
    }
}
