//! Behaviour of the hub through its public API: publish, subscribe, resume,
//! filters, timestamps, reset, shutdown, keep-alive, limits and counters.

use std::sync::Arc;
use std::time::Duration;

use ssehub::clock::ManualClock;
use ssehub::{
    Delivery, EndReason, Event, EventError, GoneReason, Hub, HubConfig, PublishError,
    SubscribeError, SubscribeOptions,
};

fn hub_with(capacity: usize) -> Hub {
    Hub::with_config(HubConfig::default().capacity(capacity).keep_alive(None))
}

/// The `field` line's value of every frame available now (panics on an
/// end, or on a frame without that line).
fn drain_field(subscription: &mut ssehub::Subscription, field: &str) -> Vec<String> {
    let prefix = format!("{field}: ");
    let mut values = Vec::new();
    while let Some(delivery) = subscription.try_recv() {
        match delivery {
            Delivery::Batch(batch) => {
                for frame in batch.frames() {
                    let text = std::str::from_utf8(frame).unwrap();
                    let value = text
                        .lines()
                        .find_map(|line| line.strip_prefix(prefix.as_str()))
                        .unwrap();
                    values.push(value.to_owned());
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    values
}

/// Data payloads of every frame available now (panics on an end).
fn drain_data(subscription: &mut ssehub::Subscription) -> Vec<String> {
    drain_field(subscription, "data")
}

/// Ids of every frame available now (panics on an end).
fn drain_ids(subscription: &mut ssehub::Subscription) -> Vec<String> {
    drain_field(subscription, "id")
}

fn publish_n(hub: &Hub, range: std::ops::Range<u32>) -> Vec<String> {
    range
        .map(|n| {
            hub.publish(Event::new("t", n.to_string()))
                .unwrap()
                .auto_id()
        })
        .collect()
}

#[test]
fn frames_carry_auto_ids_of_the_generation() {
    let hub = hub_with(8);
    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
    let first = hub.publish(Event::new("a", "x\ny")).unwrap();
    let second = hub.publish(Event::new("a", "z")).unwrap();
    assert_eq!(second.seq, first.seq + 1);
    assert_eq!(first.generation_token, second.generation_token);
    let Some(Delivery::Batch(batch)) = sub.try_recv() else {
        panic!("expected a batch")
    };
    assert_eq!(batch.len(), 2, "both frames in one batch");
    let expected = format!(
        "id: {}\nevent: a\ndata: x\ndata: y\n\nid: {}\nevent: a\ndata: z\n\n",
        first.auto_id(),
        second.auto_id()
    );
    assert_eq!(batch.bytes(), expected.as_bytes());
    assert!(first.auto_id().ends_with("-1"));
    assert_eq!(sub.try_recv(), None);
}

#[test]
fn resume_after_auto_id_edges() {
    let hub = hub_with(4);
    let ids = publish_n(&hub, 0..6); // retained: seqs 2..6 (data "2".."5")
    let resume = |id: &str| hub.subscribe(SubscribeOptions::live().after_id(id));

    // After the event just before the oldest retained: everything retained.
    let mut sub = resume(&ids[1]).unwrap();
    assert_eq!(drain_data(&mut sub), ["2", "3", "4", "5"]);
    // After the oldest retained.
    let mut sub = resume(&ids[2]).unwrap();
    assert_eq!(drain_data(&mut sub), ["3", "4", "5"]);
    // Just overwritten: one event would be missing.
    assert_eq!(
        resume(&ids[0]).unwrap_err(),
        SubscribeError::Gone(GoneReason::Overwritten { missed: 1 })
    );
    // After the newest: live.
    let mut sub = resume(&ids[5]).unwrap();
    assert!(drain_data(&mut sub).is_empty());
    hub.publish(Event::new("t", "6")).unwrap();
    assert_eq!(drain_data(&mut sub), ["6"]);
    // Beyond the newest: live from now.
    let token = &ids[0][..16];
    let mut sub = resume(&format!("{token}-999")).unwrap();
    assert!(drain_data(&mut sub).is_empty());
    hub.publish(Event::new("t", "7")).unwrap();
    assert_eq!(drain_data(&mut sub), ["7"]);
    // Another generation's id, or a previous process's.
    assert_eq!(
        resume("0123456789abcdef-3").unwrap_err(),
        SubscribeError::Gone(GoneReason::OtherGeneration)
    );
    // Empty id counts as absent.
    let mut sub = resume("").unwrap();
    assert!(drain_data(&mut sub).is_empty());
}

#[test]
fn resume_from_zero_replays_whole_generation_until_overwritten() {
    let hub = hub_with(4);
    let ids = publish_n(&hub, 0..3);
    let zero = format!("{}-0", &ids[0][..16]);
    let mut sub = hub
        .subscribe(SubscribeOptions::live().after_id(zero.clone()))
        .unwrap();
    assert_eq!(drain_data(&mut sub), ["0", "1", "2"]);
    publish_n(&hub, 3..5);
    assert!(matches!(
        hub.subscribe(SubscribeOptions::live().after_id(zero)),
        Err(SubscribeError::Gone(GoneReason::Overwritten { missed: 1 }))
    ));
}

#[test]
fn custom_ids_resume_and_reserved_shapes_are_refused() {
    let hub = hub_with(4);
    hub.publish(Event::new("t", "a").with_id("order-1"))
        .unwrap();
    hub.publish(Event::new("t", "b").with_id("order-2"))
        .unwrap();
    hub.publish(Event::new("t", "c")).unwrap();
    let mut sub = hub
        .subscribe(SubscribeOptions::live().after_id("order-1"))
        .unwrap();
    assert_eq!(drain_data(&mut sub), ["b", "c"]);
    assert_eq!(
        hub.subscribe(SubscribeOptions::live().after_id("order-9"))
            .unwrap_err(),
        SubscribeError::Gone(GoneReason::UnknownId)
    );
    assert_eq!(
        hub.publish(Event::new("t", "x").with_id("0123456789abcdef-1")),
        Err(PublishError::Event(EventError::ReservedId))
    );
    // Overwritten custom ids are gone.
    publish_n(&hub, 0..4);
    assert_eq!(
        hub.subscribe(SubscribeOptions::live().after_id("order-2"))
            .unwrap_err(),
        SubscribeError::Gone(GoneReason::UnknownId)
    );
}

/// Found by the `hub_ops` fuzz target, whose checker took any 16-character
/// prefix for an auto id's generation token: ids close to the reserved
/// `<16 lowercase hex digits>-<number>` shape but not of it are caller ids —
/// accepted, delivered verbatim, resumable — and the auto ids around them
/// keep counting by sequence. (Uppercase hex is of the reserved shape.)
#[test]
fn ids_close_to_the_auto_id_shape_are_caller_ids() {
    let hub = hub_with(16);
    let mut live = hub.subscribe(SubscribeOptions::live()).unwrap();
    let near = [
        "(----------------0",  // 16 characters before the last '-', not hex
        "0123456789abcdef-1a", // number part not all digits
        "0123456789abcde-1",   // 15 hex digits
        "0123456789abcdef-",   // no number
    ];
    let first = hub.publish(Event::new("t", "auto")).unwrap().auto_id();
    for id in near {
        hub.publish(Event::new("t", id).with_id(id)).unwrap();
    }
    assert_eq!(
        hub.publish(Event::new("t", "x").with_id("0123456789ABCDEF-1")),
        Err(PublishError::Event(EventError::ReservedId))
    );
    let last = hub.publish(Event::new("t", "auto")).unwrap().auto_id();
    let (token, number) = first.split_once('-').unwrap();
    assert_eq!(number, "1");
    assert_eq!(last, format!("{token}-{}", near.len() + 2));
    let mut expected = vec![first.clone()];
    expected.extend(near.iter().map(|id| (*id).to_owned()));
    expected.push(last.clone());
    assert_eq!(drain_ids(&mut live), expected);
    for (index, id) in near.iter().enumerate() {
        let mut resumed = hub
            .subscribe(SubscribeOptions::live().after_id(*id))
            .unwrap();
        assert_eq!(drain_ids(&mut resumed), expected[index + 2..], "after {id}");
    }
}

#[test]
fn filters_by_type() {
    let hub = hub_with(64);
    let mut prices = hub
        .subscribe(SubscribeOptions::live().types(["price", "", "trade"]))
        .unwrap();
    let mut all = hub.subscribe(SubscribeOptions::live()).unwrap();
    for (event_type, data) in [("price", "1"), ("news", "2"), ("trade", "3"), ("", "4")] {
        hub.publish(Event::new(event_type, data)).unwrap();
    }
    assert_eq!(drain_data(&mut prices), ["1", "3"]);
    assert_eq!(drain_data(&mut all), ["1", "2", "3", "4"]);
    let mut messages = hub
        .subscribe(SubscribeOptions::live().types(["message"]).after_id(""))
        .unwrap();
    hub.publish(Event::new("", "5")).unwrap();
    assert_eq!(drain_data(&mut messages), ["5"]);
}

#[test]
fn type_limits() {
    let hub = Hub::with_config(HubConfig::default().max_types(2));
    assert_eq!(
        hub.subscribe(SubscribeOptions::live().types(["a", "b", "c"]))
            .unwrap_err(),
        SubscribeError::TooManyTypes {
            requested: 3,
            limit: 2
        }
    );
    assert_eq!(
        hub.subscribe(SubscribeOptions::live().types(["a\nb"]))
            .unwrap_err(),
        SubscribeError::InvalidType
    );
    assert!(hub
        .subscribe(SubscribeOptions::live().types(["a", "b", "a"]))
        .is_ok());
}

#[test]
fn timestamps_with_a_manual_clock() {
    let clock = ManualClock::new(1_000);
    let hub = Hub::with_config(
        HubConfig::default()
            .capacity(4)
            .keep_alive(None)
            .clock(Arc::new(clock.clone())),
    );
    for n in 0..3 {
        clock.set(2_000 + n * 100); // 2000, 2100, 2200
        hub.publish(Event::new("t", n.to_string())).unwrap();
    }
    let from = |at: u64| hub.subscribe(SubscribeOptions::live().from_timestamp(at));
    // Before the generation began: the whole generation.
    assert_eq!(drain_data(&mut from(0).unwrap()), ["0", "1", "2"]);
    assert_eq!(drain_data(&mut from(2_100).unwrap()), ["1", "2"]);
    assert_eq!(drain_data(&mut from(2_101).unwrap()), ["2"]);
    // In the future: live.
    let mut live = from(9_999).unwrap();
    assert!(drain_data(&mut live).is_empty());
    clock.set(2_300);
    hub.publish(Event::new("t", "3")).unwrap();
    assert_eq!(drain_data(&mut live), ["3"]);
    // Overwrite 2000 and 2100: T <= 2100 is gone, T = 2101 is not.
    clock.set(2_400);
    publish_n(&hub, 4..6);
    assert_eq!(
        from(2_100).unwrap_err(),
        SubscribeError::Gone(GoneReason::TimestampOverwritten)
    );
    assert_eq!(
        from(0).unwrap_err(),
        SubscribeError::Gone(GoneReason::TimestampOverwritten)
    );
    assert_eq!(drain_data(&mut from(2_101).unwrap()), ["2", "3", "4", "5"]);
}

#[test]
fn lapped_subscriber_ends_lagged_and_is_counted() {
    let hub = hub_with(4);
    let mut slow = hub.subscribe(SubscribeOptions::live()).unwrap();
    publish_n(&hub, 0..10);
    assert_eq!(
        slow.try_recv(),
        Some(Delivery::End(EndReason::Lagged { missed: 6 }))
    );
    assert_eq!(
        slow.try_recv(),
        Some(Delivery::End(EndReason::Lagged { missed: 6 }))
    );
    assert_eq!(hub.stats().lagged_disconnects, 1);
}

#[test]
fn reset_ends_old_subscriptions_and_starts_a_new_generation() {
    let hub = hub_with(8);
    let old_ids = publish_n(&hub, 0..3);
    let mut old = hub.subscribe(SubscribeOptions::live()).unwrap();
    hub.reset();
    assert_eq!(old.try_recv(), Some(Delivery::End(EndReason::Reset)));
    let stats = hub.stats();
    assert_eq!((stats.generation, stats.published), (2, 0));
    assert_eq!(stats.total_subscribers, 0);
    assert_eq!(
        hub.subscribe(SubscribeOptions::live().after_id(old_ids[1].clone()))
            .unwrap_err(),
        SubscribeError::Gone(GoneReason::OtherGeneration)
    );
    let new_ids = publish_n(&hub, 10..12);
    assert_ne!(new_ids[0][..16], old_ids[0][..16]);
    let mut sub = hub
        .subscribe(SubscribeOptions::live().after_id(new_ids[0].clone()))
        .unwrap();
    assert_eq!(drain_data(&mut sub), ["11"]);
    // A timestamp before the reset replays the whole new generation.
    let mut sub = hub
        .subscribe(SubscribeOptions::live().from_timestamp(0))
        .unwrap();
    assert_eq!(drain_data(&mut sub), ["10", "11"]);
}

#[tokio::test]
async fn reset_wakes_parked_readers() {
    let hub = hub_with(8);
    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
    let reader = tokio::spawn(async move { sub.recv().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    hub.reset();
    let delivery = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("woken by reset")
        .unwrap();
    assert_eq!(delivery, Delivery::End(EndReason::Reset));
}

#[tokio::test]
async fn shutdown_ends_everything_for_good() {
    let hub = hub_with(8);
    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
    let reader = tokio::spawn(async move { sub.recv().await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    hub.shutdown();
    let delivery = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("woken by shutdown")
        .unwrap();
    assert_eq!(delivery, Delivery::End(EndReason::Shutdown));
    assert_eq!(
        hub.publish(Event::new("t", "x")),
        Err(PublishError::Shutdown)
    );
    assert_eq!(
        hub.subscribe(SubscribeOptions::live()).unwrap_err(),
        SubscribeError::Shutdown
    );
    hub.reset(); // no effect after shutdown
    assert!(hub.is_shut_down());
}

#[tokio::test]
async fn parked_readers_wake_on_publish() {
    let hub = hub_with(64);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
            tokio::spawn(async move { sub.recv().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(hub.parked_readers() > 0);
    hub.publish(Event::new("t", "wake")).unwrap();
    for reader in readers {
        let delivery = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("woken by publish")
            .unwrap();
        assert!(matches!(delivery, Delivery::Batch(batch) if batch.len() == 1));
    }
}

#[tokio::test(start_paused = true)]
async fn keep_alive_after_idle_interval() {
    let hub = Hub::with_config(HubConfig::default().keep_alive(Some(Duration::from_secs(15))));
    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(sub.recv().await, Delivery::KeepAlive);
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    // Activity pushes the next keep-alive back.
    tokio::time::advance(Duration::from_secs(10)).await;
    hub.publish(Event::new("t", "x")).unwrap();
    assert!(matches!(sub.recv().await, Delivery::Batch(_)));
    let after_event = tokio::time::Instant::now();
    assert_eq!(sub.recv().await, Delivery::KeepAlive);
    assert_eq!(after_event.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_zero_disables() {
    let hub = Hub::with_config(HubConfig::default().keep_alive(Some(Duration::ZERO)));
    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(3600), sub.recv()).await;
    assert!(waited.is_err(), "no keep-alive when disabled");
}

#[test]
fn subscriber_limit_and_counters() {
    let hub = Hub::with_config(HubConfig::default().max_subscribers(2));
    let a = hub.subscribe(SubscribeOptions::live()).unwrap();
    let _b = hub.subscribe(SubscribeOptions::live()).unwrap();
    assert_eq!(
        hub.subscribe(SubscribeOptions::live()).unwrap_err(),
        SubscribeError::TooManySubscribers { limit: 2 }
    );
    drop(a);
    let _c = hub.subscribe(SubscribeOptions::live()).unwrap();
    let stats = hub.stats();
    assert_eq!(stats.active_subscribers, 2);
    assert_eq!(stats.total_subscribers, 3);
}

#[test]
fn stats_describe_the_ring() {
    let hub = hub_with(4);
    let empty = hub.stats();
    assert_eq!((empty.ring.oldest_id, empty.ring.newest_id), (None, None));
    assert_eq!(empty.ring.len, 0);
    let ids = publish_n(&hub, 0..6);
    hub.publish(Event::new("t", "x").with_id("mine")).unwrap();
    let stats = hub.stats();
    assert_eq!(stats.published, 7);
    assert_eq!(stats.ring.capacity, 4);
    assert_eq!(stats.ring.len, 4);
    assert_eq!(stats.ring.oldest_id.as_deref(), Some(ids[3].as_str()));
    assert_eq!(stats.ring.newest_id.as_deref(), Some("mine"));
    let frame_len = |id: &str, data: &str| format!("id: {id}\nevent: t\ndata: {data}\n\n").len();
    let expected: usize = (3..6)
        .map(|n| frame_len(&ids[n], &n.to_string()))
        .sum::<usize>()
        + frame_len("mine", "x");
    assert_eq!(stats.ring.bytes, expected as u64);
}

#[test]
fn batches_are_all_or_nothing() {
    let hub = hub_with(16);
    let events = vec![
        Event::new("t", "ok"),
        Event::new("bad\ntype", "x"),
        Event::new("t", "ok"),
    ];
    assert_eq!(
        hub.publish_batch(&events),
        Err(PublishError::InBatch {
            index: 1,
            error: EventError::InvalidType
        })
    );
    assert_eq!(hub.stats().published, 0);
    let events = [Event::new("t", "1").with_id("x"), Event::new("t", "2")];
    let landed = hub.publish_batch(&events).unwrap();
    assert_eq!((landed[0].seq, landed[1].seq), (0, 1));
    assert_eq!(landed[0].id_of(&events[0]), "x");
    assert!(landed[1].id_of(&events[1]).ends_with("-2"));
    assert_eq!(landed[1].id_of(&events[1]), landed[1].auto_id());
    assert!(hub.publish_batch(&[]).unwrap().is_empty());
}

#[test]
fn oversize_events_are_refused() {
    let hub = Hub::with_config(HubConfig::default().max_event_bytes(100));
    assert!(matches!(
        hub.publish(Event::new("t", "x".repeat(100))),
        Err(PublishError::Event(EventError::TooLarge { limit: 100, .. }))
    ));
    assert!(hub.publish(Event::new("t", "x".repeat(20))).is_ok());
}

#[test]
fn dedicated_publisher_owns_the_writer() {
    let hub = hub_with(16);
    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
    let mut publisher = hub.publisher().unwrap();
    assert!(hub.publisher().is_none());
    publisher.publish(Event::new("t", "1")).unwrap();
    assert_eq!(
        hub.publish(Event::new("t", "2")),
        Err(PublishError::WriterTaken)
    );
    // The publisher follows a reset.
    hub.reset();
    let published = publisher.publish(Event::new("t", "3")).unwrap();
    assert_eq!(published.seq, 0);
    assert!(matches!(sub.try_recv(), Some(Delivery::Batch(batch)) if batch.len() == 1));
    assert_eq!(sub.try_recv(), Some(Delivery::End(EndReason::Reset)));
    drop(publisher);
    hub.publish(Event::new("t", "4")).unwrap();
    assert_eq!(hub.stats().published, 2);
}

/// Several reader threads against a fast writer: each sees a gap-free,
/// duplicate-free run of the sequence, ending only by lag.
#[test]
fn concurrent_readers_see_gap_free_sequences() {
    let hub = hub_with(256);
    let total = 50_000u32;
    let readers: Vec<_> = (0..3)
        .map(|reader| {
            let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
            std::thread::spawn(move || {
                let mut expected = 0u32;
                loop {
                    match sub.try_recv() {
                        Some(Delivery::Batch(batch)) => {
                            for frame in batch.frames() {
                                let text = std::str::from_utf8(frame).unwrap();
                                let data =
                                    text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                                let n: u32 = data.parse().unwrap();
                                assert_eq!(n, expected, "reader {reader}: gap or duplicate");
                                expected += 1;
                            }
                        }
                        Some(Delivery::End(EndReason::Lagged { missed })) => {
                            assert!(missed > 0);
                            return (expected, true);
                        }
                        Some(other) => panic!("unexpected {other:?}"),
                        None if expected == total => return (expected, false),
                        None => std::hint::spin_loop(),
                    }
                }
            })
        })
        .collect();
    for n in 0..total {
        hub.publish(Event::new("t", n.to_string())).unwrap();
    }
    for reader in readers {
        let (seen, lagged) = reader.join().unwrap();
        assert!(lagged || seen == total);
    }
}

/// Many producers through the shared handle: every event lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_producers_many_async_readers() {
    let hub = hub_with(1 << 16);
    let producers = 4u32;
    let per_producer = 2_000u32;
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
            tokio::spawn(async move {
                let mut seen = vec![0u8; (producers * per_producer) as usize];
                let mut count = 0;
                while count < seen.len() {
                    match sub.recv().await {
                        Delivery::Batch(batch) => {
                            for frame in batch.frames() {
                                let text = std::str::from_utf8(frame).unwrap();
                                let data =
                                    text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                                let n: usize = data.parse().unwrap();
                                seen[n] += 1;
                                count += 1;
                            }
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                assert!(seen.iter().all(|&times| times == 1), "each exactly once");
            })
        })
        .collect();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for i in 0..per_producer {
                    let n = p * per_producer + i;
                    hub.publish(Event::new("t", n.to_string())).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("readers finish")
            .unwrap();
    }
}

#[test]
fn unfiltered_subscribers_at_one_position_share_batch_bytes() {
    let hub = hub_with(64);
    let mut a = hub.subscribe(SubscribeOptions::live()).unwrap();
    let mut b = hub.subscribe(SubscribeOptions::live()).unwrap();
    let mut filtered = hub
        .subscribe(SubscribeOptions::live().types(["t"]))
        .unwrap();
    publish_n(&hub, 0..10);
    let (Some(Delivery::Batch(first)), Some(Delivery::Batch(second))) =
        (a.try_recv(), b.try_recv())
    else {
        panic!("expected batches")
    };
    assert_eq!(first, second);
    assert_eq!(
        first.bytes().as_ptr(),
        second.bytes().as_ptr(),
        "shared, not copied"
    );
    let Some(Delivery::Batch(own)) = filtered.try_recv() else {
        panic!("expected a batch")
    };
    assert_eq!(own.bytes(), first.bytes());
    assert_ne!(own.bytes().as_ptr(), first.bytes().as_ptr());
}

#[test]
fn custom_id_lookup_finds_every_retained_id_and_prefers_the_newest() {
    // Many more ids than slots pass through the ring's id index; every
    // retained one must resolve to its own event.
    let hub = hub_with(8);
    for n in 0..200 {
        hub.publish(Event::new("t", "old").with_id(format!("old-{n}")))
            .unwrap();
    }
    for n in 0..8 {
        hub.publish(Event::new("t", n.to_string()).with_id(format!("k{n}")))
            .unwrap();
    }
    for n in 0..8usize {
        let mut sub = hub
            .subscribe(SubscribeOptions::live().after_id(format!("k{n}")))
            .unwrap();
        let expected: Vec<String> = (n + 1..8).map(|m| m.to_string()).collect();
        assert_eq!(drain_data(&mut sub), expected, "after k{n}");
    }
    // A repeated id resumes after its newest occurrence.
    hub.publish(Event::new("t", "again").with_id("k3")).unwrap();
    hub.publish(Event::new("t", "last")).unwrap();
    let mut sub = hub
        .subscribe(SubscribeOptions::live().after_id("k3"))
        .unwrap();
    assert_eq!(drain_data(&mut sub), ["last"]);
}

#[tokio::test]
async fn a_subscriber_ended_as_lagged_counts_once_and_says_what_it_missed() {
    let hub = Hub::with_config(HubConfig::default().keep_alive(None));
    let mut subscription = hub.subscribe(SubscribeOptions::live()).unwrap();
    for n in 0..3 {
        hub.publish(Event::new("t", n.to_string())).unwrap();
    }
    // Its consumer could not keep up (say, a network write timed out).
    subscription.end_lagged();
    subscription.end_lagged(); // ending twice counts once
    assert_eq!(hub.stats().lagged_disconnects, 1);
    match subscription.recv().await {
        Delivery::End(EndReason::Lagged { missed }) => assert_eq!(missed, 3),
        other => panic!("{other:?}"),
    }
}
