//! Eviction exactness, reclamation and scoping of the session event store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ssehub_store::{
    message_cost, Config, EventId, ManualClock, SessionId, Store, StoreError, StreamId,
};

fn payload(tag: u8, len: usize) -> Bytes {
    Bytes::from(vec![tag; len])
}

#[test]
fn budget_is_exact_and_eviction_is_oldest_first_across_sessions() {
    let cost = message_cost(100);
    let store = Store::with_config(Config::new(6 * cost).shards(4));
    let sessions: Vec<(SessionId, StreamId)> = (0..3)
        .map(|_| {
            let s = store.open();
            (s, store.open_stream(s).unwrap())
        })
        .collect();
    // Six messages, interleaved over three sessions in different shards.
    for round in 0..2u8 {
        for (i, &(s, t)) in sessions.iter().enumerate() {
            let idx = store
                .append(s, t, payload(round * 3 + i as u8, 100))
                .unwrap();
            assert_eq!(idx, u64::from(round) + 1);
        }
    }
    assert_eq!(store.used_bytes(), 6 * cost, "the budget fills exactly");
    for &(s, t) in &sessions {
        assert_eq!(
            store.after(s, t, 0).unwrap().len(),
            2,
            "nothing evicted yet"
        );
    }

    // The seventh message evicts exactly one: the oldest in the process.
    let (s1, t1) = sessions[1];
    store.append(s1, t1, payload(6, 100)).unwrap();
    assert_eq!(store.used_bytes(), 6 * cost);
    let (s0, t0) = sessions[0];
    assert_eq!(
        store.after(s0, t0, 0),
        Err(StoreError::Evicted { first: 2 })
    );
    assert_eq!(store.after(s0, t0, 1).unwrap()[0].data, payload(3, 100));
    assert_eq!(
        store.after(sessions[2].0, sessions[2].1, 0).unwrap().len(),
        2
    );

    // A message costing two slots evicts exactly the next two oldest.
    let (s2, t2) = sessions[2];
    store
        .append(s2, t2, payload(7, 100 + cost as usize))
        .unwrap();
    assert_eq!(store.used_bytes(), 6 * cost);
    assert_eq!(
        store.after(s1, t1, 0),
        Err(StoreError::Evicted { first: 2 })
    );
    assert_eq!(
        store.after(s2, t2, 0),
        Err(StoreError::Evicted { first: 2 })
    );
    assert_eq!(
        store.after(s0, t0, 1).unwrap().len(),
        1,
        "only what it needed"
    );
    assert_eq!(store.retained_bytes(), store.used_bytes());
}

#[test]
fn oversized_message_is_refused_without_evicting() {
    let store = Store::new(message_cost(10));
    let s = store.open();
    let t = store.open_stream(s).unwrap();
    store.append(s, t, payload(1, 10)).unwrap();
    let err = store.append(s, t, payload(2, 11)).unwrap_err();
    assert_eq!(
        err,
        StoreError::TooLarge {
            cost: message_cost(11),
            budget: message_cost(10)
        }
    );
    assert_eq!(err.to_string(), "message too large (75 bytes, budget 74)");
    assert_eq!(store.after(s, t, 0).unwrap().len(), 1);
    // A message costing the whole budget fits by evicting everything else.
    store.append(s, t, payload(3, 10)).unwrap();
    assert_eq!(store.after(s, t, 1).unwrap()[0].data, payload(3, 10));
    assert_eq!(store.after(s, t, 0), Err(StoreError::Evicted { first: 2 }));
}

#[test]
fn failed_appends_store_nothing() {
    let store = Store::new(1 << 20);
    let s = store.open();
    let t = store.open_stream(s).unwrap();
    store.append(s, t, payload(1, 10)).unwrap();
    assert_eq!(
        store.append(s, StreamId::new(9), payload(2, 10)),
        Err(StoreError::UnknownStream)
    );
    let other = store.open();
    store.session_closed(other);
    assert_eq!(
        store.append(other, t, payload(3, 10)),
        Err(StoreError::UnknownSession)
    );
    assert_eq!(store.after(s, t, 0).unwrap().len(), 1);
    assert_eq!(store.used_bytes(), message_cost(10));
    assert_eq!(
        store.append(s, t, payload(4, 10)),
        Ok(2),
        "no index used up"
    );
}

