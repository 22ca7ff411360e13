//! Many sessions appending and replaying at once: every replay is a gap-free
//! run of exactly what was appended, and the budget holds at every instant.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use ssehub_store::{message_cost, Config, SessionId, Store, StoreError, StreamId};

const THREADS: usize = 4;
const SESSIONS_PER_THREAD: usize = 50;
const STREAMS: u32 = 3;
const APPENDS_PER_THREAD: usize = 6_000;

/// The payload of event `index` of `stream` in session `key`: checkable.
fn payload(key: u64, stream: u32, index: u64) -> Bytes {
    let len = 16 + (index % 48) as usize;
    let mut v = format!("{key}:{stream}:{index}:").into_bytes();
    v.resize(len.max(v.len()), b'.');
    Bytes::from(v)
}

fn check_run(key: u64, stream: u32, after: u64, events: &[ssehub_store::StoredEvent]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.index, after + 1 + i as u64, "gap or repeat");
        assert_eq!(e.data, payload(key, stream, e.index), "wrong data");
    }
}

#[test]
fn many_sessions_append_and_replay_concurrently() {
    // Small enough that eviction runs constantly.
    let budget = 400 * message_cost(64);
    let store = Arc::new(Store::with_config(Config::new(budget).shards(8)));
    let done = Arc::new(AtomicBool::new(false));

    let watcher = {
        let (store, done) = (store.clone(), done.clone());
        thread::spawn(move || {
            let mut samples = 0u64;
            while !done.load(Ordering::Relaxed) {
                assert!(store.used_bytes() <= budget, "budget exceeded");
                samples += 1;
            }
            samples
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|w| {
            let store = store.clone();
            thread::spawn(move || {
                let sessions: Vec<(SessionId, Vec<StreamId>, Vec<u64>)> = (0..SESSIONS_PER_THREAD)
                    .map(|_| {
                        let s = store.open();
                        let streams = (0..STREAMS)
                            .map(|_| store.open_stream(s).unwrap())
                            .collect();
                        (s, streams, vec![0; STREAMS as usize])
                    })
                    .collect();
                let mut sessions = sessions;
                let (mut full, mut evicted) = (0u64, 0u64);
                for i in 0..APPENDS_PER_THREAD {
                    let n = (i * 7 + w) % sessions.len();
                    let (s, streams, last) = &mut sessions[n];
                    let t = (i % STREAMS as usize) as u32;
                    let expect = last[t as usize] + 1;
                    let idx = store
                        .append(*s, streams[t as usize], payload(s.key(), t, expect))
                        .unwrap();
                    assert_eq!(idx, expect, "indices are dense per stream");
                    last[t as usize] = idx;
                    if i % 5 == 0 {
                        let from = idx.saturating_sub((i % 40) as u64);
                        match store.after(*s, streams[t as usize], from) {
                            Ok(events) => {
                                // Our own stream: nobody else appends to it, so
                                // the replay must reach exactly our last index.
                                assert_eq!(events.len() as u64, idx - from);
                                check_run(s.key(), t, from, &events);
                                full += 1;
                            }
                            Err(StoreError::Evicted { first }) => {
                                assert!(first > from + 1);
                                evicted += 1;
                            }
                            Err(e) => panic!("unexpected {e}"),
                        }
                    }
                }
                (full, evicted, sessions)
            })
        })
        .collect();

    let mut all = Vec::new();
    let (mut full, mut evicted) = (0, 0);
    for w in workers {
        let (f, e, sessions) = w.join().unwrap();
        full += f;
        evicted += e;
        all.extend(sessions);
    }
    done.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
    assert!(full > 0, "some replays were complete");
    assert!(evicted > 0, "some replays hit eviction");
    assert_eq!(store.retained_bytes(), store.used_bytes());
    assert!(store.used_bytes() <= budget);
    assert!(
        store.used_bytes() > budget - message_cost(64),
        "the budget is used fully"
    );

    // What is retained is a suffix of every stream, and complete.
    for (s, streams, last) in &all {
        for (t, &stream) in streams.iter().enumerate() {
            let mut from = 0;
            let events = loop {
                match store.after(*s, stream, from) {
                    Ok(ev) => break ev,
                    Err(StoreError::Evicted { first }) => from = first - 1,
                    Err(e) => panic!("unexpected {e}"),
                }
            };
            check_run(s.key(), t as u32, from, &events);
            assert_eq!(from + events.len() as u64, last[t]);
        }
    }
    for (s, _, _) in &all {
        assert!(store.session_closed(*s));
    }
    assert_eq!(store.used_bytes(), 0);
    assert_eq!(store.retained_bytes(), 0);
}

#[test]
fn sessions_opening_closing_and_reclaiming_under_load_keep_accounts_exact() {
    let budget = 200 * message_cost(32);
    let store = Arc::new(Store::with_config(Config::new(budget).shards(4)));
    let hours = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|w| {
            let (store, hours) = (store.clone(), hours.clone());
            thread::spawn(move || {
                // Another thread's reclaim_idle (with a clock far ahead)
                // may free this session at any point: UnknownSession is then
                // the right answer, and the only error allowed.
                let gone = |r: Result<(), StoreError>| match r {
                    Ok(()) | Err(StoreError::UnknownSession) => {}
                    Err(e) => panic!("unexpected {e}"),
                };
                for round in 0..300 {
                    let s = store.open();
                    let Ok(t) = store.open_stream(s) else {
                        continue;
                    };
                    for i in 0..(round % 13) {
                        gone(store.append(s, t, Bytes::from(vec![w as u8; 32])).map(drop));
                        if i % 4 == 3 {
                            match store.after(s, t, 0) {
                                Err(StoreError::Evicted { .. }) => {}
                                r => gone(r.map(drop)),
                            }
                        }
                    }
                    match round % 3 {
                        0 => {
                            store.session_closed(s);
                        }
                        1 => gone(store.close_stream(s, t)),
                        _ => {} // left for reclamation
                    }
                    if round % 50 == 0 {
                        // An hour later each time: frees whatever has been
                        // idle since the previous call.
                        let hour = hours.fetch_add(1, Ordering::Relaxed) + 1;
                        store.reclaim_idle(std::time::Duration::from_secs(3600 * hour));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(store.retained_bytes(), store.used_bytes());
    assert!(store.used_bytes() <= budget);
    for _ in 0..2 {
        let hour = hours.fetch_add(1, Ordering::Relaxed) + 1;
        store.reclaim_idle(std::time::Duration::from_secs(3600 * hour));
    }
    assert_eq!(store.session_count(), 0);
    assert_eq!(store.used_bytes(), 0);
}
