//! Admin routes: `POST /admin/events`, `POST /admin/reset`, `GET /admin/stats`.
//! All need `Authorization: Bearer <admin token>`; with a JWT key configured,
//! `POST /admin/events` also takes a signed token whose `publish` claim
//! covers every event of the batch (else 403 `forbidden_type`, nothing
//! published).
//!
//! # Publishing
//!
//! The body is one JSON object or an array of them. Each object needs a
//! non-empty string `type`; `id` is optional (a string; empty or `null`
//! counts as absent; anything else is 400). The object itself, compacted, is
//! the SSE `data:`. Compaction strips the insignificant whitespace from the
//! publisher's own text instead of re-serializing a parsed value, so key order,
//! number spelling and string escapes arrive exactly as sent (a parsed
//! `serde_json::Value` would sort keys and round large integers).
//!
//! A batch is all or nothing: every element is checked, then the hub
//! publishes them with [`Hub::publish_batch`](crate::Hub::publish_batch),
//! which validates all before writing any. Limits: more than `max_batch`
//! elements → 413, one element's compact JSON over `max_event_bytes` → 413,
//! and the body is read with a cap (`max_batch × max_event_bytes`, bounded):
//! a declared `Content-Length` over it is refused with 413 before a byte is
//! read, an endless body is cut off with 413 rather than buffered.
//!
//! A body that cannot be read is not "too large": malformed chunked
//! framing, or a body cut short (the client closed mid-body), is 400
//! `bad_request`; a body that stops arriving is ended after the body
//! timeout with 408 `request_timeout`.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::access::authorize_publisher;
use super::auth::check_admin;
use super::error::ApiError;
use super::AppState;
use crate::{Event, Stats};

/// `POST /admin/events`.
pub(crate) async fn publish(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let grant = authorize_publisher(&state.admin_token, state.jwt.as_deref(), request.headers())?;
    check_json_content_type(request.headers())?;
    let limit = state.limits.max_body_bytes();
    check_declared_length(request.headers(), limit)?;
    let body = read_body(request.into_body(), limit, state.body_timeout).await?;
    let events = parse_events(&body, state.limits.max_batch, state.limits.max_event_bytes)?;
    if let Some(grant) = &grant {
        grant.check_publish(&events)?;
    }
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &state.cluster {
        let ids = cluster.publish(&events).await?;
        return Ok(Json(serde_json::json!({ "ids": ids })).into_response());
    }
    let landed = state.hub.publish_batch(&events)?;
    let ids: Vec<String> = landed
        .iter()
        .zip(&events)
        .map(|(published, event)| published.id_of(event))
        .collect();
    Ok(Json(serde_json::json!({ "ids": ids })).into_response())
}

