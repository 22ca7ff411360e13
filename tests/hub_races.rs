//! Races between the hub's writer, its readers and reset/shutdown (issue 9,
//! items 1, 2 and 7), each pinned down deterministically where a clock hook
//! allows it, otherwise bounded in time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ssehub::clock::Clock;
use ssehub::{Delivery, EndReason, Event, Hub, HubConfig, PublishError, SubscribeOptions};

/// A clock that, once armed, blocks the next reader inside
/// `now_unix_nanos` until released: the writer reads the clock after it
/// checked the epoch and before it appends, so this holds a publish right in
/// its race window with a reset.
#[derive(Debug, Default)]
struct GateClock {
    armed: AtomicBool,
    state: Mutex<(bool, bool)>, // (entered, released)
    changed: Condvar,
    nanos: AtomicU64,
}

impl GateClock {
    fn arm(&self) {
        *self.state.lock().unwrap() = (false, false);
        self.armed.store(true, Ordering::SeqCst);
    }

    fn wait_entered(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, Duration::from_secs(10), |s| !s.0)
            .unwrap();
        assert!(
            !timeout.timed_out() && state.0,
            "the writer never read the clock"
        );
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

impl Clock for GateClock {
    fn now_unix_nanos(&self) -> u64 {
        if self.armed.swap(false, Ordering::SeqCst) {
            let mut state = self.state.lock().unwrap();
            state.0 = true;
            self.changed.notify_all();
            let (state, _) = self
                .changed
                .wait_timeout_while(state, Duration::from_secs(10), |s| !s.1)
                .unwrap();
            drop(state);
        }
        self.nanos.fetch_add(1, Ordering::SeqCst)
    }
}

fn gated_hub() -> (Hub, Arc<GateClock>) {
    let clock = Arc::new(GateClock::default());
    let hub = Hub::with_config(HubConfig::default().keep_alive(None).clock(clock.clone()));
    (hub, clock)
}

/// Every frame available now, as (id line, data) pairs, and how it ended.
fn drain(subscription: &mut ssehub::Subscription) -> (Vec<String>, Option<EndReason>) {
    let mut frames = Vec::new();
    for _ in 0..1000 {
        match subscription.try_recv() {
            Some(Delivery::Batch(batch)) => {
                for frame in batch.frames() {
                    frames.push(String::from_utf8(frame.to_vec()).unwrap());
                }
            }
            Some(Delivery::End(reason)) => return (frames, Some(reason)),
            Some(Delivery::KeepAlive) | None => break,
        }
    }
    (frames, None)
}

/// The race of issue 9 item 1, driven by `publish` on another thread while
/// this one resets (or shuts down) the hub: the writer has passed its epoch
/// check and sits in the clock when the reset happens.
fn publish_racing(
    close: impl FnOnce(&Hub),
    publish: impl FnOnce(&Hub) -> Result<ssehub::Published, PublishError> + Send + 'static,
) -> (
    Result<ssehub::Published, PublishError>,
    ssehub::Subscription,
    Option<ssehub::Subscription>,
    Hub,
) {
    let (hub, clock) = gated_hub();
    hub.publish(Event::new("t", "before")).unwrap();
    let mut old = hub.subscribe(SubscribeOptions::live()).unwrap();
    clock.arm();
    let writer = {
        let hub = hub.clone();
        std::thread::spawn(move || publish(&hub))
    };
    clock.wait_entered();
    close(&hub);
    // A subscriber of the generation that is current now.
    let new = hub.subscribe(SubscribeOptions::live().after_id("")).ok();
    // The old generation's subscriber ends (the reset wakes it) before the
    // writer goes on.
    let (_, end) = drain(&mut old);
    assert!(end.is_some(), "the old subscriber saw the close");
    clock.release();
    let result = writer.join().unwrap();
    (result, old, new, hub)
}

fn assert_landed_where_read(
    result: Result<ssehub::Published, PublishError>,
    new: Option<ssehub::Subscription>,
    hub: &Hub,
) {
    match result {
        Ok(published) => {
            let mut new = new.expect("subscribed after the reset");
            let (frames, end) = drain(&mut new);
            assert_eq!(end, None);
            let id_line = format!("id: {}\n", published.auto_id());
            assert!(
                frames.iter().any(|frame| frame.starts_with(&id_line)),
                "Ok({published:?}) but the current generation's subscriber got {frames:?} \
                 (generation {})",
                hub.stats().generation
            );
            assert_eq!(hub.stats().published, 1, "in the current generation");
        }
        Err(error) => panic!("a publish racing a reset should land: {error}"),
    }
}

#[test]
fn an_owned_publisher_racing_reset_lands_in_the_new_generation() {
    let (result, _old, new, hub) = publish_racing(
        |hub| hub.reset(),
        |hub| {
            let mut publisher = hub.publisher().unwrap();
            publisher.publish(Event::new("t", "raced"))
        },
    );
    assert_landed_where_read(result, new, &hub);
}

#[test]
fn a_shared_publish_racing_reset_lands_in_the_new_generation() {
    let (result, _old, new, hub) = publish_racing(
        |hub| hub.reset(),
        |hub| hub.publish(Event::new("t", "raced")),
    );
    assert_landed_where_read(result, new, &hub);
}

#[test]
fn a_publish_batch_racing_reset_lands_in_the_new_generation() {
    let (result, _old, new, hub) = publish_racing(
        |hub| hub.reset(),
        |hub| {
            hub.publish_batch(&[Event::new("t", "raced")])
                .map(|landed| landed[0])
        },
    );
    assert_landed_where_read(result, new, &hub);
}

#[test]
fn a_publish_racing_shutdown_is_refused() {
    let (result, _old, new, _hub) = publish_racing(
        |hub| hub.shutdown(),
        |hub| {
            let mut publisher = hub.publisher().unwrap();
            publisher.publish(Event::new("t", "raced"))
        },
    );
    assert!(new.is_none(), "no subscribing after shutdown");
    assert_eq!(result, Err(PublishError::Shutdown));
}

/// A publish racing a close is never lost to a subscriber of the closed
/// generation that is still reading: either it ends before it, or it gets it.
#[test]
fn subscribers_drain_what_their_generation_holds_before_ending() {
    let hub = Hub::with_config(HubConfig::default().keep_alive(None));
    let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
    hub.publish(Event::new("t", "1")).unwrap();
    hub.publish(Event::new("t", "2")).unwrap();
    hub.reset();
    let (frames, end) = drain(&mut subscription);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(end, Some(EndReason::Reset));
}

/// Issue 9 item 2: `stats` read `head` before `tail`; a busy writer moved
/// `tail` past it and `len = head - tail` overflowed (a panic in debug).
#[test]
fn stats_under_a_busy_writer_never_invert_the_window() {
    let hub = Hub::with_config(HubConfig::default().capacity(2).keep_alive(None));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (hub, stop) = (hub.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut publisher = hub.publisher().unwrap();
            let event = hub.encode(&Event::new("t", "x")).unwrap();
            let mut published = 0u64;
            while !stop.load(Ordering::Relaxed) && published < 200_000_000 {
                publisher.publish_encoded(&event).unwrap();
                published += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut calls = 0u64;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while Instant::now() < deadline && calls < 20_000_000 {
            let stats = hub.stats();
            assert!(stats.ring.len <= 2, "len {} > capacity 2", stats.ring.len);
            calls += 1;
        }
    }));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Issue 9 item 7: a subscriber that was woken and delivers is not parked;
/// it must leave the parked count, or the writer keeps kicking the notifier
/// on every publish.
#[tokio::test(flavor = "current_thread")]
async fn a_delivering_subscriber_is_not_counted_as_parked() {
    let hub = Hub::with_config(HubConfig::default().keep_alive(None));
    let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
    let reader = tokio::spawn(async move {
        let delivery = subscription.recv().await;
        (delivery, subscription)
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.parked_readers() == 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(hub.parked_readers(), 1, "the reader parked");
    hub.publish(Event::new("t", "x")).unwrap();
    let (delivery, subscription) = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("woken")
        .unwrap();
    assert!(matches!(delivery, Delivery::Batch(_)), "{delivery:?}");
    // The subscription is alive and busy (it just delivered), not waiting.
    assert_eq!(
        hub.parked_readers(),
        0,
        "a delivering subscriber is not parked"
    );
    drop(subscription);
}
