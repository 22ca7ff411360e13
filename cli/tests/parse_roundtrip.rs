//! The fuzz targets' properties as proptests, so stable CI checks them too:
//! encoder output decodes back to the same event in any chunking, and the
//! parser's result never depends on where the input was cut.

use std::time::Duration;

use proptest::prelude::*;
use ssehub::Event;
use ssehub_cli::parse::{Item, ParsedEvent, Parser};

/// Feeds `bytes` cut at `cuts` (positions modulo the length, sorted).
fn parse_in_chunks(bytes: &[u8], cuts: &[usize], max_len: usize) -> (Vec<Item>, bool) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut parser = Parser::with_max_len(max_len);
    let mut failed = false;
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        failed |= parser.feed(&bytes[start..cut]).is_err();
        start = cut;
    }
    (std::iter::from_fn(|| parser.next_item()).collect(), failed)
}

/// Text rich in the characters that matter to the format.
fn sse_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\r".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\u{FEFF}".to_owned()),
            Just("data: ".to_owned()),
            "[a-z]{0,4}",
            any::<char>().prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn encoded_events_decode_back(
        event_type in sse_text(),
        id in proptest::option::of(sse_text()),
        data in sse_text(),
        retry in proptest::option::of(0u32..100_000),
        cuts in proptest::collection::vec(0usize..4096, 0..6),
    ) {
        let mut event = Event::new(event_type.clone(), data.clone());
        if let Some(id) = &id {
            event = event.with_id(id.clone());
        }
        if let Some(retry) = retry {
            event = event.with_retry(Duration::from_millis(u64::from(retry)));
        }
        let Ok(encoded) = event.encode(1 << 16) else {
            // Only invalid type or id is refused at this size.
            let bad_id = id.as_deref().is_some_and(|id| id.contains(['\r', '\n', '\0']));
            prop_assert!(event_type.contains(['\r', '\n']) || bad_id);
            return Ok(());
        };
        let mut wire = Vec::new();
        if let Some(id) = encoded.id() {
            wire.extend_from_slice(format!("id: {id}\n").as_bytes());
        }
        wire.extend_from_slice(encoded.body());
        let (items, failed) = parse_in_chunks(&wire, &cuts, 1 << 20);
        prop_assert!(!failed);
        let mut expected = Vec::new();
        if let Some(retry) = retry {
            expected.push(Item::Retry(u64::from(retry)));
        }
        expected.push(Item::Event(ParsedEvent {
            event_type: if event_type.is_empty() { "message".into() } else { event_type },
            id: id.filter(|id| !id.is_empty()),
            data: data.replace("\r\n", "\n").replace('\r', "\n"),
        }));
        prop_assert_eq!(items, expected);
    }

    #[test]
    fn parsing_is_chunking_independent(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), Just(0u8),
                Just(0xEF), Just(0xBB), Just(0xBF), b'a'..=b'z', any::<u8>(),
            ],
            0..200,
        ),
        prefix in prop_oneof![
            Just(&b""[..]), Just(&b"data"[..]), Just(&b"id"[..]),
            Just(&b"event"[..]), Just(&b"retry"[..]),
        ],
        cuts in proptest::collection::vec(0usize..256, 0..8),
        max_len in prop_oneof![Just(1usize << 20), 1usize..16],
    ) {
        let mut input = prefix.to_vec();
        input.extend_from_slice(&bytes);
        let whole = parse_in_chunks(&input, &[], max_len);
        prop_assert_eq!(&parse_in_chunks(&input, &cuts, max_len), &whole);
        let every: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&parse_in_chunks(&input, &every, max_len), &whole);
    }
}
