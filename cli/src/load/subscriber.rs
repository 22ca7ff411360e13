//! One SSE connection of the load generator: connect, read the stream, and
//! count what arrives.
//!
//! Each connection keeps a bitset of the `seq` numbers it received, so lost
//! and duplicate events are exact whatever order the server delivers in.
//! Latency samples are batched locally and merged into one shared histogram
//! every [`FLUSH_SAMPLES`] samples, so 1,000 connections do not each carry a
//! histogram and the shared lock is taken rarely.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::http1::{self, BodyDecoder, Framing, HttpError};
use super::target::Target;
use super::transport::{self, Socket};
use crate::parse::{ItemRef, Parser};

/// Latency samples a connection collects before merging into the histogram.
const FLUSH_SAMPLES: usize = 1024;

/// Read buffer per connection.
const READ_BUF: usize = 16 * 1024;

/// A set of sequence numbers, one bit each.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    /// Adds `seq`; `false` if it was already there.
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (seq % 64);
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    /// How many members of `all` are missing from `self`.
    pub(crate) fn missing_from(&self, all: &SeqSet) -> u64 {
        all.words
            .iter()
            .enumerate()
            .map(|(i, &want)| {
                let have = self.words.get(i).copied().unwrap_or(0);
                u64::from((want & !have).count_ones())
            })
            .sum()
    }

    /// The largest member.
    pub(crate) fn max(&self) -> Option<u64> {
        let (index, word) = self
            .words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)?;
        Some(index as u64 * 64 + 63 - u64::from(word.leading_zeros()))
    }

    /// How many members are greater than `bound` (all of them for `None`).
    pub(crate) fn count_above(&self, bound: Option<u64>) -> u64 {
        let Some(bound) = bound else {
            return self.len();
        };
        let first = bound / 64;
        let Ok(first_index) = usize::try_from(first) else {
            return 0;
        };
        let Some(&partial) = self.words.get(first_index) else {
            return 0;
        };
        // Bits above `bound` in its own word, then every later word.
        let shift = bound % 64 + 1;
        let in_first = if shift == 64 { 0 } else { partial >> shift };
        u64::from(in_first.count_ones())
            + self.words[first_index + 1..]
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>()
    }

    /// Adds every member of `other`.
    pub(crate) fn union_with(&mut self, other: &SeqSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            *mine |= theirs;
        }
    }

    /// Number of members.
    pub(crate) fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// What is shared between the connections, the publisher and the driver.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Publish→receive latency in nanoseconds.
    pub(crate) latency: Mutex<Histogram<u64>>,
    /// Load events received, over all connections (for the drain check).
    pub(crate) delivered: AtomicU64,
    /// One past the highest `seq` handed out; larger ones are bogus.
    pub(crate) seq_limit: AtomicU64,
    /// When the last load event was received, in ns since the driver's start.
    pub(crate) last_delivery_ns: AtomicU64,
    /// Connections streaming now.
    pub(crate) live: AtomicU64,
    /// The driver's start.
    pub(crate) start: Instant,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            // 1 ns .. 1 h at 3 significant digits; values saturate above.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                    .expect("constant histogram bounds are valid"),
            ),
            delivered: AtomicU64::new(0),
            seq_limit: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            live: AtomicU64::new(0),
            start: Instant::now(),
        }
    }
}

/// How a connection ended, or failed to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still streaming when the run stopped it.
    Stopped,
    /// The server ended the stream; the last comment seen, if any.
    EndedByServer(Option<String>),
    /// Connecting or the response head failed; never streamed.
    ConnectFailed(String),
    /// The stream broke (bad framing, a parser limit, a socket error).
    StreamError(String),
}

/// What one connection saw.
#[derive(Debug, Clone)]
pub(crate) struct ConnStats {
    pub(crate) outcome: Outcome,
    pub(crate) seen: SeqSet,
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    /// Load events whose `seq` was never handed out, or malformed data.
    pub(crate) bogus: u64,
    /// Events of other types (not `load`).
    pub(crate) foreign: u64,
    pub(crate) comments: u64,
    pub(crate) bytes: u64,
}

impl ConnStats {
    fn new() -> Self {
        ConnStats {
            outcome: Outcome::Stopped,
            seen: SeqSet::default(),
            received: 0,
            duplicates: 0,
            bogus: 0,
            foreign: 0,
            comments: 0,
            bytes: 0,
        }
    }
}

/// Stats for a connection that never streamed.
pub(crate) fn stream_failed() -> ConnStats {
    ConnStats::new()
}

/// Where a subscription's body comes from.
pub(crate) enum Source {
    /// Its own HTTP/1.1 connection (plain or TLS), read raw.
    Http1(Socket),
    /// One stream of a shared HTTP/2 connection.
    H2(hyper::body::Incoming),
}

