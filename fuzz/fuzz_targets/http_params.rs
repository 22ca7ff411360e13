//! HTTP parameter parsing: `GET /events` query and `Last-Event-ID`, RFC 3339
//! timestamps, and `POST /admin/events` bodies never panic, and what they
//! accept keeps the contract's invariants.
//!
//! Run: `cargo +nightly fuzz run http_params -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ssehub::http::__private::parse_events;
use ssehub::http::__private::parse_events_query;
use ssehub::http::__private::parse_rfc3339;
use ssehub::Resume;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    query: &'a str,
    last_event_id: &'a [u8],
    timestamp: &'a str,
    body: &'a [u8],
    max_types: u8,
    max_batch: u8,
    max_event_bytes: u16,
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(value) = axum::http::HeaderValue::from_bytes(input.last_event_id) {
        headers.insert("last-event-id", value);
    }
    let max_types = usize::from(input.max_types);
    if let Ok(parsed) = parse_events_query(Some(input.query), &headers, max_types) {
        let types = &parsed.options.types;
        assert!(types.len() <= max_types);
        assert!(types
            .iter()
            .all(|t| !t.is_empty() && !t.contains(['\r', '\n'])));
        assert!(types.iter().all(|t| t.trim() == t));
        if let Resume::AfterId(id) = &parsed.options.resume {
            assert!(!id.is_empty());
        }
    }

    if let Ok(nanos) = parse_rfc3339(input.timestamp) {
        // Within years 0000..=9999 with offsets of at most a day.
        assert!(nanos > -62_300_000_000 * 1_000_000_000);
        assert!(nanos < 253_500_000_000 * 1_000_000_000);
    }

    let max_event_bytes = usize::from(input.max_event_bytes);
    if let Ok(events) = parse_events(input.body, usize::from(input.max_batch), max_event_bytes) {
        assert!(events.len() <= usize::from(input.max_batch));
        for event in events {
            assert!(!event.event_type().is_empty());
            assert!(event.data().len() <= max_event_bytes);
            let value: serde_json::Value =
                serde_json::from_str(event.data()).expect("data is valid JSON");
            assert!(value.is_object());
        }
    }
});
