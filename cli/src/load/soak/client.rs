//! The soak's HTTP/1.1 client: one-shot requests, a keep-alive connection for
//! the publisher and the admin calls, and SSE streams read either parsed or
//! as raw body bytes (to cut a frame in half).
//!
//! Built on the load generator's hand-written HTTP/1.1 pieces
//! (the private `http1` module): every read is bounded in size, every call in
//! time by its caller, and nothing the server sends can make it panic.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::super::http1::{self, BodyDecoder, Framing, Head};
use super::super::target::Target;
use crate::parse::{ItemRef, Parser};

/// Largest response body read for a non-stream answer.
const MAX_BODY: usize = 1 << 20;
/// Read buffer of one SSE connection.
const READ_BUF: usize = 16 * 1024;

/// A complete (non-stream) response.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: Head,
    pub(crate) body: String,
}

impl Answer {
    /// The `errorCode` of a JSON error envelope, if the body is one.
    pub(crate) fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        value.get("errorCode")?.as_str().map(str::to_owned)
    }

    /// `status errorCode` for messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} {}",
            self.status,
            self.error_code().unwrap_or_else(|| "-".into())
        )
    }
}

/// Writes `request` on a fresh connection and reads the whole answer.
async fn exchange(target: &Target, request: &[u8]) -> Result<(Answer, TcpStream), String> {
    let mut stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let answer = read_answer(&mut stream, &mut buf).await?;
    Ok((answer, stream))
}

