//! RFC 3339 timestamps for `?from_timestamp=`, to Unix nanoseconds.
//!
//! The calendar is `jiff`'s: it validates the date (month, day of that
//! month, leap years) and counts the days since the epoch. What stays here
//! is the RFC 3339 grammar itself, because the contract needs two things a
//! general date parser does not do: in a query string an unencoded `+`
//! decodes to a space, so `2026-01-01T00:00:00 02:00` is read as the
//! `+02:00` offset it was; and a leap second (`:60`) is accepted and counts
//! as the second after `:59` (jiff would clamp it to `:59`). RFC 3339 only:
//! none of the ISO 8601 or Temporal extensions (basic format, hour-only
//! offsets, zone annotations) that jiff's own parser accepts.
//!
//! Accepted: `YYYY-MM-DD` `T`/`t`/space `HH:MM:SS`, an optional fraction of
//! any length (nanosecond precision, further digits ignored), and `Z`/`z` or
//! a `±HH:MM` offset (`+` may arrive as a space). Hour, minute and offset
//! are range-checked, seconds up to a leap second 60.

use jiff::civil::Date;

/// Parses an RFC 3339 timestamp into nanoseconds since the Unix epoch
/// (negative before 1970).
///
/// # Errors
///
/// A short description of the first thing wrong with the text.
pub fn parse_rfc3339(text: &str) -> Result<i128, &'static str> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return Err("too short for an RFC 3339 timestamp");
    }
    let year = digits(bytes, 0, 4)?;
    expect(bytes, 4, b'-')?;
    let month = digits(bytes, 5, 2)?;
    expect(bytes, 7, b'-')?;
    let day = digits(bytes, 8, 2)?;
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return Err("expected 'T' between date and time");
    }
    let hour = digits(bytes, 11, 2)?;
    expect(bytes, 13, b':')?;
    let minute = digits(bytes, 14, 2)?;
    expect(bytes, 16, b':')?;
    let second = digits(bytes, 17, 2)?;
    // Four digits, two digits: each fits its jiff type.
    let date = Date::new(year as i16, month as i8, day as i8).map_err(|_| {
        if (1..=12).contains(&month) {
            "day out of range"
        } else {
            "month out of range"
        }
    })?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time out of range");
    }

    let mut at = 19;
    let mut nanos: i128 = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            if at - start < 9 {
                nanos = nanos * 10 + i128::from(bytes[at] - b'0');
            }
            at += 1;
        }
        let count = at - start;
        if count == 0 {
            return Err("expected digits after '.'");
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }

    let offset_seconds: i128 = match &bytes[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-' | b' '), rest @ ..] if rest.len() == 5 => {
            let hours = digits(rest, 0, 2)?;
            expect(rest, 2, b':')?;
            let minutes = digits(rest, 3, 2)?;
            if hours > 23 || minutes > 59 {
                return Err("offset out of range");
            }
            let magnitude = i128::from(hours * 3600 + minutes * 60);
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        [] => return Err("missing time zone offset ('Z' or ±HH:MM)"),
        _ => return Err("malformed time zone offset"),
    };

    let days = date
        .since(Date::constant(1970, 1, 1))
        .map_err(|_| "date out of range")?
        .get_days();
    let seconds =
        i128::from(days) * 86_400 + i128::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    Ok(seconds * 1_000_000_000 + nanos)
}

/// Clamps a parsed timestamp to the hub's `u64` nanoseconds: before 1970
/// becomes 0 (everything retained), past 2554 becomes the far future.
pub fn to_unix_nanos(nanos: i128) -> u64 {
    u64::try_from(nanos.max(0)).unwrap_or(u64::MAX)
}

fn digits(bytes: &[u8], at: usize, count: usize) -> Result<u32, &'static str> {
    let slice = bytes.get(at..at + count).ok_or("timestamp ends early")?;
    slice.iter().try_fold(0u32, |value, &b| {
        if b.is_ascii_digit() {
            Ok(value * 10 + u32::from(b - b'0'))
        } else {
            Err("expected a digit")
        }
    })
}

fn expect(bytes: &[u8], at: usize, want: u8) -> Result<(), &'static str> {
    match bytes.get(at) {
        Some(&b) if b == want => Ok(()),
        _ => Err("malformed timestamp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i128 = 1_000_000_000;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00Z"),
            Ok(1_767_225_600 * SECOND)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29t12:00:00z"),
            Ok(951_825_600 * SECOND)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Ok(-SECOND));
    }

    #[test]
    fn offsets_including_a_plus_that_became_a_space() {
        let utc = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let hours = 2 * 3600 * SECOND;
        assert_eq!(parse_rfc3339("2026-01-01T02:00:00+02:00"), Ok(utc));
        assert_eq!(parse_rfc3339("2026-01-01T02:00:00 02:00"), Ok(utc));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00-02:00"), Ok(utc + hours));
        assert_eq!(parse_rfc3339("2026-01-01 00:00:00+00:00"), Ok(utc));
    }

    #[test]
    fn fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Ok(SECOND / 2));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000001Z"), Ok(1));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.0000000019Z"), Ok(1));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "yesterday",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+2:00",
            "2026-01-01T00:00:00+02:00x",
            "2026-01-01X00:00:00Z",
            "2026-01-01T00:00:00ZZ",
            "२०२६-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn leap_seconds_count_as_the_next_second() {
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2017-01-01T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60.5Z"),
            Ok(parse_rfc3339("2017-01-01T00:00:00Z").unwrap() + SECOND / 2)
        );
        assert!(parse_rfc3339("2016-12-31T23:59:61Z").is_err());
    }

    #[test]
    fn years_at_both_ends_of_the_grammar() {
        assert_eq!(
            parse_rfc3339("0000-01-01T00:00:00Z"),
            Ok(-62_167_219_200 * SECOND)
        );
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59Z"),
            Ok(253_402_300_799 * SECOND)
        );
        assert!(
            parse_rfc3339("0000-02-29T00:00:00Z").is_ok(),
            "year 0 is a leap year"
        );
    }

    #[test]
    fn only_rfc_3339_not_temporal_extensions() {
        for bad in [
            "20260101T000000Z",
            "2026-01-01T00:00:00+02",
            "2026-01-01T00:00:00Z[UTC]",
            "2026-01-01T00:00:00,5Z",
            "+002026-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn clamps_to_u64() {
        assert_eq!(to_unix_nanos(-5), 0);
        assert_eq!(to_unix_nanos(7), 7);
        let far = parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(to_unix_nanos(far), u64::MAX);
    }
}
