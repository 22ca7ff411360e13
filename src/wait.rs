//! Parking caught-up readers and waking them without a lock on the writer.
//!
//! # Design
//!
//! An eventcount split in two:
//!
//! - [`WakeSignal`], lock-free and loom-modelled: a count of parked readers
//!   and a "kick pending" flag. After every publish the writer does one
//!   read-modify-write on the parked count (`fetch_add(0)`); if it is zero the
//!   publish is done, O(1), no lock, no syscall. If readers are parked it sets
//!   the pending flag and, if the flag was clear, unparks the notifier thread.
//! - `Waiters`: the notifier thread, which owns the O(parked) part: it calls
//!   `tokio::sync::Notify::notify_waiters`, which wakes every registered
//!   reader. The writer never runs that loop and never touches Notify's lock.
//!
//! # No lost wake-up
//!
//! A reader that finds nothing to read (1) registers a `Notified` future,
//! (2) increments `parked` with an `AcqRel` RMW, (3) re-checks the ring head
//! and the closed flag, and only then sleeps. The writer (a) stores the new
//! head (`Release`), then (b) does its `AcqRel` RMW on `parked`. The two RMWs
//! are totally ordered on `parked`'s modification order:
//! - reader's first: the writer reads a non-zero count and kicks the
//!   notifier; the reader's registration (1) happens-before that kick, so
//!   `notify_waiters` finds and wakes it;
//! - writer's first: the reader's RMW reads from (a release sequence headed
//!   by) the writer's, so the head store (a) is visible to the re-check (3).
//!
//! # Orderings
//!
//! `parked`: `AcqRel` RMWs on both sides (the argument above). `pending`:
//! `AcqRel` swap; the unpark/park pair then carries happens-before to the
//! notifier thread (std documents that `unpark` synchronizes with `park`).

use crossbeam_utils::CachePadded;

use crate::loom::{AtomicBool, AtomicUsize, Ordering};

/// The lock-free half of the eventcount (see the module docs).
#[derive(Debug, Default)]
pub struct WakeSignal {
    parked: CachePadded<AtomicUsize>,
    pending: CachePadded<AtomicBool>,
}

impl WakeSignal {
    /// A signal with nobody parked.
    pub fn new() -> WakeSignal {
        WakeSignal::default()
    }

    /// Writer side, after making new state visible (a `Release` store): true
    /// when readers are parked and a kick is needed.
    pub fn anyone_parked(&self) -> bool {
        // AcqRel RMW, not a load: orders against readers' `begin_park`
        // (see "No lost wake-up").
        self.parked.fetch_add(0, Ordering::AcqRel) != 0
    }

    /// Reader side: announce parking. Re-check the condition afterwards.
    pub fn begin_park(&self) {
        self.parked.fetch_add(1, Ordering::AcqRel);
    }

    /// Reader side: the park ended (woken, or the future dropped).
    pub fn end_park(&self) {
        self.parked.fetch_sub(1, Ordering::Release);
    }

    /// Readers currently parked.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// Writer side: returns true if this call set the pending flag, so the
    /// caller must unpark the notifier. Cheap when a kick is already pending.
    pub fn claim_kick(&self) -> bool {
        !self.pending.load(Ordering::Relaxed) && !self.pending.swap(true, Ordering::AcqRel)
    }

    /// Notifier side: true if a kick was pending (and clears it).
    pub fn take_kick(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }
}

pub(crate) use notifier::Waiters;

mod notifier {
    use std::sync::Arc;

    #[cfg(not(loom))]
    use tokio::sync::Notify;

    #[cfg(loom)]
    use super::loom_notify::Notify;
    use super::WakeSignal;
    use crate::loom::thread::{self, Thread};
    use crate::loom::{AtomicBool, Ordering};

    /// The wake-up hub of one [`Hub`](crate::Hub): the signal, the `Notify`
    /// readers wait on, and the notifier thread that bridges them.
    #[derive(Debug)]
    pub(crate) struct Waiters {
        pub(crate) signal: WakeSignal,
        pub(crate) notify: Notify,
        stop: AtomicBool,
        thread: Thread,
        /// Joined by [`Waiters::stop`], so the thread does not outlive its
        /// hub. (Under loom the model thread stays detached, as before.)
        #[cfg(not(loom))]
        handle: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    }

    impl Waiters {
        /// Starts the notifier thread.
        pub(crate) fn start() -> Arc<Waiters> {
            let (sender, receiver) = thread::channel::<Arc<Waiters>>();
            let handle = thread::Builder::new()
                .name("ssehub-notify".into())
                .spawn(move || {
                    let Ok(waiters) = receiver.recv() else {
                        return;
                    };
                    waiters.run();
                })
                .expect("spawning the ssehub notifier thread");
            let waiters = Arc::new(Waiters {
                signal: WakeSignal::new(),
                notify: Notify::new(),
                stop: AtomicBool::new(false),
                thread: handle.thread().clone(),
                #[cfg(not(loom))]
                handle: std::sync::Mutex::new(Some(handle)),
            });
            // The thread holds a strong reference until `stop`.
            let _ = sender.send(waiters.clone());
            waiters
        }

