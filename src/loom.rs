//! Concurrency primitives, re-exported from `std` (and `parking_lot`,
//! `arc-swap`) normally and from `loom` under `--cfg loom`, so the loom
//! models in `loom-tests/` exercise the real ring, wake-up, generation,
//! batch cache, hub and subscription code (the shim tokio uses).
//!
//! Under loom the lock-free `ArcSwap` is replaced by a loom mutex around an
//! `Arc` (loom cannot see inside `arc-swap`, whose reclamation is its own,
//! tested concern); the models then check the protocols built on top of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

#[cfg(not(loom))]
pub(crate) use parking_lot::Mutex;

/// `parking_lot`'s mutex interface over loom's mutex.
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().expect("no panics while locked")
    }

    pub(crate) fn try_lock(&self) -> Option<loom::sync::MutexGuard<'_, T>> {
        self.0.try_lock().ok()
    }
}

/// A shared `std::sync::Arc<T>` that can be replaced: `ArcSwap` normally.
#[cfg(not(loom))]
pub(crate) type ArcCell<T> = arc_swap::ArcSwap<T>;

/// A shared `std::sync::Arc<T>` that can be replaced (loom: a mutex).
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct ArcCell<T>(Mutex<std::sync::Arc<T>>);

#[cfg(loom)]
impl<T> ArcCell<T> {
    pub(crate) fn new(value: std::sync::Arc<T>) -> ArcCell<T> {
        ArcCell(Mutex::new(value))
    }

    pub(crate) fn load_full(&self) -> std::sync::Arc<T> {
        self.0.lock().clone()
    }

    pub(crate) fn store(&self, value: std::sync::Arc<T>) {
        *self.0.lock() = value;
    }
}

/// Threads: `std` normally, loom's model threads under loom.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{park, Builder, Thread};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{park, Builder, Thread};

    #[cfg(loom)]
    pub(crate) use loom::sync::mpsc::channel;
    #[cfg(not(loom))]
    pub(crate) use std::sync::mpsc::channel;
}
