//! A subscriber's cursor into the ring: batches, parking, keep-alive, end.
//!
//! A subscription owns its cursor and writes nothing shared while it reads:
//! it copies every available frame that passes its type filter (up to the
//! batch bounds) into one buffer and hands it out as one [`Batch`], ready for
//! one socket write. When caught up it parks on the hub's wake signal (see
//! `wait` for why no wake-up is lost) and, if configured, emits a keep-alive
//! comment after each idle interval.
//!
//! It ends — once, with an [`EndReason`] — when its generation is reset or
//! shut down, or when the writer laps it (`Lagged`; the hub counts a lagged
//! disconnect). A subscription never delivers a torn frame, a gap or a
//! duplicate: it either delivers the exact sequence or ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use crate::batch_cache::CachedBatch;
use crate::error::{EndReason, SubscribeError};
use crate::frame::{frame_type, validate_type};
use crate::generation::Generation;
use crate::hub::Shared;
use crate::ring::Lapped;
use crate::tag::TypeTag;

/// The keep-alive comment sent to idle subscribers.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// A subscription's type filter: a handful of tags, compared per frame, and
/// the type strings they stand for, confirmed on each frame that passes (a
/// 64-bit tag collision must never deliver a type nobody asked for).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    tags: Vec<TypeTag>,
    types: Vec<String>,
}

impl Filter {
    /// Tags for `types`; empty strings are ignored, empty means all.
    pub(crate) fn new(types: &[String], max_types: usize) -> Result<Filter, SubscribeError> {
        let mut tags = Vec::new();
        let mut wanted: Vec<String> = Vec::new();
        for event_type in types.iter().filter(|t| !t.is_empty()) {
            validate_type(event_type).map_err(|_| SubscribeError::InvalidType)?;
            if !wanted.contains(event_type) {
                wanted.push(event_type.clone());
                let tag = TypeTag::of(event_type);
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        if tags.len() > max_types {
            return Err(SubscribeError::TooManyTypes {
                requested: tags.len(),
                limit: max_types,
            });
        }
        Ok(Filter {
            tags,
            types: wanted,
        })
    }

    /// Drops from `buf` (whole frames, `frames` of them) every frame whose
    /// type string is not one asked for: they passed the tag compare only
    /// through a hash collision. Returns the frames kept. Costs one scan of
    /// the batch for filtered subscribers; unfiltered ones never call it.
    fn confirm_types(&self, buf: &mut Vec<u8>, frames: usize) -> usize {
        let wanted = |frame: &[u8]| {
            let event_type = frame_type(frame);
            self.types.iter().any(|t| t.as_bytes() == event_type)
        };
        if frame_slices(buf).all(wanted) {
            return frames;
        }
        // A collision happened: rebuild the batch without the intruders.
        let kept: Vec<u8> = frame_slices(buf)
            .filter(|frame| wanted(frame))
            .flatten()
            .copied()
            .collect();
        let count = frame_slices(&kept).count();
        *buf = kept;
        count
    }
}

/// The frames in `bytes`, each ending at its blank line (every line of a
/// frame is non-empty and ends in LF, so the first `\n\n` ends a frame).
fn frame_slices(bytes: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let finder = memchr::memmem::Finder::new(b"\n\n");
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = finder.find(rest).map_or(rest.len(), |at| at + 2);
        let (frame, tail) = rest.split_at(end);
        rest = tail;
        Some(frame)
    })
}

/// One delivery from [`Subscription::recv`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// One or more frames, concatenated.
    Batch(Batch),
    /// The keep-alive interval passed with nothing to deliver.
    KeepAlive,
    /// The subscription ended; every later call returns the same.
    End(EndReason),
}

/// Consecutive SSE frames (with gaps only where the filter skipped events),
/// as one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    bytes: Bytes,
    frames: usize,
    next_seq: u64,
}

impl Batch {
    /// The frames' wire bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the batch, returning its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames
    }

    /// True for a batch without frames, which [`Subscription`] never hands
    /// out (so always false for a delivered batch).
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// The sequence number after the last event this batch covers.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Each frame's bytes. Every line of a frame is non-empty and ends in LF,
    /// so frames split exactly at the blank line that ends each one.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> + '_ {
        frame_slices(&self.bytes)
    }
}

type ParkFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A live subscription. Receive with [`Subscription::recv`], or turn it into
/// a byte stream for an HTTP body with [`Subscription::into_stream`].
pub struct Subscription {
    shared: Arc<Shared>,
    generation: Arc<Generation>,
    cursor: u64,
    filter: Filter,
    /// Registered wake-up. It stays registered while the subscription
    /// delivers (re-registering costs `Notify`'s lock), but it is counted in
    /// the wake signal's `parked` only while the subscription waits on it:
    /// a busy subscriber must not make every publish kick the notifier.
    park: Option<ParkFuture>,
    /// `park` is counted in `parked` (only ever with `park` set).
    counted: bool,
    keep_alive: Option<Duration>,
    idle_timer: Option<Pin<Box<Sleep>>>,
    last_activity: Option<Instant>,
    ended: Option<EndReason>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("generation", &self.generation.number)
            .field("cursor", &self.cursor)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        generation: Arc<Generation>,
        cursor: u64,
        filter: Filter,
    ) -> Subscription {
        generation
            .active_subscribers
            .fetch_add(1, Ordering::Relaxed);
        generation.total_subscribers.fetch_add(1, Ordering::Relaxed);
        let keep_alive = shared.config.keep_alive;
        Subscription {
            shared,
            generation,
            cursor,
            filter,
            park: None,
            counted: false,
            keep_alive,
            idle_timer: None,
            last_activity: None,
            ended: None,
        }
    }

    /// The next sequence this subscription will read.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The generation number this subscription reads.
    pub fn generation(&self) -> u64 {
        self.generation.number
    }

    /// The random token of the generation this subscription reads (the one
    /// its auto ids carry, as in [`Published::generation_token`](crate::Published)).
    pub fn generation_token(&self) -> u64 {
        self.generation.token
    }

    /// Ends this subscription because its consumer could not keep up — for
    /// example a network write to its client timed out. It counts as a
    /// lagged disconnect in the generation's stats, as one the ring lapped
    /// does, and every later [`Subscription::recv`] returns
    /// `End(Lagged)` with the events then waiting. A subscription that has
    /// already ended is left as it is.
    pub fn end_lagged(&mut self) {
        if self.ended.is_some() {
            return;
        }
        self.generation
            .lagged_disconnects
            .fetch_add(1, Ordering::Relaxed);
        let missed = self.generation.ring().head().saturating_sub(self.cursor);
        self.ended = Some(EndReason::Lagged { missed });
    }

    /// Waits for the next batch, keep-alive or end.
    pub async fn recv(&mut self) -> Delivery {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Returns what is available now without waiting: a batch, the end, or
    /// `None` when caught up.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        if let Some(reason) = self.ended {
            return Some(Delivery::End(reason));
        }
        let delivery = self.read_available().or_else(|| self.drain_closed());
        if delivery.is_some() {
            self.stop_counting();
        }
        delivery
    }

    /// After the generation closed: what it still holds, else the end.
    ///
    /// A publish that raced the close is ordered before it (see the `hub`
    /// module docs, "A publish racing a reset"): once the close is seen, the
    /// head shows everything the generation will ever hold that was
    /// acknowledged, so it is delivered before the subscription ends.
    fn drain_closed(&mut self) -> Option<Delivery> {
        let reason = self.generation.closed()?;
        Some(match self.read_available() {
            Some(delivery) => delivery,
            None => self.end(reason),
        })
    }

    /// Polls for the next batch, keep-alive or end.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        if let Some(reason) = self.ended {
            return Poll::Ready(Delivery::End(reason));
        }
        loop {
            if let Some(delivery) = self.read_available().or_else(|| self.drain_closed()) {
                // Not waiting any more: leave the parked count now, not at
                // the next park (a delivering subscriber is not parked).
                self.stop_counting();
                return Poll::Ready(delivery);
            }
            match &mut self.park {
                None => {
                    // Arm: register with Notify first, then announce the park,
                    // then loop to re-check (see `wait`: no lost wake-up).
                    let shared = self.shared.clone();
                    let mut park: ParkFuture =
                        Box::pin(async move { shared.waiters.notify.notified().await });
                    if park.as_mut().poll(cx).is_ready() {
                        continue;
                    }
                    self.park = Some(park);
                    self.shared.waiters.signal.begin_park();
                    self.counted = true;
                }
                Some(_) if !self.counted => {
                    // Registered while delivering: announce the park again,
                    // then re-check (the registration came first, as above).
                    self.shared.waiters.signal.begin_park();
                    self.counted = true;
                }
                Some(park) => match park.as_mut().poll(cx) {
                    Poll::Ready(()) => self.disarm(),
                    Poll::Pending => break,
                },
            }
        }
        self.poll_keep_alive(cx)
    }

    /// Leaves the parked count, keeping the registration.
    fn stop_counting(&mut self) {
        if self.counted {
            self.counted = false;
            self.shared.waiters.signal.end_park();
        }
    }

    /// Leaves the parked count and drops the registration.
    fn disarm(&mut self) {
        self.stop_counting();
        self.park = None;
    }

    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Poll<Delivery> {
        let Some(interval) = self.keep_alive else {
            return Poll::Pending;
        };
        let now = Instant::now();
        let deadline = *self.last_activity.get_or_insert(now) + interval;
        let timer = self
            .idle_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.last_activity = Some(Instant::now());
                Poll::Ready(Delivery::KeepAlive)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Reads everything available (up to the batch bounds) past the cursor.
    fn read_available(&mut self) -> Option<Delivery> {
        let config = &self.shared.config;
        let generation = &*self.generation;
        let ring = &generation.ring;
        let available = ring.head().saturating_sub(self.cursor);
        if available == 0 {
            return None;
        }
        let shareable = self.filter.tags.is_empty();
        // A lapped subscriber must end, even if a copy of its next batch
        // survives in the cache: check the ring's tail first.
        if shareable && self.cursor >= ring.tail() {
            if let Some(shared) = generation.batches.get(self.cursor) {
                return Some(self.deliver(shared.bytes.clone(), shared.frames, shared.next));
            }
        }
        // Room for the whole batch up front (frames are typically < 256 B).
        let estimate = (available as usize).min(config.max_batch_frames) * 256;
        let mut buf = Vec::with_capacity(estimate.min(config.max_batch_bytes) + 256);
        loop {
            match ring.read_batch(
                self.cursor,
                config.max_batch_frames,
                config.max_batch_bytes,
                &self.filter.tags,
                &mut buf,
            ) {
                Ok(mut read) if read.frames > 0 => {
                    if !shareable {
                        read.frames = self.filter.confirm_types(&mut buf, read.frames);
                        if read.frames == 0 {
                            self.cursor = read.next;
                            buf.clear();
                            continue;
                        }
                    }
                    let bytes = Bytes::from(buf);
                    if shareable {
                        generation.batches.put(CachedBatch {
                            from: self.cursor,
                            next: read.next,
                            frames: read.frames,
                            bytes: bytes.clone(),
                        });
                    }
                    return Some(self.deliver(bytes, read.frames, read.next));
                }
                // Everything examined was filtered out; look further.
                Ok(read) if read.next > self.cursor => self.cursor = read.next,
                Ok(_) => return None,
                Err(Lapped { missed }) => {
                    self.generation
                        .lagged_disconnects
                        .fetch_add(1, Ordering::Relaxed);
                    return Some(self.end(EndReason::Lagged { missed }));
                }
            }
        }
    }

    fn deliver(&mut self, bytes: Bytes, frames: usize, next: u64) -> Delivery {
        self.cursor = next;
        if self.keep_alive.is_some() {
            self.last_activity = Some(Instant::now());
        }
        Delivery::Batch(Batch {
            bytes,
            frames,
            next_seq: next,
        })
    }

    fn end(&mut self, reason: EndReason) -> Delivery {
        self.ended = Some(reason);
        self.disarm();
        Delivery::End(reason)
    }

    /// A stream of wire bytes for an HTTP body: batches, keep-alive comments,
    /// and a final `: end <reason>` comment before it finishes.
    pub fn into_stream(self) -> SseStream {
        SseStream {
            subscription: self,
            finished: false,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.disarm();
        self.generation
            .active_subscribers
            .fetch_sub(1, Ordering::Relaxed);
        self.shared.live_subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The byte stream of a [`Subscription`] (see [`Subscription::into_stream`]).
#[derive(Debug)]
pub struct SseStream {
    subscription: Subscription,
    finished: bool,
}

impl SseStream {
    /// The subscription behind the stream.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.subscription.ended
    }
}

impl futures_core::Stream for SseStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let delivery = std::task::ready!(self.subscription.poll_recv(cx));
        Poll::Ready(Some(Ok(match delivery {
            Delivery::Batch(batch) => batch.into_bytes(),
            Delivery::KeepAlive => Bytes::from_static(KEEP_ALIVE),
            Delivery::End(reason) => {
                self.finished = true;
                Bytes::from(format!(": end {}\n\n", reason.as_str()))
            }
        })))
    }
}
