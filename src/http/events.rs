//! `GET /events`: one subscription streamed as a `text/event-stream` body.
//!
//! The handler renders what the admission module decides: an admitted
//! subscription becomes an [`SseResponse`] (`: ok`, batches, keep-alive
//! comments, `: end <reason>`), a refusal its JSON envelope. When the
//! streaming front of [`serve`](super::serve) has already decided a request
//! and refused it, it passes the verdict along ([`Refused`]) and the handler
//! only renders it, so no request is evaluated twice.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};

use super::admission;
use super::error::ApiError;
use super::response::{SseResponse, WriteTimedOut};
use super::AppState;

/// A verdict the streaming front reached for this request: the handler
/// answers with it instead of deciding again.
#[derive(Debug, Clone)]
pub(crate) struct Refused(pub(crate) ApiError);

/// `GET /events`.
pub(crate) async fn subscribe(State(state): State<AppState>, request: Request) -> Response {
    if let Some(Refused(error)) = request.extensions().get::<Refused>() {
        return error.clone().into_response();
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &state.cluster {
        let (parts, _body) = request.into_parts();
        return match super::cluster_events::open(&state, cluster, &parts, peer).await {
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
    let write_timed_out = request.extensions().get::<WriteTimedOut>().cloned();
    match admission::admit(&state, request.uri().query(), request.headers(), peer) {
        Ok(admitted) => SseResponse::admitted(admitted, write_timed_out).into_response(),
        Err(error) => error.into_response(),
    }
}
