//! RFC 3339 timestamps for `?from_timestamp=`, to Unix nanoseconds.
//!
//! A small parser of its own rather than a date crate: the grammar is tiny,
//! and the one deviation the contract needs is easy here and awkward with a
//! library — in a query string an unencoded `+` decodes to a space, so
//! `2026-01-01T00:00:00 02:00` is read as the `+02:00` offset it was.
//!
//! Accepted: `YYYY-MM-DD` `T`/`t`/space `HH:MM:SS`, an optional fraction of
//! any length (nanosecond precision, further digits ignored), and `Z`/`z` or
//! a `±HH:MM` offset (`+` may arrive as a space). Everything is range-checked
//! (month, day of that month, hour, minute, second up to a leap second 60).

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
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
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

    let days = days_from_civil(i64::from(year), month, day);
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

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
    fn clamps_to_u64() {
        assert_eq!(to_unix_nanos(-5), 0);
        assert_eq!(to_unix_nanos(7), 7);
        let far = parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(to_unix_nanos(far), u64::MAX);
    }
}
