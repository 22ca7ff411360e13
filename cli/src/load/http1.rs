//! The smallest HTTP/1.1 client the load generator needs: a request line, the
//! response head, and body framing (`Transfer-Encoding: chunked`,
//! `Content-Length` or read-to-close).
//!
//! Hand-written on a raw socket rather than hyper's client so each SSE
//! connection costs one task, one read buffer and no per-frame allocation in
//! the transport; at 1,000+ connections on a 2-core machine the generator must
//! stay cheaper than the server it measures. Everything here treats the peer
//! as untrusted: malformed input is an [`HttpError`], never a panic, and every
//! buffer is bounded.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bound on a response head (status line and headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A malformed or unexpected response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The head was not valid HTTP/1.x or exceeded [`MAX_HEAD`].
    BadHead(&'static str),
    /// The chunked body framing was malformed.
    BadChunk(&'static str),
    /// The connection closed before the response was complete.
    Closed,
    /// A socket error.
    Io(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadHead(why) => write!(f, "bad response head: {why}"),
            HttpError::BadChunk(why) => write!(f, "bad chunked body: {why}"),
            HttpError::Closed => f.write_str("connection closed mid-response"),
            HttpError::Io(error) => write!(f, "i/o error: {error}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<std::io::Error> for HttpError {
    fn from(error: std::io::Error) -> Self {
        HttpError::Io(error.to_string())
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Lower-cased header names with their values.
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How the body is framed (RFC 9112 section 6.3, for responses to GET and
    /// POST).
    pub(crate) fn framing(&self) -> Result<Framing, HttpError> {
        if self.status == 204 || self.status == 304 || (100..200).contains(&self.status) {
            return Ok(Framing::Length(0));
        }
        if let Some(te) = self.header("transfer-encoding") {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            return if last.eq_ignore_ascii_case("chunked") {
                Ok(Framing::Chunked)
            } else {
                Ok(Framing::Close)
            };
        }
        if let Some(len) = self.header("content-length") {
            return len
                .trim()
                .parse()
                .map(Framing::Length)
                .map_err(|_| HttpError::BadHead("content-length"));
        }
        Ok(Framing::Close)
    }
}

/// Body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(u64),
    /// The body runs until the server closes the connection.
    Close,
}

/// Reads a response head from `io` into `buf`. On return `buf` holds only the
/// bytes after the head (the start of the body).
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Head, HttpError> {
    let mut scanned = 0;
    loop {
        if let Some(end) = find_head_end(buf, scanned) {
            let head = parse_head(&buf[..end])?;
            buf.drain(..end);
            return Ok(head);
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD {
            return Err(HttpError::BadHead("head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The end of the head (just after `\r\n\r\n`), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| from + at + 4)
}

/// Parses a status line and headers (the head including its final CRLFCRLF).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::BadHead("not utf-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or(HttpError::BadHead("empty"))?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::BadHead("not HTTP/1.x"));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or(HttpError::BadHead("status code"))?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::BadHead("header without colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Head { status, headers })
}

/// Where a chunked decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits of a chunk size.
    Size,
    /// After the size: skipping a chunk extension up to CR.
    Extension,
    /// Expecting the LF of the size line.
    SizeLf,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After the last chunk: trailer lines; `true` when at a line start.
    Trailer { line_start: bool },
    /// Expecting the LF of the line that ends the trailer.
    TrailerLf { empty: bool },
    /// The body is complete.
    Done,
}

/// An incremental body decoder for any [`Framing`].
#[derive(Debug, Clone)]
pub(crate) struct BodyDecoder {
    framing: Framing,
    state: ChunkState,
    size: u64,
    size_digits: u32,
    /// Bytes left for `Framing::Length`.
    remaining: u64,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub(crate) fn new(framing: Framing) -> Self {
        let remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        BodyDecoder {
            framing,
            state: ChunkState::Size,
            size: 0,
            size_digits: 0,
            remaining,
        }
    }

    /// Whether the whole body has been decoded (never, for read-to-close).
    pub(crate) fn is_done(&self) -> bool {
        match self.framing {
            Framing::Chunked => self.state == ChunkState::Done,
            Framing::Length(_) => self.remaining == 0,
            Framing::Close => false,
        }
    }

    /// Decodes `input`, handing each run of body bytes to `out`. Returns how
    /// many input bytes were consumed (less than `input.len()` only once the
    /// body is done: the rest belongs to the next response).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]),
    ) -> Result<usize, HttpError> {
        match self.framing {
            Framing::Close => {
                out(input);
                Ok(input.len())
            }
            Framing::Length(_) => {
                let take = input
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                out(&input[..take]);
                self.remaining -= take as u64;
                Ok(take)
            }
            Framing::Chunked => self.decode_chunked(input, &mut out),
        }
    }

    fn decode_chunked(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<usize, HttpError> {
        let mut at = 0;
        while at < input.len() {
            let byte = input[at];
            match self.state {
                ChunkState::Size => match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        // Sixteen hex digits already overflow any sane chunk.
                        if self.size_digits >= 15 {
                            return Err(HttpError::BadChunk("chunk size too large"));
                        }
                        let digit = (byte as char).to_digit(16).unwrap_or(0);
                        self.size = self.size * 16 + u64::from(digit);
                        self.size_digits += 1;
                        at += 1;
                    }
                    b';' | b' ' | b'\t' if self.size_digits > 0 => {
                        self.state = ChunkState::Extension;
                        at += 1;
                    }
                    b'\r' if self.size_digits > 0 => {
                        self.state = ChunkState::SizeLf;
                        at += 1;
                    }
                    _ => return Err(HttpError::BadChunk("chunk size")),
                },
                ChunkState::Extension => {
                    if byte == b'\r' {
                        self.state = ChunkState::SizeLf;
                    } else if byte == b'\n' {
                        return Err(HttpError::BadChunk("bare LF in chunk extension"));
                    }
                    at += 1;
                }
                ChunkState::SizeLf => {
                    if byte != b'\n' {
                        return Err(HttpError::BadChunk("expected LF after chunk size"));
                    }
                    at += 1;
                    self.state = if self.size == 0 {
                        ChunkState::Trailer { line_start: true }
                    } else {
                        ChunkState::Data(self.size)
                    };
                    self.size = 0;
                    self.size_digits = 0;
                }
                ChunkState::Data(left) => {
                    let avail = input.len() - at;
                    let take = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
                    out(&input[at..at + take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataCr => {
                    if byte != b'\r' {
                        return Err(HttpError::BadChunk("expected CR after chunk data"));
                    }
                    at += 1;
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    if byte != b'\n' {
                        return Err(HttpError::BadChunk("expected LF after chunk data"));
                    }
                    at += 1;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer { line_start } => {
                    at += 1;
                    self.state = if byte == b'\r' {
                        ChunkState::TrailerLf { empty: line_start }
                    } else {
                        ChunkState::Trailer { line_start: false }
                    };
                }
                ChunkState::TrailerLf { empty } => {
                    if byte != b'\n' {
                        return Err(HttpError::BadChunk("expected LF in trailer"));
                    }
                    at += 1;
                    if empty {
                        self.state = ChunkState::Done;
                        return Ok(at);
                    }
                    self.state = ChunkState::Trailer { line_start: true };
                }
                ChunkState::Done => return Ok(at),
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, input: &[u8], step: usize) -> (Vec<u8>, usize, bool) {
        let mut decoder = BodyDecoder::new(framing);
        let mut body = Vec::new();
        let mut used = 0;
        for chunk in input.chunks(step.max(1)) {
            used += decoder
                .decode(chunk, |b| body.extend_from_slice(b))
                .unwrap();
            if decoder.is_done() {
                break;
            }
        }
        (body, used, decoder.is_done())
    }

    #[test]
    fn parses_a_head() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        assert_eq!(head.framing(), Ok(Framing::Chunked));
        let head = parse_head(b"HTTP/1.1 410 Gone\r\ncontent-length: 12\r\n\r\n").unwrap();
        assert_eq!(head.framing(), Ok(Framing::Length(12)));
        let head = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert_eq!(head.framing(), Ok(Framing::Close));
        assert!(parse_head(b"SPDY 200\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nbad\r\n\r\n").is_err());
        let head = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").unwrap();
        assert!(head.framing().is_err());
    }

    #[test]
    fn decodes_chunked_in_any_split() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (body, used, done) = decode_all(Framing::Chunked, wire, step);
            assert_eq!(body, b"hello world", "step {step}");
            assert!(done);
            assert_eq!(&wire[used..], b"NEXT", "step {step}");
        }
    }

    #[test]
    fn decodes_uppercase_hex_and_no_trailer() {
        let (body, _, done) = decode_all(Framing::Chunked, b"A\r\n0123456789\r\n0\r\n\r\n", 3);
        assert_eq!(body, b"0123456789");
        assert!(done);
    }

    #[test]
    fn rejects_bad_chunks() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\nhello",
            b"ffffffffffffffffff\r\n",
        ] {
            let mut decoder = BodyDecoder::new(Framing::Chunked);
            assert!(decoder.decode(bad, |_| {}).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decodes_length_and_close() {
        let (body, used, done) = decode_all(Framing::Length(3), b"abcdef", 2);
        assert_eq!((&body[..], used, done), (&b"abc"[..], 3, true));
        let (body, _, done) = decode_all(Framing::Close, b"abcdef", 4);
        assert_eq!((&body[..], done), (&b"abcdef"[..], false));
    }

    #[tokio::test]
    async fn reads_a_head_and_keeps_the_body_start() {
        let mut io = &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..];
        let mut buf = Vec::new();
        let head = read_head(&mut io, &mut buf).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(buf, b"hi");
        let mut io = &b"HTTP/1.1 200 OK\r\n"[..];
        assert_eq!(
            read_head(&mut io, &mut Vec::new()).await,
            Err(HttpError::Closed)
        );
    }
}