/// `POST /admin/reset`.
pub(crate) async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    check_admin(&state.admin_token, &headers)?;
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &state.cluster {
        cluster.reset().await?;
        tracing::info!("cluster reset requested");
        return Ok(StatusCode::NO_CONTENT);
    }
    state.hub.reset();
    tracing::info!(generation = state.hub.stats().generation, "hub reset");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/stats`.
pub(crate) async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&state.admin_token, &headers)?;
    #[allow(unused_mut)]
    let mut json = stats_json(&state.hub.stats());
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &state.cluster {
        json["cluster"] = cluster_json(&cluster.stats());
    }
    Ok(Json(json).into_response())
}

/// The stats object of `GET /admin/stats` (and of the live page's feed).
pub fn stats_json(stats: &Stats) -> serde_json::Value {
    serde_json::json!({
        "active_subscribers": stats.active_subscribers,
        "total_subscribers": stats.total_subscribers,
        "published": stats.published,
        "lagged_disconnects": stats.lagged_disconnects,
        "generation": stats.generation,
        "ring": {
            "capacity": stats.ring.capacity,
            "len": stats.ring.len,
            "bytes": stats.ring.bytes,
            "max_bytes": stats.ring.max_bytes,
            "oldest_id": stats.ring.oldest_id,
            "newest_id": stats.ring.newest_id,
        },
    })
}

/// The `cluster` object of `GET /admin/stats` in cluster mode.
#[cfg(feature = "cluster")]
pub fn cluster_json(stats: &crate::cluster::ClusterStats) -> serde_json::Value {
    serde_json::json!({
        "connected": stats.connected,
        "generation": stats.generation,
        "generation_token": stats.generation_token,
        "published": stats.published,
        "retained": stats.retained,
        "retained_bytes": stats.retained_bytes,
        "lag": stats.lag,
    })
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        )),
    }
}

/// Refuses a declared `Content-Length` over `limit` before reading.
fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(ApiError::too_large(format!(
            "request body of {length} bytes is over {limit} bytes"
        ))),
        _ => Ok(()),
    }
}

async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(body_error(&error, limit)),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {timeout:?}"),
        )),
    }
}

/// What a failed body read means: over the cap is 413, anything else (bad
/// chunked framing, a body cut short, a broken connection) is 400.
fn body_error(error: &axum::Error, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return ApiError::too_large(format!("request body is over {limit} bytes"));
        }
        source = cause.source();
    }
    ApiError::bad_request(format!("the request body could not be read: {error}"))
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

/// Parses a publish body into events, checking every rule before any is
/// published.
///
/// # Errors
///
/// 400 `bad_request` for malformed JSON or a bad element, 413
/// `payload_too_large` for too many elements or an oversized event.
pub fn parse_events(
    body: &[u8],
    max_batch: usize,
    max_event_bytes: usize,
) -> Result<Vec<Event>, ApiError> {
    let top: &RawValue = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("body is not valid JSON: {error}")))?;
    let elements: Vec<&RawValue> = match top.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(top.get())
            .map_err(|error| ApiError::bad_request(format!("body is not valid JSON: {error}")))?,
        Some(b'{') => vec![top],
        _ => {
            return Err(ApiError::bad_request(
                "body must be a JSON object or an array of objects",
            ))
        }
    };
    if elements.len() > max_batch {
        return Err(ApiError::too_large(format!(
            "{} events in one request, over the batch limit of {max_batch}",
            elements.len()
        )));
    }
    elements
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            parse_event(raw.get(), max_event_bytes).map_err(|mut error| {
                error.message = format!("event {index}: {}", error.message);
                error
            })
        })
        .collect()
}

fn parse_event(raw: &str, max_event_bytes: usize) -> Result<Event, ApiError> {
    if !raw.starts_with('{') {
        return Err(ApiError::bad_request("each event must be a JSON object"));
    }
    let fields: Fields<'_> = serde_json::from_str(raw)
        .map_err(|error| ApiError::bad_request(format!("bad field: {error}")))?;
    let event_type = match fields.event_type {
        Some(t) if !t.is_empty() => t,
        _ => return Err(ApiError::bad_request("\"type\" must be a non-empty string")),
    };
    let data = compact(raw);
    if data.len() > max_event_bytes {
        return Err(ApiError::too_large(format!(
            "event is {} bytes of compact JSON, over the {max_event_bytes}-byte limit",
            data.len()
        )));
    }
    let mut event = Event::new(event_type.into_owned(), data);
    if let Some(id) = fields.id {
        event = event.with_id(id.into_owned());
    }
    Ok(event)
}

/// Removes the whitespace outside strings from valid JSON text.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_keeps_strings_order_and_numbers() {
        let text =
            "{ \"type\" : \"a b\",\n \"z\": [1, 2.50, 1e3],\t\"s\": \"x \\\" y\\\\\" , \"a\":{} }";
        assert_eq!(
            compact(text),
            "{\"type\":\"a b\",\"z\":[1,2.50,1e3],\"s\":\"x \\\" y\\\\\",\"a\":{}}"
        );
    }

    #[test]
    fn one_object_or_an_array() {
        let one = parse_events(br#"{"type":"t","id":"x"}"#, 10, 100).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id(), Some("x"));
        assert_eq!(one[0].data(), r#"{"type":"t","id":"x"}"#);
        let many = parse_events(
            br#" [ {"type":"a"}, {"type":"b","id":null}, {"type":"c","id":""} ] "#,
            10,
            100,
        )
        .unwrap();
        assert_eq!(many.len(), 3);
        assert!(many.iter().all(|e| e.id().is_none()));
        assert!(parse_events(b"[]", 10, 100).unwrap().is_empty());
    }

    #[test]
    fn bad_elements_are_400() {
        for body in [
            &b"not json"[..],
            b"{\"type\":\"a\"",
            b"42",
            b"\"type\"",
            b"[1]",
            b"[[\"a\"]]",
            b"{}",
            b"{\"type\":\"\"}",
            b"{\"type\":7}",
            b"{\"type\":null}",
            b"{\"type\":\"a\",\"id\":5}",
            b"[{\"type\":\"a\"},{\"id\":\"x\"}]",
        ] {
            let error = parse_events(body, 10, 100).unwrap_err();
            assert_eq!(
                error.status,
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn limits_are_413() {
        let error = parse_events(br#"[{"type":"a"},{"type":"b"}]"#, 1, 100).unwrap_err();
        assert_eq!(error.code, "payload_too_large");
        let error = parse_events(br#"{"type":"a","pad":"xxxxxxxxxx"}"#, 1, 20).unwrap_err();
        assert_eq!(error.code, "payload_too_large");
    }
}
