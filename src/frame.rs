//! Encoding events into SSE wire bytes, once.
//!
//! An [`Event`] is validated and turned into an [`EncodedEvent`] exactly once,
//! before it reaches the ring. Subscribers copy those bytes; nobody re-encodes.
//!
//! The wire format follows the WHATWG `text/event-stream` rules:
//! - data is split on CR, LF and CRLF; each line becomes one `data:` line, so the
//!   client joins them back with LF (a client cannot tell CR from LF, which is
//!   the format's own limit);
//! - output lines end in LF; an event ends with a blank line;
//! - an empty or `message` type writes no `event:` line (the client's default);
//! - empty data still writes one `data:` line, so the event is dispatched.
//!
//! The `id:` line is *not* part of [`EncodedEvent::body`]: the writer prepends it
//! when it assigns the event its place (auto ids depend on the sequence number).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::EventError;
use crate::tag::TypeTag;

/// The SSE default event type; an empty type means the same.
pub const DEFAULT_EVENT_TYPE: &str = "message";

/// An event before encoding: its type, optional id, data and optional retry hint.
///
/// # Examples
///
/// ```
/// use ssehub::Event;
///
/// let event = Event::new("price", "{\"usd\":1}").with_id("p-1");
/// let encoded = event.encode(64 * 1024).unwrap();
/// assert_eq!(&encoded.body()[..], b"event: price\ndata: {\"usd\":1}\n\n");
/// assert_eq!(encoded.id(), Some("p-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    event_type: String,
    id: Option<String>,
    data: String,
    retry: Option<Duration>,
}

impl Event {
    /// An event of type `event_type` carrying `data`, with an auto-assigned id.
    pub fn new(event_type: impl Into<String>, data: impl Into<String>) -> Self {
        Event {
            event_type: event_type.into(),
            id: None,
            data: data.into(),
            retry: None,
        }
    }

    /// Sets a caller-chosen id. An empty id counts as absent (auto id).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        self.id = if id.is_empty() { None } else { Some(id) };
        self
    }

    /// Sets the client's reconnection delay hint (`retry:` field, milliseconds).
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The event type (`event:` field); empty means `message`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The caller-supplied id, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The data payload.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Validates and encodes the event into SSE wire bytes (without the `id:`
    /// line, which the writer prepends).
    ///
    /// # Errors
    ///
    /// [`EventError::InvalidType`] if the type contains CR or LF,
    /// [`EventError::InvalidId`] if the id contains CR, LF or NUL,
    /// [`EventError::TooLarge`] if the encoded frame, id line included, would
    /// exceed `max_event_bytes`.
    pub fn encode(&self, max_event_bytes: usize) -> Result<EncodedEvent, EventError> {
        validate_type(&self.event_type)?;
        if let Some(id) = &self.id {
            validate_id(id)?;
        }
        let event_type = if self.event_type.is_empty() {
            DEFAULT_EVENT_TYPE
        } else {
            self.event_type.as_str()
        };
        let id_line = self
            .id
            .as_ref()
            .map_or(0, |id| ID_PREFIX.len() + id.len() + 1);
        let estimate = id_line + encoded_body_len_upper_bound(event_type, &self.data, self.retry);
        let mut body = BytesMut::with_capacity(estimate.min(max_event_bytes + 64));
        if let Some(retry) = self.retry {
            body.put_slice(b"retry: ");
            let mut digits = itoa_buf();
            body.put_slice(format_u64(&mut digits, retry.as_millis() as u64));
            body.put_u8(b'\n');
        }
        if event_type != DEFAULT_EVENT_TYPE {
            body.put_slice(b"event: ");
            body.put_slice(event_type.as_bytes());
            body.put_u8(b'\n');
        }
        for line in data_lines(&self.data) {
            body.put_slice(b"data: ");
            body.put_slice(line.as_bytes());
            body.put_u8(b'\n');
            if id_line + body.len() > max_event_bytes {
                break;
            }
        }
        body.put_u8(b'\n');
        let total = id_line + body.len();
        if total > max_event_bytes {
            return Err(EventError::TooLarge {
                size: total,
                limit: max_event_bytes,
            });
        }
        Ok(EncodedEvent {
            body: body.freeze(),
            tag: TypeTag::of(event_type),
            id: self.id.clone().map(String::into_boxed_str),
        })
    }
}

/// The `id:` field prefix written before every event's id.
pub(crate) const ID_PREFIX: &[u8] = b"id: ";

/// An event validated and encoded once: the wire bytes minus the `id:` line,
/// its type tag for filtering, and the caller's id if it chose one.
///
/// Cheap to clone (`Bytes`), so one encoding can be published many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    body: Bytes,
    tag: TypeTag,
    id: Option<Box<str>>,
}

impl EncodedEvent {
    /// Rebuilds an event that another node encoded (a cluster node copying
    /// the publishing node's bytes from the shared source): `body` is what
    /// [`EncodedEvent::body`] returned there. The type and id are checked
    /// as at publish; `body` is trusted to be an encoder's output (the shared
    /// source is infrastructure the nodes trust, like their own memory).
    ///
    /// # Errors
    ///
    /// [`EventError::InvalidType`] / [`EventError::InvalidId`] as for
    /// [`Event::encode`].
    pub fn from_encoded_parts(
        body: Bytes,
        event_type: &str,
        id: Option<&str>,
    ) -> Result<EncodedEvent, EventError> {
        validate_type(event_type)?;
        if let Some(id) = id {
            validate_id(id)?;
        }
        Ok(EncodedEvent {
            body,
            tag: TypeTag::of(event_type),
            id: id.map(Into::into),
        })
    }

    /// The encoded fields and terminating blank line, without the `id:` line.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The type tag subscribers filter on.
    pub fn tag(&self) -> TypeTag {
        self.tag
    }

