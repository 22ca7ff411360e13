//! The hub: publish, subscribe, reset, shutdown, stats.
//!
//! # Design
//!
//! ```text
//!  producers ─► Hub::publish (producer-side lock) ─┐
//!                                                  ├─► WriterCore ─► Ring<gen N> ◄─ cursors ◄─ Subscription
//!  one producer ─► Publisher (owns the writer) ────┘        ArcSwap<Generation> ◄─ reset()
//! ```
//!
//! - Events are encoded once ([`Event::encode`]) *outside* any lock; the
//!   writer only prepends the `id:` line and copies the bytes into the ring.
//! - The ring has one writer, [`WriterCore`]. Shared publishes serialize on a
//!   `parking_lot::Mutex` around it: a lock among producers that readers never
//!   touch. An embedder with a single producer can take the writer out as a
//!   [`Publisher`] and publish with no lock at all.
//! - The writer notices a reset through one `Acquire` load of the hub's epoch
//!   per publish and moves to the new generation's ring; reset itself never
//!   waits for the writer.
//! - After each publish the writer does one RMW on the wake signal; parked
//!   readers are woken by the notifier thread, off the publish path.
//!
//! # A publish racing a reset
//!
//! The writer may have checked the epoch just before a reset and append to
//! the generation that reset then closes. Such an event must not be
//! acknowledged unless the subscribers of that generation read it, so both
//! sides order themselves on one word, the wake signal's `parked` count:
//!
//! - writer: head store (`Release`), the `AcqRel` RMW on `parked` it does
//!   anyway, then an `Acquire` load of the epoch;
//! - reset/shutdown: epoch store (`Release`), an `AcqRel` RMW on `parked`,
//!   then the generation's close (`AcqRel`).
//!
//! RMWs on one word are totally ordered. If the writer's comes first, reset
//! acquires the new head before it closes, so a subscriber that sees the
//! close also sees the event; subscriptions drain what is left after they
//! see a close, before they end. If reset's comes first, the writer's epoch
//! load sees the new epoch, and the writer appends the event again to the
//! current generation (or fails with `Shutdown`). So an `Ok` publish is in
//! the generation its `Published` names and every subscriber of that
//! generation reads it, or ends for another reason first. The cost is one
//! load of a line that only changes on reset. An event that raced a reset
//! this way may also reach subscribers of the old generation before their
//! `End(Reset)`.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{EndReason, EventError, PublishError, SubscribeError};
use crate::frame::{EncodedEvent, Event, ID_PREFIX};
use crate::generation::Generation;
use crate::id::{self, AutoIdLine, MAX_AUTO_ID_LEN};
use crate::loom::{ArcCell, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::resume::{self, Resume};
use crate::ring::{Ring, RingWriter};
use crate::subscription::{Filter, Subscription};
use crate::tag::fnv1a;
use crate::wait::Waiters;

/// Hub settings. Every field has a default; see [`HubConfig::default`].
/// Build one with the setters:
///
/// ```
/// use std::time::Duration;
/// use ssehub::{Hub, HubConfig};
///
/// let hub = Hub::with_config(HubConfig::default().capacity(1024).keep_alive(None));
/// assert_eq!(hub.config().capacity, 1024);
/// assert_eq!(hub.config().keep_alive, None::<Duration>);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Ring slots (events retained), rounded up to a power of two. Default 4096.
    pub capacity: usize,
    /// Ring byte budget for encoded frames. Default 64 MiB.
    pub max_bytes: usize,
    /// Largest encoded event, `id:` line included. Default 64 KiB; never more
    /// than `max_bytes`.
    pub max_event_bytes: usize,
    /// Most event types one subscription may filter on. Default 64.
    pub max_types: usize,
    /// Most live subscriptions. Default 100,000.
    pub max_subscribers: usize,
    /// Interval of `:` keep-alive comments to idle subscribers; `None`
    /// disables them. Default 15 s.
    pub keep_alive: Option<Duration>,
    /// Most frames handed out in one batch. Default 256.
    pub max_batch_frames: usize,
    /// Soft bound of bytes in one batch. Default 64 KiB.
    pub max_batch_bytes: usize,
    /// Source of event timestamps. Default: the system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            capacity: 4096,
            max_bytes: 64 << 20,
            max_event_bytes: 64 << 10,
            max_types: 64,
            max_subscribers: 100_000,
            keep_alive: Some(Duration::from_secs(15)),
            max_batch_frames: 256,
            max_batch_bytes: 64 << 10,
            clock: Arc::new(SystemClock::new()),
        }
    }
}

