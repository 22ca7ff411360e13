//! [`Cluster`]: one node of a cluster — the node's hub, its source, and the
//! tail task that follows the source into the hub's ring.
//!
//! # The tail task
//!
//! The only writer of the node's ring (it owns the hub's
//! [`Publisher`]). It loops:
//!
//! 1. **sync**: reads the source's head. If the hub's generation has another
//!    token, the hub moves to the source's generation
//!    ([`Hub::reset_to`]), its ring starting at the
//!    oldest event the source retains; if the hub's next event is older than
//!    anything retained (the node was cut off longer than the history
//!    lasts), it rejoins the same generation there. Open streams end in both
//!    cases; reconnecting clients resume through the source.
//! 2. **tail**: blocks (at most [`TAIL_WAIT`]) for events after the ring's
//!    newest, appending each in order with
//!    [`Publisher::append_at`]. A generation
//!    change, an idle wait, an error, or [`SYNC_EVERY`] since the last sync
//!    goes back to 1; errors first wait [`RETRY`], and mark the source
//!    unreachable meanwhile.
//!
//! Each sync reports the node's [`Seen`] high-water mark, so a source that
//! lost entries this node saw starts a new generation (see `redis`). The idle
//! sync also notices a source wiped without dropping connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::stream::{self, ClusterStream};
use super::{EventSource, Lookup, Seen, SourceError, SourceHead, TailRead};
use crate::error::{ConfigError, Setting};
use crate::{
    EncodedEvent, Event, FollowError, Hub, PublishError, Published, Publisher, SubscribeError,
    SubscribeOptions,
};

/// Longest blocking read of the tail before it syncs again.
pub const TAIL_WAIT: Duration = Duration::from_millis(500);
/// Pause after a source error before the tail tries again.
pub const RETRY: Duration = Duration::from_millis(100);
/// Longest time between two syncs while events keep arriving (keeps the
/// cluster figures fresh and notices lost state under steady load).
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// The events were invalid (nothing was published).
    Publish(PublishError),
    /// The resume point is gone, or the subscription was refused.
    Subscribe(SubscribeError),
    /// The source cannot be reached; nothing was published (a node never
    /// invents an id locally).
    Unavailable(String),
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Publish(error) => error.fmt(f),
            ClusterError::Subscribe(error) => error.fmt(f),
            ClusterError::Unavailable(message) => {
                write!(f, "cluster backend unavailable: {message}")
            }
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<SourceError> for ClusterError {
    fn from(error: SourceError) -> Self {
        ClusterError::Unavailable(error.to_string())
    }
}

/// The cluster's figures as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStats {
    /// True while the tail's last call to the source succeeded.
    pub connected: bool,
    /// The source's generation token (16 hex digits), as of the last sync.
    pub generation_token: String,
    /// Generations the source has started.
    pub generation: u64,
    /// Events published in the source's current generation.
    pub published: u64,
    /// Events the source retains.
    pub retained: u64,
    /// Bytes the source retains.
    pub retained_bytes: u64,
    /// Events the source had that this node's ring did not yet, as of the
    /// last sync or publish through this node.
    pub lag: u64,
}

#[derive(Debug, Default)]
struct Figures {
    token: u64,
    generation: u64,
    published: u64,
    retained: u64,
    retained_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) hub: Hub,
    pub(crate) source: Arc<dyn EventSource>,
    seen: Mutex<Seen>,
    figures: Mutex<Figures>,
    connected: AtomicBool,
    /// True once the tail has synced with the source at least once.
    synced_once: AtomicBool,
    stopped: AtomicBool,
    stop: Notify,
    /// Last number the source handed out that this node knows of.
    source_last: AtomicU64,
}

