//! The one front door of a subscription: who may subscribe, to what, from
//! where, and what the stream looks like on the wire.
//!
//! Both ways a stream is served call this module and nothing else:
//! the axum handler (`events`, through [`SseResponse`](super::SseResponse))
//! and the streaming front of [`serve`](super::serve) (`fast`). So the two
//! admit and refuse exactly the same requests, log the same fields, and
//! write the same bytes.
//!
//! # Admission, in order
//!
//! 1. The credential ([`access::subscriber_grant`]): the subscriber token,
//!    or a signed token (JWT) from `Authorization: Bearer`, `?token=` or the
//!    `ssehub_token` cookie.
//! 2. The query and `Last-Event-ID` ([`parse_events_query`]): types and the
//!    resume point; a signed token then fixes the type filter to what it
//!    grants (403 `forbidden_type` for a type outside it), so replays obey
//!    it too, at no per-event cost.
//! 3. [`Hub::subscribe`]: resolves the resume point (410 when gone) and
//!    enforces the subscriber limit (503).
//!
//! A stream opened with a signed token ends at the token's `exp` with
//! `: end token_expired` ([`Admitted::expires`]).
//!
//! A refusal is an [`ApiError`], logged once (`subscribe refused`) by
//! [`admit`]; the caller only renders it.
//!
//! # Wire bytes
//!
//! `: ok` first ([`OPENING`], so the head is flushed at once), then each
//! [`Delivery`] as [`wire_bytes`] maps it: a batch as its pre-encoded bytes,
//! a keep-alive as `:`, and the end as `: end <reason>`. A stream that the
//! server ends because the client stopped reading gets no final comment (it
//! could not be written) and logs `write_timeout`.
//!
//! # Log fields
//!
//! One `stream opened` line (connection number, peer, generation, types,
//! resume point) and one `stream closed` line (reason, chunks, duration).
//! Every text that came from the request is escaped ([`Escaped`]), so a
//! control character in a type or an id cannot forge or garble log lines.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderMap;
use bytes::Bytes;

use super::access;
use super::error::ApiError;
use super::query::parse_events_query;
use super::AppState;
use crate::{Delivery, EndReason, Resume, Subscription, KEEP_ALIVE};

/// The first bytes of every stream body: flushes the response head.
pub(crate) const OPENING: &[u8] = b": ok\n\n";

/// Why a stream closed, as the `stream closed` line says it.
pub(crate) const CLIENT_CLOSED: &str = "client_closed";
/// A client that stopped reading was cut off by the write timeout.
pub(crate) const WRITE_TIMEOUT: &str = "write_timeout";
/// The signed token that opened the stream expired.
pub(crate) const TOKEN_EXPIRED: &str = "token_expired";

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// An admitted subscription and what its log lines say about it.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) subscription: Subscription,
    pub(crate) log: StreamLog,
    /// When the signed token that opened the stream expires: the stream
    /// ends then with `: end token_expired`.
    pub(crate) expires: Option<SystemTime>,
}

/// The log lines of one stream: opened at admission, closed by
/// [`StreamLog::closed`].
#[derive(Debug)]
pub(crate) struct StreamLog {
    connection: u64,
    opened: Instant,
}

impl StreamLog {
    /// Logs `stream opened` for `subscription` and starts the clock.
    pub(crate) fn opened(
        subscription: &Subscription,
        peer: Option<SocketAddr>,
        types: &[String],
        resume: &Resume,
        subject: &str,
    ) -> StreamLog {
        StreamLog::opened_in(
            Some(subscription.generation()),
            peer,
            types,
            resume,
            subject,
        )
    }

    /// Logs `stream opened` for a stream of `generation` (if known yet).
    pub(crate) fn opened_in(
        generation: Option<u64>,
        peer: Option<SocketAddr>,
        types: &[String],
        resume: &Resume,
        subject: &str,
    ) -> StreamLog {
        let connection = CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            connection,
            peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            generation,
            types = %Escaped(&types.join(",")),
            resume = %DescribeResume(resume),
            sub = %Escaped(subject),
            "stream opened"
        );
        StreamLog {
            connection,
            opened: Instant::now(),
        }
    }

    /// Logs `stream closed` with `reason` and the number of chunks written.
    pub(crate) fn closed(&self, reason: &str, chunks: u64) {
        tracing::info!(
            connection = self.connection,
            reason,
            chunks,
            duration_ms = self.opened.elapsed().as_millis() as u64,
            "stream closed"
        );
    }
}