#[test]
fn a_failed_append_on_a_full_store_may_have_made_room() {
    // Room is made before the session is looked up (no lock is held while
    // evicting), so the oldest message can go even if the append then fails.
    let store = Store::new(message_cost(0));
    let s = store.open();
    let t = store.open_stream(s).unwrap();
    store.append(s, t, Bytes::new()).unwrap();
    assert_eq!(
        store.append(s, StreamId::new(9), Bytes::new()),
        Err(StoreError::UnknownStream)
    );
    assert_eq!(store.used_bytes(), 0, "the reservation was returned");
    assert_eq!(store.after(s, t, 0), Err(StoreError::Evicted { first: 2 }));
}

#[test]
fn emptied_streams_give_memory_back_but_still_report_eviction() {
    let cost = message_cost(50);
    let store = Store::with_config(Config::new(4 * cost).shards(2));
    let a = store.open();
    let ta = store.open_stream(a).unwrap();
    for i in 0..4 {
        store.append(a, ta, payload(i, 50)).unwrap();
    }
    let b = store.open();
    let tb = store.open_stream(b).unwrap();
    for i in 0..4 {
        store.append(b, tb, payload(i, 50)).unwrap();
    }
    assert_eq!(store.retained_bytes(), 4 * cost, "a's stream fully evicted");
    assert_eq!(store.after(a, ta, 0), Err(StoreError::Evicted { first: 5 }));
    assert_eq!(
        store.after(a, ta, 4),
        Ok(vec![]),
        "caught up: nothing missing"
    );
    assert_eq!(
        store.after(a, ta, 5),
        Err(StoreError::FutureIndex { last: 4 })
    );
    // The emptied stream keeps working.
    assert_eq!(store.append(a, ta, payload(9, 50)), Ok(5));
    assert_eq!(store.after(a, ta, 4).unwrap()[0].index, 5);

    assert!(store.session_closed(b));
    assert!(!store.session_closed(b), "second close is a no-op");
    assert_eq!(store.used_bytes(), cost);
    assert!(store.session_closed(a));
    assert_eq!(store.used_bytes(), 0);
    assert_eq!(store.retained_bytes(), 0);
    assert_eq!(store.session_count(), 0);
}

#[test]
fn close_stream_frees_only_that_stream() {
    let store = Store::new(1 << 20);
    let s = store.open();
    let t0 = store.open_stream(s).unwrap();
    let t1 = store.open_stream(s).unwrap();
    store.append(s, t0, payload(0, 10)).unwrap();
    store.append(s, t1, payload(1, 20)).unwrap();
    store.close_stream(s, t0).unwrap();
    assert_eq!(store.used_bytes(), message_cost(20));
    assert_eq!(store.after(s, t0, 0), Err(StoreError::UnknownStream));
    assert_eq!(store.close_stream(s, t0), Err(StoreError::UnknownStream));
    assert_eq!(
        store.open_stream(s).unwrap().get(),
        2,
        "numbers are not reused"
    );
}

#[test]
fn dead_queue_entries_do_not_block_eviction() {
    // Many closed sessions leave dead queue entries in front of live ones.
    let cost = message_cost(10);
    let store = Store::with_config(Config::new(200 * cost).shards(1));
    let keep = store.open();
    let tk = store.open_stream(keep).unwrap();
    for _ in 0..100 {
        let s = store.open();
        let t = store.open_stream(s).unwrap();
        store.append(s, t, payload(0, 10)).unwrap();
        store.append(keep, tk, payload(1, 10)).unwrap();
        store.session_closed(s);
    }
    assert_eq!(store.used_bytes(), 100 * cost);
    for _ in 0..150 {
        store.append(keep, tk, payload(2, 10)).unwrap();
    }
    assert_eq!(store.used_bytes(), 200 * cost);
    assert_eq!(
        store.after(keep, tk, 49),
        Err(StoreError::Evicted { first: 51 })
    );
    assert_eq!(store.after(keep, tk, 50).unwrap().len(), 200);
}

