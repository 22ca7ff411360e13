//! Idle connections served by hyper are closed after the head budget.
//!
//! HTTP/1.1 bounds the wait for the next request with hyper's header
//! timeout, but HTTP/2 has nothing like it: a client could open connections
//! up to `--max-connections`, send nothing more, and hold them forever,
//! refusing everyone else. So every connection hyper serves counts its
//! requests in progress ([`Activity`]): a request is in progress from the
//! moment hyper hands it to the service until hyper drops its response
//! body (a stream counts for as long as it is open). A connection with none
//! in progress for the head budget is shut down gracefully
//! ([`Activity::idle_for`] completes; HTTP/2 sends `GOAWAY`, HTTP/1.1
//! closes between requests).
//!
//! Invariant: a request that ends records the time *before* it leaves the
//! count, so whoever reads a count of zero (Acquire) also reads a
//! time at least as new as the end of the last request: a connection is
//! never judged idle by a time stamped before its last stream ended.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::time::Instant;

/// Requests in progress on one connection, and since when it has had none.
#[derive(Debug)]
pub(crate) struct Activity {
    in_progress: AtomicUsize,
    /// Milliseconds after `start` when the count last dropped to zero.
    idle_since_ms: AtomicU64,
    start: Instant,
}

impl Activity {
    /// A connection starting now, idle until its first request.
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            start: Instant::now(),
        })
    }

    /// Counts a request in progress until the returned guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }

    /// How long the connection has had no request in progress; `None`
    /// while one is.
    fn idle_elapsed(&self) -> Option<Duration> {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some(self.start.elapsed().saturating_sub(since))
    }

    /// Completes once the connection has had no request in progress for
    /// `limit`. Checks at most once per `limit` while requests run, so an
    /// idle-watch costs one timer per connection.
    pub(crate) async fn idle_for(&self, limit: Duration) {
        loop {
            let wait = match self.idle_elapsed() {
                Some(idle) if idle >= limit => return,
                Some(idle) => limit - idle,
                None => limit,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One request in progress; its drop ends it.
#[derive(Debug)]
pub(crate) struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let activity = &self.0;
        let now_ms = u64::try_from(activity.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The time first, then the count (see the module's invariant).
        activity.idle_since_ms.store(now_ms, Ordering::Relaxed);
        activity.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until
/// hyper drops it.
pub(crate) fn tracked(body: Body, in_progress: InProgress) -> Body {
    Body::new(Tracked {
        body,
        _in_progress: in_progress,
    })
}

struct Tracked {
    body: Body,
    _in_progress: InProgress,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_end_of_the_last_request() {
        let activity = Activity::new();
        let limit = Duration::from_secs(10);
        tokio::time::advance(Duration::from_secs(4)).await;
        let first = activity.begin();
        let second = activity.begin();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(activity.idle_elapsed(), None, "two in progress");
        drop(first);
        assert_eq!(activity.idle_elapsed(), None, "one still in progress");
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(second);
        assert_eq!(activity.idle_elapsed(), Some(Duration::ZERO));
        let started = Instant::now();
        activity.idle_for(limit).await;
        assert_eq!(started.elapsed(), limit, "idle 10 s after the last end");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_keeps_the_connection_open() {
        let activity = Activity::new();
        let limit = Duration::from_secs(10);
        let stream = activity.begin();
        let watch = tokio::time::timeout(Duration::from_secs(60), activity.idle_for(limit));
        assert!(watch.await.is_err(), "judged idle during a request");
        drop(stream);
        let started = Instant::now();
        activity.idle_for(limit).await;
        assert_eq!(started.elapsed(), limit);
    }
}