impl Source {
    /// Appends the next bytes of the body to `pending`; 0 at its end.
    async fn read(&mut self, scratch: &mut [u8], pending: &mut Vec<u8>) -> Result<usize, String> {
        match self {
            Source::Http1(socket) => {
                let n = socket.read(scratch).await.map_err(|e| e.to_string())?;
                pending.extend_from_slice(&scratch[..n]);
                Ok(n)
            }
            Source::H2(body) => loop {
                match body.frame().await {
                    None => return Ok(0),
                    Some(Err(error)) => return Err(error.to_string()),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                pending.extend_from_slice(&data);
                                return Ok(data.len());
                            }
                        }
                    }
                }
            },
        }
    }
}

/// Opens the SSE request and reads the response head. `Ok` means the server
/// answered 200 with an event stream: the subscription exists.
pub(crate) async fn connect(
    target: &Target,
    query: &str,
) -> Result<(Source, BodyDecoder, Vec<u8>), String> {
    if let Some(pool) = &target.h2 {
        let body = pool
            .open(&format!("{}/events{query}", target.path_prefix))
            .await?;
        // HTTP/2 frames the body itself: the bytes are the stream.
        return Ok((
            Source::H2(body),
            BodyDecoder::new(Framing::Close),
            Vec::new(),
        ));
    }
    let mut stream = transport::connect(target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "GET {}/events{query} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        target.path_prefix, target.host_header
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let head = http1::read_head(&mut stream, &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    let content_type = head.header("content-type").unwrap_or("");
    if !content_type.starts_with("text/event-stream") {
        return Err(format!("content-type {content_type:?}"));
    }
    let framing = head.framing().map_err(|e| e.to_string())?;
    Ok((Source::Http1(stream), BodyDecoder::new(framing), buf))
}

/// Reads one connection's stream until `stop` turns true or the stream ends.
pub(crate) async fn stream(
    mut stream: Source,
    mut decoder: BodyDecoder,
    leftover: Vec<u8>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ConnStats {
    let mut conn = Conn {
        stats: ConnStats::new(),
        parser: Parser::new(),
        samples: Vec::with_capacity(FLUSH_SAMPLES),
        last_comment: None,
        shared,
    };
    let mut buf = vec![0u8; READ_BUF];
    let mut pending = leftover;
    let outcome = loop {
        if !pending.is_empty() {
            if let Err(error) = conn.absorb(&mut decoder, &pending) {
                break Outcome::StreamError(error);
            }
            pending.clear();
            if decoder.is_done() {
                break Outcome::EndedByServer(conn.last_comment.take());
            }
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break Outcome::Stopped,
            read = stream.read(&mut buf, &mut pending) => match read {
                Ok(0) => break Outcome::EndedByServer(conn.last_comment.take()),
                Ok(_) => {}
                Err(error) => break Outcome::StreamError(error),
            },
        }
    };
    conn.flush();
    if outcome != Outcome::Stopped {
        conn.shared.live.fetch_sub(1, Ordering::Relaxed);
    }
    conn.stats.outcome = outcome;
    conn.stats
}

struct Conn {
    stats: ConnStats,
    parser: Parser,
    samples: Vec<u64>,
    last_comment: Option<String>,
    shared: Arc<Shared>,
}

impl Conn {
    /// Decodes and parses one read's worth of bytes.
    fn absorb(&mut self, decoder: &mut BodyDecoder, input: &[u8]) -> Result<(), String> {
        // One clock reading per read: the frames in it arrived together.
        let now_ns = wall_clock_ns();
        let limit = self.shared.seq_limit.load(Ordering::Relaxed);
        let Conn {
            stats,
            parser,
            samples,
            last_comment,
            shared,
        } = self;
        stats.bytes += input.len() as u64;
        let mut delivered = 0;
        let mut parse_error = None;
        let mut on_item = |item: ItemRef<'_>| match item {
            ItemRef::Event(event) if event.event_type == "load" => {
                let (Some(seq), Some(t_ns)) = seq_and_time(event.data) else {
                    stats.bogus += 1;
                    return;
                };
                if seq >= limit {
                    stats.bogus += 1;
                } else if stats.seen.insert(seq) {
                    stats.received += 1;
                    delivered += 1;
                    samples.push(now_ns.saturating_sub(t_ns).max(1));
                    if samples.len() >= FLUSH_SAMPLES {
                        flush(shared, samples);
                    }
                } else {
                    stats.duplicates += 1;
                }
            }
            ItemRef::Event(_) => stats.foreign += 1,
            ItemRef::Comment(text) => {
                stats.comments += 1;
                *last_comment = Some(text.trim().to_owned());
            }
            ItemRef::Retry(_) => {}
        };
        decoder
            .decode(input, |body| {
                if parse_error.is_none() {
                    if let Err(error) = parser.feed_with(body, &mut on_item) {
                        parse_error = Some(error);
                    }
                }
            })
            .map_err(|e: HttpError| e.to_string())?;
        if let Some(error) = parse_error {
            return Err(error.to_string());
        }
        if delivered > 0 {
            self.shared
                .delivered
                .fetch_add(delivered, Ordering::Relaxed);
            let since_start = self.shared.start.elapsed().as_nanos() as u64;
            self.shared
                .last_delivery_ns
                .fetch_max(since_start, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush(&mut self) {
        flush(&self.shared, &mut self.samples);
    }
}

/// Merges latency samples into the shared histogram.
fn flush(shared: &Shared, samples: &mut Vec<u64>) {
    if samples.is_empty() {
        return;
    }
    let mut histogram = shared.latency.lock();
    for &sample in samples.iter() {
        histogram.saturating_record(sample);
    }
    drop(histogram);
    samples.clear();
}

/// The `seq` and `t_ns` members of a load event's JSON data, found in one
/// pass without a JSON parser (the generator reads millions of these).
pub(crate) fn seq_and_time(json: &str) -> (Option<u64>, Option<u64>) {
    let bytes = json.as_bytes();
    let (mut seq, mut t_ns) = (None, None);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let rest = &bytes[i + 1..];
        let key_len = if rest.starts_with(b"seq\"") {
            Some((4, &mut seq))
        } else if rest.starts_with(b"t_ns\"") {
            Some((5, &mut t_ns))
        } else {
            None
        };
        match key_len {
            Some((len, slot)) => {
                let (value, next) = number_after_colon(bytes, i + 1 + len);
                if value.is_some() {
                    *slot = value;
                }
                i = next;
            }
            None => i += 1,
        }
        if seq.is_some() && t_ns.is_some() {
            break;
        }
    }
    (seq, t_ns)
}

/// Parses `: <digits>` at `at` (whitespace allowed around the colon);
/// returns the number, if any, and where scanning should continue.
fn number_after_colon(bytes: &[u8], mut at: usize) -> (Option<u64>, usize) {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    if bytes.get(at) != Some(&b':') {
        return (None, at);
    }
    at += 1;
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    let start = at;
    let mut value: u64 = 0;
    while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
        let Some(next) = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
        else {
            return (None, at);
        };
        value = next;
        at += 1;
    }
    ((at > start).then_some(value), at)
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_set_counts_missing_and_duplicates() {
        let mut all = SeqSet::default();
        let mut got = SeqSet::default();
        for seq in 0..200 {
            all.insert(seq);
        }
        for seq in (0..200).step_by(2) {
            assert!(got.insert(seq));
        }
        assert!(!got.insert(0));
        assert_eq!(got.len(), 100);
        assert_eq!(got.missing_from(&all), 100);
        assert_eq!(all.missing_from(&got), 0);
        assert_eq!(got.max(), Some(198));
        assert_eq!(SeqSet::default().max(), None);
        assert_eq!(all.count_above(Some(198)), 1);
        assert_eq!(all.count_above(Some(63)), 136);
        assert_eq!(all.count_above(Some(64)), 135);
        assert_eq!(all.count_above(None), 200);
        assert_eq!(all.count_above(Some(10_000)), 0);
        let mut more = SeqSet::default();
        more.insert(1000);
        more.union_with(&got);
        assert_eq!(more.len(), 101);
    }

    #[test]
    fn extracts_seq_and_time_from_json() {
        let data = r#"{"seq":12,"t_ns":1700000000000000000,"type":"load"}"#;
        assert_eq!(
            seq_and_time(data),
            (Some(12), Some(1_700_000_000_000_000_000))
        );
        assert_eq!(
            seq_and_time(r#"{"t_ns" : 5 , "seq" :7}"#),
            (Some(7), Some(5))
        );
        assert_eq!(
            seq_and_time(r#"{"x":"seq","seq":1,"t_ns":2}"#),
            (Some(1), Some(2))
        );
        assert_eq!(
            seq_and_time(r#"{"pad":"\"seq\"","seq":3}"#),
            (Some(3), None)
        );
        assert_eq!(seq_and_time(r#"{"seq":-1}"#), (None, None));
        assert_eq!(
            seq_and_time(r#"{"seq":99999999999999999999999}"#),
            (None, None)
        );
        assert_eq!(seq_and_time(r#"{"seq":"#), (None, None));
        assert_eq!(seq_and_time("{}"), (None, None));
        assert_eq!(seq_and_time("\""), (None, None));
    }
}