impl HubConfig {
    /// Sets [`capacity`](HubConfig::capacity).
    pub fn capacity(mut self, capacity: usize) -> HubConfig {
        self.capacity = capacity;
        self
    }

    /// Sets [`max_bytes`](HubConfig::max_bytes).
    pub fn max_bytes(mut self, max_bytes: usize) -> HubConfig {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets [`max_event_bytes`](HubConfig::max_event_bytes).
    pub fn max_event_bytes(mut self, max_event_bytes: usize) -> HubConfig {
        self.max_event_bytes = max_event_bytes;
        self
    }

    /// Sets [`max_types`](HubConfig::max_types).
    pub fn max_types(mut self, max_types: usize) -> HubConfig {
        self.max_types = max_types;
        self
    }

    /// Sets [`max_subscribers`](HubConfig::max_subscribers).
    pub fn max_subscribers(mut self, max_subscribers: usize) -> HubConfig {
        self.max_subscribers = max_subscribers;
        self
    }

    /// Sets [`keep_alive`](HubConfig::keep_alive).
    pub fn keep_alive(mut self, keep_alive: Option<Duration>) -> HubConfig {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets [`max_batch_frames`](HubConfig::max_batch_frames).
    pub fn max_batch_frames(mut self, max_batch_frames: usize) -> HubConfig {
        self.max_batch_frames = max_batch_frames;
        self
    }

    /// Sets [`max_batch_bytes`](HubConfig::max_batch_bytes).
    pub fn max_batch_bytes(mut self, max_batch_bytes: usize) -> HubConfig {
        self.max_batch_bytes = max_batch_bytes;
        self
    }

    /// Sets [`clock`](HubConfig::clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> HubConfig {
        self.clock = clock;
        self
    }
}

/// Where a published event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The generation's token.
    pub generation_token: u64,
    /// The event's sequence number within its generation.
    pub seq: u64,
}

impl Published {
    /// The auto id this position has (what a caller without an id gets).
    pub fn auto_id(&self) -> String {
        id::auto_id(self.generation_token, self.seq)
    }

    /// The id subscribers see for `event` published here: its own id, or
    /// else the auto id of this position.
    pub fn id_of(&self, event: &Event) -> String {
        event.id().map_or_else(|| self.auto_id(), str::to_owned)
    }
}

/// Figures about the current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Generation number (1 at start, +1 per reset).
    pub generation: u64,
    /// Subscriptions open now.
    pub active_subscribers: usize,
    /// Subscriptions opened in this generation.
    pub total_subscribers: u64,
    /// Events published in this generation.
    pub published: u64,
    /// Subscriptions ended because they fell behind, in this generation.
    pub lagged_disconnects: u64,
    /// The ring.
    pub ring: RingStats,
}

/// Figures about the current ring.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingStats {
    /// Slots.
    pub capacity: usize,
    /// Events retained.
    pub len: u64,
    /// Encoded bytes retained.
    pub bytes: u64,
    /// Byte budget.
    pub max_bytes: u64,
    /// Id of the oldest retained event.
    pub oldest_id: Option<String>,
    /// Id of the newest event.
    pub newest_id: Option<String>,
}

/// The one writer of the current generation's ring.
#[derive(Debug)]
pub(crate) struct WriterCore {
    generation: Arc<Generation>,
    ring: RingWriter,
    /// `id: <auto id>\n` of the next sequence, kept formatted.
    auto_id_line: AutoIdLine,
    /// `id: <caller id>\n` for events that bring their own id.
    custom_id_line: Vec<u8>,
}

impl WriterCore {
    fn new(generation: Arc<Generation>) -> WriterCore {
        let ring = Ring::claim_writer(&generation.ring)
            .expect("a fresh generation's ring has no writer yet");
        let auto_id_line = AutoIdLine::new(generation.token, ring.next_seq());
        WriterCore {
            generation,
            ring,
            auto_id_line,
            custom_id_line: Vec::new(),
        }
    }

