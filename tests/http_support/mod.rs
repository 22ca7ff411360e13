//! Shared by the HTTP tests: a server on 127.0.0.1:0 and a real HTTP/1.1
//! client (hyper) that can read a streaming body chunk by chunk.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ssehub::http::HubRouter;
use ssehub::{Hub, HubConfig};

pub const ADMIN: &str = "admin-secret";

/// Serves `router` on a fresh loopback port; returns its address.
pub async fn serve_router(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    serve_on(listener, router)
}

/// Serves `router` on `listener`; returns its address.
pub fn serve_on(listener: tokio::net::TcpListener, router: Router) -> SocketAddr {
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// A hub with `config` behind the router with the admin token set, plus
/// whatever `customize` adds.
pub async fn start_with(
    config: HubConfig,
    customize: impl FnOnce(HubRouter) -> HubRouter,
) -> TestServer {
    let hub = Hub::with_config(config);
    let router = customize(HubRouter::new(hub.clone()).admin_token(ADMIN)).build();
    let addr = serve_router(router).await;
    TestServer {
        hub,
        remote: Remote::new(addr),
    }
}

/// The defaults, keep-alive off (tests that want it turn it on).
pub async fn start() -> TestServer {
    start_with(quiet(), |builder| builder).await
}

/// The default hub config with keep-alive off.
pub fn quiet() -> HubConfig {
    HubConfig::default().keep_alive(None)
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A client whose sockets have a small fixed receive buffer (no autotuning).
pub fn small_buffer_client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_recv_buffer_size(Some(8 << 10));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// An in-process server: its hub, and a client for it.
pub struct TestServer {
    pub hub: Hub,
    pub remote: Remote,
}

impl std::ops::Deref for TestServer {
    type Target = Remote;

    fn deref(&self) -> &Remote {
        &self.remote
    }
}

/// A client for a server at `addr` (in this process or another).
pub struct Remote {
    pub addr: SocketAddr,
    pub client: Client<HttpConnector, Full<Bytes>>,
}

/// A finished response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body))
    }

    /// Asserts the error envelope with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        let json = self.json();
        assert_eq!(json["statusCode"], status, "{json}");
        assert_eq!(json["errorCode"], code, "{json}");
        assert_eq!(
            json["error"],
            self.status.canonical_reason().unwrap_or(""),
            "{json}"
        );
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            self.headers["content-type"], "application/json",
            "error content type"
        );
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Remote {
    pub fn new(addr: SocketAddr) -> Remote {
        Remote {
            addr,
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let response = self.raw(method, path, headers, body).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).expect("utf-8 body"),
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> hyper::Response<Incoming> {
        let mut request = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("request");
        tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .expect("response in time")
            .expect("response")
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn admin_get(&self, path: &str) -> Reply {
        self.send(
            Method::GET,
            path,
            &[("authorization", &bearer())],
            Bytes::new(),
        )
        .await
    }

    /// `POST /admin/events` with a JSON body.
    pub async fn publish(&self, json: &str) -> Reply {
        self.send(
            Method::POST,
            "/admin/events",
            &[
                ("authorization", &bearer()),
                ("content-type", "application/json"),
            ],
            Bytes::from(json.to_owned()),
        )
        .await
    }

    /// Publishes and returns the ids.
    pub async fn publish_ok(&self, json: &str) -> Vec<String> {
        let reply = self.publish(json).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|id| id.as_str().expect("string id").to_owned())
            .collect()
    }

    /// Opens `GET <path>` and returns the streaming response.
    pub async fn stream(&self, path: &str, headers: &[(&str, &str)]) -> Stream {
        let response = self.raw(Method::GET, path, headers, Bytes::new()).await;
        let status = response.status();
        let headers = response.headers().clone();
        Stream {
            status,
            headers,
            body: response.into_body(),
            text: String::new(),
            done: false,
        }
    }

    /// Opens `/events<query>`, asserts 200 and consumes the opening comment.
    pub async fn subscribe(&self, query: &str, headers: &[(&str, &str)]) -> Stream {
        self.subscribe_path(&format!("/events{query}"), headers)
            .await
    }

    /// Opens `path` (an events route), asserts 200 and the opening comment.
    pub async fn subscribe_path(&self, path: &str, headers: &[(&str, &str)]) -> Stream {
        let mut stream = self.stream(path, headers).await;
        assert_eq!(stream.status, 200, "subscribe {path}");
        let opening = stream.next_chunk(Duration::from_secs(5)).await;
        assert_eq!(opening.as_deref(), Some(": ok\n\n"));
        stream.text.clear();
        stream
    }
}

pub fn bearer() -> String {
    format!("Bearer {ADMIN}")
}

impl Stream {
    /// Wraps a response whose body is read as a stream (any HTTP version).
    pub fn from_response(response: hyper::Response<Incoming>) -> Stream {
        let status = response.status();
        let headers = response.headers().clone();
        Stream {
            status,
            headers,
            body: response.into_body(),
            text: String::new(),
            done: false,
        }
    }
}

/// A streaming response body.
pub struct Stream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    /// Everything read so far (not yet cleared).
    pub text: String,
    pub done: bool,
}

impl Stream {
    /// The next data chunk, or `None` at the end of the body or on timeout.
    pub async fn next_chunk(&mut self, wait: Duration) -> Option<String> {
        loop {
            let frame = match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) => return None,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(frame)) => frame.expect("body frame"),
            };
            if let Ok(data) = frame.into_data() {
                let chunk = String::from_utf8(data.to_vec()).expect("utf-8 chunk");
                self.text.push_str(&chunk);
                return Some(chunk);
            }
        }
    }

    /// Reads until `text` contains `needle`; panics after 5 s.
    pub async fn read_until(&mut self, needle: &str) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.text.contains(needle) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.next_chunk(left).await.is_none() {
                panic!("no {needle:?} in {} (done: {})", self.tail(), self.done);
            }
        }
        &self.text
    }

    /// Reads to the end of the body; panics after 5 s.
    pub async fn read_to_end(&mut self) -> &str {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.done {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.next_chunk(left).await.is_none() && !self.done {
                panic!("body did not end: {}", self.tail());
            }
        }
        &self.text
    }

    /// What was read, shortened for messages: length and the last 200 bytes.
    pub fn tail(&self) -> String {
        let start = self.text.len().saturating_sub(200);
        let start = (start..=self.text.len())
            .find(|&i| self.text.is_char_boundary(i))
            .unwrap_or(self.text.len());
        format!(
            "{} bytes, ending {:?}",
            self.text.len(),
            &self.text[start..]
        )
    }

    /// The SSE frames read so far (complete ones), comments included.
    pub fn frames(&self) -> Vec<&str> {
        self.text
            .split_inclusive("\n\n")
            .filter(|f| f.ends_with("\n\n"))
            .collect()
    }

    /// The `data:` lines of the events read so far.
    pub fn data(&self) -> Vec<String> {
        self.frames()
            .iter()
            .filter_map(|frame| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The `id:` lines of the events read so far.
    pub fn ids(&self) -> Vec<String> {
        self.frames()
            .iter()
            .filter_map(|frame| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    /// Everything but RFC 3986's unreserved characters.
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, RESERVED).to_string()
}
