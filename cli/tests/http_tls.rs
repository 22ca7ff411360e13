//! `ssehub serve` over TLS and HTTP/2, as a child process with a
//! self-signed certificate made by the test: curl `--http2` over TLS, 200
//! HTTP/2 streams on one connection, h2c with prior knowledge, the stream
//! limit per connection, HTTP/1.1 over TLS through the streaming front, and
//! the certificate re-read on SIGHUP while streams stay open.

#[path = "../../tests/http_support/mod.rs"]
mod http_support;
#[path = "support/process.rs"]
mod process;
#[path = "support/tls.rs"]
mod tls;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::{BodyExt, Full};
use http_support::{Stream, ADMIN};
use hyper::{Method, Request};
use process::ServeProcess;
use tls::{peer_certificate, TestCert, H2};

/// `ssehub serve` with `cert` and keep-alive off, plus `extra` flags.
fn serve_tls(cert: &TestCert, extra: &[&str]) -> (ServeProcess, std::path::PathBuf) {
    let dir = tls::temp_dir("tls");
    let (cert_path, key_path) = cert.write_to(&dir);
    let cert_path = cert_path.display().to_string();
    let key_path = key_path.display().to_string();
    let mut args = vec![
        "--tls-cert",
        &cert_path,
        "--tls-key",
        &key_path,
        "--keep-alive",
        "0",
    ];
    args.extend_from_slice(extra);
    let process = ServeProcess::spawn(&args);
    assert!(process.tls, "the server logs an https:// address");
    (process, dir)
}

