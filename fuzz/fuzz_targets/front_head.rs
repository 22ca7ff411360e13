//! The streaming front's head reading (`ssehub::http::serve`): for
//! arbitrary bytes, split into arbitrary reads, the front never panics, its
//! verdict does not depend on the split, and a head it streams itself is
//! one hyper (with the same limits) accepts as the same bodyless
//! `GET /events` — same query, same headers. Anything else the front hands
//! to hyper, whose verdict then is the only one.
//!
//! Run: `cargo +nightly fuzz run front_head -- -max_total_time=60`
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use ssehub::http::__private::head::{classify, EventsHead, Head, MAX_HEAD};
use tokio::io::AsyncWriteExt;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Where reads end (offsets into `bytes`, any order).
    cuts: Vec<u16>,
    bytes: &'a [u8],
}

/// What hyper handed to the service.
#[derive(Debug)]
struct Seen {
    method: hyper::Method,
    path: String,
    query: Option<String>,
    headers: hyper::HeaderMap,
    body_empty: bool,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Serves `head` with hyper (the front's limits) and returns the first
/// request hyper accepted, if any.
fn hyper_sees(head: &[u8]) -> Option<Seen> {
    runtime().block_on(async {
        let (mut client, server) = tokio::io::duplex(64 << 10);
        let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
        let sink = seen.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut sink = sink.lock().expect("lock");
            if sink.is_none() {
                *sink = Some(Seen {
                    method: request.method().clone(),
                    path: request.uri().path().to_owned(),
                    query: request.uri().query().map(str::to_owned),
                    headers: request.headers().clone(),
                    body_empty: request.body().is_end_stream(),
                });
            }
            async { Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new())) }
        });
        client.write_all(head).await.expect("write");
        client.shutdown().await.expect("shutdown");
        let connection = hyper::server::conn::http1::Builder::new()
            .max_buf_size(MAX_HEAD)
            .max_header_size(MAX_HEAD)
            .serve_connection(TokioIo::new(server), service);
        let _ = connection.await;
        drop(client);
        let seen = seen.lock().expect("lock").take();
        seen
    })
}

fuzz_target!(|input: Input<'_>| {
    let bytes = input.bytes;
    let whole = classify(bytes);
    if bytes.len() >= MAX_HEAD {
        assert_ne!(whole, Head::Partial, "a full buffer must be decided");
    }
    // Split invariance: every prefix the front could have seen is either
    // undecided or already has the final verdict.
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&cut| usize::from(cut) % (bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    for cut in cuts {
        let verdict = classify(&bytes[..cut]);
        if verdict != Head::Partial {
            assert_eq!(verdict, whole, "prefix of {cut} bytes decided differently");
            break;
        }
    }
    // A head the front streams itself is one hyper accepts the same way.
    if let Head::Events(EventsHead {
        len,
        query,
        headers,
    }) = &whole
    {
        let seen = hyper_sees(&bytes[..*len]).unwrap_or_else(|| {
            panic!(
                "hyper refused a head the front streams: {:?}",
                String::from_utf8_lossy(&bytes[..*len])
            )
        });
        assert_eq!(seen.method, hyper::Method::GET);
        assert_eq!(seen.path, "/events");
        assert_eq!(&seen.query, query);
        assert!(seen.body_empty, "hyper expects a body");
        assert_eq!(&seen.headers, headers);
    }
});
