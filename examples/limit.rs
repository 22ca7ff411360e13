//! The machine's limit: SSE fan-out with no hub at all.
//!
//! Accepts any number of connections on raw tokio sockets (TCP_NODELAY).
//! Any `GET` (except `/healthz`, which answers `ok`) gets SSE response headers
//! and stays open as a close-delimited event stream. `POST /admin/events`
//! (bearer token, the same JSON body as ssehub: one object or an array) encodes
//! the batch's frames **once** into one buffer and hands that buffer to every
//! connection; each connection's writer task coalesces whatever is queued into
//! one `write` per wake-up. There is no replay, no filtering, no ring: the
//! figures it reaches mark what this machine can do, the ceiling for ssehub
//! and the baseline.
//!
//! ```text
//! cargo run --release --example limit -- --listen 127.0.0.1:8082 --admin-token T
//! ```
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use parking_lot::Mutex;
use serde_json::Value;
use ssehub::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Command-line flags.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// Bearer token for `POST /admin/events`.
    #[arg(long, env = "SSEHUB_ADMIN_TOKEN")]
    admin_token: String,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_EVENT_BYTES: usize = 64 * 1024;

struct Hub {
    token: String,
    generation: String,
    next_seq: AtomicU64,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Bytes>>>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    ssehub::load::raise_fd_limit();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let hub = Arc::new(Hub {
        token: args.admin_token,
        generation: format!("{nanos:016x}"),
        next_seq: AtomicU64::new(0),
        subscribers: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("limit: listening on {}", args.listen);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&hub)));
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    content_length: usize,
    authorization: Option<String>,
}

fn parse_request(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let mut request = Request {
        method,
        path,
        content_length: 0,
        authorization: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            request.content_length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("authorization") {
            request.authorization = Some(value.to_owned());
        }
    }
    Some(request)
}

async fn serve(mut stream: TcpStream, hub: Arc<Hub>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            // Read into the Vec's spare capacity: no buffer in the future's
            // state, so an idle subscriber costs only what it must.
            buf.reserve(4096);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let Some(request) = std::str::from_utf8(&buf[..head_end])
            .ok()
            .and_then(parse_request)
        else {
            let _ = respond(&mut stream, 400, "{\"error\":\"bad request\"}").await;
            return;
        };
        buf.drain(..head_end);
        if request.method == "GET" {
            if request.path == "/healthz" {
                if respond(&mut stream, 200, "ok").await.is_err() {
                    return;
                }
                continue;
            }
            drop(buf);
            return subscribe(stream, &hub).await;
        }
        if request.content_length > MAX_BODY {
            let _ = respond(&mut stream, 413, "{\"error\":\"too large\"}").await;
            return;
        }
        while buf.len() < request.content_length {
            buf.reserve(request.content_length - buf.len());
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body: Vec<u8> = buf.drain(..request.content_length).collect();
        let (status, reply) = if request.method != "POST" || request.path != "/admin/events" {
            (404, "{\"error\":\"not found\"}".to_owned())
        } else if request.authorization.as_deref() != Some(&format!("Bearer {}", hub.token)) {
            (401, "{\"error\":\"unauthorized\"}".to_owned())
        } else {
            publish(&hub, &body)
        };
        if respond(&mut stream, status, &reply).await.is_err() {
            return;
        }
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await
}

/// Encodes the batch once and queues the same bytes to every subscriber.
fn publish(hub: &Hub, body: &[u8]) -> (u16, String) {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(object @ Value::Object(_)) => vec![object],
        _ => return (400, "{\"error\":\"bad json\"}".to_owned()),
    };
    let mut frames = BytesMut::new();
    let mut ids = Vec::with_capacity(items.len());
    for item in &items {
        let Some(event_type) = item.get("type").and_then(Value::as_str) else {
            return (400, "{\"error\":\"missing type\"}".to_owned());
        };
        let encoded = match Event::new(event_type, item.to_string()).encode(MAX_EVENT_BYTES) {
            Ok(encoded) => encoded,
            Err(_) => return (400, "{\"error\":\"bad event\"}".to_owned()),
        };
        let id = match item
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        {
            Some(id) => id.to_owned(),
            None => format!(
                "{}-{}",
                hub.generation,
                hub.next_seq.fetch_add(1, Ordering::Relaxed)
            ),
        };
        frames.extend_from_slice(b"id: ");
        frames.extend_from_slice(id.as_bytes());
        frames.extend_from_slice(b"\n");
        frames.extend_from_slice(encoded.body());
        ids.push(Value::String(id));
    }
    let frames = frames.freeze();
    hub.subscribers
        .lock()
        .retain(|subscriber| subscriber.send(frames.clone()).is_ok());
    (200, serde_json::json!({ "ids": ids }).to_string())
}

/// Streams to one subscriber: headers, then every queued batch, coalesced.
async fn subscribe(mut stream: TcpStream, hub: &Hub) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\nconnection: close\r\n\r\n: ok\n\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    hub.subscribers.lock().push(tx);
    let (mut read, mut write) = stream.into_split();
    let mut queued = Vec::with_capacity(64);
    let mut scratch = [0u8; 64];
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut queued, 64) => {
                if n == 0 {
                    return;
                }
                // One write per wake-up, whatever number of batches queued.
                let result = if queued.len() == 1 {
                    write.write_all(&queued[0]).await
                } else {
                    out.clear();
                    for frames in &queued {
                        out.extend_from_slice(frames);
                    }
                    write.write_all(&out).await
                };
                queued.clear();
                if result.is_err() {
                    return;
                }
            }
            // The client closing its side ends the stream.
            read = read.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}