    /// Moves to the current generation if a reset happened.
    #[inline]
    fn follow(&mut self, shared: &Shared) -> Result<(), PublishError> {
        // Acquire: pairs with reset's Release store of the epoch.
        if shared.epoch.load(Ordering::Acquire) != self.generation.number {
            if shared.shut_down.load(Ordering::Acquire) {
                return Err(PublishError::Shutdown);
            }
            let current = shared.current.load_full();
            if !Arc::ptr_eq(&current, &self.generation) {
                *self = WriterCore::new(current);
            }
        }
        Ok(())
    }

    /// After an append and the wake signal's RMW (`publish_done`): true if
    /// no reset or shutdown closed this generation before that RMW, so its
    /// subscribers read the append (see "A publish racing a reset").
    #[inline]
    fn landed(&self, shared: &Shared) -> bool {
        // Acquire: pairs with reset's Release store (through the RMWs on
        // `parked` when reset's comes first).
        shared.epoch.load(Ordering::Acquire) == self.generation.number
    }

    /// Appends one encoded event; the caller then calls `publish_done`.
    #[inline]
    fn append(&mut self, event: &EncodedEvent, now: u64) -> Result<Published, PublishError> {
        let seq = self.ring.next_seq();
        let (id_line, id_hash) = match event.id() {
            Some(custom) => {
                self.custom_id_line.clear();
                self.custom_id_line.extend_from_slice(ID_PREFIX);
                self.custom_id_line.extend_from_slice(custom.as_bytes());
                self.custom_id_line.push(b'\n');
                (&self.custom_id_line[..], fnv1a(custom.as_bytes()).max(1))
            }
            None => (self.auto_id_line.line(seq), 0),
        };
        self.ring
            .append(id_line, event.body(), event.tag(), now, id_hash)
            .map_err(|too_large| {
                PublishError::Event(EventError::TooLarge {
                    size: too_large.size,
                    limit: too_large.budget as usize,
                })
            })?;
        Ok(Published {
            generation_token: self.generation.token,
            seq,
        })
    }
}

