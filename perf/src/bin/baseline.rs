//! The baseline peer: what a Rust user would write instead of ssehub.
//!
//! axum 0.8's `Sse` response, a `tokio::sync::broadcast` channel for live
//! fan-out and a `VecDeque` replay buffer behind a mutex, configured as the
//! docs recommend (broadcast capacity 4096, `KeepAlive::default()`), with
//! TCP_NODELAY on accepted sockets. It speaks the same HTTP contract as
//! `ssehub serve` (docs/http-contract.md) for the routes the load generator and
//! the oha scripts use: `GET /events` (`Last-Event-ID` > `?from` >
//! `?from_timestamp` resume, `event_type` filter, 410 when the point is gone),
//! `POST /admin/events` (bearer token, JSON object or array, `{"ids": [...]}`),
//! `GET /admin/stats`, `GET /healthz`.
//!
//! Each subscriber builds its own axum `Event` per message (type, id, data
//! formatted per subscriber), as the usual `BroadcastStream` + `map` pattern
//! does. A subscriber that lags the broadcast channel is ended, like ssehub's.
//!
//! ```text
//! cargo run --release -p ssehub-perf --bin baseline -- --listen 127.0.0.1:8081 --admin-token T
//! ```
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use clap::Parser;
use futures_util::stream::{self, Stream, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Command-line flags.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Bearer token for the admin routes.
    #[arg(long, env = "SSEHUB_ADMIN_TOKEN")]
    admin_token: String,
    /// Replay buffer and broadcast channel capacity, in events.
    #[arg(long, default_value_t = 4096)]
    capacity: usize,
}

const MAX_EVENT_BYTES: usize = 64 * 1024;
const MAX_BATCH: usize = 1000;
const MAX_TYPES: usize = 64;

/// One published event, shared by the replay buffer and the channel.
#[derive(Debug)]
struct Stored {
    seq: u64,
    id: String,
    event_type: String,
    data: String,
    timestamp_ns: u64,
}

#[derive(Debug, Default)]
struct Replay {
    events: VecDeque<Arc<Stored>>,
    bytes: usize,
    next_seq: u64,
    /// Timestamp of the newest event evicted from the buffer.
    evicted_newest_ts: Option<u64>,
}

struct AppState {
    token: String,
    capacity: usize,
    generation: String,
    replay: Mutex<Replay>,
    tx: broadcast::Sender<Arc<Stored>>,
    active: Arc<AtomicU64>,
    total: AtomicU64,
    lagged: Arc<AtomicU64>,
}

type Shared = Arc<AppState>;

/// An error answer in the contract's JSON envelope.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or(""),
            "message": self.message,
            "errorCode": self.code,
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `<16 hex generation>-<seq>`: the auto-id shape.
fn parse_auto_id(id: &str) -> Option<(&str, u64)> {
    let (generation, seq) = id.split_once('-')?;
    if generation.len() != 16 || !generation.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((generation, seq.parse().ok()?))
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(state.token.as_str()) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        ))
    }
}

/// Where a subscription starts.
enum Start {
    Live,
    AfterSeq(u64),
    AtTimestamp(u64),
}

fn resume_point(
    state: &AppState,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Start, ApiError> {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let from = query
        .iter()
        .find(|(k, _)| k == "from")
        .map(|(_, v)| v.as_str());
    let id = header.or(from);
    if let Some(id) = id {
        let replay = state.replay.lock();
        return match parse_auto_id(id) {
            Some((generation, seq)) if generation == state.generation => {
                let oldest = replay.events.front().map_or(replay.next_seq, |e| e.seq);
                if seq >= replay.next_seq {
                    Ok(Start::Live)
                } else if seq + 1 < oldest {
                    Err(gone("events after this id were overwritten"))
                } else {
                    Ok(Start::AfterSeq(seq))
                }
            }
            Some(_) => Err(gone("the id is from another generation")),
            None => match replay.events.iter().find(|e| e.id == id) {
                Some(event) => Ok(Start::AfterSeq(event.seq)),
                None => Err(gone("the id is not retained")),
            },
        };
    }
    if let Some((_, raw)) = query.iter().find(|(k, _)| k == "from_timestamp") {
        let fixed = raw.replace(' ', "+");
        let at = humantime::parse_rfc3339_weak(&fixed).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_timestamp",
                "from_timestamp is not RFC 3339",
            )
        })?;
        let at_ns = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let replay = state.replay.lock();
        if replay.evicted_newest_ts.is_some_and(|ts| ts >= at_ns) {
            return Err(gone("events at or after the timestamp were overwritten"));
        }
        return Ok(Start::AtTimestamp(at_ns));
    }
    Ok(Start::Live)
}

fn gone(message: &str) -> ApiError {
    error(
        StatusCode::GONE,
        "resume_point_expired",
        format!("resume point expired: {message}"),
    )
}

fn event_types(query: &[(String, String)]) -> Result<Vec<String>, ApiError> {
    let mut types = Vec::new();
    for (_, value) in query.iter().filter(|(k, _)| k == "event_type") {
        for item in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if item.contains(['\r', '\n']) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "event type contains CR or LF",
                ));
            }
            types.push(item.to_owned());
        }
    }
    if types.len() > MAX_TYPES {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "too many event types",
        ));
    }
    Ok(types)
}

fn to_sse(event: &Stored) -> Event {
    let sse = Event::default()
        .id(event.id.as_str())
        .data(event.data.as_str());
    if event.event_type == "message" {
        sse
    } else {
        sse.event(event.event_type.as_str())
    }
}

