//! loom models of the hub and its subscriptions, through the real `Hub`,
//! `Publisher`, `Subscription`, batch cache and notifier thread (the `loom`
//! shim swaps their atomics, mutexes, threads and `Notify` for loom's):
//!
//! - a publish racing `reset`/`shutdown` is read by the old generation's
//!   subscribers, or published again in the new one, or refused — never
//!   acknowledged into a closed generation nobody reads (issue 9, item 1);
//! - a parked subscription is woken by a publish and by a reset, and is no
//!   longer counted as parked once it delivers (item 7);
//! - unfiltered subscribers sharing batches through the cache while the
//!   writer laps them get exact, gap-free frames or `Lagged`.
//!
//! The head/tail read order (item 2) is modelled in the ring's `seek` model
//! and stressed through `Hub::stats` in `tests/hub_races.rs`: a hub-level
//! stats model with the notifier thread did not finish in minutes.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ssehub-loom-tests --release`
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ssehub::clock::ManualClock;
use ssehub::{
    Delivery, EndReason, Event, Hub, HubConfig, PublishError, SubscribeOptions, Subscription,
};

/// A two-slot hub with a fixed clock and no keep-alive.
fn small_hub() -> Hub {
    Hub::with_config(
        HubConfig::default()
            .capacity(2)
            .max_bytes(256)
            .keep_alive(None)
            .clock(Arc::new(ManualClock::new(1))),
    )
}

/// The ids and data of every frame available now, and the end if it came.
fn drain(subscription: &mut Subscription) -> (Vec<(String, String)>, Option<EndReason>) {
    let mut frames = Vec::new();
    for _ in 0..16 {
        match subscription.try_recv() {
            Some(Delivery::Batch(batch)) => {
                for frame in batch.frames() {
                    let text = std::str::from_utf8(frame).unwrap();
                    let field = |name: &str| {
                        text.lines()
                            .find_map(|line| line.strip_prefix(name))
                            .unwrap_or_default()
                            .to_owned()
                    };
                    frames.push((field("id: "), field("data: ")));
                }
            }
            Some(Delivery::End(reason)) => return (frames, Some(reason)),
            Some(Delivery::KeepAlive) | None => break,
        }
    }
    (frames, None)
}

fn ids(frames: &[(String, String)]) -> Vec<&str> {
    frames.iter().map(|(id, _)| id.as_str()).collect()
}

#[test]
fn a_publish_racing_reset_is_read_or_published_again() {
    loom::model(|| {
        let hub = small_hub();
        let mut old = hub.subscribe(SubscribeOptions::live()).unwrap();
        let writer = {
            let hub = hub.clone();
            thread::spawn(move || {
                let mut publisher = hub.publisher().unwrap();
                publisher.publish(Event::new("t", "raced"))
            })
        };
        hub.reset();
        // Closed: the old subscriber drains what its generation holds, ends.
        let (old_frames, end) = drain(&mut old);
        assert_eq!(end, Some(EndReason::Reset));
        let published = writer
            .join()
            .unwrap()
            .expect("a reset does not fail a publish");
        let id = published.auto_id();
        if !ids(&old_frames).contains(&id.as_str()) {
            // Then it must be in the current generation, for its readers.
            let mut current = hub
                .subscribe(SubscribeOptions::live().from_timestamp(0))
                .unwrap();
            let (frames, _) = drain(&mut current);
            assert!(
                ids(&frames).contains(&id.as_str()),
                "Ok({id}) read by nobody: old generation got {old_frames:?}, current {frames:?}"
            );
        }
    });
}

#[test]
fn a_publish_racing_shutdown_is_read_or_refused() {
    loom::model(|| {
        let hub = small_hub();
        let mut old = hub.subscribe(SubscribeOptions::live()).unwrap();
        let writer = {
            let hub = hub.clone();
            thread::spawn(move || hub.publish(Event::new("t", "raced")))
        };
        hub.shutdown();
        let (frames, end) = drain(&mut old);
        assert_eq!(end, Some(EndReason::Shutdown));
        match writer.join().unwrap() {
            Ok(published) => assert!(
                ids(&frames).contains(&published.auto_id().as_str()),
                "Ok({}) after shutdown, read by nobody",
                published.auto_id()
            ),
            Err(error) => assert_eq!(error, PublishError::Shutdown),
        }
    });
}

#[test]
fn a_parked_subscription_wakes_on_publish_and_then_is_not_parked() {
    loom::model(|| {
        let hub = small_hub();
        let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
        let reader = thread::spawn(move || {
            // Lost wake-up = this never returns (loom reports a deadlock).
            let delivery = loom::future::block_on(subscription.recv());
            (delivery, subscription)
        });
        hub.publish(Event::new("t", "x")).unwrap();
        let (delivery, subscription) = reader.join().unwrap();
        assert!(matches!(delivery, Delivery::Batch(_)), "{delivery:?}");
        assert_eq!(
            hub.parked_readers(),
            0,
            "a subscription that delivered is not parked"
        );
        drop(subscription);
    });
}

#[test]
fn a_parked_subscription_wakes_on_reset() {
    loom::model(|| {
        let hub = small_hub();
        let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
        let reader = thread::spawn(move || loom::future::block_on(subscription.recv()));
        hub.reset();
        assert_eq!(reader.join().unwrap(), Delivery::End(EndReason::Reset));
    });
}

/// One read of whatever is there (shared or copied): the data fields.
fn read_once(subscription: &mut Subscription) -> Vec<String> {
    match subscription.try_recv() {
        Some(Delivery::Batch(batch)) => batch
            .frames()
            .map(|frame| {
                let text = std::str::from_utf8(frame).unwrap();
                text.lines()
                    .find_map(|line| line.strip_prefix("data: "))
                    .unwrap()
                    .to_owned()
            })
            .collect(),
        Some(Delivery::End(reason)) => {
            assert!(matches!(reason, EndReason::Lagged { .. }), "{reason:?}");
            Vec::new()
        }
        None => Vec::new(),
        Some(other) => panic!("{other:?}"),
    }
}

#[test]
fn readers_sharing_batches_get_exact_frames_or_lagged() {
    loom::model(|| {
        // Batches start at 0 (first reader) and 2 (second reader): under
        // loom the cache has two slots and both starts map to one, so the
        // second reader may find the first one's batch there.
        let hub = small_hub();
        let mut first = hub.subscribe(SubscribeOptions::live()).unwrap();
        let reader = thread::spawn(move || read_once(&mut first));
        let mut publisher = hub.publisher().unwrap();
        for n in 0..2 {
            publisher.publish(Event::new("t", n.to_string())).unwrap();
        }
        let mut second = hub.subscribe(SubscribeOptions::live()).unwrap();
        publisher.publish(Event::new("t", "2")).unwrap();
        let theirs = read_once(&mut second);
        let mine = reader.join().unwrap();
        for (start, got) in [(0, mine), (2, theirs)] {
            // Consecutive from the start: no gap, no duplicate, no stranger.
            let expected: Vec<String> = (start..start + got.len()).map(|n| n.to_string()).collect();
            assert_eq!(got, expected, "reader from {start}");
        }
    });
}
