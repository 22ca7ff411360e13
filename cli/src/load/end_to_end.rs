//! `run` against a tiny in-process server that speaks the contract with
//! chunked responses, and against servers that misbehave.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{run, LoadArgs, LoadError};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Deliver every event once.
    Good,
    /// Deliver every event twice.
    Duplicate,
    /// Drop every event with an odd position in its batch.
    DropOdd,
    /// Send a broken chunk size after the first batch.
    BadChunk,
}

type Subscribers = Arc<Mutex<Vec<mpsc::UnboundedSender<Vec<u8>>>>>;

async fn server(mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let subscribers: Subscribers = Arc::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream, Arc::clone(&subscribers), mode));
        }
    });
    url
}

fn chunk(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

async fn handle(mut stream: TcpStream, subscribers: Subscribers, mode: Mode) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        if head.starts_with("GET") {
            let response = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            let mut first = response.as_bytes().to_vec();
            first.extend(chunk(b"retry: 1000\n: hi\n\n"));
            if stream.write_all(&first).await.is_err() {
                return;
            }
            let (tx, mut rx) = mpsc::unbounded_channel();
            subscribers.lock().push(tx);
            while let Some(bytes) = rx.recv().await {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            return;
        }
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        if !head.contains("Authorization: Bearer secret\r\n") {
            let _ = stream
                .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                .await;
            continue;
        }
        let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        let mut frames = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if mode == Mode::DropOdd && i % 2 == 1 {
                continue;
            }
            let copies = if mode == Mode::Duplicate { 2 } else { 1 };
            for _ in 0..copies {
                frames.extend_from_slice(format!("event: load\ndata: {item}\n\n").as_bytes());
            }
        }
        // Split the frames over two chunks at an awkward place.
        let mut wire = chunk(&frames[..frames.len() / 3]);
        wire.extend(chunk(&frames[frames.len() / 3..]));
        if mode == Mode::BadChunk {
            wire.extend_from_slice(b"zz\r\n");
        }
        subscribers
            .lock()
            .retain(|subscriber| subscriber.send(wire.clone()).is_ok());
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n8\r\n{\"ids\":[\r\n2\r\n]}\r\n0\r\n\r\n")
            .await;
    }
}

fn args(url: String, connections: u64) -> LoadArgs {
    LoadArgs {
        url,
        publish_all: false,
        token: Some("secret".into()),
        connections,
        rate: 2000.0,
        batch: 10,
        duration: Duration::from_millis(300),
        drain: Duration::from_secs(2),
        publishers: 1,
        payload: 16,
        event_type: None,
        connect_concurrency: 8,
        connect_timeout: Duration::from_secs(5),
        server_pid: Some(std::process::id()),
        cacert: None,
        http2_connections: 0,
        json: true,
        per_connection: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_everything_delivered_once() {
    let url = server(Mode::Good).await;
    let report = run(args(url, 20)).await.unwrap();
    assert_eq!(report.established, 20);
    assert!(report.published >= 100, "{report:?}");
    assert_eq!(report.delivered, report.published * 20);
    assert_eq!(report.expected, report.delivered);
    assert_eq!(
        (
            report.lost,
            report.undelivered,
            report.duplicates,
            report.bogus
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(report.comments, 20);
    assert_eq!(report.latency.samples, report.delivered);
    assert!(report.latency.p50_us > 0.0 && report.latency.max_us >= report.latency.p99_us);
    assert!(report.rss.is_some());
    assert_eq!(report.publish_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_duplicates_and_losses() {
    let report = run(args(server(Mode::Duplicate).await, 3)).await.unwrap();
    assert_eq!(report.duplicates, report.published * 3);
    assert_eq!(report.lost, 0);
    // Odd positions of each batch of 10 are dropped: the last event of the
    // last batch is after the newest one received, so it is undelivered; the
    // others are gaps.
    let report = run(args(server(Mode::DropOdd).await, 3)).await.unwrap();
    assert_eq!(report.lost, (report.published / 2 - 1) * 3);
    assert_eq!(report.undelivered, 3);
    assert_eq!(report.connections_with_loss, 3);
    assert_eq!(report.max_lost_per_connection, report.published / 2 - 1);
    assert_eq!(report.per_connection.len(), 3);
    assert!(report
        .per_connection
        .iter()
        .all(|c| c.lost == report.published / 2 - 1 && c.undelivered == 1));
    assert!(report.to_string().contains("connection 2 "), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_framing_is_a_stream_error() {
    let report = run(args(server(Mode::BadChunk).await, 4)).await.unwrap();
    assert_eq!(report.stream_errors, 4);
    assert!(report
        .first_stream_error
        .as_deref()
        .is_some_and(|e| e.contains("chunk")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_and_no_server_are_errors() {
    let mut bad = args(server(Mode::Good).await, 2);
    bad.token = Some("wrong".into());
    assert_eq!(run(bad).await.unwrap_err(), LoadError::Unauthorized);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    assert!(matches!(
        run(args(closed, 2)).await,
        Err(LoadError::NoConnections { .. })
    ));
    let mut no_token = args("http://127.0.0.1:1".into(), 1);
    no_token.token = None;
    assert_eq!(run(no_token).await.unwrap_err(), LoadError::NoToken);
}
