//! End to end over real HTTP: the example MCP server (`store/examples/mcp_server.rs`,
//! run in-process on 127.0.0.1:0), a tool call whose SSE stream is dropped
//! mid-way, and a `GET` with `Last-Event-ID` that must return exactly the
//! missing events — no gap, no duplicate — and only to the same session.
#![cfg(feature = "rmcp")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::SessionId as McpSessionId;
use serde_json::Value;
use ssehub_store::rmcp::McpEventStore;
use ssehub_store::{EventId, Store};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

#[path = "../examples/mcp_server.rs"]
#[allow(dead_code)]
mod mcp_server;

const TIMEOUT: Duration = Duration::from_secs(20);

/// One SSE event as received.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: Option<String>,
    data: String,
}

impl SseEvent {
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }

    /// The `progress` value of a progress notification.
    fn progress(&self) -> Option<u64> {
        let v = self.json()?;
        (v["method"] == "notifications/progress")
            .then(|| v["params"]["progress"].as_f64())??
            .to_string()
            .parse()
            .ok()
    }

    fn is_result(&self, id: u64) -> bool {
        self.json()
            .is_some_and(|v| v["id"] == id && v.get("result").is_some())
    }

    fn index(&self) -> u64 {
        let id = self.id.as_deref().expect("stored events carry an id");
        EventId::parse(id).expect("ids are store ids").index
    }
}

/// Incremental SSE parser over a response body.
struct SseReader {
    body: Incoming,
    buf: String,
    conn: JoinHandle<()>,
}

impl SseReader {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim_start().to_owned());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !ev.data.is_empty() {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(v.trim_start());
                        any = true;
                    }
                }
                if any {
                    return Some(ev);
                }
                continue; // comments, retry-only or keep-alive blocks
            }
            let frame = tokio::time::timeout(TIMEOUT, self.body.frame())
                .await
                .expect("server responds in time")?
                .expect("body reads cleanly");
            if let Ok(data) = frame.into_data() {
                self.buf
                    .push_str(std::str::from_utf8(&data).expect("utf-8 SSE"));
            }
        }
    }

    async fn all(mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }

    /// Drops the stream the hard way: body gone, TCP connection closed.
    fn disconnect(self) {
        self.conn.abort();
    }
}

struct Client {
    addr: SocketAddr,
    session: Option<String>,
}

impl Client {
    async fn send(
        &self,
        req: hyper::http::request::Builder,
        body: &str,
    ) -> (Response<Incoming>, JoinHandle<()>) {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = req
            .uri("/mcp")
            .header("host", self.addr.to_string())
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = &self.session {
            req = req
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-06-18");
        }
        let req: Request<Full<Bytes>> = req
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .expect("request");
        let resp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
            .await
            .expect("response in time")
            .expect("response");
        (resp, conn)
    }

    async fn post(&self, body: &str) -> (u16, SseReader) {
        let req = Request::post("/").header("content-type", "application/json");
        let (resp, conn) = self.send(req, body).await;
        let status = resp.status().as_u16();
        let buf = String::new();
        (
            status,
            SseReader {
                body: resp.into_body(),
                buf,
                conn,
            },
        )
    }

    async fn resume(&self, last_event_id: &str) -> (u16, Vec<SseEvent>) {
        let req = Request::get("/").header("last-event-id", last_event_id);
        let (resp, conn) = self.send(req, "").await;
        let status = resp.status().as_u16();
        let reader = SseReader {
            body: resp.into_body(),
            buf: String::new(),
            conn,
        };
        (status, reader.all().await)
    }

    async fn open(addr: SocketAddr) -> Client {
        let mut c = Client {
            addr,
            session: None,
        };
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}"#;
        let req = Request::post("/").header("content-type", "application/json");
        let (resp, conn) = c.send(req, init).await;
        assert_eq!(resp.status(), 200);
        let session = resp
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .expect("ascii")
            .to_owned();
        let events = SseReader {
            body: resp.into_body(),
            buf: String::new(),
            conn,
        }
        .all()
        .await;
        assert!(events.iter().any(|e| e.is_result(1)), "{events:?}");
        c.session = Some(session);
        let (status, _) = c
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        assert_eq!(status, 202);
        c
    }
}