/// State shared by the hub handle, publishers and subscriptions.
pub(crate) struct Shared {
    pub(crate) config: HubConfig,
    pub(crate) current: ArcCell<Generation>,
    /// Number of the current generation; the writer's cheap reset check.
    epoch: AtomicU64,
    /// `None` while a [`Publisher`] owns the writer.
    writer: Mutex<Option<WriterCore>>,
    reset_lock: Mutex<()>,
    pub(crate) shut_down: AtomicBool,
    /// Live subscriptions across generations (the subscriber limit).
    pub(crate) live_subscribers: AtomicUsize,
    pub(crate) waiters: Arc<Waiters>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.waiters.stop();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("generation", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The SSE fan-out hub. Cheap to clone: clones share one hub.
///
/// # Examples
///
/// ```
/// use ssehub::{Delivery, Event, Hub, SubscribeOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hub = Hub::new();
/// let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
/// let published = hub.publish(Event::new("greeting", "hello")).unwrap();
/// match subscription.recv().await {
///     Delivery::Batch(batch) => {
///         let expected = format!("id: {}\nevent: greeting\ndata: hello\n\n", published.auto_id());
///         assert_eq!(batch.bytes(), expected.as_bytes());
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub with the default configuration.
    pub fn new() -> Hub {
        Hub::with_config(HubConfig::default())
    }

    /// A hub with `config`. Capacity is rounded up to a power of two and the
    /// event size limit is capped at the ring's byte budget.
    pub fn with_config(mut config: HubConfig) -> Hub {
        config.capacity = config.capacity.max(2).next_power_of_two();
        config.max_bytes = config.max_bytes.max(64);
        // A frame may start mid-word: it needs up to one word more than its size.
        config.max_event_bytes = config.max_event_bytes.min(config.max_bytes - 8);
        config.max_batch_frames = config.max_batch_frames.max(1);
        config.max_batch_bytes = config.max_batch_bytes.max(1);
        if config.keep_alive == Some(Duration::ZERO) {
            config.keep_alive = None;
        }
        let generation = Arc::new(new_generation(&config, 1));
        let shared = Shared {
            current: ArcCell::new(generation.clone()),
            epoch: AtomicU64::new(1),
            writer: Mutex::new(Some(WriterCore::new(generation))),
            reset_lock: Mutex::new(()),
            shut_down: AtomicBool::new(false),
            live_subscribers: AtomicUsize::new(0),
            waiters: Waiters::start(),
            config,
        };
        Hub {
            shared: Arc::new(shared),
        }
    }

    /// The configuration in force (after normalization).
    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    /// Validates and encodes `event` with this hub's limits.
    ///
    /// # Errors
    ///
    /// Any [`EventError`]: invalid type or id, an id with the reserved
    /// auto-id shape, or an event over `max_event_bytes`.
    pub fn encode(&self, event: &Event) -> Result<EncodedEvent, EventError> {
        if event.id().is_some_and(id::looks_like_auto_id) {
            return Err(EventError::ReservedId);
        }
        let max = self.shared.config.max_event_bytes;
        let encoded = event.encode(max)?;
        if encoded.id().is_none() {
            // The auto id line is added at publish; make sure it still fits.
            let size = encoded.wire_len(MAX_AUTO_ID_LEN);
            if size > max {
                return Err(EventError::TooLarge { size, limit: max });
            }
        }
        Ok(encoded)
    }

    /// Publishes one event from any thread.
    ///
    /// # Errors
    ///
    /// [`PublishError::Event`] for an invalid event, [`PublishError::Shutdown`]
    /// after shutdown, [`PublishError::WriterTaken`] while a [`Publisher`]
    /// owns the writer.
    pub fn publish(&self, event: Event) -> Result<Published, PublishError> {
        let encoded = self.encode(&event)?;
        self.publish_encoded(&encoded)
    }

    /// Publishes an already encoded event (see [`Hub::encode`]); encode once,
    /// publish many times.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`]; also [`EventError::TooLarge`] if the event was
    /// encoded with a larger limit than this hub's.
    pub fn publish_encoded(&self, event: &EncodedEvent) -> Result<Published, PublishError> {
        self.check_size(event)?;
        let shared = &*self.shared;
        loop {
            let mut guard = shared.writer.lock();
            let writer = guard.as_mut().ok_or(PublishError::WriterTaken)?;
            writer.follow(shared)?;
            let published = writer.append(event, shared.config.clock.now_unix_nanos())?;
            let number = writer.generation.number;
            drop(guard);
            shared.waiters.publish_done();
            // See "A publish racing a reset": otherwise publish it again in
            // the generation that replaced this one.
            if shared.epoch.load(Ordering::Acquire) == number {
                return Ok(published);
            }
        }
    }

    /// Publishes a batch, all or nothing: every event is validated first, and
    /// if one is invalid nothing is published. Returns where each event
    /// landed, in order, as [`Hub::publish`] does for one
    /// ([`Published::id_of`] gives its id).
    ///
    /// # Errors
    ///
    /// [`PublishError::InBatch`] naming the first invalid event; otherwise as
    /// [`Hub::publish`].
    pub fn publish_batch(&self, events: &[Event]) -> Result<Vec<Published>, PublishError> {
        let encoded = events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                self.encode(event)
                    .map_err(|error| PublishError::InBatch { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if encoded.is_empty() {
            return Ok(Vec::new());
        }
        let shared = &*self.shared;
        let mut landed = Vec::with_capacity(encoded.len());
        loop {
            landed.clear();
            let mut guard = shared.writer.lock();
            let writer = guard.as_mut().ok_or(PublishError::WriterTaken)?;
            writer.follow(shared)?;
            let now = shared.config.clock.now_unix_nanos();
            for event in &encoded {
                // Cannot fail: sizes were checked against max_event_bytes,
                // which is at most the ring's budget.
                landed.push(writer.append(event, now)?);
            }
            let number = writer.generation.number;
            drop(guard);
            shared.waiters.publish_done();
            // See "A publish racing a reset".
            if shared.epoch.load(Ordering::Acquire) == number {
                return Ok(landed);
            }
        }
    }

    fn check_size(&self, event: &EncodedEvent) -> Result<(), EventError> {
        let max = self.shared.config.max_event_bytes;
        let size = event.wire_len(event.id().map_or(MAX_AUTO_ID_LEN, str::len));
        if size > max {
            return Err(EventError::TooLarge { size, limit: max });
        }
        Ok(())
    }

    /// Takes the writer out for one producer: its `publish` takes no lock.
    /// While it lives, [`Hub::publish`] returns [`PublishError::WriterTaken`];
    /// dropping it gives the writer back.
    ///
    /// Returns `None` if another `Publisher` holds the writer.
    pub fn publisher(&self) -> Option<Publisher> {
        let core = self.shared.writer.lock().take()?;
        Some(Publisher {
            hub: self.clone(),
            core: Some(core),
        })
    }

    /// Opens a subscription.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Gone`] if the resume point is not retained,
    /// [`SubscribeError::Shutdown`], [`SubscribeError::TooManySubscribers`],
    /// [`SubscribeError::TooManyTypes`], [`SubscribeError::InvalidType`].
    pub fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, SubscribeError> {
        let shared = &self.shared;
        if shared.shut_down.load(Ordering::Acquire) {
            return Err(SubscribeError::Shutdown);
        }
        let filter = Filter::new(&options.types, shared.config.max_types)?;
        let limit = shared.config.max_subscribers;
        if shared.live_subscribers.fetch_add(1, Ordering::AcqRel) >= limit {
            shared.live_subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(SubscribeError::TooManySubscribers { limit });
        }
        let generation = shared.current.load_full();
        let cursor = match resume::resolve(&generation, &options.resume) {
            Ok(cursor) => cursor,
            Err(error) => {
                shared.live_subscribers.fetch_sub(1, Ordering::AcqRel);
                return Err(error);
            }
        };
        Ok(Subscription::new(
            shared.clone(),
            generation,
            cursor,
            filter,
        ))
    }

    /// Starts a new generation: a fresh, empty ring with a new id token. Open
    /// subscriptions end with [`EndReason::Reset`] after delivering what the
    /// old generation holds; publishes after this call land in the new ring;
    /// ids from before it are `Gone`.
    ///
    /// A publish that races the reset either lands in the new generation or
    /// is read by the old generation's subscribers before they end (see the
    /// `hub` module docs); it is never acknowledged into a closed generation
    /// nobody reads. The shared writer moves to the new generation at once,
    /// releasing the old ring (unless a publish holds it right now, or a
    /// [`Publisher`] owns it: then at its next publish or drop).
    pub fn reset(&self) {
        let shared = &self.shared;
        let _serialized = shared.reset_lock.lock();
        if shared.shut_down.load(Ordering::Acquire) {
            return;
        }
        let old = shared.current.load_full();
        let new = new_generation(&shared.config, old.number + 1);
        self.swap_generation(old, new);
    }

    /// Swaps `new` in for `old` (under `reset_lock`): ends `old`'s
    /// subscriptions after the publishes that raced the swap, and moves the
    /// shared writer on at once.
    fn swap_generation(&self, old: Arc<Generation>, new: Generation) {
        let shared = &self.shared;
        let number = new.number;
        shared.current.store(Arc::new(new));
        // Release: the writer that sees the new epoch sees the new generation.
        shared.epoch.store(number, Ordering::Release);
        close_after_publishes(shared, &old, EndReason::Reset);
        // Release the old ring and its cached batches now, not at the next
        // publish. `try_lock`: a publish in progress moves the writer itself.
        if let Some(mut writer) = shared.writer.try_lock() {
            if let Some(core) = writer.as_mut() {
                let _ = core.follow(shared);
            }
        }
        old.release_caches();
    }

    /// Follower API (cluster nodes): starts a new local generation whose auto
    /// ids carry `token` and whose first frame gets sequence `first_seq`, so
    /// the node numbers frames as the cluster's source decided. Open
    /// subscriptions end with [`EndReason::Reset`] as with [`Hub::reset`].
    /// Used when the cluster moved to another generation, or when this node
    /// must rejoin the same generation past a gap it cannot fill.
    pub fn reset_to(&self, token: u64, first_seq: u64) {
        let shared = &self.shared;
        let _serialized = shared.reset_lock.lock();
        if shared.shut_down.load(Ordering::Acquire) {
            return;
        }
        let old = shared.current.load_full();
        let config = &shared.config;
        let new = Generation::new(
            old.number + 1,
            token,
            Ring::starting_at(config.capacity, config.max_bytes, first_seq),
            config.clock.now_unix_nanos(),
        );
        self.swap_generation(old, new);
    }

    /// Follower API: opens a subscription at an exact sequence of the current
    /// generation, for a caller that resolved the resume point itself (a
    /// cluster node replaying older events from its source first). `cursor`
    /// may be ahead of the ring's head: the subscription then waits until the
    /// node's writer reaches it.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Gone`] if the current generation's token is not
    /// `token` or `cursor` is older than the ring's oldest frame; otherwise
    /// as [`Hub::subscribe`].
    pub fn subscribe_at(
        &self,
        types: &[String],
        token: u64,
        cursor: u64,
    ) -> Result<Subscription, SubscribeError> {
        let shared = &self.shared;
        if shared.shut_down.load(Ordering::Acquire) {
            return Err(SubscribeError::Shutdown);
        }
        let filter = Filter::new(types, shared.config.max_types)?;
        let generation = shared.current.load_full();
        if generation.token != token {
            return Err(SubscribeError::Gone(crate::GoneReason::OtherGeneration));
        }
        let tail = generation.ring.tail();
        if cursor < tail {
            return Err(SubscribeError::Gone(crate::GoneReason::Overwritten {
                missed: tail - cursor,
            }));
        }
        let limit = shared.config.max_subscribers;
        if shared.live_subscribers.fetch_add(1, Ordering::AcqRel) >= limit {
            shared.live_subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(SubscribeError::TooManySubscribers { limit });
        }
        Ok(Subscription::new(
            shared.clone(),
            generation,
            cursor,
            filter,
        ))
    }

    /// The current generation (its token, ring and counters).
    #[cfg(feature = "cluster")]
    pub(crate) fn generation(&self) -> Arc<Generation> {
        self.shared.current.load_full()
    }

    /// Follower API: where the current generation stands — its token and
    /// the sequences its ring holds.
    pub fn position(&self) -> Position {
        let generation = self.shared.current.load_full();
        // Tail before head: a tail read after the head could pass it.
        let tail = generation.ring().tail();
        let head = generation.ring().head();
        Position {
            token: generation.token(),
            tail,
            head: head.max(tail),
        }
    }

    /// Ends every subscription for good (each delivers what its generation
    /// holds first). Later publishes and subscribes fail with `Shutdown`.
    pub fn shutdown(&self) {
        let shared = &self.shared;
        let _serialized = shared.reset_lock.lock();
        shared.shut_down.store(true, Ordering::Release);
        // Forces the writer to re-check and see `shut_down`.
        shared.epoch.store(u64::MAX, Ordering::Release);
        let current = shared.current.load_full();
        close_after_publishes(shared, &current, EndReason::Shutdown);
    }

    /// True once [`Hub::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shut_down.load(Ordering::Acquire)
    }

    /// Figures about the current generation.
    pub fn stats(&self) -> Stats {
        let generation = self.shared.current.load_full();
        let ring = &generation.ring;
        // Tail first: the head loaded after it is at least as high, however
        // far a busy writer moves both in between; and no more than a ring
        // apart (the writer may have moved `tail` since it was loaded).
        let tail = ring.tail();
        let head = ring.head();
        let tail = tail.max(head.saturating_sub(ring.capacity() as u64));
        let mut buf = Vec::new();
        let mut id_of = |seq: u64| {
            buf.clear();
            ring.read(seq, &mut buf)
                .ok()
                .and_then(|_| crate::frame::frame_id(&buf).map(str::to_owned))
        };
        let (oldest_id, newest_id) = if head > tail {
            (id_of(tail), id_of(head - 1))
        } else {
            (None, None)
        };
        Stats {
            generation: generation.number,
            active_subscribers: generation.active_subscribers.load(Ordering::Relaxed),
            total_subscribers: generation.total_subscribers.load(Ordering::Relaxed),
            published: head,
            lagged_disconnects: generation.lagged_disconnects.load(Ordering::Relaxed),
            ring: RingStats {
                capacity: ring.capacity(),
                len: head - tail,
                bytes: ring.held_bytes(),
                max_bytes: ring.max_bytes(),
                oldest_id,
                newest_id,
            },
        }
    }

    /// Readers parked waiting for events right now (for diagnostics).
    pub fn parked_readers(&self) -> usize {
        self.shared.waiters.signal.parked()
    }
}

/// Closes `generation` (after the epoch store that retires it) so that every
/// publish either is visible to its subscribers when they see the close, or
/// sees the new epoch (see "A publish racing a reset"); then wakes everyone.
fn close_after_publishes(shared: &Shared, generation: &Generation, reason: EndReason) {
    // The AcqRel RMW on `parked` that the writer also does after each append.
    shared.waiters.signal.anyone_parked();
    generation.close(reason);
    shared.waiters.wake_all();
}

fn new_generation(config: &HubConfig, number: u64) -> Generation {
    Generation::new(
        number,
        id::new_generation_token(),
        Ring::new(config.capacity, config.max_bytes),
        config.clock.now_unix_nanos(),
    )
}

/// The hub's writer, owned by one producer: publishing takes no lock.
///
/// # Examples
///
/// ```
/// use ssehub::{Event, Hub};
///
/// let hub = Hub::new();
/// let mut publisher = hub.publisher().unwrap();
/// let event = hub.encode(&Event::new("tick", "1")).unwrap();
/// publisher.publish_encoded(&event).unwrap();
/// assert!(hub.publish(Event::new("tick", "2")).is_err()); // writer is taken
/// drop(publisher);
/// assert!(hub.publish(Event::new("tick", "2")).is_ok());
/// ```
#[derive(Debug)]
pub struct Publisher {
    hub: Hub,
    core: Option<WriterCore>,
}

impl Publisher {
    /// Validates, encodes and publishes `event`.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`].
    pub fn publish(&mut self, event: Event) -> Result<Published, PublishError> {
        let encoded = self.hub.encode(&event)?;
        self.publish_encoded(&encoded)
    }

    /// Publishes an already encoded event.
    ///
    /// # Errors
    ///
    /// [`PublishError::Shutdown`] after shutdown; [`EventError::TooLarge`] if
    /// it was encoded with a larger limit than the hub's.
    #[inline]
    pub fn publish_encoded(&mut self, event: &EncodedEvent) -> Result<Published, PublishError> {
        self.hub.check_size(event)?;
        let shared = &*self.hub.shared;
        let core = self.core.as_mut().expect("the core is only taken in drop");
        loop {
            core.follow(shared)?;
            let published = core.append(event, shared.config.clock.now_unix_nanos())?;
            shared.waiters.publish_done();
            // See "A publish racing a reset": otherwise publish it again in
            // the generation that replaced this one.
            if core.landed(shared) {
                return Ok(published);
            }
        }
    }

    /// Follower API (cluster nodes): appends `event` as sequence `seq` of the
    /// generation with `token`, stamped `timestamp` (Unix nanoseconds), all
    /// three decided by the cluster's source rather than by this hub. Frames
    /// must come in order: `seq` is the ring's next sequence.
    ///
    /// # Errors
    ///
    /// [`FollowError::OtherGeneration`] if the current generation is not
    /// `token` (call [`Hub::reset_to`] first), [`FollowError::OutOfOrder`] if
    /// `seq` is not the next sequence, [`FollowError::Publish`] after shutdown
    /// or for a frame over the ring's budget.
    pub fn append_at(
        &mut self,
        token: u64,
        seq: u64,
        event: &EncodedEvent,
        timestamp: u64,
    ) -> Result<Published, FollowError> {
        let shared = &*self.hub.shared;
        let core = self.core.as_mut().expect("the core is only taken in drop");
        core.follow(shared).map_err(FollowError::Publish)?;
        if core.generation.token != token {
            return Err(FollowError::OtherGeneration);
        }
        let expected = core.ring.next_seq();
        if seq != expected {
            return Err(FollowError::OutOfOrder { expected, got: seq });
        }
        let published = core
            .append(event, timestamp)
            .map_err(FollowError::Publish)?;
        shared.waiters.publish_done();
        // A `reset_to` that raced this append closed the generation it went
        // into: the caller must not count the frame as delivered.
        if !core.landed(shared) {
            return Err(FollowError::OtherGeneration);
        }
        Ok(published)
    }

    /// The hub this publisher writes to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        *self.hub.shared.writer.lock() = self.core.take();
    }
}

/// Where a hub's current generation stands ([`Hub::position`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Position {
    /// The generation token that auto ids carry (`<16 hex>-<n>`).
    pub token: u64,
    /// The oldest sequence the ring still holds.
    pub tail: u64,
    /// The sequence the next frame gets (`head - tail` frames are held).
    pub head: u64,
}

