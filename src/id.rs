//! Auto event ids: `<generation token, 16 lower-case hex digits>-<number>`.
//!
//! The generation token is random per generation (fresh at every reset and
//! every process start), so an id from an earlier generation or an earlier
//! run is recognised as such. The number is the event's sequence + 1, so
//! "resume after id N" means "start at sequence N" and `…-0` means "from the
//! start of the generation".
//!
//! Caller-supplied ids are opaque strings; one with the auto-id shape is
//! refused at publish so it can never be mistaken for a position.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// Number of hex digits of the generation token.
const TOKEN_DIGITS: usize = 16;

/// Longest auto id: 16 hex digits, `-`, 20 decimal digits.
pub(crate) const MAX_AUTO_ID_LEN: usize = TOKEN_DIGITS + 1 + 20;

/// A fresh generation token: OS-seeded randomness mixed with the time.
pub(crate) fn new_generation_token() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Writes the auto id of (`token`, `seq`) into `buf`; returns the id bytes.
pub(crate) fn format_auto_id(token: u64, seq: u64, buf: &mut [u8; MAX_AUTO_ID_LEN]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in buf[..TOKEN_DIGITS].iter_mut().enumerate() {
        *byte = HEX[((token >> (60 - 4 * i)) & 0xf) as usize];
    }
    buf[TOKEN_DIGITS] = b'-';
    let mut digits = crate::frame::itoa_buf();
    let number = crate::frame::format_u64(&mut digits, seq + 1);
    let end = TOKEN_DIGITS + 1 + number.len();
    buf[TOKEN_DIGITS + 1..end].copy_from_slice(number);
    &buf[..end]
}

/// The writer's `id: <token>-<number>\n` line, kept formatted: moving to
/// the next sequence increments the decimal digits in place instead of
/// formatting the whole id again.
#[derive(Debug, Clone)]
pub(crate) struct AutoIdLine {
    buf: [u8; AUTO_ID_LINE_MAX],
    len: usize,
    seq: u64,
}

/// `id: ` + the longest auto id + `\n`.
const AUTO_ID_LINE_MAX: usize = 4 + MAX_AUTO_ID_LEN + 1;
/// Where the decimal number starts in the line.
const NUMBER_START: usize = 4 + TOKEN_DIGITS + 1;

impl AutoIdLine {
    /// The line for (`token`, `seq`).
    pub(crate) fn new(token: u64, seq: u64) -> AutoIdLine {
        let mut line = AutoIdLine {
            buf: [0; AUTO_ID_LINE_MAX],
            len: 0,
            seq,
        };
        line.buf[..4].copy_from_slice(crate::frame::ID_PREFIX);
        let mut id = [0u8; MAX_AUTO_ID_LEN];
        let id = format_auto_id(token, seq, &mut id);
        line.buf[4..4 + id.len()].copy_from_slice(id);
        line.buf[4 + id.len()] = b'\n';
        line.len = 4 + id.len() + 1;
        line
    }

    /// The line for `seq` of the same generation.
    #[inline]
    pub(crate) fn line(&mut self, seq: u64) -> &[u8] {
        if seq == self.seq + 1 && self.increment() {
            self.seq = seq;
        } else if seq != self.seq {
            self.rewrite_number(seq);
        }
        &self.buf[..self.len]
    }

    /// Adds one to the number in place; false if it needs one more digit.
    #[inline]
    fn increment(&mut self) -> bool {
        let digits = &mut self.buf[NUMBER_START..self.len - 1];
        for digit in digits.iter_mut().rev() {
            if *digit == b'9' {
                *digit = b'0';
            } else {
                *digit += 1;
                return true;
            }
        }
        false
    }

    fn rewrite_number(&mut self, seq: u64) {
        let mut digits = crate::frame::itoa_buf();
        let number = crate::frame::format_u64(&mut digits, seq + 1);
        self.buf[NUMBER_START..NUMBER_START + number.len()].copy_from_slice(number);
        self.len = NUMBER_START + number.len() + 1;
        self.buf[self.len - 1] = b'\n';
        self.seq = seq;
    }
}

/// The auto id of (`token`, `seq`) as a `String`.
pub(crate) fn auto_id(token: u64, seq: u64) -> String {
    let mut buf = [0u8; MAX_AUTO_ID_LEN];
    String::from_utf8_lossy(format_auto_id(token, seq, &mut buf)).into_owned()
}

/// Parses an auto id into (generation token, number). `None` if `id` does not
/// have the auto-id shape.
pub(crate) fn parse_auto_id(id: &str) -> Option<(u64, u64)> {
    let (token, number) = id.split_once('-')?;
    if token.len() != TOKEN_DIGITS
        || !token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        || number.is_empty()
        || number.len() > 20
        || !number.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let token = u64::from_str_radix(token, 16).ok()?;
    let number = number.parse::<u64>().ok()?;
    Some((token, number))
}

/// True if a caller-supplied id could be mistaken for an auto id.
pub(crate) fn looks_like_auto_id(id: &str) -> bool {
    parse_auto_id(id).is_some()
        || id.split_once('-').is_some_and(|(token, number)| {
            token.len() == TOKEN_DIGITS
                && token.bytes().all(|b| b.is_ascii_hexdigit())
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (token, seq) in [(0u64, 0u64), (u64::MAX, u64::MAX - 1), (0xabc, 41)] {
            let id = auto_id(token, seq);
            assert_eq!(parse_auto_id(&id), Some((token, seq + 1)), "{id}");
            assert!(looks_like_auto_id(&id));
        }
        assert_eq!(auto_id(0xabc, 41), "0000000000000abc-42");
    }

    #[test]
    fn rejects_other_shapes() {
        for id in [
            "",
            "abc",
            "0000000000000abc-",
            "000000000000abc-1",
            "0000000000000abc-1x",
            "0000000000000abc+1",
            "0000000000000abc-99999999999999999999999",
        ] {
            assert_eq!(parse_auto_id(id), None, "{id}");
        }
        assert!(looks_like_auto_id("0000000000000ABC-1"));
        assert!(!looks_like_auto_id("order-17"));
    }

    #[test]
    fn id_line_follows_the_sequence() {
        let token = 0xfeed;
        let mut line = AutoIdLine::new(token, 0);
        for seq in (0..1_200).chain([5, 99_999, 100_000, 7, u64::MAX - 2, u64::MAX - 1]) {
            let expected = format!("id: {}\n", auto_id(token, seq));
            assert_eq!(line.line(seq), expected.as_bytes(), "seq {seq}");
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_generation_token(), new_generation_token());
    }
}
