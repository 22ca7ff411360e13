//! An incremental `text/event-stream` parser, the client side of [`frame`].
//!
//! It follows the WHATWG HTML "event stream interpretation" rules:
//!
//! - input arrives in any chunking; [`Parser::feed`] takes whatever bytes the
//!   transport produced and the result does not depend on where the chunks
//!   were cut;
//! - lines end in CR, LF or CRLF; a CR at the end of one chunk followed by an
//!   LF at the start of the next is **one** line end;
//! - one leading UTF-8 byte order mark is skipped (even if split over chunks);
//! - a line starting with `:` is a comment; it is reported as
//!   [`Item::Comment`] (the spec ignores comments, but keep-alives are
//!   comments and load generators and tests need to see them);
//! - `field:value` lines, one leading space of the value stripped; a line with
//!   no colon is a field name with an empty value;
//! - `event` sets the type, `data` appends to the data buffer (lines joined by
//!   LF), `id` sets the last event id unless the value contains NUL (the last
//!   event id persists across events, as in the spec), `retry` with ASCII
//!   digits only is reported as [`Item::Retry`]; other fields are ignored;
//! - a blank line dispatches the event, unless its data buffer is empty (no
//!   `data` field was seen), in which case nothing is dispatched and the type
//!   is reset;
//! - at the end of the stream an incomplete event is discarded, as the spec
//!   says (there is nothing to call).
//!
//! Invalid UTF-8 is replaced with U+FFFD per line (CR and LF are ASCII, so this
//! is the same as decoding the whole stream lossily). Nothing panics on any
//! input.
//!
//! # Memory
//!
//! The parser buffers only the current incomplete line and the current
//! event's fields. A line, or an event's accumulated data, longer than the
//! configured maximum ([`DEFAULT_MAX_LEN`], 1 MiB, by default) puts the parser
//! in an error state: [`Parser::feed`] returns [`ParseError`] from then on and
//! the buffers are freed. Items parsed before the offending line stay
//! available through [`Parser::next_item`].
//!
//! `ParseError` lives here rather than in `ssehub::error` because it belongs
//! to the client side only; the hub never returns it.
//!
//! # Examples
//!
//! ```
//! use ssehub_cli::parse::{Item, Parser};
//!
//! let mut parser = Parser::new();
//! parser.feed(b": hi\r\nid: 7\r").unwrap();
//! parser.feed(b"\nevent: price\ndata: a\ndata:b\n\n").unwrap();
//! assert_eq!(parser.next_item(), Some(Item::Comment(" hi".into())));
//! match parser.next_item() {
//!     Some(Item::Event(event)) => {
//!         assert_eq!(event.event_type, "price");
//!         assert_eq!(event.id.as_deref(), Some("7"));
//!         assert_eq!(event.data, "a\nb");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert_eq!(parser.next_item(), None);
//! ```
//!
//! [`frame`]: ssehub::frame

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

use ssehub::frame::DEFAULT_EVENT_TYPE;

/// Default bound on one line and on one event's data, in bytes (1 MiB).
pub const DEFAULT_MAX_LEN: usize = 1 << 20;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One event dispatched by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedEvent {
    /// The `event:` field, or `message` when absent or empty.
    pub event_type: String,
    /// The last event id at dispatch time (it persists across events); `None`
    /// when it is empty.
    pub id: Option<String>,
    /// The `data:` lines joined with LF.
    pub data: String,
}

/// Something the parser found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event.
    Event(ParsedEvent),
    /// A comment line: the text after the `:`, verbatim.
    Comment(String),
    /// A valid `retry:` field: the reconnection time in milliseconds
    /// (saturating at `u64::MAX`).
    Retry(u64),
}

/// An event as borrowed text, handed out by [`Parser::feed_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The `event:` field, or `message` when absent or empty.
    pub event_type: &'a str,
    /// The last event id at dispatch time; `None` when it is empty.
    pub id: Option<&'a str>,
    /// The `data:` lines joined with LF.
    pub data: &'a str,
}

