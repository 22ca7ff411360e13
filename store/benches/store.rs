//! The session event store against a faithful port of the Go MCP SDK's
//! `MemoryEventStore` (modelcontextprotocol/go-sdk, `mcp/event.go`): one
//! mutex over a map of session id -> stream id -> list, where an append over
//! budget first purges by dropping the first element of *every* stream,
//! round after round, until the total fits.
//!
//! Scenarios (1,000 sessions x 3 streams, 256-byte payloads, both stores
//! filled to their budget first so every append evicts):
//!
//! - `store_append`: appends spread over all sessions, on 1 and 2 threads
//!   (each thread owns half the sessions); throughput in appends/s. The Go
//!   store runs twice: the algorithm alone (`go-port`) and as shipped, with
//!   its invariant walk on every append (`go-port-as-shipped`).
//! - `store_replay`: replay the last 8 events of a random stream.
//! - `store_replay_lookup`: replay the last event of one of 1,000 / 10,000
//!   / 100,000 single-stream sessions: the lookup is O(1) (hash lookups and
//!   index arithmetic); what growth remains is cache misses.
//!
//! Run: `cargo bench -p ssehub-store --bench store` (add `-- --warm-up-time 1
//! --measurement-time 3` for a quicker pass).
//!
//! On a shared machine, wall-clock figures move with other load; for a
//! figure that does not, run a fixed amount of append work under `perf stat`
//! and divide cycles by appends:
//!
//! ```text
//! STORE_FIXED=ssehub:2:2000000 perf stat -e cycles:u,instructions:u,task-clock \
//!     target/release/deps/store-<hash>
//! ```

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use parking_lot::Mutex;
use ssehub_store::{message_cost, Config, SessionId, Store, StreamId};

const SESSIONS: usize = 1_000;
const STREAMS: usize = 3;
const PAYLOAD: usize = 256;
/// Budget of the ssehub store; the port gets the same number of messages.
const BUDGET: u64 = 4 << 20;
/// One static payload: cloning and dropping it touches no shared counter,
/// so neither store pays for reference counting in these runs.
static DATA: [u8; PAYLOAD] = [b'x'; PAYLOAD];

/// The Go SDK's algorithm, ported line by line (modelcontextprotocol/go-sdk
/// `mcp/event.go` at 4e858272). The SDK ships with
/// `validateMemoryEventStore = true`, which walks all stored data at the end
/// of every purge, and `Append` purges on every call; `new` leaves that
/// debug walk off (the algorithm alone), `as_shipped` turns it on.
mod go_port {
    use super::*;

    #[derive(Default)]
    struct DataList {
        size: usize,
        first: usize,
        data: VecDeque<Bytes>, // Go: a slice re-sliced from the front
    }

    impl DataList {
        fn append_data(&mut self, d: Bytes) {
            assert!(!d.is_empty(), "empty data item");
            self.size += d.len();
            self.data.push_back(d);
        }

        fn remove_first(&mut self) -> usize {
            let d = self.data.pop_front().expect("empty dataList");
            self.size -= d.len();
            self.first += 1;
            d.len()
        }
    }

    pub struct MemoryEventStore {
        mu: Mutex<Inner>,
    }

    struct Inner {
        validate: bool,
        max_bytes: usize,
        n_bytes: usize,
        store: HashMap<String, HashMap<String, DataList>>,
    }

    impl Inner {
        fn init(&mut self, session: &str, stream: &str) -> &mut DataList {
            if !self.store.contains_key(session) {
                self.store.insert(session.to_owned(), HashMap::new());
            }
            let sm = self.store.get_mut(session).expect("just inserted");
            if !sm.contains_key(stream) {
                sm.insert(stream.to_owned(), DataList::default());
            }
            sm.get_mut(stream).expect("just inserted")
        }

        fn purge(&mut self) {
            while self.n_bytes > self.max_bytes {
                let mut changed = false;
                for sm in self.store.values_mut() {
                    for dl in sm.values_mut() {
                        if dl.size > 0 {
                            let r = dl.remove_first();
                            if r > 0 {
                                changed = true;
                                self.n_bytes -= r;
                            }
                        }
                    }
                }
                assert!(changed, "no progress during purge");
            }
            self.validate();
        }

        fn validate(&self) {
            if !self.validate {
                return;
            }
            let n: usize = self
                .store
                .values()
                .flat_map(|sm| sm.values())
                .flat_map(|dl| dl.data.iter())
                .map(|d| d.len())
                .sum();
            assert_eq!(n, self.n_bytes, "sizes don't add up");
        }
    }

