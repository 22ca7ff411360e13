//! The live page: `GET /` (plain HTML, no build step) and its feed
//! `GET /stats/live`, an SSE stream of the stats object at a fixed interval.
//!
//! The feed is produced per connection from a timer, not through the hub, so
//! watching the page never adds events to the ring or skews `published`. It
//! shows the same figures as the public `/metrics`, so it needs no token. It
//! ends when the hub shuts down, so it never holds up a graceful shutdown.
//! The page also subscribes to `/events` (passing its own `?token=` along
//! when a subscriber token is configured) to show the latest events.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use tokio::time::{Interval, MissedTickBehavior};

use super::admin::stats_json;
use super::AppState;
use crate::Hub;

const PAGE: &str = include_str!("page.html");

/// `GET /`.
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /stats/live?interval=<ms>` (100–1,000 ms, default 500).
pub(crate) async fn live_stats(State(state): State<AppState>, request: Request) -> Response {
    let millis = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(key, _)| key == "interval")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(500)
        .clamp(100, 1_000);
    let mut interval = tokio::time::interval(Duration::from_millis(millis));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let feed = StatsFeed {
        hub: state.hub.clone(),
        interval,
        done: false,
    };
    let mut response = Body::from_stream(feed).into_response();
    super::response::set_stream_headers(response.headers_mut());
    response
}

struct StatsFeed {
    hub: Hub,
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
