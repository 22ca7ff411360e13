//! `ssehub serve` as a process: flags and `SSEHUB_*` variables, the
//! generated admin token, and graceful shutdown on SIGTERM/SIGINT with an
//! open stream (the stream ends with its final comment, exit code 0,
//! within a second).

#[path = "../../tests/http_support/mod.rs"]
mod http_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_support::Remote;
use hyper::Method;

/// A running `ssehub serve` and its log lines.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    remote: Remote,
}

impl Server {
    /// Spawns `ssehub serve --listen 127.0.0.1:0 <args>` with `env`, and
    /// waits for its "listening on" line.
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ssehub"));
        command
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        if !env.iter().any(|(key, _)| *key == "SSEHUB_LISTEN") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command.spawn().expect("spawn ssehub");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no 'listening on' line; log: {log:#?}"));
            let found = line
                .split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| addr.parse::<SocketAddr>().ok());
            log.push(line);
            if let Some(addr) = found {
                break addr;
            }
        };
        Server {
            child,
            lines,
            log,
            remote: Remote::new(addr),
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Log lines so far.
    fn log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    /// Every log line, after the process exited (stderr closed).
    fn final_log(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn graceful_shutdown_on(signal: &str) {
    let mut server = Server::spawn(&["--admin-token", "t", "--keep-alive", "0"], &[]);
    let mut stream = server.remote.subscribe("", &[]).await;
    let mut other = server.remote.subscribe("?event_type=x", &[]).await;
    server.signal(signal);
    let sent = Instant::now();
    assert_eq!(stream.read_to_end().await, ": end shutdown\n\n");
    assert_eq!(other.read_to_end().await, ": end shutdown\n\n");
    let status = server
        .wait_exit(Duration::from_secs(1))
        .unwrap_or_else(|| panic!("still running 1 s after {signal}"));
    assert!(status.success(), "{status}");
    assert!(sent.elapsed() < Duration::from_secs(1));
    let log = server.final_log();
    assert!(
        log.contains(&format!("signal=\"{signal}\"")) || log.contains(signal),
        "{log}"
    );
    assert_eq!(log.matches("stream opened").count(), 2, "{log}");
    assert_eq!(log.matches("reason=\"shutdown\"").count(), 2, "{log}");
}

#[tokio::test]
async fn sigterm_ends_streams_and_exits_0_within_a_second() {
    graceful_shutdown_on("TERM").await;
}

#[tokio::test]
async fn sigint_ends_streams_and_exits_0_within_a_second() {
    graceful_shutdown_on("INT").await;
}

#[tokio::test]
async fn without_a_token_one_is_generated_and_logged_once() {
    let mut server = Server::spawn(&[], &[]);
    // The token line comes before "listening on".
    let token_lines: Vec<&String> = server
        .log
        .iter()
        .filter(|line| line.contains("admin_token="))
        .collect();
    assert_eq!(token_lines.len(), 1, "{:#?}", server.log);
    let token = token_lines[0]
        .split("admin_token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("token value")
        .to_owned();
    assert_eq!(token.len(), 64);
    let reply = server
        .remote
        .send(
            Method::GET,
            "/admin/stats",
            &[("authorization", &format!("Bearer {token}"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["generation"], 1);
    let log = server.log().join("\n");
    assert_eq!(log.matches(&token).count(), 1, "the token is logged once");
}

#[tokio::test]
async fn configuration_comes_from_ssehub_variables() {
    let server = Server::spawn(
        &[],
        &[
            ("SSEHUB_LISTEN", "127.0.0.1:0"),
            ("SSEHUB_ADMIN_TOKEN", "from-env"),
            ("SSEHUB_SUBSCRIBER_TOKEN", "reader"),
            ("SSEHUB_CAPACITY", "8"),
            ("SSEHUB_MAX_BYTES", "1MiB"),
            ("SSEHUB_MAX_BATCH", "2"),
            ("SSEHUB_MAX_EVENT_BYTES", "100"),
            ("SSEHUB_MAX_TYPES", "1"),
            ("SSEHUB_MAX_SUBSCRIBERS", "1"),
            ("SSEHUB_KEEP_ALIVE", "50ms"),
            ("SSEHUB_CORS_ORIGIN", "https://a.example,https://b.example"),
        ],
    );
    let remote = &server.remote;
    let auth = [
        ("authorization", "Bearer from-env"),
        ("content-type", "application/json"),
    ];
    let publish = |body: &'static str| {
        remote.send(
            Method::POST,
            "/admin/events",
            &auth,
            Bytes::from_static(body.as_bytes()),
        )
    };
    publish(r#"[{"type":"a"},{"type":"b"},{"type":"c"}]"#)
        .await
        .assert_error(413, "payload_too_large");
    publish(r#"{"type":"a","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#)
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(publish(r#"[{"type":"a"},{"type":"b"}]"#).await.status, 200);
    let stats = remote
        .send(Method::GET, "/admin/stats", &auth[..1], Bytes::new())
        .await
        .json();
    assert_eq!(stats["ring"]["capacity"], 8);
    assert_eq!(stats["ring"]["max_bytes"], 1 << 20);

    remote
        .get("/events")
        .await
        .assert_error(401, "unauthorized");
    remote
        .get("/events?token=reader&event_type=a,b")
        .await
        .assert_error(400, "bad_request");
    let mut stream = remote
        .subscribe("?token=reader", &[("origin", "https://b.example")])
        .await;
    assert_eq!(
        stream.headers["access-control-allow-origin"],
        "https://b.example"
    );
    assert_eq!(
        stream.next_chunk(Duration::from_secs(2)).await.as_deref(),
        Some(":\n\n"),
        "50 ms keep-alive"
    );
    remote
        .get("/events?token=reader")
        .await
        .assert_error(503, "too_many_subscribers");
}

#[test]
fn bad_values_fail_clearly_and_help_lists_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(["serve", "--max-bytes", "lots"])
        .output()
        .expect("run ssehub");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-bytes"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(["serve", "--help"])
        .output()
        .expect("run ssehub");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--admin-token",
        "--subscriber-token",
        "--capacity",
        "--max-bytes",
        "--keep-alive",
        "--max-subscribers",
        "--max-event-bytes",
        "--max-batch",
        "--max-types",
        "--cors-origin",
        "SSEHUB_LISTEN",
        "127.0.0.1:8080",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

#[tokio::test]
async fn a_flag_beats_its_variable() {
    let server = Server::spawn(
        &["--max-batch", "5"],
        &[("SSEHUB_MAX_BATCH", "1"), ("SSEHUB_ADMIN_TOKEN", "t")],
    );
    let reply = server
        .remote
        .send(
            Method::POST,
            "/admin/events",
            &[
                ("authorization", "Bearer t"),
                ("content-type", "application/json"),
            ],
            Bytes::from_static(br#"[{"type":"a"},{"type":"b"}]"#),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