/// An [`Item`] as borrowed text, handed out by [`Parser::feed_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRef<'a> {
    /// A dispatched event.
    Event(EventRef<'a>),
    /// A comment line: the text after the `:`, verbatim.
    Comment(&'a str),
    /// A valid `retry:` field in milliseconds.
    Retry(u64),
}

impl ItemRef<'_> {
    /// The owned form.
    pub fn to_owned(self) -> Item {
        match self {
            ItemRef::Event(event) => Item::Event(ParsedEvent {
                event_type: event.event_type.to_owned(),
                id: event.id.map(str::to_owned),
                data: event.data.to_owned(),
            }),
            ItemRef::Comment(text) => Item::Comment(text.to_owned()),
            ItemRef::Retry(millis) => Item::Retry(millis),
        }
    }
}

/// Why the parser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// A line was longer than the limit.
    LineTooLong {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// An event's data buffer grew past the limit.
    EventTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::LineTooLong { limit } => {
                write!(f, "event-stream line longer than the {limit}-byte limit")
            }
            ParseError::EventTooLarge { limit } => {
                write!(
                    f,
                    "event-stream event data larger than the {limit}-byte limit"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Where the byte order mark check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// `n` bytes of the BOM matched so far at the stream start.
    Matching(usize),
    /// Decided: the stream proper has begun.
    Done,
}

/// An incremental event-stream parser. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Parser {
    max_len: usize,
    bom: Bom,
    /// The incomplete line carried over from earlier chunks.
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one
    /// belongs to that line end.
    skip_lf: bool,
    event_type: String,
    data: String,
    last_event_id: String,
    items: VecDeque<Item>,
    error: Option<ParseError>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser with the default 1 MiB limit on lines and event data.
    pub fn new() -> Self {
        Parser::with_max_len(DEFAULT_MAX_LEN)
    }

    /// A parser that fails once a line, or an event's data, exceeds
    /// `max_len` bytes.
    pub fn with_max_len(max_len: usize) -> Self {
        Parser {
            max_len,
            bom: Bom::Matching(0),
            line: Vec::new(),
            skip_lf: false,
            event_type: String::new(),
            data: String::new(),
            last_event_id: String::new(),
            items: VecDeque::new(),
            error: None,
        }
    }

    /// The last event id seen (empty when none), as a reconnecting client
    /// would send in `Last-Event-ID`.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Starts a new stream (a reconnection): drops the incomplete line and
    /// event and the error state, but keeps the last event id and any items
    /// not yet taken, as an `EventSource` does.
    pub fn reconnect(&mut self) {
        self.bom = Bom::Matching(0);
        self.line = Vec::new();
        self.skip_lf = false;
        self.event_type.clear();
        self.data.clear();
        self.error = None;
    }

    /// The error the parser stopped on, if any.
    pub fn error(&self) -> Option<ParseError> {
        self.error
    }

    /// Takes the next parsed item, oldest first.
    pub fn next_item(&mut self) -> Option<Item> {
        self.items.pop_front()
    }

    /// Parses `chunk`, queueing the items it completes for
    /// [`next_item`](Parser::next_item).
    ///
    /// # Errors
    ///
    /// [`ParseError`] if a line or an event's data exceeds the limit, now or
    /// in an earlier call; the parser ignores further input until
    /// [`reconnect`](Parser::reconnect).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        let mut items = std::mem::take(&mut self.items);
        let result = self.feed_with(chunk, |item| items.push_back(item.to_owned()));
        self.items = items;
        result
    }

    /// Parses `chunk`, handing each item it completes to `f` as borrowed
    /// text: no allocation per item (the load generator's path). Items
    /// queued by earlier [`feed`](Parser::feed) calls stay queued.
    ///
    /// # Errors
    ///
    /// As [`feed`](Parser::feed).
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub_cli::parse::{ItemRef, Parser};
    ///
    /// let mut parser = Parser::new();
    /// let mut data = Vec::new();
    /// parser
    ///     .feed_with(b"data: a\n\ndata: b\n\n", |item| {
    ///         if let ItemRef::Event(event) = item {
    ///             data.push(event.data.to_owned());
    ///         }
    ///     })
    ///     .unwrap();
    /// assert_eq!(data, ["a", "b"]);
    /// ```
    pub fn feed_with(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(ItemRef<'_>),
    ) -> Result<(), ParseError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut rest = self.strip_bom(chunk);
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(at) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(at);
            let skip = match tail {
                [b'\r', b'\n', ..] => 2,
                [b'\r'] => {
                    self.skip_lf = true;
                    1
                }
                _ => 1,
            };
            rest = &tail[skip..];
            let result = if self.line.is_empty() {
                self.check_line_len(head.len())
                    .and_then(|()| self.process_line(head, &mut f))
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                let result = self
                    .check_line_len(line.len())
                    .and_then(|()| self.process_line(&line, &mut f));
                line.clear();
                self.line = line;
                result
            };
            if let Err(error) = result {
                return Err(self.fail(error));
            }
        }
        if !rest.is_empty() {
            if let Err(error) = self.check_line_len(self.line.len() + rest.len()) {
                return Err(self.fail(error));
            }
            self.line.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Consumes a leading BOM, possibly split over chunks, and returns the
    /// bytes of `chunk` that belong to the stream proper.
    fn strip_bom<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let Bom::Matching(mut matched) = self.bom else {
            return chunk;
        };
        let mut used = 0;
        while matched < BOM.len() && used < chunk.len() {
            if chunk[used] != BOM[matched] {
                // Not a BOM: the bytes matched in earlier chunks were stream
                // content. They are a proper prefix of the BOM, so contain no
                // line end; they start the current line.
                // `chunk[..used]` equals `BOM[matched - used..matched]`, so
                // the stream content is `BOM[..matched - used]` then `chunk`.
                self.bom = Bom::Done;
                self.line.extend_from_slice(&BOM[..matched - used]);
                return chunk;
            }
            matched += 1;
            used += 1;
        }
        if matched == BOM.len() {
            self.bom = Bom::Done;
        } else {
            self.bom = Bom::Matching(matched);
        }
        &chunk[used..]
    }

    fn check_line_len(&self, len: usize) -> Result<(), ParseError> {
        if len > self.max_len {
            Err(ParseError::LineTooLong {
                limit: self.max_len,
            })
        } else {
            Ok(())
        }
    }

    fn fail(&mut self, error: ParseError) -> ParseError {
        self.error = Some(error);
        self.line = Vec::new();
        self.data = String::new();
        self.event_type = String::new();
        error
    }

    fn process_line(
        &mut self,
        line: &[u8],
        f: &mut impl FnMut(ItemRef<'_>),
    ) -> Result<(), ParseError> {
        if line.is_empty() {
            self.dispatch(f);
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => {
                f(ItemRef::Comment(&decode(&line[1..])));
                return Ok(());
            }
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&decode(value));
            }
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_len {
                    return Err(ParseError::EventTooLarge {
                        limit: self.max_len,
                    });
                }
                self.data.push_str(&decode(value));
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => {
                self.last_event_id.clear();
                self.last_event_id.push_str(&decode(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let millis = value.iter().fold(0u64, |acc, &digit| {
                    acc.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                });
                f(ItemRef::Retry(millis));
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, f: &mut impl FnMut(ItemRef<'_>)) {
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // The data buffer always ends in the LF appended after its last line.
        let data = &self.data[..self.data.len() - 1];
        let event_type = if self.event_type.is_empty() {
            DEFAULT_EVENT_TYPE
        } else {
            self.event_type.as_str()
        };
        let id = (!self.last_event_id.is_empty()).then_some(self.last_event_id.as_str());
        f(ItemRef::Event(EventRef {
            event_type,
            id,
            data,
        }));
        // Cleared, not dropped: the buffers keep their capacity.
        self.event_type.clear();
        self.data.clear();
    }
}

/// UTF-8 with invalid sequences replaced by U+FFFD; borrowed when valid.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Vec<Item> {
        let mut parser = Parser::new();
        parser.feed(input).unwrap();
        std::iter::from_fn(|| parser.next_item()).collect()
    }

    fn event(event_type: &str, id: Option<&str>, data: &str) -> Item {
        Item::Event(ParsedEvent {
            event_type: event_type.into(),
            id: id.map(Into::into),
            data: data.into(),
        })
    }

    /// Every split of `input` into up to three chunks gives the same items.
    fn assert_chunking_independent(input: &[u8]) {
        let whole = parse(input);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut parser = Parser::new();
                for chunk in [&input[..i], &input[i..j], &input[j..]] {
                    parser.feed(chunk).unwrap();
                }
                let items: Vec<Item> = std::iter::from_fn(|| parser.next_item()).collect();
                assert_eq!(items, whole, "split at {i},{j} of {input:?}");
            }
        }
    }

    #[test]
    fn lines_end_in_cr_lf_or_crlf() {
        let expected = vec![event("message", None, "a\nb\nc")];
        assert_eq!(parse(b"data: a\ndata: b\ndata: c\n\n"), expected);
        assert_eq!(parse(b"data: a\rdata: b\rdata: c\r\r"), expected);
        assert_eq!(parse(b"data: a\r\ndata: b\r\ndata: c\r\n\r\n"), expected);
        assert_eq!(parse(b"data: a\rdata: b\r\ndata: c\n\r\n"), expected);
        assert_chunking_independent(b"data: a\r\ndata: b\rdata: c\n\r\n");
    }

    #[test]
    fn cr_at_chunk_end_then_lf_is_one_line_end() {
        let mut parser = Parser::new();
        parser.feed(b"data: a\r").unwrap();
        parser.feed(b"\ndata: b\r").unwrap();
        parser.feed(b"\n\r").unwrap();
        parser.feed(b"\n").unwrap();
        assert_eq!(parser.next_item(), Some(event("message", None, "a\nb")));
        assert_eq!(parser.next_item(), None);
        // A CR at a chunk end followed by a non-LF is a line end of its own.
        let mut parser = Parser::new();
        parser.feed(b"data: a\r").unwrap();
        parser.feed(b"\r").unwrap();
        assert_eq!(parser.next_item(), Some(event("message", None, "a")));
    }

    #[test]
    fn empty_chunk_between_cr_and_lf_keeps_them_one_line_end() {
        let mut parser = Parser::new();
        parser.feed(b"data: a\r").unwrap();
        parser.feed(b"").unwrap();
        parser.feed(b"\n").unwrap();
        // Had the LF counted as a second line end, the event would dispatch.
        assert_eq!(parser.next_item(), None);
        parser.feed(b"\n").unwrap();
        assert_eq!(parser.next_item(), Some(event("message", None, "a")));
    }

    #[test]
    fn leading_bom_is_skipped_once() {
        assert_eq!(
            parse(b"\xEF\xBB\xBFdata: x\n\n"),
            vec![event("message", None, "x")]
        );
        // A second BOM is part of the first line: the field name is not `data`.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"), vec![]);
        assert_chunking_independent(b"\xEF\xBB\xBFdata: x\n\n");
        assert_chunking_independent(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n");
    }

    #[test]
    fn partial_bom_is_content() {
        // EF BB then 'd': not a BOM; the bytes start the first line (lossily
        // decoded, so the field name is garbage and ignored).
        assert_eq!(parse(b"\xEF\xBBdata: x\n\n"), vec![]);
        assert_chunking_independent(b"\xEF\xBBdata: x\n\n");
        assert_chunking_independent(b"\xEF\n: c\n");
        assert_eq!(parse(b"\xEF:c\n"), vec![]);
        assert_eq!(parse(b":\xEF\n"), vec![Item::Comment("\u{FFFD}".into())]);
        assert_eq!(parse(b"\xEF\xBB\n:c\n"), vec![Item::Comment("c".into())]);
    }

    #[test]
    fn comments_are_reported_verbatim() {
        assert_eq!(
            parse(b":\n: keep-alive\n:  two\n"),
            vec![
                Item::Comment(String::new()),
                Item::Comment(" keep-alive".into()),
                Item::Comment("  two".into()),
            ]
        );
    }

    #[test]
    fn comment_does_not_dispatch_or_break_an_event() {
        assert_eq!(
            parse(b"data: a\n: ping\ndata: b\n\n"),
            vec![
                Item::Comment(" ping".into()),
                event("message", None, "a\nb")
            ]
        );
    }

    #[test]
    fn event_field_sets_the_type_for_one_event() {
        assert_eq!(
            parse(b"event: price\ndata: 1\n\ndata: 2\n\n"),
            vec![event("price", None, "1"), event("message", None, "2")]
        );
        assert_eq!(
            parse(b"event:\ndata: 1\n\n"),
            vec![event("message", None, "1")]
        );
    }

    #[test]
    fn data_lines_join_with_lf_and_keep_empty_lines() {
        assert_eq!(
            parse(b"data\ndata:\ndata: x\ndata: \n\n"),
            vec![event("message", None, "\n\nx\n")]
        );
        assert_eq!(parse(b"data:\n\n"), vec![event("message", None, "")]);
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        assert_eq!(
            parse(b"data:  two\nevent:  t\n\n"),
            vec![event(" t", None, " two")]
        );
        assert_eq!(parse(b"data:x:y\n\n"), vec![event("message", None, "x:y")]);
    }

    #[test]
    fn field_name_without_colon_has_empty_value() {
        assert_eq!(parse(b"data\n\n"), vec![event("message", None, "")]);
        assert_eq!(
            parse(b"event\ndata: x\n\n"),
            vec![event("message", None, "x")]
        );
        // `id` alone resets the last event id.
        assert_eq!(
            parse(b"id: 1\ndata: a\n\nid\ndata: b\n\n"),
            vec![
                event("message", Some("1"), "a"),
                event("message", None, "b")
            ]
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_names_are_case_sensitive() {
        assert_eq!(
            parse(b"foo: bar\nDATA: x\nData: y\ndata: z\n\n"),
            vec![event("message", None, "z")]
        );
    }

    #[test]
    fn last_event_id_persists_across_events() {
        let mut parser = Parser::new();
        parser
            .feed(b"id: 5\ndata: a\n\ndata: b\n\nid: 6\n\ndata: c\n\n")
            .unwrap();
        assert_eq!(parser.next_item(), Some(event("message", Some("5"), "a")));
        assert_eq!(parser.next_item(), Some(event("message", Some("5"), "b")));
        // `id: 6` in an event without data dispatches nothing but still sets
        // the last event id.
        assert_eq!(parser.next_item(), Some(event("message", Some("6"), "c")));
        assert_eq!(parser.last_event_id(), "6");
    }

    #[test]
    fn id_with_nul_is_ignored() {
        assert_eq!(
            parse(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"),
            vec![
                event("message", Some("1"), "a"),
                event("message", Some("1"), "b")
            ]
        );
    }

    #[test]
    fn retry_takes_digits_only() {
        assert_eq!(
            parse(b"retry: 1500\nretry: 15x\nretry: -1\nretry:\nretry: 1 \nretry:42\n"),
            vec![Item::Retry(1500), Item::Retry(42)]
        );
        assert_eq!(
            parse(b"retry: 99999999999999999999999\n"),
            vec![Item::Retry(u64::MAX)]
        );
    }

    #[test]
    fn blank_line_without_data_dispatches_nothing() {
        assert_eq!(
            parse(b"event: t\n\ndata: x\n\n"),
            vec![event("message", None, "x")]
        );
        assert_eq!(parse(b"\n\n\n"), vec![]);
    }

    #[test]
    fn incomplete_event_at_end_is_not_dispatched() {
        assert_eq!(parse(b"data: x\n"), vec![]);
        assert_eq!(parse(b"data: x"), vec![]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            parse(b"event: \xFF\ndata: a\xC3\n\n"),
            vec![event("\u{FFFD}", None, "a\u{FFFD}")]
        );
        // A multi-byte character split across chunks decodes whole.
        let mut parser = Parser::new();
        parser.feed(b"data: \xC3").unwrap();
        parser.feed(b"\xA9\n\n").unwrap();
        assert_eq!(parser.next_item(), Some(event("message", None, "\u{e9}")));
    }

    #[test]
    fn long_line_is_an_error_not_growth() {
        let mut parser = Parser::with_max_len(8);
        parser.feed(b"data: ok\n\n").unwrap();
        assert_eq!(parser.feed(b"data: 12"), Ok(()), "8 bytes is at the limit");
        assert_eq!(parser.feed(b"3"), Err(ParseError::LineTooLong { limit: 8 }));
        assert_eq!(
            parser.feed(b"\n\n"),
            Err(ParseError::LineTooLong { limit: 8 })
        );
        assert_eq!(parser.next_item(), Some(event("message", None, "ok")));
        assert_eq!(parser.next_item(), None);
        // Complete lines are checked too.
        let mut parser = Parser::with_max_len(8);
        assert!(parser.feed(b"data: 123\n\n").is_err());
        parser.reconnect();
        parser.feed(b"data: 1\n\n").unwrap();
        assert_eq!(parser.next_item(), Some(event("message", None, "1")));
    }

    #[test]
    fn event_data_is_bounded() {
        let mut parser = Parser::with_max_len(8);
        assert_eq!(
            parser.feed(b"data:123\ndata:123\ndata:123\n"),
            Err(ParseError::EventTooLarge { limit: 8 })
        );
    }

    #[test]
    fn reconnect_keeps_last_event_id() {
        let mut parser = Parser::new();
        parser.feed(b"id: 9\ndata: a\n\ndata: partial").unwrap();
        parser.reconnect();
        parser.feed(b"\xEF\xBB\xBFdata: b\n\n").unwrap();
        assert_eq!(parser.next_item(), Some(event("message", Some("9"), "a")));
        assert_eq!(parser.next_item(), Some(event("message", Some("9"), "b")));
    }

    #[test]
    fn feed_with_borrows_and_keeps_the_queue() {
        let mut parser = Parser::new();
        parser.feed(b": queued\n").unwrap();
        let mut seen = Vec::new();
        parser
            .feed_with(
                b"id: 1\nevent: t\ndata: a\n\nretry: 5\n:c\ndata: b\n\n",
                |item| seen.push(item.to_owned()),
            )
            .unwrap();
        assert_eq!(
            seen,
            vec![
                event("t", Some("1"), "a"),
                Item::Retry(5),
                Item::Comment("c".into()),
                event("message", Some("1"), "b"),
            ]
        );
        assert_eq!(parser.next_item(), Some(Item::Comment(" queued".into())));
        assert_eq!(parser.next_item(), None);
    }

    #[test]
    fn decodes_the_encoder_output() {
        let encoded = ssehub::Event::new("t", "a\r\nb\rc")
            .with_retry(std::time::Duration::from_millis(10))
            .encode(1 << 20)
            .unwrap();
        let mut wire = b"id: x-1\n".to_vec();
        wire.extend_from_slice(encoded.body());
        assert_eq!(
            parse(&wire),
            vec![Item::Retry(10), event("t", Some("x-1"), "a\nb\nc")]
        );
        assert_chunking_independent(&wire);
    }
}