/// Reads one response (head and body) from `stream`; `buf` holds bytes
/// already read and keeps what follows the response.
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Answer, String> {
    let head = http1::read_head(stream, buf)
        .await
        .map_err(|e| e.to_string())?;
    let framing = head.framing().map_err(|e| e.to_string())?;
    let mut decoder = BodyDecoder::new(framing);
    let mut body = Vec::new();
    loop {
        let used = decoder
            .decode(buf, |b| body.extend_from_slice(b))
            .map_err(|e| e.to_string())?;
        buf.drain(..used);
        if decoder.is_done() {
            break;
        }
        if body.len() > MAX_BODY {
            return Err("response body too large".into());
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            if framing == Framing::Close {
                break;
            }
            return Err("connection closed mid-response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Answer {
        status: head.status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The request bytes for `method path` with an optional bearer token and
/// JSON body.
fn request_bytes(
    target: &Target,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    close: bool,
) -> Vec<u8> {
    let mut request = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\n",
        target.path_prefix, target.host_header
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if close {
        request.push_str("Connection: close\r\n");
    }
    match body {
        Some(body) => request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => request.push_str("\r\n"),
    }
    request.into_bytes()
}

/// One request on a fresh connection (`Connection: close`); the socket is
/// then reset rather than left in `TIME_WAIT`, so a long soak does not run
/// out of ephemeral ports.
pub(crate) async fn request(
    target: &Target,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> Result<Answer, String> {
    let request = request_bytes(target, method, path, token, None, true);
    let (answer, stream) = exchange(target, &request).await?;
    let _ = stream.set_zero_linger();
    Ok(answer)
}

/// A keep-alive connection, reopened after any error or `Connection: close`.
pub(crate) struct KeepAlive {
    target: Target,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl KeepAlive {
    /// A connection to `target`, opened at the first request.
    pub(crate) fn new(target: Target) -> Self {
        KeepAlive {
            target,
            stream: None,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads its answer.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<Answer, String> {
        let request = request_bytes(&self.target, method, path, token, body, false);
        let result = self.send_bytes(&request).await;
        match &result {
            Ok(answer)
                if !answer
                    .head
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close")) => {}
            _ => self.stream = None,
        }
        result
    }

    async fn send_bytes(&mut self, request: &[u8]) -> Result<Answer, String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(self.target.addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                self.buf.clear();
                self.stream.insert(stream)
            }
        };
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        read_answer(stream, &mut self.buf).await
    }
}

/// The answer to `GET /events`: a stream, or a refusal read in full.
pub(crate) enum Opened {
    /// 200 with `text/event-stream`.
    Stream(Box<Sse>),
    /// Any other answer.
    Refused(Answer),
}

/// Opens `GET /events`, resuming after `last_event_id` if given. With
/// `recv_buffer`, the socket's receive buffer is set that small first, so a
/// reader that pauses fills the path within a few hundred kilobytes.
pub(crate) async fn open_events(
    target: &Target,
    last_event_id: Option<&str>,
    recv_buffer: Option<u32>,
) -> Result<Opened, String> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(size) = recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
        small_segments(&socket)?;
    }
    let mut stream = socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut request = format!(
        "GET {}/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        target.path_prefix, target.host_header
    );
    if let Some(id) = last_event_id {
        request.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(READ_BUF);
    let head = http1::read_head(&mut stream, &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let is_stream = head.status == 200
        && head
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        // Read the refusal's body (the error envelope) from what is buffered
        // and what follows.
        let framing = head.framing().map_err(|e| e.to_string())?;
        let mut decoder = BodyDecoder::new(framing);
        let mut body = Vec::new();
        loop {
            let used = decoder
                .decode(&buf, |b| body.extend_from_slice(b))
                .map_err(|e| e.to_string())?;
            buf.drain(..used);
            if decoder.is_done() || body.len() > MAX_BODY {
                break;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = stream.set_zero_linger();
        return Ok(Opened::Refused(Answer {
            status: head.status,
            head,
            body: String::from_utf8_lossy(&body).into_owned(),
        }));
    }
    let framing = head.framing().map_err(|e| e.to_string())?;
    Ok(Opened::Stream(Box::new(Sse {
        stream,
        decoder: BodyDecoder::new(framing),
        parser: Parser::new(),
        pending: buf,
        read_buf: vec![0; READ_BUF],
        last_comment: None,
    })))
}

/// Advertises a small maximum segment size (`TCP_MAXSEG` 536) on a socket
/// about to connect. The peer sizes its send buffer from its segment size
/// (Linux: `tcp_sndbuf_expand`), so on loopback (64 KiB segments) a reader
/// that stops would otherwise have megabytes absorbed by the server's
/// socket before a write blocks, and would take that much longer to fall a
/// ring behind.
#[cfg(target_os = "linux")]
fn small_segments(socket: &TcpSocket) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mss: libc::c_int = 536;
    // SAFETY: the descriptor is an open socket owned by `socket` for the
    // whole call; `mss` is a valid `c_int` and its size is passed with it.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mss as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(format!("TCP_MAXSEG: {}", std::io::Error::last_os_error()))
    }
}

/// Elsewhere the segment size is left alone.
#[cfg(not(target_os = "linux"))]
fn small_segments(_socket: &TcpSocket) -> Result<(), String> {
    Ok(())
}

/// An open event stream.
pub(crate) struct Sse {
    stream: TcpStream,
    decoder: BodyDecoder,
    parser: Parser,
    /// Received bytes not yet decoded.
    pending: Vec<u8>,
    read_buf: Vec<u8>,
    /// The last comment line seen (the server's `end <reason>`).
    pub(crate) last_comment: Option<String>,
}

impl Sse {
    /// The next piece of body, decoded from the transfer framing; `None`
    /// once the body is complete or the server closed the connection.
    pub(crate) async fn read_body(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if !self.pending.is_empty() {
                let mut out = Vec::new();
                let used = self
                    .decoder
                    .decode(&self.pending, |b| out.extend_from_slice(b))
                    .map_err(|e| e.to_string())?;
                self.pending.drain(..used);
                if !out.is_empty() {
                    return Ok(Some(out));
                }
            }
            if self.decoder.is_done() {
                return Ok(None);
            }
            let n = self
                .stream
                .read(&mut self.read_buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&self.read_buf[..n]);
        }
    }

    /// Parses `body`, handing each event's id to `on_event`; comments are
    /// remembered in [`Sse::last_comment`].
    pub(crate) fn parse(
        &mut self,
        body: &[u8],
        mut on_event: impl FnMut(Option<&str>),
    ) -> Result<(), String> {
        let Sse {
            parser,
            last_comment,
            ..
        } = self;
        parser
            .feed_with(body, |item| match item {
                ItemRef::Event(event) => on_event(event.id),
                ItemRef::Comment(text) => *last_comment = Some(text.trim().to_owned()),
                ItemRef::Retry(_) => {}
            })
            .map_err(|e| format!("parse: {e}"))
    }

    /// Reads and parses until at least one read's worth arrived; `false`
    /// once the stream is over.
    pub(crate) async fn read_events(
        &mut self,
        on_event: impl FnMut(Option<&str>),
    ) -> Result<bool, String> {
        match self.read_body().await? {
            Some(body) => {
                self.parse(&body, on_event)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The reason in the server's final `: end <reason>` comment, if the
    /// last comment was one.
    pub(crate) fn end_reason(&self) -> Option<&str> {
        self.last_comment.as_deref()?.strip_prefix("end ")
    }

    /// Closes the connection: with a reset (`RST`) when `abort`, else with
    /// an orderly `FIN`.
    pub(crate) fn close(self, abort: bool) {
        if abort {
            let _ = self.stream.set_zero_linger();
        }
        drop(self.stream);
    }
}

/// Sleeps `duration`, or less if `stop` turns true first.
pub(crate) async fn nap(duration: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = tokio::time::timeout(duration, stop.wait_for(|stop| *stop)).await;
}
