//! The engine's follower API, used by cluster nodes: a ring that starts at
//! a given sequence, frames appended with numbers, tokens and times decided
//! elsewhere, and subscriptions opened at an exact sequence.

use std::time::Duration;

use ssehub::{Delivery, EncodedEvent, Event, FollowError, Hub, HubConfig, SubscribeError};

fn quiet() -> HubConfig {
    HubConfig::default().keep_alive(None).capacity(8)
}

#[tokio::test]
async fn appended_frames_are_the_frames_the_leader_published() {
    // The "leader" publishes normally; the follower appends the same events
    // with the leader's token, sequences and times.
    let leader = Hub::with_config(quiet());
    let follower = Hub::with_config(quiet());
    let mut from_leader = leader.subscribe(ssehub::SubscribeOptions::live()).unwrap();
    let events = [
        Event::new("a", "one"),
        Event::new("b", "two").with_id("order-2"),
    ];
    let mut published = Vec::new();
    for event in &events {
        published.push(leader.publish(event.clone()).unwrap());
    }
    let token = published[0].generation_token;
    follower.reset_to(token, 0);
    let mut from_follower = follower
        .subscribe(ssehub::SubscribeOptions::live())
        .unwrap();
    let mut publisher = follower.publisher().unwrap();
    for (event, at) in events.iter().zip(&published) {
        let encoded = leader.encode(event).unwrap();
        let rebuilt = EncodedEvent::from_encoded_parts(
            encoded.body().clone(),
            event.event_type(),
            event.id(),
        )
        .unwrap();
        publisher.append_at(token, at.seq, &rebuilt, 42).unwrap();
    }
    let (Delivery::Batch(a), Delivery::Batch(b)) =
        (from_leader.recv().await, from_follower.recv().await)
    else {
        panic!("batches expected");
    };
    assert_eq!(a.bytes(), b.bytes());
    assert_eq!(follower.stats().ring.newest_id.as_deref(), Some("order-2"));
}

#[test]
fn appends_out_of_order_or_of_another_generation_are_refused() {
    let hub = Hub::with_config(quiet());
    hub.reset_to(7, 100);
    let mut publisher = hub.publisher().unwrap();
    let event = hub.encode(&Event::new("t", "x")).unwrap();
    assert_eq!(
        publisher.append_at(7, 101, &event, 1),
        Err(FollowError::OutOfOrder {
            expected: 100,
            got: 101
        })
    );
    assert_eq!(
        publisher.append_at(8, 100, &event, 1),
        Err(FollowError::OtherGeneration)
    );
    let at = publisher.append_at(7, 100, &event, 1).unwrap();
    assert_eq!(at.auto_id(), "0000000000000007-101");
    assert_eq!(
        hub.stats().ring.oldest_id.as_deref(),
        Some("0000000000000007-101")
    );
}

#[tokio::test]
async fn a_subscription_at_a_sequence_ahead_waits_for_it_and_older_is_gone() {
    let hub = Hub::with_config(quiet());
    hub.reset_to(7, 0);
    let mut publisher = hub.publisher().unwrap();
    let event = |n: u32| hub.encode(&Event::new("t", n.to_string())).unwrap();
    // Ahead of the head: waits for sequence 2, then gets only it.
    let mut ahead = hub.subscribe_at(&[], 7, 2).unwrap();
    for seq in 0..2 {
        publisher.append_at(7, seq, &event(seq as u32), 1).unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(50), ahead.recv())
            .await
            .is_err()
    );
    publisher.append_at(7, 2, &event(2), 1).unwrap();
    let Delivery::Batch(batch) = ahead.recv().await else {
        panic!()
    };
    assert_eq!(batch.len(), 1);
    assert!(batch.bytes().ends_with(b"data: 2\n\n"));
    // Past the ring's oldest frame, or another token: gone.
    for seq in 3..20 {
        publisher.append_at(7, seq, &event(seq as u32), 1).unwrap();
    }
    assert!(matches!(
        hub.subscribe_at(&[], 7, 5),
        Err(SubscribeError::Gone(_))
    ));
    assert!(matches!(
        hub.subscribe_at(&[], 8, 19),
        Err(SubscribeError::Gone(_))
    ));
    assert!(hub.subscribe_at(&[], 7, 12).is_ok());
}