/// Decrements the active-subscriber gauge when the stream is dropped.
struct ActiveGuard(Arc<AtomicU64>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn events(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let types = match event_types(&query) {
        Ok(types) => types,
        Err(e) => return e.into_response(),
    };
    let start = match resume_point(&state, &headers, &query) {
        Ok(start) => start,
        Err(e) => return e.into_response(),
    };
    // Subscribe and copy the replay under the same lock publishers take, so
    // replay and live neither overlap nor leave a gap.
    let (backlog, rx) = {
        let replay = state.replay.lock();
        let backlog: Vec<Arc<Stored>> = match start {
            Start::Live => Vec::new(),
            Start::AfterSeq(seq) => replay
                .events
                .iter()
                .filter(|e| e.seq > seq)
                .cloned()
                .collect(),
            Start::AtTimestamp(ts) => replay
                .events
                .iter()
                .filter(|e| e.timestamp_ns >= ts)
                .cloned()
                .collect(),
        };
        (backlog, state.tx.subscribe())
    };
    state.active.fetch_add(1, Ordering::Relaxed);
    state.total.fetch_add(1, Ordering::Relaxed);
    let guard = ActiveGuard(Arc::clone(&state.active));
    let lagged = Arc::clone(&state.lagged);
    let types = Arc::new(types);
    let wanted = {
        let types = Arc::clone(&types);
        move |event: &Stored| types.is_empty() || types.contains(&event.event_type)
    };
    let hello = stream::once(async { Ok::<_, Infallible>(Event::default().comment("ok")) });
    let wanted_backlog = wanted.clone();
    let replayed = stream::iter(backlog)
        .filter(move |e| std::future::ready(wanted_backlog(e)))
        .map(|e| Ok(to_sse(&e)));
    let live = stream::unfold((rx, guard, lagged), move |(mut rx, guard, lagged)| {
        let wanted = wanted.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) if wanted(&event) => {
                        return Some((Ok(to_sse(&event)), (rx, guard, lagged)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        lagged.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(hello.chain(replayed).chain(live));
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn publish(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = authorized(&state, &headers) {
        return e.into_response();
    }
    let json_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_type {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected application/json",
        )
        .into_response();
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("bad json: {e}"),
            )
            .into_response()
        }
    };
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "expected an object or an array",
            )
            .into_response()
        }
    };
    if items.len() > MAX_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "batch too large",
        )
        .into_response();
    }
    // Validate everything first: a batch is all or nothing.
    let mut prepared = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(event_type) = item
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("event {index}: missing type"),
            )
            .into_response();
        };
        if event_type.contains(['\r', '\n']) {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("event {index}: bad type"),
            )
            .into_response();
        }
        let id = match item.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if id.is_empty() => None,
            Some(Value::String(id)) => {
                if id.contains(['\r', '\n', '\0']) || parse_auto_id(id).is_some() {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("event {index}: bad id"),
                    )
                    .into_response();
                }
                Some(id.clone())
            }
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("event {index}: id must be a string"),
                )
                .into_response()
            }
        };
        let data = item.to_string();
        if data.len() > MAX_EVENT_BYTES {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("event {index} too large"),
            )
            .into_response();
        }
        prepared.push((event_type.to_owned(), id, data));
    }
    let mut ids = Vec::with_capacity(prepared.len());
    let mut replay = state.replay.lock();
    for (event_type, id, data) in prepared {
        let seq = replay.next_seq;
        replay.next_seq += 1;
        let id = id.unwrap_or_else(|| format!("{}-{seq}", state.generation));
        let stored = Arc::new(Stored {
            seq,
            id: id.clone(),
            event_type,
            data,
            timestamp_ns: now_ns(),
        });
        replay.bytes += stored.data.len();
        replay.events.push_back(Arc::clone(&stored));
        if replay.events.len() > state.capacity {
            if let Some(old) = replay.events.pop_front() {
                replay.bytes -= old.data.len();
                replay.evicted_newest_ts = Some(old.timestamp_ns);
            }
        }
        // No receivers is fine: the event is still retained for replay.
        let _ = state.tx.send(stored);
        ids.push(id);
    }
    drop(replay);
    Json(json!({ "ids": ids })).into_response()
}

async fn stats(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&state, &headers) {
        return e.into_response();
    }
    let replay = state.replay.lock();
    Json(json!({
        "active_subscribers": state.active.load(Ordering::Relaxed),
        "total_subscribers": state.total.load(Ordering::Relaxed),
        "published": replay.next_seq,
        "lagged_disconnects": state.lagged.load(Ordering::Relaxed),
        "generation": state.generation,
        "ring": {
            "capacity": state.capacity,
            "len": replay.events.len(),
            "bytes": replay.bytes,
            "oldest_id": replay.events.front().map(|e| e.id.clone()),
            "newest_id": replay.events.back().map(|e| e.id.clone()),
        },
    }))
    .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let (tx, _) = broadcast::channel(args.capacity);
    let state = Arc::new(AppState {
        token: args.admin_token,
        capacity: args.capacity,
        generation: format!("{:016x}", now_ns()),
        replay: Mutex::new(Replay::default()),
        tx,
        active: Arc::new(AtomicU64::new(0)),
        total: AtomicU64::new(0),
        lagged: Arc::new(AtomicU64::new(0)),
    });
    let app = Router::new()
        .route("/events", get(events))
        .route("/admin/events", post(publish))
        .route("/admin/stats", get(stats))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await?
        .tap_io(|tcp| {
            // Latency matters more than segment count for SSE frames.
            let _ = tcp.set_nodelay(true);
        });
    eprintln!("baseline: listening on {}", args.listen);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