    impl MemoryEventStore {
        pub fn new(max_bytes: usize) -> Self {
            Self::with_validation(max_bytes, false)
        }

        pub fn as_shipped(max_bytes: usize) -> Self {
            Self::with_validation(max_bytes, true)
        }

        fn with_validation(max_bytes: usize, validate: bool) -> Self {
            Self {
                mu: Mutex::new(Inner {
                    validate,
                    max_bytes,
                    n_bytes: 0,
                    store: HashMap::new(),
                }),
            }
        }

        pub fn open(&self, session: &str, stream: &str) {
            self.mu.lock().init(session, stream);
        }

        pub fn append(&self, session: &str, stream: &str, data: Bytes) {
            let mut s = self.mu.lock();
            // Go calls init, then purge, then appends to the list init
            // returned. Purging never removes a list and skips empty ones,
            // so purging first and then looking the list up once is the same
            // and costs the port no extra lookup.
            // Purge before adding, so at least the current item is present.
            s.purge();
            let len = data.len();
            s.init(session, stream).append_data(data);
            s.n_bytes += len;
        }

        pub fn after(&self, session: &str, stream: &str, index: i64) -> Result<Vec<Bytes>, String> {
            let s = self.mu.lock();
            let sm = s.store.get(session).ok_or("unknown session")?;
            let dl = sm.get(stream).ok_or("unknown stream")?;
            let start = usize::try_from(index + 1).map_err(|_| "bad index")?;
            if dl.first > start {
                return Err("data purged".into());
            }
            Ok(dl.data.range(start - dl.first..).cloned().collect())
        }

        /// Messages currently retained.
        pub fn retained(&self) -> usize {
            let s = self.mu.lock();
            s.store
                .values()
                .flat_map(|sm| sm.values())
                .map(|dl| dl.data.len())
                .sum()
        }

        /// The newest index of a stream (Go callers track this themselves).
        pub fn last_index(&self, session: &str, stream: &str) -> i64 {
            let s = self.mu.lock();
            let dl = &s.store[session][stream];
            (dl.first + dl.data.len()) as i64 - 1
        }
    }
}

struct Ours {
    store: Store,
    handles: Vec<(SessionId, Vec<StreamId>)>,
}

fn ours(sessions: usize, budget: u64) -> Ours {
    let store = Store::with_config(Config::new(budget));
    let handles = (0..sessions)
        .map(|_| {
            let s = store.open();
            let t = (0..STREAMS)
                .map(|_| store.open_stream(s).unwrap())
                .collect();
            (s, t)
        })
        .collect();
    let o = Ours { store, handles };
    fill_ours(&o, budget);
    o
}

/// Appends until eviction is running, so measurements see the steady state.
fn fill_ours(o: &Ours, budget: u64) {
    let data = Bytes::from_static(&DATA);
    let n = (2 * budget / message_cost(PAYLOAD)) as usize;
    for i in 0..n {
        let (s, t) = &o.handles[i % o.handles.len()];
        o.store.append(*s, t[i % STREAMS], data.clone()).unwrap();
    }
}

struct Port {
    store: go_port::MemoryEventStore,
    names: Vec<(String, Vec<String>)>,
}

fn port(sessions: usize, budget: u64) -> Port {
    port_with(sessions, budget, go_port::MemoryEventStore::new)
}

fn port_with(sessions: usize, budget: u64, make: fn(usize) -> go_port::MemoryEventStore) -> Port {
    // The same number of messages as ours holds.
    let msgs = budget / message_cost(PAYLOAD);
    let store = make((msgs as usize) * PAYLOAD);
    let names: Vec<(String, Vec<String>)> = (0..sessions)
        .map(|i| {
            // Go SDK session ids are random 26-character strings.
            let s = format!("{i:026}");
            let t: Vec<String> = (0..STREAMS).map(|j| format!("{j}")).collect();
            for t in &t {
                store.open(&s, t);
            }
            (s, t)
        })
        .collect();
    let data = Bytes::from_static(&DATA);
    for i in 0..(2 * msgs as usize) {
        let (s, t) = &names[i % names.len()];
        store.append(s, &t[i % STREAMS], data.clone());
    }
    Port { store, names }
}