async fn start() -> (SocketAddr, Arc<McpEventStore>) {
    let events = Arc::new(McpEventStore::new(Arc::new(Store::new(8 << 20))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = mcp_server::app(events.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tool_call_resumes_with_exactly_the_missing_events() {
    const STEPS: u64 = 8;
    const DROP_AFTER: u64 = 3;
    let (addr, events) = start().await;
    let client = Client::open(addr).await;
    let owner: McpSessionId = client.session.as_deref().expect("a session").into();

    let call = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"count","arguments":{{"steps":{STEPS},"delay_ms":60}},"_meta":{{"progressToken":"p1"}}}}}}"#
    );
    let (status, mut stream) = client.post(&call).await;
    assert_eq!(status, 200);

    // Read until the third progress notification, then cut the connection.
    let mut before = Vec::new();
    loop {
        let e = stream.next().await.expect("stream stays open mid-call");
        let p = e.progress();
        before.push(e);
        if p == Some(DROP_AFTER) {
            break;
        }
    }
    stream.disconnect();
    let last_seen = before
        .last()
        .and_then(|e| e.id.clone())
        .expect("progress events carry ids");
    assert!(
        before.iter().all(|e| e.id.is_some()),
        "every stored event has an id: {before:?}"
    );

    // Let the tool finish while nobody listens: its events are stored.
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let done = events
                .replay_as(&owner, &last_seen)
                .expect("replayable")
                .iter()
                .any(|m| {
                    m.message.as_ref().is_some_and(|m| {
                        serde_json::to_value(m.as_ref()).is_ok_and(|v| v["id"] == 2)
                    })
                });
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the tool finishes");

    // Resume: exactly the missing events, in order, with their original ids.
    let (status, after) = client.resume(&last_seen).await;
    assert_eq!(status, 200);
    let progress_before: Vec<u64> = before.iter().filter_map(SseEvent::progress).collect();
    let progress_after: Vec<u64> = after.iter().filter_map(SseEvent::progress).collect();
    assert_eq!(progress_before, (1..=DROP_AFTER).collect::<Vec<_>>());
    assert_eq!(
        progress_after,
        (DROP_AFTER + 1..=STEPS).collect::<Vec<_>>(),
        "{after:?}"
    );
    assert!(after.last().is_some_and(|e| e.is_result(2)), "{after:?}");
    assert_eq!(
        after.len() as u64,
        STEPS - DROP_AFTER + 1,
        "no extra events"
    );
    let first_missing = before.last().map(SseEvent::index).unwrap_or(0) + 1;
    let indices: Vec<u64> = after.iter().map(SseEvent::index).collect();
    let expected: Vec<u64> = (first_missing..first_missing + after.len() as u64).collect();
    assert_eq!(indices, expected, "no gap, no duplicate");
    let all_ids: Vec<&str> = before
        .iter()
        .chain(&after)
        .filter_map(|e| e.id.as_deref())
        .collect();
    let mut dedup = all_ids.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), all_ids.len());

    // Resuming from the middle again gives the same answer (idempotent).
    let (_, again) = client.resume(&last_seen).await;
    assert_eq!(again, after);

    // Another session cannot use this session's id; forged ids get nothing.
    let other = Client::open(addr).await;
    let (status, stolen) = other.resume(&last_seen).await;
    assert_eq!(
        status, 200,
        "rmcp answers a failed resume with an empty stream"
    );
    assert!(stolen.is_empty(), "{stolen:?}");
    // Same session key and stream, one hex digit of the secret changed.
    let mut forged = last_seen.clone().into_bytes();
    let at = last_seen.find('-').expect("key-secret") + 1;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert!(EventId::parse(&forged).is_ok(), "well-formed, wrong secret");
    let (_, nothing) = client.resume(&forged).await;
    assert!(nothing.is_empty());
    let (_, nothing) = client.resume("not-an-id").await;
    assert!(nothing.is_empty());

    // Deleting the session frees its events.
    let used = events.store().used_bytes();
    let req = Request::delete("/");
    let (resp, _conn) = client.send(req, "").await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(events.store().used_bytes() < used);
    assert!(events.replay_as(&owner, &last_seen).is_err());
}

