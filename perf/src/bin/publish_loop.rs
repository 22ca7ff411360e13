//! Publishes pre-encoded 128-byte events in a tight loop; for profiling the
//! publish path (`valgrind --tool=callgrind target/release/publish_loop`).
//!
//! Run: `cargo run --release -p ssehub-perf --bin publish_loop -- [events]`
use std::time::Instant;

use ssehub::{Event, Hub, HubConfig};

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let max_bytes = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(64 << 20);
    let hub = Hub::with_config(HubConfig::default().keep_alive(None).max_bytes(max_bytes));
    let encoded = hub
        .encode(&Event::new("bench", "x".repeat(128)))
        .expect("valid event");
    let mut publisher = hub.publisher().expect("writer is free");
    let start = Instant::now();
    for _ in 0..events {
        publisher.publish_encoded(&encoded).expect("publish");
    }
    let elapsed = start.elapsed();
    println!(
        "{events} publishes in {elapsed:?}: {:.1} ns/publish",
        elapsed.as_nanos() as f64 / events as f64
    );
}
