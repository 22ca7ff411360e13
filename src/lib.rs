//! ssehub: a lock-free, high-throughput Server-Sent Events fan-out engine.
//!
//! One writer encodes each event once into SSE wire bytes and appends it to
//! a single-writer seqlock ring. Subscribers read through cursors with no
//! lock on the publish path, filter by event type, and resume from an event
//! id or a timestamp; a cursor that was lapped gets `Gone`, never torn or
//! missing data. [`Hub::reset`] swaps in a new generation atomically.
//!
//! # Lagging
//!
//! The ring keeps the newest [`HubConfig::capacity`] events (and at most
//! [`HubConfig::max_bytes`] of them). A subscriber that falls further behind
//! than that has missed events: its [`Subscription`] ends with
//! [`EndReason::Lagged`] (saying how many), never with a gap, a torn frame or
//! a duplicate. Unlike `tokio::sync::broadcast`, the subscription does not
//! skip ahead by itself; the client resubscribes (live, or from a resume
//! point that is still retained).
//!
//! # Resuming
//!
//! [`SubscribeOptions::after_id`] starts after an event id (an auto id, in
//! O(1), or a caller-supplied id, through the ring's id index);
//! [`SubscribeOptions::from_timestamp`] at the first retained event at or
//! after a time. A point that is no longer retained is refused with
//! [`SubscribeError::Gone`] rather than served with a gap.
//!
//! # Reset and shutdown
//!
//! [`Hub::reset`] starts a new generation: a new, empty ring whose auto ids
//! carry a new token. Subscriptions of the old generation deliver what it
//! holds, then end with [`EndReason::Reset`]; its ids are `Gone` from then
//! on. [`Hub::shutdown`] ends every subscription the same way with
//! [`EndReason::Shutdown`] and refuses later publishes and subscribes. A
//! publish that races either is read by the old generation's subscribers, or
//! lands in the new generation, or (shutdown) fails — it is never
//! acknowledged into a generation nobody reads.
//!
//! # Threads
//!
//! [`Hub::new`] starts one OS thread, `ssehub-notify`, which wakes parked
//! subscribers so that publishing never does; it ends when the last handle
//! to the hub is dropped. Subscriptions are futures for any async runtime's
//! tasks (the keep-alive timer needs tokio's time driver). Publishing is
//! synchronous: [`Hub::publish`] from any thread (producers serialize on a
//! lock readers never touch), or [`Publisher`] from one, with no lock.
//!
//! # Examples
//!
//! ```
//! use ssehub::{Delivery, Event, Hub, SubscribeOptions};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let hub = Hub::new();
//! let first = hub.publish(Event::new("news", "one")).unwrap();
//! hub.publish(Event::new("news", "two")).unwrap();
//!
//! // Resume after the first event: gets exactly the second.
//! let mut subscription = hub
//!     .subscribe(SubscribeOptions::live().after_id(first.auto_id()))
//!     .unwrap();
//! let Delivery::Batch(batch) = subscription.recv().await else { panic!() };
//! assert_eq!(batch.len(), 1);
//! assert!(batch.bytes().ends_with(b"event: news\ndata: two\n\n"));
//! # }
//! ```
//!
//! # Publishing
//!
//! [`Hub::publish`] and [`Hub::publish_batch`] may be called from any
//! thread; they serialize on a lock that producers share and subscribers
//! never touch. An embedder with one producer can take the writer out with
//! [`Hub::publisher`] and publish with no lock at all. Either way the event
//! is encoded once, outside any lock, and an auto id
//! `<16-hex generation>-<n>` is assigned unless the event carries its own.
//!
//! # Lagging
//!
//! The ring is bounded in events ([`HubConfig::capacity`]) and bytes
//! ([`HubConfig::max_bytes`]); the writer never waits for a subscriber. A
//! subscriber that falls more than the ring behind is not handed a gap: its
//! next [`Subscription::recv`] returns [`Delivery::End`] with
//! [`EndReason::Lagged`] (how many events it missed), and a later resume from
//! its last id fails with [`SubscribeError::Gone`] (HTTP 410).
//!
//! # Resuming
//!
//! [`SubscribeOptions`] starts a subscription live, after an event id
//! (exclusive: the events *after* it), or at a timestamp (the events at or
//! after it). A point that is no longer retained — overwritten, or from
//! another generation — is `Gone`; a point newer than anything published
//! means "live from now". Resolving a resume point is O(1) for auto and
//! caller-supplied ids and a binary search for timestamps.
//!
//! # Reset
//!
//! [`Hub::reset`] swaps in a new generation (a new ring and a new random
//! generation token) atomically: every subscription of the old generation
//! ends with [`EndReason::Reset`], ids of the old generation become `Gone`,
//! and later publishes land in the new ring. Reset never waits for the
//! writer.
//!
//! # Shutdown
//!
//! [`Hub::shutdown`] ends every subscription with [`EndReason::Shutdown`];
//! later publishes and subscribes fail with an error.
//!
//! # Threads
//!
//! [`Hub::new`] starts one OS thread, `ssehub-notify`, that wakes parked
//! subscribers so the publish path stays O(1) and free of syscalls; it
//! stops when the last handle to the hub (hub, publisher or subscription)
//! is dropped. Subscriptions are futures:
//! [`Subscription::recv`] needs a tokio runtime with the time driver
//! (keep-alive timers); publishing needs no runtime at all.
//!
//! # Features
//!
//! - `axum`: [`http::HubRouter`], the embeddable router with every route of
//!   the HTTP contract and its JSON error envelope.
//! - `server`: [`http::serve`], the accept loop `ssehub serve` runs, for
//!   embedders who want the same performance.
//!
//! - `cluster`: [`cluster`], nodes that share ids, order and history
//!   through Redis Streams (`ssehub serve --redis URL`).
//!
//! None is on by default: the engine alone depends on no HTTP stack.
#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod batch_cache;
pub mod clock;
#[cfg(all(feature = "cluster", not(loom)))]
pub mod cluster;
pub mod error;
pub mod frame;
// The engine's internals are not API. Only the loom models (`loom-tests/`,
// built with `--cfg loom`) reach them directly, so they are public there.
#[cfg(loom)]
pub mod generation;
#[cfg(not(loom))]
#[allow(dead_code)] // accessors the loom models use
mod generation;
#[cfg(all(feature = "axum", not(loom)))]
pub mod http;
mod hub;
#[cfg_attr(loom, allow(dead_code))]
mod id;
mod id_index;
pub(crate) mod loom;
mod resume;
#[cfg(loom)]
pub mod ring;
#[cfg(not(loom))]
#[allow(dead_code)] // reads the loom models use
mod ring;
mod subscription;
mod tag;
#[cfg(loom)]
pub mod wait;
#[cfg(not(loom))]
#[allow(dead_code)] // the loom models drive the signal directly
mod wait;

pub use error::{
    ConfigError, EndReason, EventError, GoneReason, PublishError, Setting, SubscribeError,
};
pub use frame::{EncodedEvent, Event};
pub use hub::{
    FollowError, Hub, HubConfig, Position, Published, Publisher, RingStats, Stats, SubscribeOptions,
};
pub use resume::Resume;
pub use subscription::{Batch, Delivery, SseStream, Subscription, KEEP_ALIVE};
pub use tag::TypeTag;
