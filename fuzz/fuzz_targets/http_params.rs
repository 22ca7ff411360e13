//! `GET /events` parameter parsing: arbitrary query strings and
//! `Last-Event-ID` values never panic, and every accepted request gives
//! options the hub itself accepts or answers with a typed error.
//!
//! Run: `cargo +nightly fuzz run http_params -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ssehub::http::query::{parse_events_query, query_token};
use ssehub::http::timestamp::parse_rfc3339;

#[derive(Arbitrary, Debug)]
struct Input {
    query: String,
    last_event_id: Option<Vec<u8>>,
    timestamp: String,
}

/// One hub for every input (building one per input would dominate the run).
fn hub() -> &'static ssehub::Hub {
    static HUB: std::sync::OnceLock<ssehub::Hub> = std::sync::OnceLock::new();
    HUB.get_or_init(|| {
        let hub = ssehub::Hub::new();
        for n in 0..16 {
            let _ = hub.publish(ssehub::Event::new("t", n.to_string()));
        }
        hub
    })
}

fuzz_target!(|input: Input| {
    let _ = parse_rfc3339(&input.timestamp);
    let _ = query_token(Some(&input.query));
    let mut headers = axum::http::HeaderMap::new();
    if let Some(value) = input.last_event_id {
        if let Ok(value) = axum::http::HeaderValue::from_bytes(&value) {
            headers.insert("last-event-id", value);
        }
    }
    if let Ok(parsed) = parse_events_query(Some(&input.query), &headers, 64) {
        assert!(parsed.options.types.len() <= 64);
        assert!(parsed
            .options
            .types
            .iter()
            .all(|t| !t.is_empty() && !t.contains(['\r', '\n'])));
        let _ = hub().subscribe(parsed.options);
    }
});
