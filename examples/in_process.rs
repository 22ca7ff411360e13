//! Publishes and subscribes in one process and prints what each subscriber
//! received: the engine without HTTP.
//!
//! Run: `cargo run --release -p ssehub --example in_process`
use std::time::{Duration, Instant};

use ssehub::{Delivery, Event, Hub, HubConfig, SubscribeOptions};

#[tokio::main]
async fn main() {
    let hub = Hub::with_config(HubConfig::default().keep_alive(Some(Duration::from_secs(1))));
    let prices = hub
        .subscribe(SubscribeOptions::live().types(["price"]))
        .expect("subscribe");
    let everything = hub.subscribe(SubscribeOptions::live()).expect("subscribe");

    let readers = [("price", prices), ("all", everything)].map(|(name, mut subscription)| {
        tokio::spawn(async move {
            let mut frames = 0;
            loop {
                match subscription.recv().await {
                    Delivery::Batch(batch) => {
                        frames += batch.len();
                        if let Some(first) = batch.frames().next() {
                            println!(
                                "[{name}] batch of {} frames, first:\n{}",
                                batch.len(),
                                String::from_utf8_lossy(first).trim_end()
                            );
                        }
                    }
                    Delivery::KeepAlive => println!("[{name}] keep-alive"),
                    Delivery::End(reason) => {
                        println!("[{name}] ended ({reason}) after {frames} frames");
                        return frames;
                    }
                }
            }
        })
    });

    let start = Instant::now();
    for n in 0..10_000u32 {
        let event_type = if n % 2 == 0 { "price" } else { "trade" };
        hub.publish(Event::new(event_type, format!("{{\"n\":{n}}}")))
            .expect("publish");
        // Bursts of 1,000, well inside the 4,096-event ring, so nobody laps.
        if n % 1_000 == 999 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    println!("published 10000 events in {:?}", start.elapsed());
    // Let the readers drain, then end every subscription.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = hub.stats();
    hub.shutdown();
    for reader in readers {
        reader.await.expect("reader task");
    }
    println!(
        "stats: generation {}, published {}, ring holds {} events / {} bytes, lagged {}",
        stats.generation,
        stats.published,
        stats.ring.len,
        stats.ring.bytes,
        stats.lagged_disconnects
    );
}
