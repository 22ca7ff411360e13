//! The `Last-Event-ID` check to run before `rmcp` sees a request.
//!
//! `rmcp` 3.9 reads the header with `HeaderValue::to_str().ok()`: a value
//! that is not visible ASCII (UTF-8 `café`, say) reads as *absent*, so a
//! `GET` that asked to resume opens a fresh live stream instead — the
//! client silently loses the events it asked for. Event ids this store
//! issues are ASCII, so such a value can only be a client error; it gets a
//! 400 from [`check_last_event_id`] before the request reaches `rmcp`. So
//! does a request with two `Last-Event-ID` headers, which `rmcp` would
//! resolve by taking the first.

use std::fmt;

use http::header::HeaderName;
use http::HeaderMap;

/// The header, lower-case as `http` names it.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Why a request's `Last-Event-ID` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LastEventIdError {
    /// The value has bytes outside visible ASCII (and tab).
    NotAscii,
    /// The header appears more than once.
    Repeated,
}

impl fmt::Display for LastEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAscii => f.write_str("Last-Event-ID must be visible ASCII"),
            Self::Repeated => f.write_str("Last-Event-ID must appear at most once"),
        }
    }
}

impl std::error::Error for LastEventIdError {}

/// Checks the `Last-Event-ID` headers of a request before `rmcp` sees it;
/// answer an error with `400 Bad Request`. `rmcp` reads the header with
/// `to_str().ok()`, so a value that is not visible ASCII would read as
/// absent and a resume would open a live stream instead; of two headers it
/// would take the first.
///
/// # Errors
///
/// [`LastEventIdError::NotAscii`] or [`LastEventIdError::Repeated`].
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use ssehub_store::rmcp::{check_last_event_id, LastEventIdError};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(check_last_event_id(&headers), Ok(()));
/// headers.insert("last-event-id", HeaderValue::from_static("1-00000000000000ab/0/3"));
/// assert_eq!(check_last_event_id(&headers), Ok(()));
/// headers.insert("last-event-id", HeaderValue::from_bytes("café".as_bytes()).unwrap());
/// assert_eq!(check_last_event_id(&headers), Err(LastEventIdError::NotAscii));
/// ```
pub fn check_last_event_id(headers: &HeaderMap) -> Result<(), LastEventIdError> {
    let mut values = headers.get_all(LAST_EVENT_ID).iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(LastEventIdError::Repeated);
    }
    value
        .to_str()
        .map(|_| ())
        .map_err(|_| LastEventIdError::NotAscii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_repeated_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(LAST_EVENT_ID, HeaderValue::from_static("a"));
        headers.append(LAST_EVENT_ID, HeaderValue::from_static("b"));
        assert_eq!(
            check_last_event_id(&headers),
            Err(LastEventIdError::Repeated)
        );
    }

    #[test]
    fn bytes_above_ascii_are_refused() {
        for bad in [&b"\xff"[..], b"id-\x80", "caf\u{e9}".as_bytes()] {
            let mut headers = HeaderMap::new();
            let value = HeaderValue::from_bytes(bad).expect("obs-text is a legal header value");
            headers.insert(LAST_EVENT_ID, value);
            assert_eq!(
                check_last_event_id(&headers),
                Err(LastEventIdError::NotAscii),
                "{bad:?}"
            );
        }
    }
}