/// A cluster node: the hub, its source and the tail task (see the module
/// docs). Cheap to clone; the tail stops with [`Cluster::stop`] or when the
/// hub shuts down.
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl Cluster {
    /// Starts following `source` into `hub` (spawns the tail task on the
    /// current tokio runtime). The hub's writer is taken for the tail:
    /// publish through [`Cluster::publish`], not [`Hub::publish`].
    ///
    /// # Errors
    ///
    /// When the hub's writer is already taken.
    pub fn start(hub: Hub, source: Arc<dyn EventSource>) -> Result<Cluster, ConfigError> {
        let publisher = hub.publisher().ok_or_else(|| {
            ConfigError::new(Setting::Cluster, "the hub's writer is already taken")
        })?;
        let inner = Arc::new(Inner {
            hub,
            source,
            seen: Mutex::new(Seen::default()),
            figures: Mutex::new(Figures::default()),
            connected: AtomicBool::new(false),
            synced_once: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            source_last: AtomicU64::new(0),
        });
        tokio::spawn(tail(inner.clone(), publisher));
        Ok(Cluster { inner })
    }

    /// Waits until the tail has joined the source's generation once (at
    /// most `timeout`); false if it has not. A node serves its first live
    /// streams after this, so they do not end at once when the tail moves
    /// the hub to the cluster's generation.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.inner.synced_once.load(Ordering::Acquire) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// The node's hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The node's source.
    pub fn source(&self) -> &Arc<dyn EventSource> {
        &self.inner.source
    }

    /// Publishes a batch through the source, all or nothing, and returns
    /// the ids the source decided (a caller id, or the auto id).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Publish`] for an invalid event (nothing published),
    /// [`ClusterError::Unavailable`] when the source cannot be reached.
    pub async fn publish(&self, events: &[Event]) -> Result<Vec<String>, ClusterError> {
        let hub = &self.inner.hub;
        if hub.is_shut_down() {
            return Err(ClusterError::Publish(PublishError::Shutdown));
        }
        let encoded = events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                hub.encode(event)
                    .map_err(|error| ClusterError::Publish(PublishError::InBatch { index, error }))
            })
            .collect::<Result<Vec<EncodedEvent>, _>>()?;
        if encoded.is_empty() {
            return Ok(Vec::new());
        }
        let appended = self.inner.source.publish(&encoded, self.seen()).await?;
        let count = encoded.len() as u64;
        let last = appended.first + count - 1;
        self.inner.saw(appended.token, last);
        self.inner.source_last.fetch_max(last, Ordering::Relaxed);
        Ok(encoded
            .iter()
            .zip(appended.first..)
            .map(|(event, number)| match event.id() {
                Some(id) => id.to_owned(),
                None => Published {
                    generation_token: appended.token,
                    seq: number - 1,
                }
                .auto_id(),
            })
            .collect())
    }

    /// Starts a new generation for the whole cluster. Every node's tail
    /// moves to it and ends its open streams.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Unavailable`] when the source cannot be reached.
    pub async fn reset(&self) -> Result<(), ClusterError> {
        self.inner.source.reset(None).await?;
        Ok(())
    }

    /// Opens a stream on this node, resolving the resume point against the
    /// source (see [`stream`]).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Subscribe`] (410 when the point is gone),
    /// [`ClusterError::Unavailable`] when a resume point needs the source and
    /// it cannot be reached.
    pub async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<ClusterStream, ClusterError> {
        stream::open(self.inner.clone(), options).await
    }

    /// The cluster's figures as this node knows them.
    pub fn stats(&self) -> ClusterStats {
        let figures = lock(&self.inner.figures);
        let node_last = self.inner.hub.generation().ring().head();
        let lag = if self.inner.hub.generation().token() == figures.token {
            self.inner
                .source_last
                .load(Ordering::Relaxed)
                .saturating_sub(node_last)
        } else {
            figures.published
        };
        ClusterStats {
            connected: self.inner.connected.load(Ordering::Relaxed),
            generation_token: format!("{:016x}", figures.token),
            generation: figures.generation,
            published: figures
                .published
                .max(self.inner.source_last.load(Ordering::Relaxed)),
            retained: figures.retained,
            retained_bytes: figures.retained_bytes,
            lag,
        }
    }

    /// Stops the tail task (the hub stays as it is).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.inner.stop.notify_waiters();
        self.inner.stop.notify_one();
    }

    fn seen(&self) -> Seen {
        *lock(&self.inner.seen)
    }
}

impl Inner {
    /// Records that `number` of generation `token` exists.
    pub(crate) fn saw(&self, token: u64, number: u64) {
        let mut seen = lock(&self.seen);
        if seen.token != token {
            *seen = Seen { token, number };
        } else if number > seen.number {
            seen.number = number;
        }
    }

    pub(crate) fn seen(&self) -> Seen {
        *lock(&self.seen)
    }