#[test]
fn idle_sessions_are_reclaimed_and_activity_keeps_them() {
    let clock = Arc::new(ManualClock::default());
    let store = Store::with_config(
        Config::new(1 << 20)
            .idle_ttl(Duration::from_secs(30))
            .clock(clock.clone()),
    );
    let idle = store.open();
    let ti = store.open_stream(idle).unwrap();
    store.append(idle, ti, payload(0, 100)).unwrap();
    let busy = store.open();
    let tb = store.open_stream(busy).unwrap();
    store.append(busy, tb, payload(1, 100)).unwrap();

    // Reclamation runs periodically; the first call only sets a mark.
    assert_eq!(store.reclaim_idle(store.now()), 0);
    clock.advance(Duration::from_secs(20));
    store.after(busy, tb, 0).unwrap(); // a replay counts as activity
    assert_eq!(
        store.reclaim_idle(store.now()),
        0,
        "nobody idle for 30 s yet"
    );
    clock.advance(Duration::from_secs(20));
    // t = 40: `idle` has done nothing since before the mark at t = 0.
    assert_eq!(store.reclaim_idle(store.now()), 1);
    assert_eq!(store.after(idle, ti, 0), Err(StoreError::UnknownSession));
    assert_eq!(store.after(busy, tb, 0).unwrap().len(), 1);
    assert_eq!(store.used_bytes(), message_cost(100));
    // That replay at t = 40 was activity too; at t = 71 the newest mark
    // more than 30 s old is t = 40's, which came after it: not yet.
    clock.advance(Duration::from_secs(31));
    assert_eq!(store.reclaim_idle(store.now()), 0);
    clock.advance(Duration::from_secs(31));
    // t = 102: idle since before the mark at t = 71.
    assert_eq!(store.reclaim_idle(store.now()), 1);
    assert_eq!(store.used_bytes(), 0);
    assert_eq!(store.session_count(), 0);
}

#[test]
fn reclamation_never_frees_a_session_before_its_ttl() {
    let clock = Arc::new(ManualClock::default());
    let store = Store::with_config(
        Config::new(1 << 20)
            .idle_ttl(Duration::from_secs(10))
            .clock(clock.clone()),
    );
    let s = store.open();
    let t = store.open_stream(s).unwrap();
    // Calls every second; the session appends every 9 seconds.
    for second in 1..=100u64 {
        clock.advance(Duration::from_secs(1));
        if second % 9 == 0 {
            store.append(s, t, payload(0, 1)).unwrap();
        }
        assert_eq!(store.reclaim_idle(store.now()), 0, "freed at {second} s");
    }
    // Idle from t = 99: freed within TTL + one interval.
    let mut freed_at = None;
    for second in 101..=120u64 {
        clock.advance(Duration::from_secs(1));
        if store.reclaim_idle(store.now()) == 1 {
            freed_at = Some(second);
            break;
        }
    }
    let freed_at = freed_at.expect("freed eventually");
    assert!((110..=111).contains(&freed_at), "freed at {freed_at} s");
}

#[tokio::test(start_paused = true)]
async fn background_reclaimer_frees_idle_sessions_and_stops_with_the_store() {
    let clock = Arc::new(ManualClock::default());
    let store = Arc::new(Store::with_config(
        Config::new(1 << 20)
            .idle_ttl(Duration::from_secs(5))
            .clock(clock.clone()),
    ));
    let task = store.spawn_reclaimer(Duration::from_secs(1));
    let s = store.open();
    // The first tick (t = 1 s) sets a mark; idle 6 s later, the next frees.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.session_count(), 1);
    clock.advance(Duration::from_secs(6));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.session_count(), 0);
    assert!(!store.session_closed(s));
    drop(store);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(task.is_finished(), "the task ends once the store is gone");
}

#[test]
fn ids_are_scoped_to_their_session() {
    let store = Store::new(1 << 20);
    let a = store.open();
    let b = store.open();
    let ta = store.open_stream(a).unwrap();
    store.append(a, ta, payload(0, 3)).unwrap();
    let id = store.event_id(a, ta, 0).to_string();

    assert_eq!(store.after_id(a, &id).unwrap().1.len(), 1);
    assert_eq!(store.after_id(b, &id), Err(StoreError::WrongSession));

    // Same key, forged secret: names no session at all.
    let text = format!("{:x}-{:016x}/0/0", a.key(), 12345);
    let forged = EventId::parse(&text).unwrap();
    assert_eq!(forged.session.key(), a.key());
    assert_eq!(store.replay(&forged), Err(StoreError::UnknownSession));
    assert_eq!(
        store.after_id(forged.session, &text),
        Err(StoreError::UnknownSession)
    );

    for bad in [
        "",
        "x",
        "1/2/3",
        &format!("{id}/1"),
        &id.replace("/0", "/-1"),
    ] {
        assert_eq!(
            store.after_id(a, bad),
            Err(StoreError::MalformedId),
            "{bad}"
        );
    }
    let future = store.event_id(a, ta, 7).to_string();
    assert_eq!(
        store.after_id(a, &future),
        Err(StoreError::FutureIndex { last: 1 })
    );
    let max = store.event_id(a, ta, u64::MAX).to_string();
    assert_eq!(
        store.after_id(a, &max),
        Err(StoreError::FutureIndex { last: 1 })
    );
}
