//! The machine's limit: SSE fan-out with no hub at all.
//!
//! Accepts any number of connections (TCP_NODELAY). Any `GET` (except
//! `/healthz`, which answers `ok`) gets SSE response headers and stays open as
//! a close-delimited event stream; its socket is handed to one of `--writers`
//! writer threads (default: one per CPU), round robin. `POST /admin/events`
//! (bearer token, the same JSON body as ssehub: one object or an array)
//! encodes the batch's frames **once** into one buffer and queues it to every
//! writer. Each writer takes everything queued (several batches coalesce into
//! one buffer) and writes it to each of its sockets with one non-blocking
//! `write`; a socket that cannot take it all keeps the rest and is
//! retried on the next round (more than 64 MiB behind: dropped). No task per
//! subscriber, no wake-up per subscriber, no replay, no filtering, no ring:
//! one syscall per socket per round is what this machine can do, the
//! ceiling for ssehub and the baseline.
//!
//! ```text
//! cargo run --release -p ssehub-perf --bin limit -- --listen 127.0.0.1:8082 --admin-token T
//! ```
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use parking_lot::{Condvar, Mutex};
use serde_json::Value;
use ssehub::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Command-line flags.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// Bearer token for `POST /admin/events`.
    #[arg(long, env = "SSEHUB_ADMIN_TOKEN")]
    admin_token: String,
    /// Writer threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    writers: usize,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_EVENT_BYTES: usize = 64 * 1024;
/// A subscriber further behind than this is dropped.
const MAX_PENDING: usize = 64 * 1024 * 1024;

struct Hub {
    token: String,
    generation: String,
    next_seq: AtomicU64,
    writers: Vec<Writer>,
    next_writer: AtomicU64,
}

/// One writer thread's inbox.
#[derive(Default)]
struct Writer {
    /// Batches published and not yet written, and subscribers not yet
    /// adopted by the writer.
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    batches: Vec<Bytes>,
    joined: Vec<std::net::TcpStream>,
}

/// One subscriber socket, owned by the writer thread.
struct Sub {
    socket: std::net::TcpStream,
    /// Bytes it could not take yet.
    pending: BytesMut,
}

impl Sub {
    /// Writes `frames` after whatever is pending, with one `write` when
    /// possible. `false` when the subscriber is gone or too far behind.
    fn send(&mut self, frames: &[u8]) -> bool {
        if self.pending.is_empty() {
            match write_some(&mut self.socket, frames) {
                Some(n) => self.pending.extend_from_slice(&frames[n..]),
                None => return false,
            }
        } else {
            self.pending.extend_from_slice(frames);
            if !self.flush() {
                return false;
            }
        }
        self.pending.len() <= MAX_PENDING
    }

    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        match write_some(&mut self.socket, &self.pending) {
            Some(n) => {
                let _ = self.pending.split_to(n);
                true
            }
            None => false,
        }
    }
}

/// One non-blocking write: bytes taken, or `None` if the socket is dead.
fn write_some(socket: &mut std::net::TcpStream, bytes: &[u8]) -> Option<usize> {
    match socket.write(bytes) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
            Some(0)
        }
        Err(_) => None,
    }
}

/// The writer thread: every round, all queued batches to every socket.
fn writer(hub: &Writer) {
    let mut subs: Vec<Sub> = Vec::new();
    let mut frames = BytesMut::new();
    loop {
        let (batches, joined) = {
            let mut queue = hub.queue.lock();
            let behind = subs.iter().any(|s| !s.pending.is_empty());
            if queue.batches.is_empty() && queue.joined.is_empty() {
                if behind {
                    // Retry stalled sockets soon even with nothing new.
                    hub.wake.wait_for(&mut queue, Duration::from_millis(1));
                } else {
                    hub.wake.wait(&mut queue);
                }
            }
            (
                std::mem::take(&mut queue.batches),
                std::mem::take(&mut queue.joined),
            )
        };
        subs.extend(joined.into_iter().map(|socket| Sub {
            socket,
            pending: BytesMut::new(),
        }));
        let round: &[u8] = match batches.len() {
            0 => &[],
            1 => &batches[0],
            _ => {
                frames.clear();
                for batch in &batches {
                    frames.extend_from_slice(batch);
                }
                &frames
            }
        };
        if round.is_empty() {
            subs.retain_mut(Sub::flush);
        } else {
            subs.retain_mut(|sub| sub.send(round));
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    ssehub_cli::load::raise_fd_limit();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let writers = match args.writers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let hub = Arc::new(Hub {
        token: args.admin_token,
        generation: format!("{nanos:016x}"),
        next_seq: AtomicU64::new(0),
        writers: (0..writers).map(|_| Writer::default()).collect(),
        next_writer: AtomicU64::new(0),
    });
    for index in 0..writers {
        let hub = Arc::clone(&hub);
        std::thread::Builder::new()
            .name(format!("limit-writer-{index}"))
            .spawn(move || writer(&hub.writers[index]))?;
    }
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
    for writer in &hub.writers {
        writer.queue.lock().batches.push(frames.clone());
        writer.wake.notify_one();
    }
    (200, serde_json::json!({ "ids": ids }).to_string())
}

/// Sends the SSE head and hands the socket to the writer thread.
async fn subscribe(mut stream: TcpStream, hub: &Hub) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\nconnection: close\r\n\r\n: ok\n\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // `into_std` leaves the socket non-blocking, as the writer wants it.
    let Ok(socket) = stream.into_std() else {
        return;
    };
    let index = hub.next_writer.fetch_add(1, Ordering::Relaxed) as usize % hub.writers.len();
    let writer = &hub.writers[index];
    writer.queue.lock().joined.push(socket);
    writer.wake.notify_one();
}