/// A `GET /mcp` with exactly `headers` (raw bytes allowed), on its own
/// connection.
async fn raw_get(addr: SocketAddr, headers: &[(&str, &[u8])]) -> (u16, SseReader) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::get("/mcp")
        .header("host", addr.to_string())
        .header("accept", "text/event-stream");
    for (name, value) in headers {
        req = req.header(
            *name,
            hyper::header::HeaderValue::from_bytes(value).expect("a legal header value"),
        );
    }
    let req: Request<Full<Bytes>> = req.body(Full::new(Bytes::new())).expect("request");
    let resp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .expect("response in time")
        .expect("response");
    let status = resp.status().as_u16();
    (
        status,
        SseReader {
            body: resp.into_body(),
            buf: String::new(),
            conn,
        },
    )
}

/// Starts the `count` tool on `client` and reads until progress `upto`;
/// returns the stream (still open) and the events read.
async fn call_until(
    client: &Client,
    steps: u64,
    delay_ms: u64,
    upto: u64,
) -> (SseReader, Vec<SseEvent>) {
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"count","arguments":{{"steps":{steps},"delay_ms":{delay_ms}}},"_meta":{{"progressToken":"p1"}}}}}}"#
    );
    let (status, mut stream) = client.post(&call).await;
    assert_eq!(status, 200);
    let mut before = Vec::new();
    loop {
        let e = stream.next().await.expect("stream stays open mid-call");
        let p = e.progress();
        before.push(e);
        if p == Some(upto) {
            return (stream, before);
        }
    }
}

/// Issue 10, item 8: on the newest protocol version rmcp hands a `GET`'s
/// `Last-Event-ID` straight to `EventStore::replay_events_after`, without
/// the session manager. An id of one session's stream must replay nothing
/// there — not to a request without a session, not to another session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_protocol_get_replays_no_session_bound_id() {
    let (addr, _events) = start().await;
    let owner = Client::open(addr).await;
    let (stream, before) = call_until(&owner, 6, 40, 2).await;
    let stolen_id = before.last().and_then(|e| e.id.clone()).expect("an id");
    // Let the call finish, so that everything is stored.
    let rest = stream.all().await;
    assert!(rest.iter().any(|e| e.is_result(2)), "{rest:?}");

    let other = Client::open(addr).await;
    let other_session = other.session.clone().expect("a session");
    let attempts: [Vec<(&str, &[u8])>; 2] = [
        vec![
            ("mcp-protocol-version", b"2026-07-28"),
            ("last-event-id", stolen_id.as_bytes()),
        ],
        vec![
            ("mcp-protocol-version", b"2026-07-28"),
            ("mcp-session-id", other_session.as_bytes()),
            ("last-event-id", stolen_id.as_bytes()),
        ],
    ];
    for headers in attempts {
        let (_, reader) = raw_get(addr, &headers).await;
        let got = reader.all().await;
        assert!(got.is_empty(), "{headers:?} replayed {got:?}");
    }
}

/// Issue 10, item 9: a `Last-Event-ID` that is not visible ASCII (rmcp reads
/// it with `to_str().ok()` and would open a live stream instead) is refused
/// with a clear 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_last_event_id_is_a_clear_400() {
    let (addr, _events) = start().await;
    let client = Client::open(addr).await;
    let session = client.session.clone().expect("a session");
    for version in [&b"2025-06-18"[..], b"2026-07-28"] {
        let (status, reader) = raw_get(
            addr,
            &[
                ("mcp-session-id", session.as_bytes()),
                ("mcp-protocol-version", version),
                ("last-event-id", "caf\u{e9}".as_bytes()),
            ],
        )
        .await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(version));
        let body = tokio::time::timeout(TIMEOUT, reader.body.collect())
            .await
            .expect("a short body")
            .expect("body")
            .to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("Last-Event-ID"), "{body}");
    }
}

