//! Model-based test: the store against a single-threaded reference that
//! states the semantics plainly (a map of lists, eviction by a linear scan
//! for the smallest global sequence number).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use ssehub_store::{
    message_cost, Config, EventId, ManualClock, SessionId, Store, StoreError, StoredEvent, StreamId,
};

const TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct MStream {
    first: u64,
    next: u64,
    msgs: VecDeque<(u64, Bytes)>,
}

struct MSession {
    /// The operation number of the last activity.
    last_active: u64,
    streams: BTreeMap<u32, MStream>,
    next_stream: u32,
}

struct Model {
    budget: u64,
    used: u64,
    gseq: u64,
    now: Duration,
    /// The number of the current operation: the model's logical time.
    op: u64,
    /// `(time, op)` of earlier reclaim calls.
    marks: VecDeque<(Duration, u64)>,
    sessions: BTreeMap<u64, (SessionId, MSession)>,
}

impl Model {
    fn session(&mut self, s: SessionId) -> Result<&mut MSession, StoreError> {
        match self.sessions.get_mut(&s.key()) {
            Some((id, m)) if *id == s => Ok(m),
            _ => Err(StoreError::UnknownSession),
        }
    }

    fn open(&mut self, s: SessionId) {
        let m = MSession {
            last_active: self.op,
            streams: BTreeMap::new(),
            next_stream: 0,
        };
        self.sessions.insert(s.key(), (s, m));
    }

    fn open_stream(&mut self, s: SessionId) -> Result<u32, StoreError> {
        let now = self.op;
        let m = self.session(s)?;
        let n = m.next_stream;
        m.next_stream += 1;
        m.streams.insert(
            n,
            MStream {
                first: 1,
                next: 1,
                msgs: VecDeque::new(),
            },
        );
        m.last_active = now;
        Ok(n)
    }

    fn evict_oldest(&mut self) -> bool {
        let oldest = self
            .sessions
            .values_mut()
            .flat_map(|(_, m)| m.streams.values_mut())
            .filter(|st| !st.msgs.is_empty())
            .min_by_key(|st| st.msgs[0].0);
        let Some(st) = oldest else { return false };
        let (_, data) = st.msgs.pop_front().unwrap();
        st.first += 1;
        self.used -= message_cost(data.len());
        true
    }

    fn append(&mut self, s: SessionId, stream: u32, data: Bytes) -> Result<u64, StoreError> {
        let cost = message_cost(data.len());
        if cost > self.budget {
            return Err(StoreError::TooLarge {
                cost,
                budget: self.budget,
            });
        }
        // Room is made first; a failing append may still have evicted.
        while self.used + cost > self.budget {
            assert!(self.evict_oldest());
        }
        self.session(s)?
            .streams
            .get(&stream)
            .ok_or(StoreError::UnknownStream)?;
        self.used += cost;
        let (now, gseq) = (self.op, self.gseq);
        self.gseq += 1;
        let m = self.session(s)?;
        m.last_active = now;
        let st = m.streams.get_mut(&stream).unwrap();
        st.msgs.push_back((gseq, data));
        st.next += 1;
        Ok(st.next - 1)
    }

    fn after(
        &mut self,
        s: SessionId,
        stream: u32,
        index: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let now = self.op;
        let m = self.session(s)?;
        let st = m.streams.get(&stream).ok_or(StoreError::UnknownStream)?;
        m.last_active = now;
        if index >= st.next {
            return Err(StoreError::FutureIndex { last: st.next - 1 });
        }
        if index + 1 < st.first {
            return Err(StoreError::Evicted { first: st.first });
        }
        Ok(st
            .msgs
            .iter()
            .enumerate()
            .map(|(i, (_, d))| StoredEvent {
                index: st.first + i as u64,
                data: d.clone(),
            })
            .filter(|e| e.index > index)
            .collect())
    }

    fn drop_stream(&mut self, st: MStream) {
        self.used -= st
            .msgs
            .iter()
            .map(|(_, d)| message_cost(d.len()))
            .sum::<u64>();
    }

    fn close_stream(&mut self, s: SessionId, stream: u32) -> Result<(), StoreError> {
        let st = self
            .session(s)?
            .streams
            .remove(&stream)
            .ok_or(StoreError::UnknownStream)?;
        self.drop_stream(st);
        Ok(())
    }

    fn close(&mut self, s: SessionId) -> bool {
        if self.session(s).is_err() {
            return false;
        }
        let (_, m) = self.sessions.remove(&s.key()).unwrap();
        m.streams.into_values().for_each(|st| self.drop_stream(st));
        true
    }