/// Why [`Publisher::append_at`] refused a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowError {
    /// The hub's current generation has another token.
    OtherGeneration,
    /// The frame is not the ring's next sequence.
    OutOfOrder {
        /// The ring's next sequence.
        expected: u64,
        /// The sequence offered.
        got: u64,
    },
    /// The hub is shut down, or the frame does not fit the ring.
    Publish(PublishError),
}

impl std::fmt::Display for FollowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FollowError::OtherGeneration => f.write_str("frame of another generation"),
            FollowError::OutOfOrder { expected, got } => {
                write!(f, "frame {got} out of order (next is {expected})")
            }
            FollowError::Publish(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for FollowError {}

/// What to subscribe to and where to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Event types to receive; empty means all.
    pub types: Vec<String>,
    /// Where to start.
    pub resume: Resume,
}

impl SubscribeOptions {
    /// Everything published from now on.
    pub fn live() -> SubscribeOptions {
        SubscribeOptions::default()
    }

    /// Restricts the subscription to these event types.
    pub fn types<I, S>(mut self, types: I) -> SubscribeOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Starts after the event with this id (exclusive).
    pub fn after_id(mut self, id: impl Into<String>) -> SubscribeOptions {
        self.resume = Resume::AfterId(id.into());
        self
    }

    /// Starts at the first retained event with a timestamp at or after
    /// `unix_nanos`.
    pub fn from_timestamp(mut self, unix_nanos: u64) -> SubscribeOptions {
        self.resume = Resume::FromTimestamp(unix_nanos);
        self
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Delivery;

    /// Issue 9 item 8: after a reset with no further publish, nothing but
    /// the caller may keep the old generation (its ring's arena, its cached
    /// batches) alive.
    #[test]
    fn reset_releases_the_old_generation() {
        let hub = Hub::with_config(HubConfig::default().keep_alive(None));
        let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
        hub.publish(Event::new("t", "x")).unwrap();
        assert!(matches!(subscription.try_recv(), Some(Delivery::Batch(_))));
        drop(subscription);
        let old = hub.shared.current.load_full();
        let weak_ring = Arc::downgrade(&old.ring);
        assert!(old.batches.get(0).is_some(), "the batch was cached");
        hub.reset();
        assert!(old.batches.get(0).is_none(), "cached batches released");
        drop(old);
        assert!(weak_ring.upgrade().is_none(), "the old ring is freed");
    }

    /// The tag hook forces two types onto one tag: a filtered subscriber
    /// must still get only the type it asked for.
    #[test]
    fn a_tag_collision_never_delivers_a_type_not_asked_for() {
        crate::tag::collision::force("wanted", 42);
        crate::tag::collision::force("intruder", 42);
        assert_eq!(crate::TypeTag::of("wanted"), crate::TypeTag::of("intruder"));
        let hub = Hub::with_config(HubConfig::default().keep_alive(None));
        let mut subscription = hub
            .subscribe(SubscribeOptions::live().types(["wanted"]))
            .unwrap();
        hub.publish(Event::new("intruder", "a")).unwrap();
        hub.publish(Event::new("wanted", "b")).unwrap();
        hub.publish(Event::new("intruder", "c")).unwrap();
        let Some(Delivery::Batch(batch)) = subscription.try_recv() else {
            panic!("the wanted event is delivered");
        };
        assert_eq!(batch.len(), 1);
        assert!(
            batch.bytes().ends_with(b"event: wanted\ndata: b\n\n"),
            "{:?}",
            batch.bytes()
        );
        // Only intruders since: nothing to deliver, and the cursor moved on.
        hub.publish(Event::new("intruder", "d")).unwrap();
        assert_eq!(subscription.try_recv(), None);
        hub.publish(Event::new("wanted", "e")).unwrap();
        let Some(Delivery::Batch(batch)) = subscription.try_recv() else {
            panic!("the next wanted event is delivered");
        };
        assert_eq!(batch.len(), 1);
        assert!(batch.bytes().ends_with(b"data: e\n\n"));
    }
}