/// Issue 10, item 10: a resume in the middle of a call gets the rest of the
/// call — every missing progress notification and the result, once — on one
/// stream that stays open until the result, then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_mid_call_stays_open_until_the_result() {
    const STEPS: u64 = 10;
    let (addr, _events) = start().await;
    let client = Client::open(addr).await;
    let (stream, before) = call_until(&client, STEPS, 80, 2).await;
    stream.disconnect();
    let last_seen = before.last().and_then(|e| e.id.clone()).expect("an id");
    // Resume at once: most of the call is still to come.
    let (status, after) = client.resume(&last_seen).await;
    assert_eq!(status, 200);
    let progress: Vec<u64> = after.iter().filter_map(SseEvent::progress).collect();
    assert_eq!(progress, (3..=STEPS).collect::<Vec<_>>(), "{after:?}");
    assert_eq!(
        after.iter().filter(|e| e.is_result(2)).count(),
        1,
        "{after:?}"
    );
    assert!(after.last().is_some_and(|e| e.is_result(2)), "{after:?}");
}

/// A server whose tool `announce` returns at once and then sends progress
/// notifications under a token of its own, which no request registered:
/// `rmcp` routes them to the session's standalone `GET` stream.
#[derive(Clone, Debug, Default)]
struct Announcer;

impl rmcp::ServerHandler for Announcer {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }

    async fn call_tool(
        &self,
        _request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let peer = context.peer.clone();
        tokio::spawn(async move {
            for n in 1..=ANNOUNCEMENTS {
                let token = rmcp::model::ProgressToken(rmcp::model::NumberOrString::String(
                    "announce".into(),
                ));
                let _ = peer
                    .notify_progress(rmcp::model::ProgressNotificationParam::new(token, n as f64))
                    .await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Ok(rmcp::model::CallToolResult::success(vec![]).into())
    }
}

const ANNOUNCEMENTS: u64 = 8;

/// Issue 10, item 10, for the standalone stream: a resume of the session's
/// `GET` stream delivers what was stored while the client was away and then
/// goes on with what is stored later — no gap at the seam, no duplicate —
/// whether or not the server has noticed the old connection is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_standalone_stream_goes_on_without_a_gap() {
    let events = Arc::new(McpEventStore::new(Arc::new(Store::new(8 << 20))));
    let sessions = Arc::new(ssehub_store::rmcp::ScopedSessionManager::new(events));
    let service = rmcp::transport::streamable_http_server::StreamableHttpService::new(
        || Ok(Announcer),
        sessions,
        Default::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().nest_service("/mcp", service)).await;
    });
    let client = Client::open(addr).await;
    let session = client.session.clone().expect("a session");
    let headers: [(&str, &[u8]); 2] = [
        ("mcp-session-id", session.as_bytes()),
        ("mcp-protocol-version", b"2025-06-18"),
    ];

    let (status, mut standalone) = raw_get(addr, &headers).await;
    assert_eq!(status, 200);
    let (status, call) = client
        .post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"announce","arguments":{}}}"#)
        .await;
    assert_eq!(status, 200);
    assert!(call.all().await.iter().any(|e| e.is_result(2)));
    let mut before = Vec::new();
    while before.last().and_then(SseEvent::progress) != Some(2) {
        before.push(
            standalone
                .next()
                .await
                .expect("the standalone stream stays open"),
        );
    }
    standalone.disconnect();
    let last_seen = before.last().and_then(|e| e.id.clone()).expect("an id");
    // Some announcements are stored while nobody listens.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let mut resume_headers = headers.to_vec();
    resume_headers.push(("last-event-id", last_seen.as_bytes()));
    let (status, mut resumed) = raw_get(addr, &resume_headers).await;
    assert_eq!(status, 200);
    let mut after = Vec::new();
    while after.last().and_then(SseEvent::progress) != Some(ANNOUNCEMENTS) {
        after.push(resumed.next().await.expect("the resumed stream stays open"));
    }
    let progress: Vec<u64> = after.iter().filter_map(SseEvent::progress).collect();
    assert_eq!(
        progress,
        (3..=ANNOUNCEMENTS).collect::<Vec<_>>(),
        "{after:?}"
    );
    let first = before.last().map(SseEvent::index).expect("an index") + 1;
    let indices: Vec<u64> = after.iter().map(SseEvent::index).collect();
    assert_eq!(
        indices,
        (first..first + after.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
}