    /// A session is freed once its last activity precedes a reclaim call
    /// made more than TTL ago; the first call only records a mark.
    fn reclaim(&mut self) -> usize {
        let now = self.now;
        let expired = |t: Duration| now.saturating_sub(t) > TTL;
        while self.marks.len() >= 2 && expired(self.marks[1].0) {
            self.marks.pop_front();
        }
        let cutoff = self
            .marks
            .front()
            .filter(|(t, _)| expired(*t))
            .map(|&(_, m)| m);
        if self
            .marks
            .back()
            .is_none_or(|&(t, _)| now.saturating_sub(t) >= TTL / 8)
        {
            self.marks.push_back((now, self.op));
        }
        let Some(cutoff) = cutoff else { return 0 };
        let idle: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|(_, m)| m.last_active < cutoff)
            .map(|(id, _)| *id)
            .collect();
        idle.iter().for_each(|s| {
            self.close(*s);
        });
        idle.len()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Open,
    OpenStream(usize),
    Append(usize, u32, usize),
    After(usize, u32, u64),
    AfterForeignId(usize, usize, u32, u64),
    CloseStream(usize, u32),
    Close(usize),
    Advance(u64),
    Reclaim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Open),
        3 => any::<usize>().prop_map(Op::OpenStream),
        12 => (any::<usize>(), 0..4u32, 0..300usize).prop_map(|(s, t, l)| Op::Append(s, t, l)),
        5 => (any::<usize>(), 0..4u32, 0..40u64).prop_map(|(s, t, i)| Op::After(s, t, i)),
        2 => (any::<usize>(), any::<usize>(), 0..4u32, 0..40u64)
            .prop_map(|(a, b, t, i)| Op::AfterForeignId(a, b, t, i)),
        1 => (any::<usize>(), 0..4u32).prop_map(|(s, t)| Op::CloseStream(s, t)),
        1 => any::<usize>().prop_map(Op::Close),
        1 => (0..8u64).prop_map(Op::Advance),
        1 => Just(Op::Reclaim),
    ]
}

fn run(ops: Vec<Op>, budget: u64, shards: usize) {
    let clock = Arc::new(ManualClock::default());
    let store = Store::with_config(
        Config::new(budget)
            .idle_ttl(TTL)
            .shards(shards)
            .clock(clock.clone()),
    );
    let mut model = Model {
        budget,
        used: 0,
        gseq: 0,
        now: Duration::ZERO,
        op: 0,
        marks: VecDeque::new(),
        sessions: BTreeMap::new(),
    };
    let mut ids: Vec<SessionId> = Vec::new();
    let mut fill = 0u8;
    for op in ops {
        model.op += 1;
        let pick = |i: usize| ids[i % ids.len()];
        match op {
            Op::Open => {
                let s = store.open();
                model.open(s);
                ids.push(s);
            }
            _ if ids.is_empty() => {}
            Op::OpenStream(s) => {
                let s = pick(s);
                let got = store.open_stream(s).map(StreamId::get);
                assert_eq!(got, model.open_stream(s));
            }
            Op::Append(s, t, len) => {
                let s = pick(s);
                fill = fill.wrapping_add(1);
                let data = Bytes::from(vec![fill; len]);
                let got = store.append(s, stream(&store, s, t), data.clone());
                assert_eq!(got, model.append(s, t, data));
            }
            Op::After(s, t, i) => {
                let s = pick(s);
                let got = store.after(s, stream(&store, s, t), i);
                assert_eq!(got, model.after(s, t, i));
            }
            Op::AfterForeignId(a, b, t, i) => {
                let (a, b) = (pick(a), pick(b));
                let id = store.event_id(b, stream(&store, b, t), i).to_string();
                let got = store.after_id(a, &id).map(|(_, v)| v);
                if a == b {
                    assert_eq!(got, model.after(a, t, i));
                } else {
                    assert_eq!(got, Err(StoreError::WrongSession));
                }
                let parsed = EventId::parse(&id).unwrap();
                assert_eq!(store.replay(&parsed), model.after(b, t, i));
            }
            Op::CloseStream(s, t) => {
                let s = pick(s);
                assert_eq!(
                    store.close_stream(s, stream(&store, s, t)),
                    model.close_stream(s, t)
                );
            }
            Op::Close(s) => {
                let s = pick(s);
                assert_eq!(store.session_closed(s), model.close(s));
            }
            Op::Advance(secs) => {
                clock.advance(Duration::from_secs(secs));
                model.now += Duration::from_secs(secs);
            }
            Op::Reclaim => {
                assert_eq!(store.reclaim_idle(store.now()), model.reclaim());
            }
        }
        assert!(store.used_bytes() <= budget);
        assert_eq!(store.used_bytes(), model.used);
        assert_eq!(store.retained_bytes(), model.used);
        assert_eq!(store.session_count(), model.sessions.len());
    }
}

/// Stream numbers are assigned in order from 0, so `t` names the same
/// stream in the store and in the model.
fn stream(_: &Store, _: SessionId, t: u32) -> StreamId {
    StreamId::new(t)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model_tight_budget(ops in prop::collection::vec(op(), 1..200)) {
        run(ops, 1_000, 4);
    }

    #[test]
    fn store_matches_model_one_shard(ops in prop::collection::vec(op(), 1..200)) {
        run(ops, 2_000, 1);
    }

    #[test]
    fn store_matches_model_roomy(ops in prop::collection::vec(op(), 1..200)) {
        run(ops, 50_000, 8);
    }

    #[test]
    fn ids_round_trip(key in any::<u64>(), t in any::<u32>(), i in any::<u64>()) {
        let s = format!("{key:x}-{:016x}/{t}/{i}", key.rotate_left(7));
        let id = EventId::parse(&s).unwrap();
        prop_assert_eq!(id.to_string(), s);
        prop_assert_eq!(id.stream.get(), t);
        prop_assert_eq!(id.index, i);
    }

    #[test]
    fn arbitrary_ids_never_panic(s in ".{0,80}") {
        if let Ok(id) = EventId::parse(&s) {
            prop_assert_eq!(id.to_string(), s);
        }
    }
}