    fn record(&self, head: &SourceHead) {
        let mut figures = lock(&self.figures);
        *figures = Figures {
            token: head.token,
            generation: head.generation,
            published: head.last,
            retained: head.retained,
            retained_bytes: head.retained_bytes,
        };
        drop(figures);
        let mut seen = lock(&self.seen);
        if seen.token != head.token {
            // A new generation: the old high-water mark no longer applies.
            *seen = Seen {
                token: head.token,
                number: head.last,
            };
        }
        drop(seen);
        self.source_last.store(head.last, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tail task (see the module docs).
async fn tail(inner: Arc<Inner>, mut publisher: Publisher) {
    let hub = inner.hub.clone();
    let mut synced = false;
    let mut last_sync = tokio::time::Instant::now();
    loop {
        if last_sync.elapsed() >= SYNC_EVERY {
            synced = false;
        }
        if inner.stopped.load(Ordering::Acquire) || hub.is_shut_down() {
            return;
        }
        if !synced {
            let head = tokio::select! {
                head = inner.source.sync(inner.seen()) => head,
                () = inner.stop.notified() => return,
            };
            match head {
                Ok(head) => {
                    inner.connected.store(true, Ordering::Relaxed);
                    join_generation(&hub, &head);
                    inner.record(&head);
                    inner.synced_once.store(true, Ordering::Release);
                    synced = true;
                    last_sync = tokio::time::Instant::now();
                }
                Err(error) => {
                    if inner.connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(%error, "cluster source unreachable");
                    }
                    pause(&inner, RETRY).await;
                    continue;
                }
            }
        }
        let generation = hub.generation();
        let token = generation.token();
        let after = generation.ring().head();
        let read = tokio::select! {
            read = inner.source.tail(token, after, TAIL_WAIT) => read,
            () = inner.stop.notified() => return,
        };
        match read {
            Ok(TailRead::Events(events)) => {
                for event in events {
                    let next = hub.generation().ring().head() + 1;
                    if event.number > next {
                        // Entries between were trimmed before this node read
                        // them: rejoin at this one (open streams end; their
                        // clients resume through the source, or get 410).
                        tracing::warn!(
                            missed = event.number - next,
                            "cluster tail fell behind the retained history"
                        );
                        hub.reset_to(token, event.number - 1);
                    } else if event.number < next {
                        continue;
                    }
                    let encoded = match EncodedEvent::from_encoded_parts(
                        event.body,
                        &event.event_type,
                        event.id.as_deref(),
                    ) {
                        Ok(encoded) => encoded,
                        Err(error) => {
                            tracing::error!(%error, number = event.number, "unusable event in the cluster source; skipped");
                            hub.reset_to(token, event.number);
                            continue;
                        }
                    };
                    match publisher.append_at(token, event.number - 1, &encoded, event.timestamp) {
                        Ok(_) => inner.saw(token, event.number),
                        Err(FollowError::Publish(PublishError::Shutdown)) => return,
                        Err(error) => {
                            tracing::warn!(%error, "cluster tail out of step; syncing");
                            synced = false;
                            break;
                        }
                    }
                }
                inner
                    .source_last
                    .fetch_max(hub.generation().ring().head(), Ordering::Relaxed);
            }
            Ok(TailRead::GenerationChanged | TailRead::Idle) => synced = false,
            Err(error) => {
                if inner.connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "cluster source unreachable");
                }
                synced = false;
                pause(&inner, RETRY).await;
            }
        }
    }
}

/// Moves the hub to the source's generation, or past a gap it cannot fill.
fn join_generation(hub: &Hub, head: &SourceHead) {
    let generation = hub.generation();
    if generation.token() != head.token {
        tracing::info!(token = %format!("{:016x}", head.token), generation = head.generation, "joining cluster generation");
        hub.reset_to(head.token, head.oldest - 1);
    } else if generation.ring().head() + 1 < head.oldest {
        tracing::warn!(
            missed = head.oldest - 1 - generation.ring().head(),
            "cluster history moved past this node; rejoining"
        );
        hub.reset_to(head.token, head.oldest - 1);
    }
}

async fn pause(inner: &Inner, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = inner.stop.notified() => {}
    }
}

/// The source's head with `lookup`, recording the figures.
pub(crate) async fn head(inner: &Inner, lookup: Lookup) -> Result<SourceHead, ClusterError> {
    let head = inner.source.head(inner.seen(), lookup).await?;
    Ok(head)
}
