//! The streaming front's reading of a request head: is it complete, and is
//! it a `GET /events` the front may stream itself?
//!
//! The rule is "the same verdict as hyper": the front parses with
//! `httparse`, the parser hyper uses, with hyper's header count (100), so a
//! head is complete here exactly when it is complete for hyper (bare-LF line
//! ends included) and malformed here exactly when hyper refuses it. The
//! front streams only a head that hyper would also accept as a bodyless
//! `GET /events` — a request target that parses as a URI, header names and
//! values that `http` accepts, no `Transfer-Encoding`, and at most one
//! `Content-Length`, which is `0`. Anything else, malformed or merely
//! unusual (conflicting lengths, a body), is [`Head::Other`]: hyper reads it
//! and answers, so hyper's verdict is the only one.
//!
//! [`classify`] is a pure function of the bytes received so far; more bytes
//! never change a verdict other than [`Head::Partial`], so the verdict does
//! not depend on how the head was split across reads (the `front_head`
//! fuzz target checks both properties against hyper).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// Longest request head either path accepts (hyper answers 431 beyond it).
pub const MAX_HEAD: usize = 16 << 10;
/// Most request headers, as hyper counts them (its default).
pub const MAX_HEADERS: usize = 100;

/// What the bytes received so far are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A prefix of a head that may still turn out valid: read more.
    Partial,
    /// A complete, bodyless `GET /events` head of `len` bytes that hyper
    /// would accept.
    Events(EventsHead),
    /// Anything else: hyper reads it and decides.
    Other,
}

/// A complete `GET /events` head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsHead {
    /// Bytes of the head, up to and including its blank line.
    pub len: usize,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The headers, as hyper would hand them to the router.
    pub headers: HeaderMap,
}

/// Classifies the bytes received so far (see the module docs).
pub fn classify(bytes: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => return Head::Partial,
        _ => return Head::Other,
    };
    events_head(&request, len).map_or(Head::Other, Head::Events)
}

fn events_head(request: &httparse::Request<'_, '_>, len: usize) -> Option<EventsHead> {
    if request.method? != "GET" {
        return None;
    }
    let uri: Uri = request.path?.parse().ok()?;
    if uri.path() != "/events" {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut content_lengths = 0;
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        if name == axum::http::header::TRANSFER_ENCODING {
            return None;
        }
        if name == axum::http::header::CONTENT_LENGTH {
            content_lengths += 1;
            if content_lengths > 1 || value.as_bytes() != b"0" {
                return None;
            }
        }
        headers.append(name, value);
    }
    Some(EventsHead {
        len,
        query: uri.query().map(str::to_owned),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_heads_are_complete() {
        let head = classify(b"GET /events?x=1 HTTP/1.1\nHost: x\n\n");
        let Head::Events(events) = head else {
            panic!("{head:?}")
        };
        assert_eq!(events.query.as_deref(), Some("x=1"));
        assert_eq!(classify(b"GET /healthz HTTP/1.1\nHost: x\n\n"), Head::Other);
    }

    #[test]
    fn prefixes_are_partial_and_garbage_is_hyper_s() {
        assert_eq!(classify(b"GET /events HTTP/1.1\r\nHost"), Head::Partial);
        assert_eq!(classify(b""), Head::Partial);
        assert_eq!(classify(b"\x00\x01 nonsense\r\n\r\n"), Head::Other);
    }

    #[test]
    fn bodies_and_conflicting_lengths_are_hyper_s() {
        for head in [
            &b"GET /events HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"[..],
            b"GET /events HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            b"GET /events HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
            b"GET /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /events HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                classify(head),
                Head::Other,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        assert!(matches!(
            classify(b"GET /events HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Head::Events(_)
        ));
    }

    #[test]
    fn no_prefix_decides_differently() {
        for head in [
            &b"GET /events?event_type=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n"[..],
            b"GET /events HTTP/1.1\nHost: x\n\nGET /healthz HTTP/1.1\n\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /events HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            let whole = classify(head);
            assert_ne!(whole, Head::Partial);
            for cut in 0..head.len() {
                let verdict = classify(&head[..cut]);
                assert!(
                    verdict == Head::Partial || verdict == whole,
                    "{cut} bytes of {:?}: {verdict:?}",
                    String::from_utf8_lossy(head)
                );
            }
        }
    }

    #[test]
    fn oversized_heads_are_hyper_s() {
        let mut head = b"GET /events HTTP/1.1\r\nX: ".to_vec();
        head.resize(MAX_HEAD, b'a');
        assert_eq!(classify(&head), Head::Other);
    }
}
