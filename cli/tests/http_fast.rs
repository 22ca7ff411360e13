//! `ssehub serve`'s connection front, on the wire: streams written straight
//! to the socket (exact bytes checked over raw TCP), everything else and
//! every error answered by the router, client disconnects noticed, CORS and
//! subscriber tokens honoured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "fast-test-token";

/// `ssehub serve` on a free loopback port; killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
    /// Every log line so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        Serve::start_logging(extra, "info")
    }

    fn start_logging(extra: &[&str], filter: &str) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN])
            .args(extra)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssehub serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("ssehub serve exited before listening")
                .expect("read log");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().expect("address");
                break addr.parse().expect("socket address");
            }
        };
        // Keep draining the log so the server never blocks on stderr.
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        Serve { child, addr, log }
    }

    /// Waits (up to 5 s) until `count` log lines contain `needle`; returns them.
    fn log_lines(&self, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found: Vec<String> = self
                .log
                .lock()
                .expect("log")
                .iter()
                .filter(|line| line.contains(needle))
                .cloned()
                .collect();
            if found.len() >= count || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
    }

    /// One request on its own connection; returns the whole response.
    fn request(&self, head: &str, body: &str) -> String {
        let mut stream = self.connect();
        let request = format!(
            "{head}\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        response
    }

    fn publish(&self, json: &str) -> String {
        self.request(
            &format!(
                "POST /admin/events HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json"
            ),
            json,
        )
    }

    fn active_subscribers(&self) -> u64 {
        self.stat("active_subscribers")
    }

    /// One figure of `GET /admin/stats`.
    fn stat(&self, name: &str) -> u64 {
        let response = self.request(
            &format!("GET /admin/stats HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
            "",
        );
        let body = response.split("\r\n\r\n").nth(1).expect("body");
        let stats: serde_json::Value = serde_json::from_str(body).expect("stats json");
        stats[name].as_u64().expect("count")
    }

    /// Opens a stream with `path` and extra header lines; returns the socket
    /// after reading up to and including the opening comment.
    fn open_stream(&self, path: &str, headers: &str) -> (TcpStream, String) {
        let mut stream = self.connect();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").expect("write");
        let text = read_until(&mut stream, ": ok\n\n");
        (stream, text)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until `needle` has arrived; returns everything read.
fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&text).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?}"
        );
        let n = stream.read(&mut buf).expect("read stream");
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&text)
        );
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(text).expect("utf-8")
}

#[test]
fn streams_go_straight_to_the_socket() {
    let serve = Serve::start(&[]);
    let (mut stream, head) = serve.open_stream("/events?event_type=greet", "");
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         x-accel-buffering: no\r\nconnection: close\r\n\r\n: ok\n\n"
    );
    let published = serve.publish(r#"[{"type":"other","n":1},{"type":"greet","n":2}]"#);
    assert!(published.starts_with("HTTP/1.1 200"), "{published}");
    let text = read_until(&mut stream, "\n\n");
    assert!(text.starts_with("id: "), "{text}");
    assert!(
        text.ends_with("-2\nevent: greet\ndata: {\"type\":\"greet\",\"n\":2}\n\n"),
        "{text}"
    );
}

#[test]
fn errors_and_other_routes_are_answered_by_the_router() {
    let serve = Serve::start(&["--subscriber-token", "sub-secret"]);
    let unauthorized = serve.request("GET /events HTTP/1.1", "");
    assert!(unauthorized.starts_with("HTTP/1.1 401"), "{unauthorized}");
    assert!(unauthorized.contains("\"errorCode\":\"unauthorized\""));
    let gone = serve.request(
        "GET /events?token=sub-secret&from=0123456789abcdef-3 HTTP/1.1",
        "",
    );
    assert!(gone.starts_with("HTTP/1.1 410"), "{gone}");
    assert!(gone.contains("\"errorCode\":\"resume_point_expired\""));
    let bad = serve.request(
        "GET /events?token=sub-secret&from_timestamp=yesterday HTTP/1.1",
        "",
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let health = serve.request("GET /healthz HTTP/1.1", "");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok"),
        "{health}"
    );
    let missing = serve.request("GET /nowhere HTTP/1.1", "");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // With the token (query or header) the stream opens on the fast path.
    let (_stream, head) = serve.open_stream("/events?token=sub-secret", "");
    assert!(
        head.ends_with("connection: close\r\n\r\n: ok\n\n"),
        "{head}"
    );
    let (_stream, head) = serve.open_stream("/events", "Authorization: Bearer sub-secret\r\n");
    assert!(
        head.ends_with("connection: close\r\n\r\n: ok\n\n"),
        "{head}"
    );
}

