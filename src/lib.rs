//! ssehub: a lock-free, high-throughput Server-Sent Events fan-out engine.
//!
//! One writer encodes each event once into SSE wire bytes and appends it to a
//! single-writer seqlock ring. Subscribers read through cursors with no
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
#![warn(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod batch_cache;
pub mod clock;
pub mod error;
pub mod frame;
// The engine's internals are not API. Only the loom models (`loom-tests/`,
// built with `--cfg loom`) reach them directly, so they are public there.
#[cfg(loom)]
pub mod generation;
#[cfg(not(loom))]
#[allow(dead_code)] // accessors the loom models use
mod generation;
#[cfg(all(feature = "http", not(loom)))]
pub mod http;
mod hub;
#[cfg_attr(loom, allow(dead_code))]
mod id;
mod id_index;
#[cfg(feature = "http")]
pub mod load;
pub(crate) mod loom;
pub mod parse;
mod resume;
#[cfg(loom)]
pub mod ring;
#[cfg(not(loom))]
#[allow(dead_code)] // reads the loom models use
mod ring;
pub mod store;
mod subscription;
mod tag;
#[cfg(loom)]
pub mod wait;
#[cfg(not(loom))]
#[allow(dead_code)] // the loom models drive the signal directly
mod wait;

pub use error::{EndReason, EventError, GoneReason, PublishError, SubscribeError};
pub use frame::{EncodedEvent, Event};
pub use hub::{Hub, HubConfig, Published, Publisher, RingStats, Stats, SubscribeOptions};
pub use resume::Resume;
pub use subscription::{Batch, Delivery, SseStream, Subscription, KEEP_ALIVE};
pub use tag::TypeTag;
