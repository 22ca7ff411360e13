//! The live page: `GET /` (plain HTML, no build step) and its feed
//! `GET /stats/live`, an SSE stream of the stats object at a fixed interval.
//!
//! The feed is produced per connection from a timer, not through the hub, so
//! watching the page never adds events to the ring or skews `published`.
//! It carries event ids (`newest_id`, `oldest_id`), so both the page and the
//! feed pass the same credential check as `GET /events` (the subscriber
//! token, when one is configured), and each feed holds a subscription slot
//! while it is open: it counts toward the subscriber limit (503 beyond it)
//! and in `active_subscribers`. It ends when the hub shuts down, so it never
//! holds up a graceful shutdown. The page subscribes to `/events` and the
//! feed passing its own `?token=` along.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use tokio::time::{Interval, MissedTickBehavior};

use super::admin::stats_json;
use super::admission::check_credentials;
use super::error::ApiError;
use super::AppState;
use crate::{Hub, SubscribeOptions, Subscription};

const PAGE: &str = include_str!("page.html");

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>, request: Request) -> Response {
    match check_credentials(&state, request.uri().query(), request.headers()) {
        Ok(()) => Html(PAGE).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /stats/live?interval=<ms>` (100–1,000 ms, default 500).
pub(crate) async fn live_stats(State(state): State<AppState>, request: Request) -> Response {
    match open_feed(&state, &request) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn open_feed(state: &AppState, request: &Request) -> Result<Response, ApiError> {
    check_credentials(state, request.uri().query(), request.headers())?;
    // The slot: a live subscription never read (it holds no events back;
    // the ring never waits for a reader).
    let slot = state.hub.subscribe(SubscribeOptions::live())?;
    let millis = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(key, _)| key == "interval")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(500)
        .clamp(100, 1_000);
    let mut interval = tokio::time::interval(Duration::from_millis(millis));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let feed = StatsFeed {
        hub: state.hub.clone(),
        _slot: slot,
        interval,
        done: false,
    };
    let mut response = Body::from_stream(feed).into_response();
    super::response::set_stream_headers(response.headers_mut());
    Ok(response)
}

struct StatsFeed {
    hub: Hub,
    /// Holds the feed's place under the subscriber limit.
    _slot: Subscription,
    interval: Interval,
    done: bool,
}

impl futures_core::Stream for StatsFeed {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        std::task::ready!(self.interval.poll_tick(cx));
        if self.hub.is_shut_down() {
            self.done = true;
            return Poll::Ready(Some(Ok(Bytes::from_static(b": end shutdown\n\n"))));
        }
        let mut json = stats_json(&self.hub.stats());
        if let Some(object) = json.as_object_mut() {
            object.insert("parked_readers".into(), self.hub.parked_readers().into());
        }
        let frame = format!("event: stats\ndata: {json}\n\n");
        Poll::Ready(Some(Ok(Bytes::from(frame))))
    }
}