#[test]
fn a_head_split_across_writes_still_streams() {
    let serve = Serve::start(&[]);
    let mut stream = serve.connect();
    stream.write_all(b"GET /events HT").expect("write");
    std::thread::sleep(Duration::from_millis(50));
    stream
        .write_all(b"TP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    let head = read_until(&mut stream, ": ok\n\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
}

#[test]
fn client_disconnect_ends_the_subscription() {
    let serve = Serve::start(&["--keep-alive", "0"]);
    let (stream, _) = serve.open_stream("/events", "");
    assert_eq!(serve.active_subscribers(), 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    while serve.active_subscribers() != 0 {
        assert!(
            Instant::now() < deadline,
            "subscription outlived its client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn keep_alive_comments_reach_idle_streams() {
    let serve = Serve::start(&["--keep-alive", "50ms"]);
    let (mut stream, _) = serve.open_stream("/events", "");
    let text = read_until(&mut stream, ":\n\n");
    assert_eq!(text, ":\n\n");
}

#[test]
fn cross_origin_requests_get_cors_headers_from_the_router() {
    let serve = Serve::start(&["--cors-origin", "https://app.example"]);
    let (_stream, head) = serve.open_stream("/events", "Origin: https://app.example\r\n");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    // Without Origin the fast path serves it.
    let (_stream, head) = serve.open_stream("/events", "");
    assert!(head.contains("connection: close"), "{head}");
}

#[test]
fn reset_ends_fast_streams_with_a_final_comment() {
    let serve = Serve::start(&[]);
    let (mut stream, _) = serve.open_stream("/events", "");
    let reset = serve.request(
        &format!("POST /admin/reset HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        "",
    );
    assert!(reset.starts_with("HTTP/1.1 204"), "{reset}");
    let text = read_until(&mut stream, ": end reset\n\n");
    assert_eq!(text, ": end reset\n\n");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("closed cleanly");
    assert!(rest.is_empty());
}

#[test]
fn a_refused_subscription_is_decided_once() {
    let serve = Serve::start_logging(&["--subscriber-token", "sub-secret"], "ssehub=debug");
    let refused = serve.request("GET /events?token=wrong HTTP/1.1", "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused.contains("\"errorCode\":\"unauthorized\""),
        "{refused}"
    );
    // A marker request after it: once its line is there, so is every line
    // the refused request caused.
    let gone = serve.request(
        "GET /events?token=sub-secret&from=0123456789abcdef-3 HTTP/1.1",
        "",
    );
    assert!(gone.starts_with("HTTP/1.1 410"), "{gone}");
    let lines = serve.log_lines("subscribe refused", 2);
    std::thread::sleep(Duration::from_millis(200));
    let lines_later = serve.log_lines("subscribe refused", 3);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(lines_later.len(), 2, "{lines_later:#?}");
    assert!(lines[0].contains("unauthorized"), "{lines:#?}");
    assert!(lines[1].contains("resume_point_expired"), "{lines:#?}");
}

// ---- hardening (issue 10) ---------------------------------------------------

/// Writes `bytes` on a fresh connection and reads the answer for at most
/// `wait`; returns what arrived and how long the first byte took.
fn exchange(serve: &Serve, bytes: &[u8], wait: Duration) -> (String, Option<Duration>) {
    let mut stream = serve.connect();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let started = Instant::now();
    let mut first = None;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < wait {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                first.get_or_insert(started.elapsed());
                text.extend_from_slice(&buf[..n]);
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), first)
}

#[test]
fn a_bare_lf_head_is_answered_at_once() {
    let serve = Serve::start(&[]);
    let (health, first) = exchange(
        &serve,
        b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n",
        Duration::from_secs(3),
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(health.ends_with("ok"), "{health:?}");
    assert!(
        first.is_some_and(|t| t < Duration::from_secs(1)),
        "{first:?}"
    );
    let (events, first) = exchange(
        &serve,
        b"GET /events HTTP/1.1\nHost: x\n\n",
        Duration::from_millis(1500),
    );
    assert!(events.starts_with("HTTP/1.1 200 OK\r\n"), "{events:?}");
    assert!(events.ends_with(": ok\n\n"), "{events:?}");
    assert!(
        first.is_some_and(|t| t < Duration::from_secs(1)),
        "{first:?}"
    );
}

#[test]
fn conflicting_content_lengths_get_hyper_s_400_on_every_route() {
    let serve = Serve::start(&[]);
    for path in ["/events", "/healthz"] {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"
        );
        let (response, _) = exchange(&serve, head.as_bytes(), Duration::from_secs(2));
        assert!(response.starts_with("HTTP/1.1 400"), "{path}: {response:?}");
    }
}

/// A connection whose receive buffer is small and fixed (no autotuning).
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4 << 10).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        stream.into_std().expect("std stream")
    })
}