/// Runs `per_thread(thread, iters)` on `threads` threads started together and
/// returns the wall time from the start signal until the last one finishes.
fn timed<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, per_thread: F) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, per_thread) = (&barrier, &per_thread);
                scope.spawn(move || {
                    barrier.wait();
                    per_thread(t, iters);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for w in workers {
            w.join().unwrap();
        }
        start.elapsed()
    })
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_append");
    let data = Bytes::from_static(&DATA);
    let o = ours(SESSIONS, BUDGET);
    let p = port(SESSIONS, BUDGET);
    let shipped = port_with(SESSIONS, BUDGET, go_port::MemoryEventStore::as_shipped);
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(BenchmarkId::new("ssehub", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                timed(n, iters, |t, iters| {
                    let mine = SESSIONS / n;
                    for i in 0..iters as usize {
                        let (s, st) = &o.handles[t * mine + (i * 7) % mine];
                        black_box(o.store.append(*s, st[i % STREAMS], data.clone()).unwrap());
                    }
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("go-port", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                timed(n, iters, |t, iters| {
                    let mine = SESSIONS / n;
                    for i in 0..iters as usize {
                        let (s, st) = &p.names[t * mine + (i * 7) % mine];
                        p.store.append(s, &st[i % STREAMS], data.clone());
                    }
                })
            })
        });
        let id = BenchmarkId::new("go-port-as-shipped", threads);
        group.bench_with_input(id, &threads, |b, &n| {
            b.iter_custom(|iters| {
                timed(n, iters, |t, iters| {
                    let mine = SESSIONS / n;
                    for i in 0..iters as usize {
                        let (s, st) = &shipped.names[t * mine + (i * 7) % mine];
                        shipped.store.append(s, &st[i % STREAMS], data.clone());
                    }
                })
            })
        });
    }
    group.finish();
}

/// A cheap deterministic pseudo-random sequence for picking streams.
fn pick(i: u64, n: usize) -> usize {
    ((i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) % n as u64) as usize
}

fn replay(c: &mut Criterion) {
    const TAIL: u64 = 8;
    let mut group = c.benchmark_group("store_replay");
    group.throughput(Throughput::Elements(1));
    // Full stores, with room for every stream's last TAIL events.
    let roomy = BUDGET + (SESSIONS * STREAMS) as u64 * (TAIL + 1) * message_cost(PAYLOAD);
    let o = ours(SESSIONS, roomy);
    let data = Bytes::from_static(&DATA);
    for (s, t) in &o.handles {
        for &st in t {
            for _ in 0..TAIL {
                o.store.append(*s, st, data.clone()).unwrap();
            }
        }
    }
    let last: Vec<[u64; STREAMS]> = o
        .handles
        .iter()
        .map(|(s, t)| {
            let mut l = [0; STREAMS];
            for (j, &st) in t.iter().enumerate() {
                l[j] = o.store.append(*s, st, data.clone()).unwrap();
            }
            l
        })
        .collect();
    let p = port(SESSIONS, roomy);
    for (s, t) in &p.names {
        for st in t {
            for _ in 0..=TAIL {
                p.store.append(s, st, data.clone());
            }
        }
    }
    let plast: Vec<Vec<i64>> = p
        .names
        .iter()
        .map(|(s, t)| t.iter().map(|st| p.store.last_index(s, st)).collect())
        .collect();
    group.bench_function(BenchmarkId::new("ssehub", TAIL), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let n = pick(i, SESSIONS);
            let j = (i % STREAMS as u64) as usize;
            let (s, t) = &o.handles[n];
            let ev = o.store.after(*s, t[j], last[n][j] - TAIL).unwrap();
            debug_assert_eq!(ev.len() as u64, TAIL);
            black_box(ev)
        })
    });
    group.bench_function(BenchmarkId::new("go-port", TAIL), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let n = pick(i, SESSIONS);
            let j = (i % STREAMS as u64) as usize;
            let (s, t) = &p.names[n];
            let ev = p.store.after(s, &t[j], plast[n][j] - TAIL as i64).unwrap();
            debug_assert_eq!(ev.len() as u64, TAIL);
            black_box(ev)
        })
    });
    group.finish();
}

fn replay_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_replay_lookup");
    group.throughput(Throughput::Elements(1));
    for sessions in [1_000usize, 10_000, 100_000] {
        let store = Store::with_config(Config::new(1 << 30));
        let data = Bytes::from_static(b"event");
        let handles: Vec<(SessionId, StreamId, u64)> = (0..sessions)
            .map(|_| {
                let s = store.open();
                let t = store.open_stream(s).unwrap();
                store.append(s, t, data.clone()).unwrap();
                let last = store.append(s, t, data.clone()).unwrap();
                (s, t, last)
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("ssehub", sessions), &sessions, |b, &n| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                let (s, t, last) = handles[pick(i, n)];
                black_box(store.after(s, t, last - 1).unwrap())
            })
        });
        let port = go_port::MemoryEventStore::new(1 << 30);
        let names: Vec<String> = (0..sessions).map(|i| format!("{i:026}")).collect();
        for s in &names {
            port.open(s, "0");
            port.append(s, "0", data.clone());
            port.append(s, "0", data.clone());
        }
        group.bench_with_input(BenchmarkId::new("go-port", sessions), &sessions, |b, &n| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                black_box(port.after(&names[pick(i, n)], "0", 0).unwrap())
            })
        });
    }
    group.finish();
}

