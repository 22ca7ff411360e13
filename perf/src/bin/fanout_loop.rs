//! Fan-out of pre-encoded events to N in-process subscribers; for profiling
//! the delivery path (`valgrind --tool=callgrind target/release/fanout_loop`).
//!
//! Run: `cargo run --release -p ssehub-perf --bin fanout_loop -- [subscribers] [events]`
use std::time::Instant;

use ssehub::{Delivery, Event, Hub, HubConfig, SubscribeOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let hub = Hub::with_config(
        HubConfig::default()
            .capacity((4 * events).next_power_of_two())
            .keep_alive(None),
    );
    let encoded = hub
        .encode(&Event::new("bench", "x".repeat(128)))
        .expect("valid event");
    let tasks: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut sub = hub.subscribe(SubscribeOptions::live()).expect("subscribe");
            tokio::spawn(async move {
                let (mut frames, mut batches) = (0, 0);
                while frames < events {
                    match sub.recv().await {
                        Delivery::Batch(batch) => {
                            frames += batch.len();
                            batches += 1;
                        }
                        other => panic!("lost events: {other:?}"),
                    }
                }
                batches
            })
        })
        .collect();
    let start = Instant::now();
    let mut publisher = hub.publisher().expect("writer");
    for _ in 0..events {
        publisher.publish_encoded(&encoded).expect("publish");
    }
    let mut batches = 0;
    for task in tasks {
        batches += task.await.expect("task");
    }
    let elapsed = start.elapsed();
    let deliveries = subscribers * events;
    println!(
        "{deliveries} deliveries in {elapsed:?}: {:.1} M/s, {:.1} frames per batch",
        deliveries as f64 / elapsed.as_secs_f64() / 1e6,
        deliveries as f64 / batches as f64
    );
}
