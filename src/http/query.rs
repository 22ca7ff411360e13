//! Parsing `GET /events` parameters into [`SubscribeOptions`].
//!
//! The query is decoded as `application/x-www-form-urlencoded` (so `+` is a
//! space, which the timestamp parser expects). Rules (docs/http-contract.md):
//! - `event_type=a,b` — comma list, repeatable; items trimmed, empty items
//!   ignored; an item with CR/LF or more than the type limit → 400.
//! - Resume precedence: a non-empty `Last-Event-ID` header, then `from`, then
//!   `from_timestamp`. Only the winner is evaluated, so a malformed loser is
//!   ignored. An empty value counts as absent. A winning id with CR, LF or
//!   NUL (which no event can have) is 400.
//! - Unknown parameters are ignored (a client may add cache busters).

use axum::http::HeaderMap;

use super::error::ApiError;
use super::timestamp::{parse_rfc3339, to_unix_nanos};
use crate::{Resume, SubscribeOptions};

/// The parsed parameters of a `GET /events` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    /// What to subscribe to and where to start.
    pub options: SubscribeOptions,
}

/// The `?token=` parameter (the subscriber token, for `EventSource`).
pub fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
}

/// Parses the raw query string and headers of a `GET /events` request.
///
/// # Errors
///
/// 400 `bad_request` for a bad `event_type` list or a `Last-Event-ID` that is
/// not UTF-8; 400 `invalid_timestamp` for a winning `from_timestamp` that is
/// not RFC 3339.
pub fn parse_events_query(
    query: Option<&str>,
    headers: &HeaderMap,
    max_types: usize,
) -> Result<EventsQuery, ApiError> {
    let mut types: Vec<String> = Vec::new();
    let mut from: Option<String> = None;
    let mut from_timestamp: Option<String> = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "event_type" => {
                for item in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if item.contains(['\r', '\n']) {
                        return Err(ApiError::bad_request(
                            "event_type items must not contain CR or LF",
                        ));
                    }
                    if !types.iter().any(|t| t == item) {
                        types.push(item.to_owned());
                    }
                    if types.len() > max_types {
                        return Err(ApiError::bad_request(format!(
                            "more than {max_types} event types requested"
                        )));
                    }
                }
            }
            "from" if !value.is_empty() => from = Some(value.into_owned()),
            "from_timestamp" if !value.is_empty() => from_timestamp = Some(value.into_owned()),
            _ => {}
        }
    }

    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            std::str::from_utf8(value.as_bytes())
                .map_err(|_| ApiError::bad_request("Last-Event-ID is not valid UTF-8"))?
                .to_owned(),
        ),
        None => None,
    }
    .filter(|id| !id.is_empty());

    let resume = if let Some(id) = last_event_id.or(from) {
        // No event can have such an id (publishing refuses it), so it is a
        // malformed parameter rather than a position that is gone.
        if crate::frame::validate_id(&id).is_err() {
            return Err(ApiError::bad_request(
                "resume id must not contain CR, LF or NUL",
            ));
        }
        Resume::AfterId(id)
    } else if let Some(text) = from_timestamp {
        let nanos = parse_rfc3339(&text).map_err(|why| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_timestamp",
                format!("from_timestamp {text:?} is not an RFC 3339 timestamp: {why}"),
            )
        })?;
        Resume::FromTimestamp(to_unix_nanos(nanos))
    } else {
        Resume::Live
    };

    Ok(EventsQuery {
        options: SubscribeOptions { types, resume },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(query: &str) -> Result<EventsQuery, ApiError> {
        parse_events_query(Some(query), &HeaderMap::new(), 3)
    }

    #[test]
    fn type_lists_are_trimmed_repeatable_and_deduplicated() {
        let parsed = parse("event_type=a,%20b%20,,&event_type=c,a").unwrap();
        assert_eq!(parsed.options.types, ["a", "b", "c"]);
        assert!(parse("event_type=,,").unwrap().options.types.is_empty());
    }

    #[test]
    fn type_limits_and_line_breaks_are_rejected() {
        assert_eq!(parse("event_type=a,b,c,d").unwrap_err().code, "bad_request");
        assert_eq!(parse("event_type=a%0Ab").unwrap_err().code, "bad_request");
        assert_eq!(parse("event_type=a%0Db").unwrap_err().code, "bad_request");
    }

    #[test]
    fn header_beats_from_beats_timestamp() {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_static("h"));
        let parsed =
            parse_events_query(Some("from=f&from_timestamp=nonsense"), &headers, 3).unwrap();
        assert_eq!(parsed.options.resume, Resume::AfterId("h".into()));
        let parsed = parse("from=f&from_timestamp=nonsense").unwrap();
        assert_eq!(parsed.options.resume, Resume::AfterId("f".into()));
        headers.insert("last-event-id", HeaderValue::from_static(""));
        let parsed = parse_events_query(Some("from=f"), &headers, 3).unwrap();
        assert_eq!(parsed.options.resume, Resume::AfterId("f".into()));
    }

    #[test]
    fn ids_no_event_can_have_are_400() {
        assert_eq!(parse("from=a%0Ab").unwrap_err().code, "bad_request");
        assert_eq!(parse("from=a%00b").unwrap_err().code, "bad_request");
        // Only the winner is checked.
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_static("ok"));
        assert!(parse_events_query(Some("from=a%0Ab"), &headers, 3).is_ok());
    }

    #[test]
    fn timestamps_with_an_unencoded_plus() {
        let parsed = parse("from_timestamp=1970-01-01T02:00:01+02:00").unwrap();
        assert_eq!(parsed.options.resume, Resume::FromTimestamp(1_000_000_000));
        let error = parse("from_timestamp=tomorrow").unwrap_err();
        assert_eq!(error.code, "invalid_timestamp");
    }

    #[test]
    fn finds_the_token() {
        assert_eq!(query_token(Some("a=1&token=x%2By")), Some("x+y".into()));
        assert_eq!(query_token(None), None);
    }

    #[test]
    fn empty_values_count_as_absent() {
        assert_eq!(
            parse("from=&from_timestamp=").unwrap().options.resume,
            Resume::Live
        );
        assert_eq!(parse("").unwrap().options.resume, Resume::Live);
    }
}
