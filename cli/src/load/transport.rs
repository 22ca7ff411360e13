//! The load generator's transports: a socket that is plain TCP or TLS
//! (rustls, ring; for `https://` URLs), and a pool of HTTP/2 connections
//! (hyper's client) that the subscriptions are spread over round-robin
//! with `--http2-connections`.
//!
//! HTTP/1.1 keeps the hand-written client of [`super::http1`] on either
//! socket (TLS offers ALPN `http/1.1` only). HTTP/2 goes through hyper:
//! over TLS it offers ALPN `h2` and requires the server to choose it; over
//! plain TCP it speaks h2c with prior knowledge. Each subscription is one
//! HTTP/2 stream whose body the subscriber reads frame by frame.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::target::Target;
use super::LoadError;

/// How to reach an `https://` target: the trusted roots and the name to
/// verify.
#[derive(Clone)]
pub(crate) struct TlsClient {
    http1: TlsConnector,
    h2: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client trusting only the PEM certificates in `cacert`, verifying
    /// the server as `host`.
    pub(crate) fn new(cacert: &std::path::Path, host: &str) -> Result<TlsClient, LoadError> {
        let bad =
            |why: String| LoadError::InvalidArgs(format!("--cacert {}: {why}", cacert.display()));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cacert).map_err(|e| bad(e.to_string()))? {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| LoadError::InvalidUrl(format!("{host}: not a TLS server name")))?;
        let connector = |alpn: &[u8]| -> Result<TlsConnector, LoadError> {
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| LoadError::InvalidArgs(format!("TLS: {e}")))?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(TlsConnector::from(Arc::new(config)))
        };
        Ok(TlsClient {
            http1: connector(b"http/1.1")?,
            h2: connector(b"h2")?,
            name,
        })
    }
}

/// A plain or TLS socket.
pub(crate) enum Socket {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Connects to `target` for HTTP/1.1 (TLS with ALPN `http/1.1` when the
/// target is `https://`), with `TCP_NODELAY`.
pub(crate) async fn connect(target: &Target) -> io::Result<Socket> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    match &target.tls {
        None => Ok(Socket::Plain(tcp)),
        Some(tls) => Ok(Socket::Tls(Box::new(
            tls.http1.connect(tls.name.clone(), tcp).await?,
        ))),
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// HTTP/2 connections that subscriptions are spread over.
#[derive(Debug)]
pub(crate) struct H2Pool {
    senders: Vec<http2::SendRequest<Empty<Bytes>>>,
    next: AtomicUsize,
    /// `scheme://authority` for request URIs (HTTP/2 needs both).
    base: String,
}

impl H2Pool {
    /// Opens `connections` HTTP/2 connections to `target`.
    pub(crate) async fn connect(target: &Target, connections: usize) -> Result<H2Pool, LoadError> {
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections {
            let failed = |e: String| LoadError::NoConnections {
                first_error: format!("HTTP/2 connection: {e}"),
            };
            let tcp = TcpStream::connect(target.addr)
                .await
                .map_err(|e| failed(e.to_string()))?;
            tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
            let builder = http2::Builder::new(TokioExecutor::new());
            let sender = match &target.tls {
                None => {
                    let (sender, conn) = builder
                        .handshake(TokioIo::new(tcp))
                        .await
                        .map_err(|e| failed(e.to_string()))?;
                    tokio::spawn(conn);
                    sender
                }
                Some(tls) => {
                    let stream = tls
                        .h2
                        .connect(tls.name.clone(), tcp)
                        .await
                        .map_err(|e| failed(e.to_string()))?;
                    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                        return Err(failed("the server did not choose h2 by ALPN".into()));
                    }
                    let (sender, conn) = builder
                        .handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| failed(e.to_string()))?;
                    tokio::spawn(conn);
                    sender
                }
            };
            senders.push(sender);
        }
        let scheme = if target.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(H2Pool {
            senders,
            next: AtomicUsize::new(0),
            base: format!("{scheme}://{}", target.host_header),
        })
    }

    /// Opens `GET path` on the next connection; `Ok` is a 200 event stream.
    pub(crate) async fn open(&self, path: &str) -> Result<Incoming, String> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        let mut sender = self.senders[index].clone();
        let request = hyper::Request::get(format!("{}{path}", self.base))
            .header("accept", "text/event-stream")
            .body(Empty::new())
            .map_err(|e| format!("request: {e}"))?;
        sender.ready().await.map_err(|e| format!("HTTP/2: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP/2: {e}"))?;
        if response.status() != 200 {
            return Err(format!("status {}", response.status()));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("text/event-stream") {
            return Err(format!("content-type {content_type:?}"));
        }
        Ok(response.into_body())
    }
}
