//! Session handles and the event-id codec.
//!
//! An event id is `<session-token>/<stream>/<index>`, for example
//! `1f-9c3e01d24b7a55e0/0/17`:
//!
//! - the session token is the session key in lower-case hex (no leading
//!   zeros), a `-`, and a 64-bit per-session secret as exactly 16 lower-case
//!   hex digits;
//! - the stream is the stream number in decimal;
//! - the index is the event's 1-based index within the stream in decimal.
//!
//! The id carries everything needed to find the stream (the session key picks
//! the shard and the session, the stream number the stream, the index the
//! position), so a replay lookup is O(1). The secret makes ids scoped: a
//! session's key is checked together with its secret, so an id copied from
//! another session fails [`Store::after_id`](super::Store::after_id)'s session
//! check, and an id with a guessed key but a wrong secret names no session.
//!
//! Parsing is strict and canonical: every id [`EventId::parse`] accepts prints
//! back to the same string, and anything else (signs, leading zeros, upper
//! case, overflow, extra fields, over-long input) is
//! [`StoreError::MalformedId`].

use std::fmt;
use std::str::FromStr;

use super::StoreError;

/// The longest well-formed id: 16 + 1 + 16 hex, 2 slashes, 10 + 20 digits.
const MAX_ID_LEN: usize = 16 + 1 + 16 + 1 + 10 + 1 + 20;

/// A session in a [`Store`](super::Store): its key and its secret.
///
/// `SessionId` is `Copy` and cheap; it is the capability to append to and
/// replay the session's streams. Keys are never reused within a store, so a
/// handle to a closed session stays invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId {
    pub(crate) key: u64,
    pub(crate) secret: u64,
}

impl SessionId {
    /// The session's key (unique within its store, never reused).
    pub fn key(&self) -> u64 {
        self.key
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret is not printed in debug output.
        f.debug_struct("SessionId").field("key", &self.key).finish()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{:016x}", self.key, self.secret)
    }
}

impl FromStr for SessionId {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let (key, secret) = s.split_once('-').ok_or(StoreError::MalformedId)?;
        if secret.len() != 16 {
            return Err(StoreError::MalformedId);
        }
        Ok(Self {
            key: parse_hex(key)?,
            secret: parse_hex_fixed(secret)?,
        })
    }
}

/// A stream within a session, numbered from 0 in the order opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub(crate) u32);

impl StreamId {
    /// The stream numbered `n` (streams are numbered from 0 in the order
    /// [`Store::open_stream`](super::Store::open_stream) opened them).
    pub const fn new(n: u32) -> Self {
        Self(n)
    }

    /// The stream's number within its session.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of one stored event: session, stream and 1-based index.
///
/// # Examples
///
/// ```
/// use ssehub_store::EventId;
///
/// let id: EventId = "1f-00000000000000ab/2/17".parse().unwrap();
/// assert_eq!(id.stream.get(), 2);
/// assert_eq!(id.index, 17);
/// assert_eq!(id.to_string(), "1f-00000000000000ab/2/17");
/// assert!("1f-00000000000000ab/2/017".parse::<EventId>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventId {
    /// The session the event belongs to.
    pub session: SessionId,
    /// The stream within the session.
    pub stream: StreamId,
    /// The event's index within the stream (the first event is 1).
    pub index: u64,
}

impl EventId {
    /// Parses an id in the canonical form `<key>-<secret>/<stream>/<index>`.
    ///
    /// # Errors
    ///
    /// [`StoreError::MalformedId`] for anything that is not exactly the
    /// canonical form [`Display`](fmt::Display) prints.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        if s.len() > MAX_ID_LEN {
            return Err(StoreError::MalformedId);
        }
        let mut parts = s.split('/');
        let (Some(session), Some(stream), Some(index), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StoreError::MalformedId);
        };
        let stream = u32::try_from(parse_dec(stream)?).map_err(|_| StoreError::MalformedId)?;
        Ok(Self {
            session: session.parse()?,
            stream: StreamId(stream),
            index: parse_dec(index)?,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.session, self.stream, self.index)
    }
}

impl FromStr for EventId {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::parse(s)
    }
}

/// Canonical decimal: digits only, no leading zero unless the value is 0.
fn parse_dec(s: &str) -> Result<u64, StoreError> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return Err(StoreError::MalformedId);
    }
    b.iter().try_fold(0u64, |acc, &c| {
        if !c.is_ascii_digit() {
            return Err(StoreError::MalformedId);
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(StoreError::MalformedId)
    })
}

/// Canonical lower-case hex with no leading zero (unless the value is 0).
fn parse_hex(s: &str) -> Result<u64, StoreError> {
    let b = s.as_bytes();
    if b.len() > 1 && b[0] == b'0' {
        return Err(StoreError::MalformedId);
    }
    parse_hex_fixed(s)
}

/// Lower-case hex of 1 to 16 digits, leading zeros allowed.
fn parse_hex_fixed(s: &str) -> Result<u64, StoreError> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 16 {
        return Err(StoreError::MalformedId);
    }
    b.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return Err(StoreError::MalformedId),
        };
        Ok((acc << 4) | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        for (key, secret, stream, index) in [
            (0, 0, 0, 0),
            (1, 0xab, 2, 17),
            (u64::MAX, u64::MAX, u32::MAX, u64::MAX),
        ] {
            let id = EventId {
                session: SessionId { key, secret },
                stream: StreamId(stream),
                index,
            };
            let s = id.to_string();
            assert!(s.len() <= MAX_ID_LEN, "{s}");
            assert_eq!(EventId::parse(&s), Ok(id));
        }
    }

    #[test]
    fn rejects_non_canonical() {
        for bad in [
            "",
            "/",
            "//",
            "1-00000000000000ab/0",
            "1-00000000000000ab/0/1/2",
            "01-00000000000000ab/0/1",
            "1-0ab/0/1",
            "1-00000000000000AB/0/1",
            "1-00000000000000ab/00/1",
            "1-00000000000000ab/0/+1",
            "1-00000000000000ab/0/-1",
            "1-00000000000000ab/4294967296/1",
            "1-00000000000000ab/0/18446744073709551616",
            "1-00000000000000ab/0/ 1",
            "11111111111111111-00000000000000ab/0/1",
            "1_00000000000000ab/0/1",
            "1-00000000000000ab/0/1é",
        ] {
            assert_eq!(EventId::parse(bad), Err(StoreError::MalformedId), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_secret() {
        let s = SessionId {
            key: 7,
            secret: 0xdead_beef,
        };
        assert!(!format!("{s:?}").contains("deadbeef"));
        assert!(s.to_string().contains("deadbeef"));
    }
}
