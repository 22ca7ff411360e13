//! ssehub: a lock-free, high-throughput Server-Sent Events fan-out engine.
//!
//! One writer encodes each event once into SSE wire bytes and appends it to a
//! single-writer seqlock [`ring`]. Subscribers read through cursors with no
//! lock on the publish path, filter by event type, and resume from an event
//! id or a timestamp; a cursor that was lapped gets `Gone`, never torn or
//! missing data. `reset()` swaps in a new generation atomically.
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod frame;
pub(crate) mod loom;
pub mod store;
pub mod tag;

pub use error::{EndReason, EventError, GoneReason, PublishError, SubscribeError};
pub use frame::{EncodedEvent, Event};
pub use tag::TypeTag;
