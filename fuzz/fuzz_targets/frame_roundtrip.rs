//! Encoder → parser round trip.
//!
//! Arbitrary type, id, data and retry go through `Event::encode`. Either the
//! encoder returns the error the input deserves, or the bytes (with the `id:`
//! line the writer would prepend), fed to the parser in arbitrary chunks,
//! decode back to the same type, id and data (data's CR and CRLF normalized to
//! LF, the format's own limit) and the same retry.
//!
//! Run: `cargo +nightly fuzz run frame_roundtrip -- -max_total_time=60`
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ssehub::{Event, EventError};
use ssehub_cli::parse::{Item, ParsedEvent, Parser};

#[derive(Arbitrary, Debug)]
struct Input {
    event_type: String,
    id: Option<String>,
    data: String,
    retry: Option<u32>,
    max_event_bytes: u16,
    cuts: Vec<u16>,
}

fuzz_target!(|input: Input| {
    let mut event = Event::new(input.event_type.clone(), input.data.clone());
    if let Some(id) = &input.id {
        event = event.with_id(id.clone());
    }
    if let Some(retry) = input.retry {
        event = event.with_retry(Duration::from_millis(u64::from(retry)));
    }
    let limit = usize::from(input.max_event_bytes);
    let encoded = match event.encode(limit) {
        Ok(encoded) => encoded,
        Err(error) => {
            let bad_type = input.event_type.contains(['\r', '\n']);
            let id = input.id.as_deref().filter(|id| !id.is_empty());
            let bad_id = id.is_some_and(|id| id.contains(['\r', '\n', '\0']));
            match error {
                EventError::InvalidType => assert!(bad_type),
                EventError::InvalidId => assert!(bad_id && !bad_type),
                EventError::TooLarge { size, limit: l } => {
                    assert!(!bad_type && !bad_id);
                    assert_eq!(l, limit);
                    assert!(size > limit);
                }
                EventError::ReservedId => panic!("encode never checks the id shape"),
                other => panic!("an error encode never returns: {other:?}"),
            }
            return;
        }
    };
    let mut wire = Vec::new();
    if let Some(id) = encoded.id() {
        wire.extend_from_slice(b"id: ");
        wire.extend_from_slice(id.as_bytes());
        wire.push(b'\n');
    }
    wire.extend_from_slice(encoded.body());
    assert!(
        wire.len() <= limit,
        "{} bytes over the {limit} limit",
        wire.len()
    );

    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&cut| usize::from(cut) % (wire.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut parser = Parser::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([wire.len()]) {
        parser
            .feed(&wire[start..cut])
            .expect("encoder output within parser limits");
        start = cut;
    }
    let items: Vec<Item> = std::iter::from_fn(|| parser.next_item()).collect();

    let mut expected = Vec::new();
    if let Some(retry) = input.retry {
        expected.push(Item::Retry(u64::from(retry)));
    }
    let event_type = if input.event_type.is_empty() {
        "message".to_owned()
    } else {
        input.event_type.clone()
    };
    expected.push(Item::Event(ParsedEvent {
        event_type,
        id: input.id.clone().filter(|id| !id.is_empty()),
        data: input.data.replace("\r\n", "\n").replace('\r', "\n"),
    }));
    assert_eq!(items, expected, "wire {:?}", String::from_utf8_lossy(&wire));
});