/// `STORE_FIXED=<ssehub|go-port|go-port-as-shipped>:<threads>:<appends per
/// thread>`: a fixed
/// amount of steady-state append work and nothing else, for `perf stat`
/// (cycles per append do not depend on other load on the machine).
fn fixed(spec: &str) {
    let mut it = spec.split(':');
    let (Some(which), Some(threads), Some(n)) = (it.next(), it.next(), it.next()) else {
        panic!("STORE_FIXED=<store>:<threads>:<appends per thread>");
    };
    let threads: usize = threads.parse().expect("threads");
    let n: u64 = n.parse().expect("appends per thread");
    let data = Bytes::from_static(&DATA);
    let mine = SESSIONS / threads;
    let fits = BUDGET / message_cost(PAYLOAD);
    let (wall, retained) = match which {
        "ssehub" => {
            let o = ours(SESSIONS, BUDGET);
            let wall = timed(threads, n, |t, iters| {
                for i in 0..iters as usize {
                    let (s, st) = &o.handles[t * mine + (i * 7) % mine];
                    black_box(o.store.append(*s, st[i % STREAMS], data.clone()).unwrap());
                }
            });
            (wall, o.store.used_bytes() / message_cost(PAYLOAD))
        }
        "go-port" | "go-port-as-shipped" => {
            let p = if which == "go-port" {
                port(SESSIONS, BUDGET)
            } else {
                port_with(SESSIONS, BUDGET, go_port::MemoryEventStore::as_shipped)
            };
            let wall = timed(threads, n, |t, iters| {
                for i in 0..iters as usize {
                    let (s, st) = &p.names[t * mine + (i * 7) % mine];
                    p.store.append(s, &st[i % STREAMS], data.clone());
                }
            });
            (wall, p.store.retained() as u64)
        }
        other => panic!("unknown store {other}"),
    };
    let total = n * threads as u64;
    println!(
        "{which} threads={threads} appends={total} wall={wall:?} throughput={:.3} M/s \
         retained={retained}/{fits} messages",
        total as f64 / wall.as_secs_f64() / 1e6
    );
}

/// `STORE_LATENCY=<store>:<appends>`: one thread, each steady-state append
/// timed on its own; prints percentiles. The Go algorithm's purge drops one
/// message from every stream at once, so its cost arrives in spikes.
fn latency(spec: &str) {
    let (which, n) = spec
        .split_once(':')
        .expect("STORE_LATENCY=<store>:<appends>");
    let n: usize = n.parse().expect("appends");
    let data = Bytes::from_static(&DATA);
    let mut ns: Vec<u64> = Vec::with_capacity(n);
    match which {
        "ssehub" => {
            let o = ours(SESSIONS, BUDGET);
            for i in 0..n {
                let (s, st) = &o.handles[(i * 7) % SESSIONS];
                let t = Instant::now();
                black_box(o.store.append(*s, st[i % STREAMS], data.clone()).unwrap());
                ns.push(t.elapsed().as_nanos() as u64);
            }
        }
        "go-port" => {
            let p = port(SESSIONS, BUDGET);
            for i in 0..n {
                let (s, st) = &p.names[(i * 7) % SESSIONS];
                let t = Instant::now();
                p.store.append(s, &st[i % STREAMS], data.clone());
                ns.push(t.elapsed().as_nanos() as u64);
            }
        }
        other => panic!("unknown store {other}"),
    }
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)];
    println!(
        "{which} appends={n} p50={}ns p99={}ns p99.9={}ns p99.99={}ns max={}ns over10us={}",
        q(0.5),
        q(0.99),
        q(0.999),
        q(0.9999),
        ns[ns.len() - 1],
        ns.iter().filter(|&&x| x > 10_000).count()
    );
}

criterion_group!(benches, append, replay, replay_lookup);

fn main() {
    if let Ok(spec) = std::env::var("STORE_FIXED") {
        fixed(&spec);
        return;
    }
    if let Ok(spec) = std::env::var("STORE_LATENCY") {
        latency(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