/// Opens a stream (with `extra` header lines) that never reads, publishes
/// until the server's writes block, and checks the server cuts it off with
/// the write timeout and says so in its log.
fn non_reader_is_cut_off(extra_flags: &[&str], extra_headers: &str) {
    let mut flags = vec!["--keep-alive", "0", "--write-timeout", "1s"];
    flags.extend_from_slice(extra_flags);
    let serve = Serve::start(&flags);
    let mut stream = small_window_connect(serve.addr);
    stream.set_nonblocking(false).expect("blocking");
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: test\r\n{extra_headers}\r\n"
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(5);
    while serve.active_subscribers() != 1 {
        assert!(Instant::now() < deadline, "stream never opened");
        std::thread::sleep(Duration::from_millis(10));
    }
    // 16 MiB in 60 KiB events: far more than loopback buffers hold.
    let payload = "x".repeat(60_000);
    let batch = format!(
        "[{}]",
        vec![format!(r#"{{"type":"big","p":"{payload}"}}"#); 16].join(",")
    );
    for _ in 0..16 {
        let published = serve.publish(&batch);
        assert!(published.starts_with("HTTP/1.1 200"), "{published}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while serve.active_subscribers() != 0 {
        assert!(
            Instant::now() < deadline,
            "a client that stopped reading was never cut off"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = serve.log_lines("stream closed", 1);
    assert!(
        closed
            .iter()
            .any(|line| line.contains("reason=\"write_timeout\"")
                || line.contains("reason=write_timeout")),
        "{closed:#?}"
    );
    // A non-reader is a subscriber that could not keep up: it counts as a
    // lagged disconnect, as one the ring lapped would.
    assert_eq!(serve.stat("lagged_disconnects"), 1);
    drop(stream);
}

#[test]
fn a_non_reader_on_the_fast_path_is_cut_off_by_the_write_timeout() {
    non_reader_is_cut_off(&[], "");
}

#[test]
fn a_non_reader_on_the_router_path_is_cut_off_by_the_write_timeout() {
    // With CORS configured, a request with Origin is served by the router.
    non_reader_is_cut_off(
        &["--cors-origin", "https://app.example"],
        "Origin: https://app.example\r\n",
    );
}

#[test]
fn an_endless_head_gets_431_at_16_kib_on_both_paths() {
    let serve = Serve::start(&[]);
    for path in ["/events", "/healthz"] {
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Pad: ").into_bytes();
        head.resize(20 << 10, b'a');
        let (response, _) = exchange(&serve, &head, Duration::from_secs(3));
        assert!(response.starts_with("HTTP/1.1 431"), "{path}: {response:?}");
    }
}

#[test]
fn a_dribbled_head_is_cut_off_within_one_head_budget() {
    let serve = Serve::start(&["--head-timeout", "2s"]);
    for path in ["/events", "/healthz"] {
        let mut stream = serve.connect();
        stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let started = Instant::now();
        // 300 bytes, one per 20 ms: 6 s in all, three times the budget.
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
            "a".repeat(270)
        );
        let mut cut_off = None;
        for byte in head.bytes() {
            // Once the server has closed, a write fails (reset or broken pipe).
            if stream.write_all(&[byte]).is_err() {
                cut_off = Some(started.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            cut_off.is_some_and(|took| took < Duration::from_secs(4)),
            "{path}: a dribbled head was held {cut_off:?} (budget 2 s)"
        );
    }
}

#[test]
fn a_silent_connection_is_closed_after_the_head_timeout() {
    let serve = Serve::start(&["--head-timeout", "1s"]);
    let started = Instant::now();
    let mut stream = serve.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(6)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    // The server sends nothing and closes (EOF or reset); a read timing out
    // means it kept the connection for 6 s on a 1 s budget.
    let read = stream.read(&mut buf);
    let took = started.elapsed();
    match read {
        Ok(0) => {}
        Ok(n) => panic!("the server answered a silent connection: {:?}", &buf[..n]),
        Err(error) => assert!(
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "a silent connection was held {took:?} (budget 1 s)"
        ),
    }
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "a silent connection was closed {took:?} after connecting (budget 1 s)"
    );
}

#[test]
fn connections_over_the_cap_get_a_clean_503() {
    let serve = Serve::start(&["--max-connections", "2"]);
    let first = serve.connect();
    let second = serve.connect();
    std::thread::sleep(Duration::from_millis(100));
    let (response, _) = exchange(
        &serve,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    assert!(
        response.contains("\"errorCode\":\"too_many_connections\""),
        "{response:?}"
    );
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response:?}"
    );
    drop((first, second));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (health, _) = exchange(
            &serve,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(2),
        );
        if health.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed: {health:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_listen_backlog_holds_a_reconnect_storm() {
    let serve = Serve::start(&[]);
    // Stop the server so nothing is accepted: every connect must find room
    // in the backlog, or it stalls on SYN retries.
    let pid = serve.child.id().to_string();
    let stop = Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill");
    assert!(stop.success());
    let started = Instant::now();
    let mut connections = Vec::with_capacity(2000);
    let mut stalled = 0;
    for _ in 0..2000 {
        match TcpStream::connect_timeout(&serve.addr, Duration::from_millis(300)) {
            Ok(stream) => connections.push(stream),
            Err(_) => stalled += 1,
        }
        if stalled > 0 {
            break;
        }
    }
    let took = started.elapsed();
    let cont = Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .expect("kill");
    assert!(cont.success());
    assert_eq!(stalled, 0, "connect {} stalled", connections.len() + 1);
    assert_eq!(connections.len(), 2000);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn control_characters_from_requests_are_escaped_in_the_log() {
    let serve = Serve::start(&[]);
    // ESC, VT, FF, U+2028 and NEL in the type list (NUL is refused there).
    let (_stream, head) =
        serve.open_stream("/events?event_type=a%1B%5B31m%0B%0C%E2%80%A8%C2%85z", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = serve.log_lines("stream opened", 1);
    let line = lines.last().expect("a stream opened line");
    let raw: Vec<char> = line
        .chars()
        .filter(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        .collect();
    assert!(raw.is_empty(), "raw {raw:?} in {line:?}");
    assert!(line.contains("\\u{1b}"), "{line}");
    assert!(line.contains("\\u{2028}"), "{line}");
}