    /// The caller-supplied id, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Size on the wire once an id of `id_len` bytes is prepended.
    pub fn wire_len(&self, id_len: usize) -> usize {
        ID_PREFIX.len() + id_len + 1 + self.body.len()
    }
}

/// Checks an event type: no CR or LF (they would end the `event:` line).
///
/// # Errors
///
/// [`EventError::InvalidType`] naming the offending character.
pub fn validate_type(event_type: &str) -> Result<(), EventError> {
    if memchr::memchr2(b'\r', b'\n', event_type.as_bytes()).is_some() {
        return Err(EventError::InvalidType);
    }
    Ok(())
}

/// Checks an event id: no CR, LF (they would end the `id:` line) or NUL (the
/// WHATWG parser ignores an id containing NUL).
///
/// # Errors
///
/// [`EventError::InvalidId`].
pub fn validate_id(id: &str) -> Result<(), EventError> {
    if id.contains(['\r', '\n', '\0']) {
        return Err(EventError::InvalidId);
    }
    Ok(())
}

/// Splits data into lines on CR, LF and CRLF. Always yields at least one line,
/// so empty data is still dispatched by clients.
pub fn data_lines(data: &str) -> DataLines<'_> {
    DataLines { rest: Some(data) }
}

/// Iterator returned by [`data_lines`].
#[derive(Debug, Clone)]
pub struct DataLines<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for DataLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(at) => {
                let line = &rest[..at];
                let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                self.rest = Some(&rest[at + skip..]);
                Some(line)
            }
        }
    }
}

fn encoded_body_len_upper_bound(event_type: &str, data: &str, retry: Option<Duration>) -> usize {
    let lines = 1 + memchr::memchr2_iter(b'\r', b'\n', data.as_bytes()).count();
    let retry = if retry.is_some() { 8 + 20 } else { 0 };
    retry + 8 + event_type.len() + data.len() + lines * 7 + 1
}

/// The id of an encoded frame (its leading `id:` line), if it has one.
pub fn frame_id(frame: &[u8]) -> Option<&str> {
    let rest = frame.strip_prefix(ID_PREFIX)?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The event type a complete wire frame carries: its `event:` line, or
/// `message` when it has none. Only `id:` and `retry:` lines may precede the
/// `event:` line in frames this crate encodes.
pub(crate) fn frame_type(frame: &[u8]) -> &[u8] {
    let mut rest = frame;
    while let Some(end) = memchr::memchr(b'\n', rest) {
        let line = &rest[..end];
        if let Some(event_type) = line.strip_prefix(b"event: ") {
            return event_type;
        }
        if !(line.starts_with(ID_PREFIX) || line.starts_with(b"retry: ")) {
            break;
        }
        rest = &rest[end + 1..];
    }
    DEFAULT_EVENT_TYPE.as_bytes()
}

/// A stack buffer for [`format_u64`].
pub(crate) fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats `n` in decimal into `buf`, returning the digits (no allocation).
pub(crate) fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(event: Event) -> String {
        String::from_utf8(event.encode(1 << 20).unwrap().body().to_vec()).unwrap()
    }

    #[test]
    fn splits_data_on_cr_lf_and_crlf() {
        assert_eq!(
            body(Event::new("t", "a\rb\nc\r\nd")),
            "event: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
    }

    #[test]
    fn trailing_newline_gives_an_empty_last_data_line() {
        assert_eq!(
            body(Event::new("t", "a\n")),
            "event: t\ndata: a\ndata: \n\n"
        );
    }

    #[test]
    fn empty_data_still_dispatches() {
        assert_eq!(body(Event::new("t", "")), "event: t\ndata: \n\n");
    }

    #[test]
    fn default_type_writes_no_event_line() {
        assert_eq!(body(Event::new("", "x")), "data: x\n\n");
        assert_eq!(body(Event::new("message", "x")), "data: x\n\n");
        assert_eq!(
            Event::new("", "x").encode(100).unwrap().tag(),
            TypeTag::of("message")
        );
    }

    #[test]
    fn retry_is_written_in_milliseconds() {
        let event = Event::new("t", "x").with_retry(Duration::from_millis(1500));
        assert_eq!(body(event), "retry: 1500\nevent: t\ndata: x\n\n");
    }

    #[test]
    fn invalid_fields_are_errors() {
        assert_eq!(
            Event::new("a\nb", "x").encode(100),
            Err(EventError::InvalidType)
        );
        assert_eq!(
            Event::new("a\rb", "x").encode(100),
            Err(EventError::InvalidType)
        );
        for bad in ["a\nb", "a\rb", "a\0b"] {
            assert_eq!(
                Event::new("t", "x").with_id(bad).encode(100),
                Err(EventError::InvalidId)
            );
        }
    }

    #[test]
    fn size_limit_counts_the_id_line() {
        let event = Event::new("t", "x").with_id("abc");
        // "id: abc\n" (8) + "event: t\n" (9) + "data: x\n" (8) + "\n" (1) = 26
        assert!(event.encode(26).is_ok());
        assert_eq!(
            event.encode(25),
            Err(EventError::TooLarge {
                size: 26,
                limit: 25
            })
        );
        let huge = Event::new("t", "line\n".repeat(100_000));
        assert!(matches!(
            huge.encode(1000),
            Err(EventError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_id_counts_as_absent() {
        assert_eq!(Event::new("t", "x").with_id("").id(), None);
    }

    #[test]
    fn formats_integers() {
        let mut buf = itoa_buf();
        assert_eq!(format_u64(&mut buf, 0), b"0");
        let mut buf = itoa_buf();
        assert_eq!(
            format_u64(&mut buf, u64::MAX),
            u64::MAX.to_string().as_bytes()
        );
    }
}
