//! ssehub against its in-process peers, each comparison in one group so the
//! ratio comes from one run.
//!
//! Run: `cargo bench -p ssehub --bench hub` (or one group: `cargo bench -p ssehub --bench hub -- fanout`).
//!
//! - `publish/*`: ns per event, pre-encoded 128 B frame, through the owned
//!   `Publisher` (no lock) and the shared `Hub::publish_encoded` (producer
//!   lock), with 0, 1,000 and 10,000 parked subscribers; plus encode+publish;
//!   and through the `Publisher` with 1,000 busy subscribers (receiving
//!   everything, parking whenever they catch up).
//! - `fanout/*`: delivered events/s, 1 producer, N async subscribers on a
//!   2-worker tokio runtime, every subscriber receives every event (checked),
//!   ssehub vs `tokio::sync::broadcast` vs `async-broadcast`.
//! - `resume/*`: subscribe-with-resume lookups at capacity 65,536.
//! - `encode/*`: frame encoding by payload size.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ssehub::{Delivery, Event, Hub, HubConfig, SubscribeOptions};

const PAYLOAD: usize = 128;

fn payload(len: usize) -> String {
    "x".repeat(len)
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Parks `n` subscriptions (filtered on a type nobody publishes, so they stay
/// parked) on their own runtime. Returns the runtime to keep them alive.
fn park_subscribers(hub: &Hub, n: usize) -> tokio::runtime::Runtime {
    let rt = runtime(1);
    for _ in 0..n {
        let mut sub = hub
            .subscribe(SubscribeOptions::live().types(["never-published"]))
            .expect("subscribe");
        rt.spawn(async move {
            loop {
                if let Delivery::End(_) = sub.recv().await {
                    return;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.parked_readers() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt
}

/// Starts `n` unfiltered subscriptions that receive everything published (a
/// lapped one starts over live) on their own one-worker runtime, until the
/// hub shuts down. Returns the runtime to keep them alive.
fn busy_subscribers(hub: &Hub, n: usize) -> tokio::runtime::Runtime {
    let rt = runtime(1);
    for _ in 0..n {
        let hub = hub.clone();
        rt.spawn(async move {
            let Ok(mut sub) = hub.subscribe(SubscribeOptions::live()) else {
                return;
            };
            loop {
                match sub.recv().await {
                    Delivery::Batch(_) | Delivery::KeepAlive => {}
                    Delivery::End(ssehub::EndReason::Lagged { .. }) => {
                        match hub.subscribe(SubscribeOptions::live()) {
                            Ok(again) => sub = again,
                            Err(_) => return,
                        }
                    }
                    Delivery::End(_) => return,
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.parked_readers() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    group.throughput(Throughput::Elements(1));
    for parked in [0usize, 1_000, 10_000] {
        let hub = Hub::with_config(HubConfig::default().keep_alive(None));
        let _rt = park_subscribers(&hub, parked);
        let encoded = hub.encode(&Event::new("bench", payload(PAYLOAD))).unwrap();
        group.bench_with_input(
            BenchmarkId::new("ssehub_publisher_pre_encoded", parked),
            &parked,
            |b, _| {
                let mut publisher = hub.publisher().unwrap();
                b.iter(|| publisher.publish_encoded(&encoded).unwrap())
            },
        );
        group.bench_with_input(
            BenchmarkId::new("ssehub_shared_pre_encoded", parked),
            &parked,
            |b, _| b.iter(|| hub.publish_encoded(&encoded).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("ssehub_shared_encode_and_publish", parked),
            &parked,
            |b, _| {
                let data = payload(PAYLOAD);
                b.iter(|| hub.publish(Event::new("bench", data.clone())).unwrap())
            },
        );
        hub.shutdown();
    }
    // Busy subscribers: 1,000 unfiltered subscriptions that keep receiving
    // (each wakes, takes a batch, and parks again), so the publish path sees
    // subscribers arriving and leaving the parked count all the time.
    {
        let busy = 1_000usize;
        let hub = Hub::with_config(HubConfig::default().keep_alive(None));
        let _rt = busy_subscribers(&hub, busy);
        let encoded = hub.encode(&Event::new("bench", payload(PAYLOAD))).unwrap();
        group.bench_with_input(
            BenchmarkId::new("ssehub_publisher_busy_subscribers", busy),
            &busy,
            |b, _| {
                let mut publisher = hub.publisher().unwrap();
                b.iter(|| publisher.publish_encoded(&encoded).unwrap())
            },
        );
        hub.shutdown();
    }
    // The peers' send cost with one idle receiver, for scale.
    let frame = Bytes::from(payload(PAYLOAD));
    group.bench_function("tokio_broadcast_send", |b| {
        let (tx, _rx) = tokio::sync::broadcast::channel::<Bytes>(4096);
        b.iter(|| tx.send(frame.clone()).unwrap())
    });
    group.finish();
}

/// Events per fan-out round; the ring (and the peers' channels) hold them all,
/// so nobody lags and every delivery is counted.
const ROUND: usize = 2_000;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_millis(500));
    let rt = runtime(2);
    let frame = Bytes::from(format!("event: bench\ndata: {}\n\n", payload(PAYLOAD)));
    for subscribers in [1usize, 10, 100, 1_000] {
        group.throughput(Throughput::Elements((ROUND * subscribers) as u64));

        group.bench_with_input(
            BenchmarkId::new("ssehub", subscribers),
            &subscribers,
            |b, &n| {
                let hub =
                    Hub::with_config(HubConfig::default().capacity(4 * ROUND).keep_alive(None));
                let encoded = hub.encode(&Event::new("bench", payload(PAYLOAD))).unwrap();
                b.to_async(&rt).iter_custom(|iters| {
                    let hub = hub.clone();
                    let encoded = encoded.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let tasks: Vec<_> = (0..n)
                                .map(|_| {
                                    let mut sub = hub.subscribe(SubscribeOptions::live()).unwrap();
                                    tokio::spawn(async move {
                                        let mut got = 0;
                                        while got < ROUND {
                                            match sub.recv().await {
                                                Delivery::Batch(batch) => got += batch.len(),
                                                other => panic!("lost events: {other:?}"),
                                            }
                                        }
                                        got
                                    })
                                })
                                .collect();
                            let start = Instant::now();
                            let mut publisher = hub.publisher().unwrap();
                            for _ in 0..ROUND {
                                publisher.publish_encoded(&encoded).unwrap();
                            }
                            drop(publisher);
                            for task in tasks {
                                assert_eq!(task.await.unwrap(), ROUND);
                            }
                            total += start.elapsed();
                        }
                        total
                    }
                })
            },
        );

        group.bench_with_input(
            BenchmarkId::new("tokio_broadcast", subscribers),
            &subscribers,
            |b, &n| {
                b.to_async(&rt).iter_custom(|iters| {
                    let frame = frame.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (tx, _) = tokio::sync::broadcast::channel::<Bytes>(4 * ROUND);
                            let tasks: Vec<_> = (0..n)
                                .map(|_| {
                                    let mut rx = tx.subscribe();
                                    tokio::spawn(async move {
                                        let mut got = 0;
                                        while got < ROUND {
                                            rx.recv().await.expect("no lag, no close");
                                            got += 1;
                                        }
                                        got
                                    })
                                })
                                .collect();
                            let start = Instant::now();
                            for _ in 0..ROUND {
                                tx.send(frame.clone()).unwrap();
                            }
                            for task in tasks {
                                assert_eq!(task.await.unwrap(), ROUND);
                            }
                            total += start.elapsed();
                        }
                        total
                    }
                })
            },
        );

        group.bench_with_input(
            BenchmarkId::new("async_broadcast", subscribers),
            &subscribers,
            |b, &n| {
                b.to_async(&rt).iter_custom(|iters| {
                    let frame = frame.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (tx, rx) = async_broadcast::broadcast::<Bytes>(4 * ROUND);
                            let tasks: Vec<_> = (0..n)
                                .map(|_| {
                                    let mut rx = rx.clone();
                                    tokio::spawn(async move {
                                        let mut got = 0;
                                        while got < ROUND {
                                            rx.recv().await.expect("no lag, no close");
                                            got += 1;
                                        }
                                        got
                                    })
                                })
                                .collect();
                            drop(rx);
                            let start = Instant::now();
                            for _ in 0..ROUND {
                                tx.broadcast_direct(frame.clone()).await.unwrap();
                            }
                            for task in tasks {
                                assert_eq!(task.await.unwrap(), ROUND);
                            }
                            total += start.elapsed();
                        }
                        total
                    }
                })
            },
        );
    }
    group.finish();
}

fn resume(c: &mut Criterion) {
    let mut group = c.benchmark_group("resume");
    let capacity = 65_536;
    let hub = Hub::with_config(HubConfig::default().capacity(capacity).keep_alive(None));
    let mut ids = Vec::new();
    for n in 0..capacity {
        let published = hub.publish(Event::new("t", n.to_string())).unwrap();
        if n % 1024 == 0 {
            ids.push(published.auto_id());
        }
    }
    let mut custom_hub_ids = Vec::new();
    let custom_hub = Hub::with_config(HubConfig::default().capacity(capacity).keep_alive(None));
    for n in 0..capacity {
        let id = format!("order-{n}");
        custom_hub
            .publish(Event::new("t", "x").with_id(id.clone()))
            .unwrap();
        if n % 1024 == 0 {
            custom_hub_ids.push(id);
        }
    }
    let stats = hub.stats();
    let (first_ts, last_ts) = {
        // Timestamps are the system clock's; search across the whole span.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        (now - 60_000_000_000, now)
    };
    assert_eq!(stats.ring.len, capacity as u64);
    group.bench_function(BenchmarkId::new("after_auto_id", capacity), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % ids.len();
            hub.subscribe(SubscribeOptions::live().after_id(ids[i].clone()))
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("after_custom_id", capacity), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % custom_hub_ids.len();
            custom_hub
                .subscribe(SubscribeOptions::live().after_id(custom_hub_ids[i].clone()))
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("from_timestamp", capacity), |b| {
        let mut t = first_ts;
        b.iter(|| {
            t = if t >= last_ts {
                first_ts
            } else {
                t + 7_919_000
            };
            hub.subscribe(SubscribeOptions::live().from_timestamp(t))
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("live", capacity), |b| {
        b.iter(|| hub.subscribe(SubscribeOptions::live()).unwrap())
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [16usize, 128, 1024, 16 * 1024] {
        let event = Event::new("bench", payload(size));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("single_line", size), &size, |b, _| {
            b.iter(|| event.encode(64 * 1024).unwrap())
        });
        // Same size, split into 16-byte CRLF-terminated lines.
        let lines = Event::new("bench", "line of text\r\n..".repeat(size / 16));
        group.bench_with_input(BenchmarkId::new("multi_line", size), &size, |b, _| {
            b.iter(|| lines.encode(1 << 20).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, publish, fanout, resume, encode);
criterion_main!(benches);
