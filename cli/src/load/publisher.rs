//! The publishing side of the load generator: `POST /admin/events` batches on
//! a keep-alive connection, paced to a rate or as fast as the server answers.
//!
//! Every event is `{"type":"load","seq":N,"t_ns":T}` (plus a `pad` string when
//! asked), where `seq` is unique over the run and `T` is the wall clock in
//! nanoseconds just before the request is written. Sequence numbers are
//! claimed from a shared counter; only batches the server accepted (200) count
//! as published, so a failed request can never be mistaken for loss.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::{timeout, Instant};

use super::http1::{self, BodyDecoder};
use super::subscriber::{wall_clock_ns, SeqSet, Shared};
use super::target::Target;
use super::transport::{self, Socket};

/// Bound on one publish round trip.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on a publish response body we read.
const MAX_RESPONSE_BODY: usize = 1 << 20;

/// What one publisher did.
#[derive(Debug, Default)]
pub(crate) struct PublishStats {
    pub(crate) published: SeqSet,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// The server refused the token: the run cannot measure anything.
    pub(crate) unauthorized: bool,
}

impl PublishStats {
    fn error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }
}

/// How to publish.
#[derive(Debug, Clone)]
pub(crate) struct PublishPlan {
    pub(crate) token: String,
    /// Events per second for this publisher; 0 means as fast as possible.
    pub(crate) rate: f64,
    pub(crate) batch: usize,
    pub(crate) pad: usize,
    pub(crate) until: Instant,
}

/// Publishes until `plan.until`.
pub(crate) async fn publish(
    target: Target,
    plan: PublishPlan,
    shared: Arc<Shared>,
) -> PublishStats {
    let mut stats = PublishStats::default();
    let mut conn: Option<(Socket, Vec<u8>)> = None;
    let pad = "x".repeat(plan.pad);
    let mut body = String::new();
    let mut request = Vec::new();
    let interval = (plan.rate > 0.0).then(|| {
        Duration::try_from_secs_f64(plan.batch as f64 / plan.rate).unwrap_or(Duration::MAX)
    });
    let start = Instant::now();
    let mut sent_batches: u32 = 0;
    while Instant::now() < plan.until {
        if let Some(interval) = interval {
            let Some(due) = interval
                .checked_mul(sent_batches)
                .and_then(|offset| start.checked_add(offset))
            else {
                break;
            };
            if due >= plan.until {
                break;
            }
            tokio::time::sleep_until(due).await;
        }
        sent_batches = sent_batches.saturating_add(1);
        let first = shared
            .seq_limit
            .fetch_add(plan.batch as u64, Ordering::Relaxed);

        if conn.is_none() {
            match transport::connect(&target).await {
                Ok(stream) => {
                    conn = Some((stream, Vec::with_capacity(4096)));
                }
                Err(error) => {
                    stats.error(format!("connect: {error}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some((stream, buf)) = conn.as_mut() else {
            continue;
        };

        let t_ns = wall_clock_ns();
        body.clear();
        body.push('[');
        for seq in first..first + plan.batch as u64 {
            if seq != first {
                body.push(',');
            }
            let _ = write!(body, r#"{{"type":"load","seq":{seq},"t_ns":{t_ns}"#);
            if !pad.is_empty() {
                let _ = write!(body, r#","pad":"{pad}""#);
            }
            body.push('}');
        }
        body.push(']');
        request.clear();
        let _ = write!(
            ByteWriter(&mut request),
            "POST {}/admin/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            target.path_prefix,
            target.host_header,
            plan.token,
            body.len()
        );
        request.extend_from_slice(body.as_bytes());

        stats.requests += 1;
        let round_trip = async {
            stream
                .write_all(&request)
                .await
                .map_err(|e| e.to_string())?;
            read_response(stream, buf).await
        };
        match timeout(REQUEST_TIMEOUT, round_trip).await {
            Ok(Ok((200, keep_alive))) => {
                for seq in first..first + plan.batch as u64 {
                    stats.published.insert(seq);
                }
                if !keep_alive {
                    conn = None;
                }
            }
            Ok(Ok((401, _))) => {
                stats.unauthorized = true;
                stats.error("status 401 (check --token)".into());
                break;
            }
            Ok(Ok((status, keep_alive))) => {
                stats.error(format!("status {status}"));
                if !keep_alive {
                    conn = None;
                }
            }
            Ok(Err(error)) => {
                stats.error(error);
                conn = None;
            }
            Err(_) => {
                stats.error("request timed out".into());
                conn = None;
            }
        }
    }
    stats
}

/// Reads one response; returns its status and whether the connection can be
/// reused.
async fn read_response(stream: &mut Socket, buf: &mut Vec<u8>) -> Result<(u16, bool), String> {
    use tokio::io::AsyncReadExt;

    let head = http1::read_head(stream, buf)
        .await
        .map_err(|e| e.to_string())?;
    let framing = head.framing().map_err(|e| e.to_string())?;
    let close = head
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        || framing == http1::Framing::Close;
    let mut decoder = BodyDecoder::new(framing);
    let mut body_len = 0usize;
    loop {
        let used = decoder
            .decode(buf, |b| body_len += b.len())
            .map_err(|e| e.to_string())?;
        buf.drain(..used);
        if decoder.is_done() {
            return Ok((head.status, !close));
        }
        if body_len > MAX_RESPONSE_BODY {
            return Err("response body too large".into());
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            // Read-to-close bodies end here; anything else was cut short.
            return if framing == http1::Framing::Close {
                Ok((head.status, false))
            } else {
                Err("connection closed mid-response".into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `fmt::Write` into a byte vector.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
