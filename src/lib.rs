//! ssehub: a lock-free, high-throughput Server-Sent Events fan-out engine.
//!
//! One writer encodes each event once into SSE wire bytes and appends it to a
//! single-writer seqlock [`ring`]. Subscribers read through cursors with no
//! lock on the publish path, filter by event type, and resume from an event
//! id or a timestamp; a cursor that was lapped gets `Gone`, never torn or
//! missing data. [`Hub::reset`] swaps in a new generation atomically.
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
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

#[cfg(not(loom))]
mod batch_cache;
pub mod clock;
#[cfg(all(feature = "cluster", not(loom)))]
pub mod cluster;
pub mod error;
pub mod frame;
#[cfg_attr(loom, allow(dead_code))]
pub mod generation;
#[cfg(all(feature = "http", not(loom)))]
pub mod http;
#[cfg(not(loom))]
mod hub;
#[cfg_attr(loom, allow(dead_code))]
mod id;
mod id_index;
#[cfg(feature = "http")]
pub mod load;
pub(crate) mod loom;
pub mod parse;
#[cfg(not(loom))]
mod resume;
pub mod ring;
pub mod store;
#[cfg(not(loom))]
mod subscription;
pub mod tag;
pub mod wait;

pub use error::{EndReason, EventError, GoneReason, PublishError, SubscribeError};
pub use frame::{EncodedEvent, Event};
#[cfg(not(loom))]
pub use hub::{
    FollowError, Hub, HubConfig, Published, Publisher, RingStats, Stats, SubscribeOptions,
};
#[cfg(not(loom))]
pub use resume::Resume;
#[cfg(not(loom))]
pub use subscription::{Batch, Delivery, SseStream, Subscription, KEEP_ALIVE};
pub use tag::TypeTag;
