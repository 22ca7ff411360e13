//! TLS and HTTP/2 for the tests: self-signed certificates made here
//! (rcgen), a rustls client that trusts exactly them, and hyper's HTTP/1.1
//! and HTTP/2 client connections on top.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::http_support::{Stream, ADMIN};

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCert {
    pub fn new() -> TestCert {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("self-signed certificate");
        TestCert {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            der: made.cert.der().clone(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("ssehub-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A TLS connection to `addr` as `localhost`, trusting only `roots`,
/// offering `alpn`.
pub async fn connect(
    addr: SocketAddr,
    roots: &[&TestCert],
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.der.clone()).expect("trust root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(
        Duration::from_secs(10),
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("TLS handshake")
}

/// The certificate the server presented on `stream`.
pub fn peer_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("peer certificates")[0]
        .clone()
}

/// One HTTP/2 connection (any transport), ready for many requests.
#[derive(Clone)]
pub struct H2 {
    pub sender: http2::SendRequest<Full<Bytes>>,
    /// `https` or `http`, and the authority, for request URIs.
    pub base: String,
}

impl H2 {
    /// HTTP/2 over `io` (TLS with ALPN h2, or plain TCP for h2c).
    pub async fn handshake<I>(io: I, base: String) -> H2
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .expect("HTTP/2 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        H2 { sender, base }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> hyper::Response<hyper::body::Incoming> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("request");
        let mut sender = self.sender.clone();
        tokio::time::timeout(Duration::from_secs(10), async move {
            sender.ready().await.expect("connection ready");
            sender.send_request(request).await
        })
        .await
        .expect("response in time")
        .expect("response")
    }

    /// `GET path` as a stream.
    pub async fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Stream {
        Stream::from_response(self.request(Method::GET, path, headers, Bytes::new()).await)
    }

    /// Publishes `json` with the admin token; asserts 200.
    pub async fn publish(&self, json: &str) {
        let response = self
            .request(
                Method::POST,
                "/admin/events",
                &[
                    ("authorization", &format!("Bearer {ADMIN}")),
                    ("content-type", "application/json"),
                ],
                Bytes::from(json.to_owned()),
            )
            .await;
        assert_eq!(response.status(), 200, "publish over HTTP/2");
    }
}

/// One HTTP/1.1 connection over TLS (ALPN http/1.1).
pub async fn http1_over(io: TlsStream<TcpStream>) -> http1::SendRequest<Full<Bytes>> {
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}