/// Decides a `GET /events` request: its raw query, its headers, and the
/// peer (for the log). Logs a refusal once.
///
/// # Errors
///
/// 401 without a valid credential, 400 for bad parameters, 410 for a resume
/// point that is gone, 503 at the subscriber limit or after shutdown.
pub(crate) fn admit(
    state: &AppState,
    query: Option<&str>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Admitted, ApiError> {
    decide(state, query, headers, peer).inspect_err(|error| {
        tracing::debug!(
            status = error.status.as_u16(),
            code = error.code,
            "subscribe refused"
        );
    })
}

fn decide(
    state: &AppState,
    query: Option<&str>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Admitted, ApiError> {
    let grant = access::subscriber_grant(
        state.subscriber_token.as_deref(),
        state.jwt.as_deref(),
        headers,
        query,
    )?;
    let mut options = parse_events_query(query, headers, state.hub.config().max_types)?.options;
    if let Some(grant) = &grant {
        grant.restrict_subscription(&mut options.types)?;
    }
    let types = options.types.clone();
    let resume = options.resume.clone();
    let subject = grant.as_ref().map_or("-", |grant| grant.subject_for_log());
    let subscription = state.hub.subscribe(options)?;
    let log = StreamLog::opened(&subscription, peer, &types, &resume, subject);
    Ok(Admitted {
        subscription,
        log,
        expires: grant.and_then(|grant| grant.expires),
    })
}

/// The runtime instant of a wall-clock expiry (now if past; what a timer
/// cannot hold is clamped to a year ahead).
pub(crate) fn expiry_deadline(at: SystemTime) -> tokio::time::Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .min(YEAR);
    tokio::time::Instant::now() + left
}

/// The credential check of every subscriber-facing route (`/events`, the
/// live page and its feed); see [`access::subscriber_grant`].
///
/// # Errors
///
/// 401 for a missing or wrong credential.
pub(crate) fn check_credentials(
    state: &AppState,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    access::subscriber_grant(
        state.subscriber_token.as_deref(),
        state.jwt.as_deref(),
        headers,
        query,
    )
    .map(drop)
}

/// The wire bytes of one delivery, and the end reason if it was the last.
pub(crate) fn wire_bytes(delivery: Delivery) -> (Bytes, Option<EndReason>) {
    match delivery {
        Delivery::Batch(batch) => (batch.into_bytes(), None),
        Delivery::KeepAlive => (Bytes::from_static(KEEP_ALIVE), None),
        Delivery::End(reason) => (end_comment(reason.as_str()), Some(reason)),
    }
}

/// The final comment of a stream: `: end <reason>`.
pub(crate) fn end_comment(reason: &str) -> Bytes {
    Bytes::from(format!(": end {reason}\n\n"))
}

/// How a resume point reads in the `stream opened` line (ids escaped).
struct DescribeResume<'a>(&'a Resume);

impl fmt::Display for DescribeResume<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Resume::Live => f.write_str("live"),
            Resume::AfterId(id) => write!(f, "after \"{}\"", Escaped(id)),
            Resume::FromTimestamp(nanos) => write!(f, "from {nanos}ns"),
        }
    }
}

/// Request text made safe for a log line: every control character (C0,
/// DEL, C1 such as NEL), the line and paragraph separators U+2028/U+2029,
/// the backslash and the double quote are written as escapes (`\u{1b}`,
/// `\\`, `\"`); everything else as is.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\\' | '"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_escapes_every_control_character() {
        let raw = "a\u{1b}[31mb\0c\u{b}d\u{c}e\u{2028}f\u{85}g\\h\"i\nj\u{7f}";
        let escaped = Escaped(raw).to_string();
        assert_eq!(
            escaped,
            "a\\u{1b}[31mb\\u{0}c\\u{b}d\\u{c}e\\u{2028}f\\u{85}g\\\\h\\\"i\\u{a}j\\u{7f}"
        );
        assert!(!escaped.chars().any(needs_escape_raw));
        assert_eq!(Escaped("plain-text é").to_string(), "plain-text é");
    }

    fn needs_escape_raw(c: char) -> bool {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
    }

    #[test]
    fn resume_points_describe_escaped() {
        let id = Resume::AfterId("x\u{1b}y".into());
        assert_eq!(DescribeResume(&id).to_string(), "after \"x\\u{1b}y\"");
        assert_eq!(DescribeResume(&Resume::Live).to_string(), "live");
    }
}
