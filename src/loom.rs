//! Concurrency primitives, re-exported from `std` normally and from `loom`
//! under `--cfg loom`, so the loom models in `loom-tests/` exercise the real
//! ring, wake-up and generation code (the shim tokio uses).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