        fn run(&self) {
            loop {
                // Check before parking, not only after: the park token is
                // not ours alone. The channel `recv` that handed us `self`
                // may park this thread too, and an unpark from a publish that
                // lands while it does is coalesced with the channel's own
                // and consumed there. `pending` is the truth; park is sleep.
                if self.signal.take_kick() {
                    self.notify.notify_waiters();
                }
                if self.stop.load(Ordering::Acquire) {
                    // Wake anyone left so they observe the closed state.
                    self.notify.notify_waiters();
                    return;
                }
                thread::park();
            }
        }

        /// After new state was published: wake parked readers if any.
        #[inline]
        pub(crate) fn publish_done(&self) {
            if self.signal.anyone_parked() && self.signal.claim_kick() {
                self.thread.unpark();
            }
        }

        /// Wake every parked reader (used on reset and shutdown).
        pub(crate) fn wake_all(&self) {
            self.signal.anyone_parked();
            self.signal.claim_kick();
            self.thread.unpark();
        }

        /// Ends the notifier thread after one last wake-up and waits for
        /// it to exit (it is parked or about to park, so that is prompt): a
        /// dropped hub leaves no thread behind. Not when called on the
        /// notifier thread itself (a waker there could drop the last handle).
        pub(crate) fn stop(&self) {
            self.stop.store(true, Ordering::Release);
            self.thread.unpark();
            #[cfg(not(loom))]
            if std::thread::current().id() != self.thread.id() {
                let handle = match self.handle.lock() {
                    Ok(mut handle) => handle.take(),
                    Err(poisoned) => poisoned.into_inner().take(),
                };
                if let Some(handle) = handle {
                    // The thread only wakes readers; a panic there has been
                    // reported by the panic hook already.
                    let _ = handle.join();
                }
            }
        }
    }
}

/// `tokio::sync::Notify`'s `notify_waiters` contract for the loom models
/// (tokio's own is not built for loom outside tokio): a `notified()` future
/// completes after any `notify_waiters` call made after it was created.
#[cfg(loom)]
mod loom_notify {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use crate::loom::Mutex;

    #[derive(Debug, Default)]
    struct State {
        /// `notify_waiters` calls so far.
        calls: u64,
        wakers: Vec<Waker>,
    }

    /// See the module docs.
    #[derive(Debug, Default)]
    pub(crate) struct Notify {
        state: Mutex<State>,
    }

    impl Notify {
        pub(crate) fn new() -> Notify {
            Notify::default()
        }

        pub(crate) fn notified(&self) -> Notified<'_> {
            Notified {
                notify: self,
                created_at: self.state.lock().calls,
            }
        }

        pub(crate) fn notify_waiters(&self) {
            let wakers = {
                let mut state = self.state.lock();
                state.calls += 1;
                std::mem::take(&mut state.wakers)
            };
            for waker in wakers {
                waker.wake();
            }
        }
    }

    pub(crate) struct Notified<'a> {
        notify: &'a Notify,
        created_at: u64,
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut state = self.notify.state.lock();
            if state.calls != self.created_at {
                Poll::Ready(())
            } else {
                state.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use crate::{Delivery, Event, Hub, HubConfig, SubscribeOptions};

    /// Regression: a publish right after the hub was built could lose its
    /// kick when the notifier thread's start-up `recv` consumed the unpark,
    /// leaving `pending` set and every later wake-up of that hub lost.
    #[tokio::test(flavor = "current_thread")]
    async fn a_publish_right_after_start_wakes_the_reader() {
        for round in 0..1000 {
            let hub = Hub::with_config(HubConfig::default().keep_alive(None));
            let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
            let reader = tokio::spawn(async move { subscription.recv().await });
            tokio::task::yield_now().await;
            hub.publish(Event::new("t", "x")).unwrap();
            match tokio::time::timeout(Duration::from_secs(2), reader).await {
                Ok(Ok(Delivery::Batch(_))) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
    }

    /// A stopped notifier thread has exited when `stop` returns: it held
    /// the only other reference to its `Waiters`, dropped as it returns.
    /// (Detached, it outlived its hub, and LeakSanitizer in the fuzz smoke
    /// reported its thread handle and TLS destructor list as leaks.)
    #[test]
    fn stop_returns_after_the_notifier_thread_has_exited() {
        for round in 0..200 {
            let waiters = super::Waiters::start();
            if round % 2 == 0 {
                // Also after the thread has received its `Waiters` and parked.
                std::thread::sleep(Duration::from_millis(1));
            }
            waiters.stop();
            assert_eq!(
                std::sync::Arc::strong_count(&waiters),
                1,
                "round {round}: the notifier thread still runs after stop"
            );
        }
    }
}