async fn h2_over_tls(process: &ServeProcess, cert: &TestCert) -> H2 {
    let stream = tls::connect(process.addr, &[cert], &[b"h2"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    H2::handshake(stream, format!("https://localhost:{}", process.addr.port())).await
}

/// Opens `/events<query>` over HTTP/2 and consumes `: ok`.
async fn subscribe(h2: &H2, query: &str) -> Stream {
    let mut stream = h2.stream(&format!("/events{query}"), &[]).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    for name in ["connection", "keep-alive", "transfer-encoding"] {
        assert!(
            !stream.headers.contains_key(name),
            "connection-specific header {name} on HTTP/2"
        );
    }
    stream.read_until(": ok\n\n").await;
    stream.text.clear();
    stream
}

async fn admin(h2: &H2, method: Method, path: &str) -> hyper::StatusCode {
    h2.request(
        method,
        path,
        &[("authorization", &format!("Bearer {ADMIN}"))],
        Bytes::new(),
    )
    .await
    .status()
}

async fn active_subscribers(h2: &H2) -> u64 {
    let response = h2
        .request(
            Method::GET,
            "/admin/stats",
            &[("authorization", &format!("Bearer {ADMIN}"))],
            Bytes::new(),
        )
        .await;
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("stats JSON");
    json["active_subscribers"].as_u64().expect("count")
}

#[tokio::test]
async fn curl_http2_over_tls_receives_events() {
    let cert = TestCert::new();
    let (process, dir) = serve_tls(&cert, &[]);
    let port = process.addr.port();
    let ca = dir.join("cert.pem");
    let out = dir.join("curl.out");
    let mut curl = Command::new("curl")
        .args([
            "--http2",
            "--silent",
            "--show-error",
            "--no-buffer",
            "--max-time",
            "20",
            "--cacert",
        ])
        .arg(&ca)
        .args([
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "--dump-header",
            "-",
            "--write-out",
            "\nhttp_version=%{http_version}\n",
            &format!("https://localhost:{port}/events"),
        ])
        .stdout(std::fs::File::create(&out).expect("curl output"))
        .spawn()
        .expect("curl is installed (apt-get install curl)");
    let h2 = h2_over_tls(&process, &cert).await;
    // Wait until curl's stream is open, then publish and reset (which ends it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while active_subscribers(&h2).await < 1 {
        assert!(Instant::now() < deadline, "curl never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h2.publish(r#"{"type":"greeting","text":"over h2"}"#).await;
    assert_eq!(admin(&h2, Method::POST, "/admin/reset").await, 204);
    let status = tokio::task::spawn_blocking(move || curl.wait())
        .await
        .expect("join")
        .expect("curl ran");
    let output = std::fs::read_to_string(&out).expect("curl output");
    assert!(status.success(), "curl failed: {output}");
    assert!(output.starts_with("HTTP/2 200"), "{output}");
    assert!(output.contains("http_version=2"), "{output}");
    assert!(
        !output.to_ascii_lowercase().contains("\nconnection:"),
        "{output}"
    );
    assert!(
        output.contains(": ok\n\nid: ")
            && output.contains(r#"data: {"type":"greeting","text":"over h2"}"#),
        "{output}"
    );
    assert!(output.contains(": end reset\n\n"), "{output}");
}

#[tokio::test]
async fn two_hundred_http2_streams_on_one_connection_all_receive_every_event() {
    let cert = TestCert::new();
    let (process, _dir) = serve_tls(&cert, &[]);
    let h2 = h2_over_tls(&process, &cert).await;
    let mut streams = join_all((0..200).map(|_| subscribe(&h2, ""))).await;
    assert_eq!(active_subscribers(&h2).await, 200);
    let batch: Vec<String> = (0..20)
        .map(|n| format!(r#"{{"type":"t","n":{n}}}"#))
        .collect();
    h2.publish(&format!("[{}]", batch.join(","))).await;
    join_all(streams.iter_mut().map(|s| s.read_until(r#""n":19}"#))).await;
    for (index, stream) in streams.iter().enumerate() {
        assert_eq!(stream.data(), batch, "stream {index}");
    }
    // A reset ends every stream (each its own END_STREAM) ...
    assert_eq!(admin(&h2, Method::POST, "/admin/reset").await, 204);
    for stream in &mut streams {
        assert!(stream.read_to_end().await.ends_with(": end reset\n\n"));
    }
    // ... and the connection lives on: a new stream on it receives events.
    let mut again = subscribe(&h2, "").await;
    h2.publish(r#"{"type":"t","n":"after"}"#).await;
    again.read_until(r#""n":"after""#).await;
    assert!(!h2.sender.is_closed());
}

#[tokio::test]
async fn http2_errors_filters_resume_and_token_expiry_behave_as_on_http1() {
    let cert = TestCert::new();
    let (process, _dir) = serve_tls(&cert, &["--jwt-key", "k"]);
    let h2 = h2_over_tls(&process, &cert).await;
    let reply = h2
        .request(Method::GET, "/events?event_type=a%0Ab", &[], Bytes::new())
        .await;
    assert_eq!(reply.status(), 401, "auth comes first");
    assert_eq!(
        reply.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    let body = reply.into_body().collect().await.expect("body").to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("envelope");
    assert_eq!(json["errorCode"], "invalid_token");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 2;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({ "exp": exp, "subscribe": ["a"] }),
        &jsonwebtoken::EncodingKey::from_secret(b"k").expect("key"),
    )
    .expect("sign");
    let mut filtered = subscribe(&h2, &format!("?token={token}")).await;
    h2.publish(r#"[{"type":"b","n":1},{"type":"a","n":2,"id":"r2"},{"type":"b","n":3},{"type":"a","n":4}]"#)
        .await;
    filtered.read_until(r#""n":4"#).await;
    assert_eq!(
        filtered.data(),
        [r#"{"type":"a","n":2,"id":"r2"}"#, r#"{"type":"a","n":4}"#]
    );
    // Resume after an id over HTTP/2: the replay is filtered too.
    let mut resumed = h2
        .stream(
            &format!("/events?token={token}"),
            &[("last-event-id", "r2")],
        )
        .await;
    assert_eq!(resumed.status, 200);
    resumed.read_until(r#""n":4"#).await;
    assert_eq!(resumed.data(), [r#"{"type":"a","n":4}"#]);
    // Token expiry ends the stream, not the connection.
    assert!(filtered
        .read_to_end()
        .await
        .ends_with(": end token_expired\n\n"));
    assert_eq!(admin(&h2, Method::GET, "/admin/stats").await, 200);
    assert!(!h2.sender.is_closed());
}

#[tokio::test]
async fn the_plain_listener_speaks_h2c_with_prior_knowledge_and_bounds_streams() {
    let process = ServeProcess::spawn(&["--keep-alive", "0", "--http2-max-streams", "5"]);
    let tcp = tokio::net::TcpStream::connect(process.addr)
        .await
        .expect("connect");
    let h2 = H2::handshake(tcp, format!("http://{}", process.addr)).await;
    let mut streams = join_all((0..5).map(|_| subscribe(&h2, ""))).await;
    // The sixth stream waits for a free slot on this connection.
    let sixth = {
        let h2 = h2.clone();
        tokio::spawn(async move { subscribe(&h2, "").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sixth.is_finished(), "a sixth concurrent stream was opened");
    // Closing one stream frees a slot.
    drop(streams.pop());
    let mut sixth = tokio::time::timeout(Duration::from_secs(5), sixth)
        .await
        .expect("sixth stream opens once one closes")
        .expect("join");
    let other = tokio::net::TcpStream::connect(process.addr)
        .await
        .expect("connect");
    let publisher = H2::handshake(other, format!("http://{}", process.addr)).await;
    publisher.publish(r#"{"type":"t","n":1}"#).await;
    sixth.read_until(r#""n":1"#).await;
    for stream in &mut streams {
        stream.read_until(r#""n":1"#).await;
    }
}

#[tokio::test]
async fn http1_over_tls_goes_through_the_streaming_front() {
    let cert = TestCert::new();
    let (process, _dir) = serve_tls(&cert, &[]);
    let io = tls::connect(process.addr, &[&cert], &[b"http/1.1"]).await;
    assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut sender = tls::http1_over(io).await;
    let request = Request::get("/events")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    // The front's own response head: close-delimited, no chunked framing.
    assert_eq!(response.headers()["connection"], "close");
    assert!(!response.headers().contains_key("transfer-encoding"));
    let mut stream = Stream::from_response(response);
    stream.read_until(": ok\n\n").await;
    let h2 = h2_over_tls(&process, &cert).await;
    h2.publish(r#"{"type":"t","n":1}"#).await;
    stream.read_until(r#""n":1"#).await;
    assert_eq!(admin(&h2, Method::POST, "/admin/reset").await, 204);
    assert!(stream.read_to_end().await.ends_with(": end reset\n\n"));
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_streams() {
    let (old, new) = (TestCert::new(), TestCert::new());
    let (mut process, dir) = serve_tls(&old, &[]);
    let h2 = h2_over_tls(&process, &old).await;
    let mut open = subscribe(&h2, "").await;
    let first = tls::connect(process.addr, &[&old, &new], &[b"h2"]).await;
    assert_eq!(peer_certificate(&first), old.der);

    new.write_to(&dir);
    process.signal("HUP");
    process
        .wait_for_log("TLS certificate reloaded", Duration::from_secs(10))
        .expect("a reload log line");

    let after = tls::connect(process.addr, &[&old, &new], &[b"h2"]).await;
    assert_eq!(
        peer_certificate(&after),
        new.der,
        "new connections see the new certificate"
    );
    // The stream opened before the reload still receives events.
    let h2_new = H2::handshake(after, format!("https://localhost:{}", process.addr.port())).await;
    h2_new.publish(r#"{"type":"t","n":"after reload"}"#).await;
    open.read_until(r#""n":"after reload""#).await;
    // A failed reload (a key that does not match) keeps the current one.
    std::fs::write(dir.join("key.pem"), &old.key_pem).expect("write key");
    process.signal("HUP");
    process
        .wait_for_log("not reloaded", Duration::from_secs(10))
        .expect("a failed reload log line");
    let again = tls::connect(process.addr, &[&old, &new], &[b"h2"]).await;
    assert_eq!(peer_certificate(&again), new.der);
}

/// `ssehub load` against `process` with `flags`; returns its JSON report.
fn load_report(process: &ServeProcess, url: &str, flags: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(["load", "--url", url, "--token", ADMIN, "--json"])
        .args([
            "--connections",
            "20",
            "--rate",
            "400",
            "--batch",
            "10",
            "--duration",
            "1s",
            "--drain",
            "3s",
            "--server-pid",
            &process.child.id().to_string(),
        ])
        .args(flags)
        .output()
        .expect("run ssehub load");
    assert!(
        output.status.success(),
        "load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("load JSON report")
}

#[test]
fn the_load_generator_speaks_tls_and_http2() {
    let cert = TestCert::new();
    let (process, dir) = serve_tls(&cert, &[]);
    let cacert = dir.join("cert.pem").display().to_string();
    let url = format!("https://localhost:{}", process.addr.port());
    let plain = ServeProcess::spawn(&["--keep-alive", "0"]);
    let plain_url = format!("http://{}", plain.addr);
    for (what, server, url, flags) in [
        (
            "HTTP/1.1 over TLS",
            &process,
            &url,
            vec!["--cacert", cacert.as_str()],
        ),
        (
            "HTTP/2 over TLS, 3 connections",
            &process,
            &url,
            vec!["--cacert", cacert.as_str(), "--http2-connections", "3"],
        ),
        (
            "h2c, 2 connections",
            &plain,
            &plain_url,
            vec!["--http2-connections", "2"],
        ),
    ] {
        let report = load_report(server, url, &flags);
        assert_eq!(report["established"], 20, "{what}: {report}");
        let published = report["published"].as_u64().expect("published");
        assert!(published > 0, "{what}: {report}");
        assert_eq!(
            report["delivered"].as_u64(),
            Some(published * 20),
            "{what}: {report}"
        );
        assert_eq!(report["lost"], 0, "{what}");
        assert_eq!(report["duplicates"], 0, "{what}");
        assert_eq!(report["stream_errors"], 0, "{what}");
    }
    // An https:// URL without a certificate to trust is refused up front.
    let output = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(["load", "--url", &url, "--token", ADMIN, "--duration", "1s"])
        .output()
        .expect("run ssehub load");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--cacert"));
}

#[tokio::test]
async fn http2_keep_alive_subscriber_limit_and_shutdown_behave_as_on_http1() {
    let cert = TestCert::new();
    // Keep-alive on (serve_tls turns it off).
    let (cert_path, key_path) = cert.write_to(&tls::temp_dir("keep-alive"));
    let (cert_path, key_path) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let process = ServeProcess::spawn(&[
        "--tls-cert",
        &cert_path,
        "--tls-key",
        &key_path,
        "--keep-alive",
        "200ms",
        "--max-subscribers",
        "1",
    ]);
    let h2 = h2_over_tls(&process, &cert).await;
    let mut stream = subscribe(&h2, "").await;
    // An idle stream gets keep-alive comments.
    stream.read_until(":\n\n").await;
    // The subscriber limit: 503 with Retry-After and the envelope.
    let refused = h2.request(Method::GET, "/events", &[], Bytes::new()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body = refused
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("envelope");
    assert_eq!(json["errorCode"], "too_many_subscribers");
    // SIGTERM ends the stream with its final comment.
    process.signal("TERM");
    assert!(stream.read_to_end().await.ends_with(": end shutdown\n\n"));
}

/// Reads until the server closes `stream` (EOF or reset); returns how long
/// after `since` that was, or panics once `limit` after `since` has passed.
async fn closed_after(
    stream: &mut tokio::net::TcpStream,
    since: Instant,
    limit: Duration,
) -> Duration {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((since + limit).into(), stream.read(&mut buf)).await {
            Err(_) => panic!("the server kept a stalled TLS handshake open for {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return since.elapsed(),
            // A TLS alert may come before the close; keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_silent_or_stalled_tls_handshake_is_closed_after_the_head_timeout() {
    use tokio::io::AsyncWriteExt;
    let cert = TestCert::new();
    let (process, _dir) = serve_tls(&cert, &["--head-timeout", "1s"]);
    // Nothing sent at all.
    let silent_since = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(process.addr)
        .await
        .expect("connect");
    // The first bytes of a ClientHello record (handshake, TLS 1.0 record
    // version, 512 bytes announced), then nothing more.
    let stalled_since = Instant::now();
    let mut stalled = tokio::net::TcpStream::connect(process.addr)
        .await
        .expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");
    for (name, stream, since) in [
        ("silent", &mut silent, silent_since),
        ("stalled", &mut stalled, stalled_since),
    ] {
        let took = closed_after(stream, since, Duration::from_secs(6)).await;
        assert!(
            took >= Duration::from_millis(900),
            "{name}: closed {took:?} after connecting, before the 1 s head timeout"
        );
    }
    // The server keeps serving complete handshakes.
    let h2 = h2_over_tls(&process, &cert).await;
    assert_eq!(admin(&h2, Method::GET, "/admin/stats").await, 200);
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_head_timeout_but_not_one_with_a_stream() {
    let cert = TestCert::new();
    let (process, _dir) = serve_tls(&cert, &["--head-timeout", "1s"]);
    let idle = h2_over_tls(&process, &cert).await;
    let busy = h2_over_tls(&process, &cert).await;
    let mut stream = subscribe(&busy, "").await;
    assert_eq!(admin(&idle, Method::GET, "/admin/stats").await, 200);
    let last_request_ended = Instant::now();
    let deadline = last_request_ended + Duration::from_secs(5);
    while !idle.sender.is_closed() {
        assert!(
            Instant::now() < deadline,
            "an idle HTTP/2 connection was kept 5 s on a 1 s budget"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = last_request_ended.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed {took:?} after its last request, before the 1 s budget"
    );
    // Three budgets later the connection with an open stream still serves
    // it, and takes new requests.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !busy.sender.is_closed(),
        "a connection with a stream was closed"
    );
    busy.publish(r#"{"type":"t","n":1}"#).await;
    stream.read_until(r#""n":1"#).await;
}
