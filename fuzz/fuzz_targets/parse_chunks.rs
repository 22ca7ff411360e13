//! Parser robustness: arbitrary bytes cut into arbitrary chunks never panic,
//! and give the same items and the same error as the whole input fed at once.
//!
//! Run: `cargo +nightly fuzz run parse_chunks -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ssehub_cli::parse::{Item, ParseError, Parser};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Small limits exercise the error path; 0 means the default.
    max_len: u8,
    bytes: Vec<u8>,
    cuts: Vec<u16>,
}

fn run(max_len: usize, chunks: &[&[u8]]) -> (Vec<Item>, Option<ParseError>) {
    let mut parser = Parser::with_max_len(max_len);
    let mut first_error = None;
    for chunk in chunks {
        if let Err(error) = parser.feed(chunk) {
            first_error.get_or_insert(error);
            assert_eq!(parser.error(), Some(error));
        }
    }
    let items = std::iter::from_fn(|| parser.next_item()).collect();
    (items, first_error)
}

fuzz_target!(|input: Input| {
    let max_len = if input.max_len == 0 {
        ssehub_cli::parse::DEFAULT_MAX_LEN
    } else {
        usize::from(input.max_len)
    };
    let bytes = &input.bytes[..];
    let whole = run(max_len, &[bytes]);

    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&cut| usize::from(cut) % (bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    let chunked = run(max_len, &chunks);
    assert_eq!(whole, chunked);

    // Byte at a time, the worst case for carried state.
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(whole, run(max_len, &singles));
});
