//! The HTTP contract (docs/http-contract.md), row by row, over real TCP on
//! 127.0.0.1:0 with a real HTTP/1.1 client.

mod http_support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_support::*;
use hyper::Method;
use ssehub::clock::ManualClock;
use ssehub::http::HubRouter;
use ssehub::{Event, Hub, HubConfig};

const SHORT: Duration = Duration::from_millis(300);

// ---- GET /healthz, /metrics, fallbacks --------------------------------------

#[tokio::test]
async fn healthz_is_ok() {
    let server = start().await;
    let reply = server.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok");
}

#[tokio::test]
async fn metrics_are_prometheus_text_of_the_stats() {
    let server = start().await;
    server.publish_ok(r#"[{"type":"a"},{"type":"b"}]"#).await;
    let _open = server.subscribe("", &[]).await;
    let reply = server.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    for line in [
        "ssehub_published_events_total 2\n",
        "ssehub_active_subscribers 1\n",
        "ssehub_subscribers_total 1\n",
        "ssehub_generation 1\n",
        "ssehub_ring_events 2\n",
        "ssehub_ring_capacity_events 4096\n",
        "# TYPE ssehub_published_events_total counter\n",
        "# HELP ssehub_ring_bytes ",
    ] {
        assert!(
            reply.body.contains(line),
            "{line:?} missing from {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let server = start().await;
    server.get("/nope").await.assert_error(404, "not_found");
    server
        .send(Method::DELETE, "/events", &[], Bytes::new())
        .await
        .assert_error(405, "method_not_allowed");
}

// ---- GET /events: headers, delivery, batching ------------------------------

#[tokio::test]
async fn events_stream_headers_are_flushed_at_once() {
    let server = start().await;
    // Nothing is published: the status, headers and opening comment must
    // still arrive (`subscribe` fails if they do not within 5 s).
    let stream = server.subscribe("", &[]).await;
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-cache");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
}

#[tokio::test]
async fn published_objects_arrive_as_compact_json_frames() {
    let server = start().await;
    let mut stream = server.subscribe("", &[]).await;
    let ids = server
        .publish_ok("{ \"type\": \"greeting\",\n  \"text\": \"hi there\", \"n\": [1, 2] }")
        .await;
    assert_eq!(ids.len(), 1);
    stream.read_until("\n\n").await;
    assert_eq!(
        stream.text,
        format!(
            "id: {}\nevent: greeting\ndata: {{\"type\":\"greeting\",\"text\":\"hi there\",\"n\":[1,2]}}\n\n",
            ids[0]
        )
    );
}

#[tokio::test]
async fn a_batch_arrives_as_one_chunk_in_order() {
    let server = start().await;
    let mut stream = server.subscribe("", &[]).await;
    let ids = server
        .publish_ok(r#"[{"type":"a","n":1},{"type":"b","n":2},{"type":"a","n":3}]"#)
        .await;
    let chunk = stream
        .next_chunk(Duration::from_secs(5))
        .await
        .expect("chunk");
    assert_eq!(chunk.matches("\n\n").count(), 3, "one chunk: {chunk:?}");
    assert_eq!(stream.ids(), ids);
    assert_eq!(
        stream.data(),
        [
            r#"{"type":"a","n":1}"#,
            r#"{"type":"b","n":2}"#,
            r#"{"type":"a","n":3}"#
        ]
    );
}

#[tokio::test]
async fn events_are_filtered_by_type_lists() {
    let server = start().await;
    let mut both = server
        .subscribe("?event_type=%20a%20,,b&event_type=", &[])
        .await;
    let mut only_c = server.subscribe("?event_type=c", &[]).await;
    let mut repeated = server.subscribe("?event_type=b&event_type=c", &[]).await;
    server
        .publish_ok(r#"[{"type":"a"},{"type":"b"},{"type":"c"},{"type":"d"},{"type":"end"}]"#)
        .await;
    server.publish_ok(r#"[{"type":"a"},{"type":"c"}]"#).await;
    both.read_until("\"type\":\"a\"}\n\n").await;
    both.read_until("\"type\":\"b\"").await;
    only_c.read_until("\"type\":\"c\"}\n\nid").await;
    repeated.read_until("\"type\":\"c\"}\n\nid").await;
    only_c.read_until("\"type\":\"c\"}\n\n").await;
    let types = |s: &Stream| {
        s.frames()
            .iter()
            .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("event: ")))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&both)[..2], ["a", "b"]);
    assert!(types(&both).iter().all(|t| t == "a" || t == "b"));
    assert!(types(&only_c).iter().all(|t| t == "c"));
    assert!(types(&repeated).iter().all(|t| t == "b" || t == "c"));
}

#[tokio::test]
async fn too_many_types_or_line_breaks_are_400() {
    let server = start_with(quiet().max_types(3), |b| b).await;
    server
        .get("/events?event_type=a,b,c,d")
        .await
        .assert_error(400, "bad_request");
    server
        .get("/events?event_type=a,b&event_type=c,d")
        .await
        .assert_error(400, "bad_request");
    server
        .get("/events?event_type=a%0Ab")
        .await
        .assert_error(400, "bad_request");
    // Duplicates and empties do not count.
    let stream = server.stream("/events?event_type=a,a,b,,c,%20", &[]).await;
    assert_eq!(stream.status, 200);
}

// ---- keep-alive ------------------------------------------------------------

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let server = start_with(
        HubConfig::default().keep_alive(Some(Duration::from_millis(50))),
        |b| b,
    )
    .await;
    let mut stream = server.subscribe("", &[]).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        stream.next_chunk(Duration::from_secs(2)).await.as_deref(),
        Some(":\n\n")
    );
    assert_eq!(
        stream.next_chunk(Duration::from_secs(2)).await.as_deref(),
        Some(":\n\n")
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
}

#[tokio::test]
async fn keep_alive_zero_sends_none() {
    let server = start().await;
    let mut stream = server.subscribe("", &[]).await;
    assert_eq!(stream.next_chunk(SHORT).await, None);
    assert!(!stream.done);
}

// ---- resume ------------------------------------------------------------------

#[tokio::test]
async fn resume_from_an_id_is_exclusive() {
    let server = start().await;
    let ids = server
        .publish_ok(r#"[{"type":"t","n":1},{"type":"t","n":2},{"type":"t","n":3}]"#)
        .await;
    let mut stream = server
        .subscribe(&format!("?from={}", encode(&ids[0])), &[])
        .await;
    stream.read_until("\"n\":3").await;
    assert_eq!(stream.ids(), ids[1..]);
}

#[tokio::test]
async fn resume_from_a_custom_id() {
    let server = start().await;
    let ids = server
        .publish_ok(r#"[{"type":"t","id":"first"},{"type":"t","id":"second"}]"#)
        .await;
    assert_eq!(ids, ["first", "second"]);
    let mut stream = server.subscribe("?from=first", &[]).await;
    stream.read_until("\"second\"").await;
    assert_eq!(stream.ids(), ["second"]);
}

#[tokio::test]
async fn last_event_id_beats_from_and_a_malformed_loser_is_ignored() {
    let server = start().await;
    let ids = server
        .publish_ok(r#"[{"type":"t","n":1},{"type":"t","n":2},{"type":"t","n":3}]"#)
        .await;
    let query = format!("?from={}&from_timestamp=not-a-time", encode(&ids[0]));
    let mut stream = server
        .subscribe(&query, &[("last-event-id", &ids[1])])
        .await;
    stream.read_until("\"n\":3").await;
    assert_eq!(stream.ids(), ids[2..]);

    // An empty header counts as absent: `from` wins.
    let mut stream = server.subscribe(&query, &[("last-event-id", "")]).await;
    stream.read_until("\"n\":3").await;
    assert_eq!(stream.ids(), ids[1..]);
}

fn clocked() -> (Arc<ManualClock>, HubConfig) {
    // 2026-01-01T00:00:00Z
    let clock = Arc::new(ManualClock::new(1_767_225_600_000_000_000));
    let config = quiet().clock(clock.clone());
    (clock, config)
}

#[tokio::test]
async fn resume_from_a_timestamp_with_offsets() {
    let (clock, config) = clocked();
    let server = start_with(config, |b| b).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.extend(
            server
                .publish_ok(&format!(r#"{{"type":"t","n":{n}}}"#))
                .await,
        );
        clock.advance(Duration::from_secs(1));
    }
    // 00:00:01Z written four ways: Z, +02:00 percent-encoded, +02:00 with the
    // `+` unencoded (it arrives as a space), and -01:00.
    for stamp in [
        "2026-01-01T00:00:01Z",
        "2026-01-01T02:00:01%2B02:00",
        "2026-01-01T02:00:01+02:00",
        "2025-12-31T23:00:01-01:00",
        "2026-01-01T00:00:00.999999999Z",
    ] {
        let mut stream = server
            .subscribe(&format!("?from_timestamp={stamp}"), &[])
            .await;
        stream.read_until("\"n\":2").await;
        assert_eq!(stream.ids(), ids[1..], "{stamp}");
    }
    // Before the generation began: everything.
    let mut stream = server
        .subscribe("?from_timestamp=2000-01-01T00:00:00Z", &[])
        .await;
    stream.read_until("\"n\":2").await;
    assert_eq!(stream.ids(), ids);
}

#[tokio::test]
async fn a_malformed_timestamp_is_400() {
    let server = start().await;
    for bad in [
        "yesterday",
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00",
    ] {
        server
            .get(&format!("/events?from_timestamp={bad}"))
            .await
            .assert_error(400, "invalid_timestamp");
    }
}

#[tokio::test]
async fn a_resume_id_no_event_can_have_is_400() {
    let server = start().await;
    for query in ["?from=a%0Ab", "?from=a%0Db", "?from=a%00b"] {
        server
            .get(&format!("/events{query}"))
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn future_positions_mean_live() {
    let (clock, config) = clocked();
    let server = start_with(config, |b| b).await;
    let ids = server.publish_ok(r#"{"type":"t","n":0}"#).await;
    let future_id = ids[0].replace("-1", "-999");
    clock.advance(Duration::from_secs(1));
    let mut by_id = server.subscribe(&format!("?from={future_id}"), &[]).await;
    let mut by_time = server
        .subscribe("?from_timestamp=2030-01-01T00:00:00Z", &[])
        .await;
    server.publish_ok(r#"{"type":"t","n":1}"#).await;
    by_id.read_until("\"n\":1").await;
    by_time.read_until("\"n\":1").await;
    assert_eq!(by_id.data(), [r#"{"type":"t","n":1}"#]);
    assert_eq!(by_time.data(), [r#"{"type":"t","n":1}"#]);
}

#[tokio::test]
async fn gone_after_the_ring_wraps() {
    let (clock, mut config) = clocked();
    config.capacity = 4;
    let server = start_with(config, |b| b).await;
    let first = server.publish_ok(r#"{"type":"t"}"#).await;
    for _ in 0..8 {
        clock.advance(Duration::from_secs(1));
        server.publish_ok(r#"{"type":"t"}"#).await;
    }
    server
        .get(&format!("/events?from={}", encode(&first[0])))
        .await
        .assert_error(410, "resume_point_expired");
    server
        .send(
            Method::GET,
            "/events",
            &[("last-event-id", &first[0])],
            Bytes::new(),
        )
        .await
        .assert_error(410, "resume_point_expired");
    server
        .get("/events?from_timestamp=2026-01-01T00:00:01Z")
        .await
        .assert_error(410, "resume_point_expired");
    server
        .get("/events?from=never-published")
        .await
        .assert_error(410, "resume_point_expired");
}

#[tokio::test]
async fn reset_ends_streams_and_old_ids_are_gone() {
    let server = start().await;
    let ids = server.publish_ok(r#"{"type":"t"}"#).await;
    let mut stream = server.subscribe("", &[]).await;
    let reply = server
        .send(
            Method::POST,
            "/admin/reset",
            &[("authorization", &bearer())],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(stream.read_to_end().await, ": end reset\n\n");
    server
        .get(&format!("/events?from={}", encode(&ids[0])))
        .await
        .assert_error(410, "resume_point_expired");
    let stats = server.admin_get("/admin/stats").await.json();
    assert_eq!(stats["generation"], 2);
    assert_eq!(stats["published"], 0);
    assert_eq!(stats["total_subscribers"], 0);
}

#[tokio::test]
async fn a_lagging_stream_ends_and_its_reconnect_gets_410() {
    let hub = Hub::with_config(quiet().capacity(4));
    // Small fixed socket buffers on both ends (accepted sockets inherit the
    // listener's), so a client that stops reading stalls the server soon.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(8 << 10).expect("SO_SNDBUF");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let listener = socket.listen(16).expect("listen");
    let router = HubRouter::new(hub.clone()).admin_token(ADMIN).build();
    let addr = serve_on(listener, router);
    let server = TestServer {
        hub,
        remote: Remote {
            addr,
            client: small_buffer_client(),
        },
    };
    let mut stream = server.subscribe("", &[]).await;
    // A healthy subscriber on another connection reads as events arrive.
    // Its batches land in the hub's batch cache; the stalled one must still
    // be ended once the ring has lapped it.
    let mut healthy = server.subscribe("", &[]).await;
    let (seen_tx, mut seen) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        while healthy.ids().len() < 64 && healthy.next_chunk(Duration::from_secs(5)).await.is_some()
        {
            let _ = seen_tx.send(healthy.ids().len());
        }
        healthy
    });
    // The first client reads nothing while 512 KiB go out: its buffers fill,
    // the server stops reading the ring for it, and the writer laps it.
    // Publishing never waits for it, and the healthy one gets every event.
    let payload = "x".repeat(8 << 10);
    for published in 1..=64 {
        server
            .hub
            .publish(Event::new("big", payload.as_str()))
            .expect("publish");
        tokio::time::timeout(Duration::from_secs(5), seen.wait_for(|n| *n >= published))
            .await
            .expect("the healthy subscriber keeps up")
            .expect("reader alive");
    }
    let healthy = reader.await.expect("reader");
    assert_eq!(healthy.ids().len(), 64);
    assert!(!healthy.done, "the healthy stream is still open");
    let text = stream.read_to_end().await.to_owned();
    assert!(
        text.ends_with(": end lagged\n\n"),
        "{}",
        &text[text.len().saturating_sub(60)..]
    );
    assert!(
        stream.ids().len() < 64,
        "{} events arrived",
        stream.ids().len()
    );
    let last = stream.ids().last().cloned().expect("some events arrived");
    server
        .send(
            Method::GET,
            "/events",
            &[("last-event-id", &last)],
            Bytes::new(),
        )
        .await
        .assert_error(410, "resume_point_expired");
}

#[tokio::test]
async fn shutdown_ends_streams_and_refuses_new_ones() {
    let server = start().await;
    let mut stream = server.subscribe("", &[]).await;
    server.hub.shutdown();
    assert_eq!(stream.read_to_end().await, ": end shutdown\n\n");
    let reply = server.get("/events").await;
    reply.assert_error(503, "shutting_down");
    assert_eq!(reply.header("retry-after"), "1");
    server
        .publish(r#"{"type":"t"}"#)
        .await
        .assert_error(503, "shutting_down");
}

// ---- subscriber limit ----------------------------------------------------------

#[tokio::test]
async fn the_subscriber_limit_is_503_with_retry_after() {
    let server = start_with(quiet().max_subscribers(1), |b| b).await;
    let first = server.subscribe("", &[]).await;
    let reply = server.get("/events").await;
    reply.assert_error(503, "too_many_subscribers");
    assert_eq!(reply.header("retry-after"), "1");
    drop(first);
    // The slot frees when the server notices the closed connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stream = server.stream("/events", &[]).await;
        if stream.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- POST /admin/events ----------------------------------------------------------

#[tokio::test]
async fn publish_returns_ids_auto_and_custom() {
    let server = start().await;
    let ids = server
        .publish_ok(r#"[{"type":"a"},{"type":"b","id":"mine"},{"type":"c","id":""},{"type":"d","id":null}]"#)
        .await;
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[1], "mine");
    for auto in [&ids[0], &ids[2], &ids[3]] {
        let (token, number) = auto.split_once('-').expect("auto id shape");
        assert_eq!(token.len(), 16);
        assert!(number.parse::<u64>().is_ok());
    }
    assert_eq!(server.publish_ok("[]").await, Vec::<String>::new());
    let stats = server.admin_get("/admin/stats").await.json();
    assert_eq!(stats["published"], 4);
}

#[tokio::test]
async fn bad_bodies_are_400_and_publish_nothing() {
    let server = start().await;
    for body in [
        "not json",
        "{\"type\":",
        "42",
        "null",
        "[1, 2]",
        "{}",
        "{\"type\":\"\"}",
        "{\"type\":5}",
        "{\"type\":\"a\",\"id\":7}",
        "{\"type\":\"a\\nb\"}",
        "{\"type\":\"a\",\"id\":\"x\\u0000y\"}",
        "[{\"type\":\"ok\"},{\"id\":\"no-type\"}]",
        // A caller id with the reserved auto-id shape.
        "{\"type\":\"a\",\"id\":\"0123456789abcdef-5\"}",
        "[{\"type\":\"ok\"},{\"type\":\"a\",\"id\":\"0123456789abcdef-5\"}]",
    ] {
        server.publish(body).await.assert_error(400, "bad_request");
    }
    assert_eq!(server.hub.stats().published, 0);
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let server = start().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut headers = vec![("authorization", bearer())];
        if let Some(content_type) = content_type {
            headers.push(("content-type", content_type.to_owned()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server
            .send(
                Method::POST,
                "/admin/events",
                &headers,
                Bytes::from_static(b"{\"type\":\"a\"}"),
            )
            .await
            .assert_error(415, "unsupported_media_type");
    }
    let reply = server
        .send(
            Method::POST,
            "/admin/events",
            &[
                ("authorization", &bearer()),
                ("content-type", "Application/JSON; charset=utf-8"),
            ],
            Bytes::from_static(b"{\"type\":\"a\"}"),
        )
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn limits_are_413() {
    let server = start_with(quiet(), |b| b.max_batch(3).max_event_bytes(100)).await;
    server
        .publish(r#"[{"type":"a"},{"type":"a"},{"type":"a"},{"type":"a"}]"#)
        .await
        .assert_error(413, "payload_too_large");
    // Exactly 100 bytes of compact JSON is allowed; 101 is not.
    let pad = |len: usize| format!(r#"{{"type":"a","p":"{}"}}"#, "x".repeat(len - 19));
    assert_eq!(pad(100).len(), 100);
    assert_eq!(server.publish(&pad(100)).await.status, 200);
    server
        .publish(&pad(101))
        .await
        .assert_error(413, "payload_too_large");
    server
        .publish(&format!("[{{\"type\":\"a\"}},{}]", pad(101)))
        .await
        .assert_error(413, "payload_too_large");
    // The body cap cuts off a huge body (whitespace would compact away).
    let huge = format!("{{\"type\":\"a\"{}}}", " ".repeat(1 << 20));
    server
        .publish(&huge)
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(server.hub.stats().published, 1);
}

// ---- auth ---------------------------------------------------------------------

#[tokio::test]
async fn admin_routes_need_the_bearer_token() {
    let server = start().await;
    for (method, path) in [
        (Method::POST, "/admin/events"),
        (Method::POST, "/admin/reset"),
        (Method::GET, "/admin/stats"),
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic admin-secret"),
            Some("Bearer"),
        ] {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(auth) = auth {
                headers.push(("authorization", auth));
            }
            let reply = server
                .send(
                    method.clone(),
                    path,
                    &headers,
                    Bytes::from_static(b"{\"type\":\"a\"}"),
                )
                .await;
            reply.assert_error(401, "unauthorized");
            assert_eq!(reply.header("www-authenticate"), "Bearer");
        }
    }
    assert_eq!(server.hub.stats().generation, 1);
    assert_eq!(server.hub.stats().published, 0);
}

#[tokio::test]
async fn an_optional_subscriber_token_guards_events() {
    let server = start_with(quiet(), |b| b.subscriber_token("reader")).await;
    let reply = server.get("/events").await;
    reply.assert_error(401, "unauthorized");
    assert_eq!(reply.header("www-authenticate"), "Bearer");
    server
        .get("/events?token=wrong")
        .await
        .assert_error(401, "unauthorized");
    // Auth is checked before parameters.
    server
        .get("/events?event_type=a%0Ab")
        .await
        .assert_error(401, "unauthorized");
    server.subscribe("?token=reader", &[]).await;
    server
        .subscribe("", &[("authorization", "Bearer reader")])
        .await;
    // The admin token is not a subscriber token.
    server
        .get(&format!("/events?token={ADMIN}"))
        .await
        .assert_error(401, "unauthorized");
}

// ---- stats ----------------------------------------------------------------------

#[tokio::test]
async fn stats_report_the_current_generation() {
    let server = start().await;
    let stats = server.admin_get("/admin/stats").await;
    assert_eq!(stats.status, 200);
    let json = stats.json();
    assert_eq!(json["active_subscribers"], 0);
    assert_eq!(json["total_subscribers"], 0);
    assert_eq!(json["published"], 0);
    assert_eq!(json["lagged_disconnects"], 0);
    assert_eq!(json["generation"], 1);
    assert_eq!(json["ring"]["capacity"], 4096);
    assert_eq!(json["ring"]["len"], 0);
    assert_eq!(json["ring"]["bytes"], 0);
    assert!(json["ring"]["oldest_id"].is_null());
    assert!(json["ring"]["newest_id"].is_null());

    let _stream = server.subscribe("", &[]).await;
    let ids = server
        .publish_ok(r#"[{"type":"a","id":"one"},{"type":"b"}]"#)
        .await;
    let json = server.admin_get("/admin/stats").await.json();
    assert_eq!(json["active_subscribers"], 1);
    assert_eq!(json["total_subscribers"], 1);
    assert_eq!(json["published"], 2);
    assert_eq!(json["ring"]["len"], 2);
    assert!(json["ring"]["bytes"].as_u64().unwrap() > 40);
    assert_eq!(json["ring"]["oldest_id"], "one");
    assert_eq!(json["ring"]["newest_id"], ids[1].as_str());
}

// ---- CORS, embedding, live page ----------------------------------------------------

#[tokio::test]
async fn cors_allows_configured_origins() {
    let layer = ssehub::http::cors_layer(["https://app.example"]).unwrap();
    let server = start_with(quiet(), |b| b.cors(layer)).await;
    let reply = server
        .send(
            Method::OPTIONS,
            "/admin/events",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            Bytes::new(),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://app.example"
    );
    let stream = server
        .stream("/events", &[("origin", "https://app.example")])
        .await;
    assert_eq!(
        stream.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let stream = server
        .stream("/events", &[("origin", "https://evil.example")])
        .await;
    assert!(stream.headers.get("access-control-allow-origin").is_none());

    let any = ssehub::http::cors_layer(["*"]).unwrap();
    let server = start_with(quiet(), |b| b.cors(any)).await;
    let stream = server
        .stream("/events", &[("origin", "https://x.example")])
        .await;
    assert_eq!(stream.headers["access-control-allow-origin"], "*");
    assert!(ssehub::http::cors_layer(["bad\norigin"]).is_err());
}

#[tokio::test]
async fn the_router_nests_into_an_app_with_its_own_state_and_middleware() {
    #[derive(Clone)]
    struct AppState {
        name: &'static str,
    }
    let hub = Hub::with_config(quiet());
    let app: Router<AppState> =
        Router::new()
            .route(
                "/hello",
                get(
                    |axum::extract::State(state): axum::extract::State<AppState>| async move {
                        state.name
                    },
                ),
            )
            .nest(
                "/sse",
                HubRouter::new(hub.clone()).admin_token(ADMIN).build(),
            );
    let app = app
        .layer(axum::middleware::map_response(
            |mut response: axum::response::Response| async move {
                response
                    .headers_mut()
                    .insert("x-app", hyper::header::HeaderValue::from_static("mine"));
                response
            },
        ))
        .with_state(AppState { name: "my app" });
    let addr = serve_router(app).await;
    let server = TestServer {
        hub,
        remote: Remote::new(addr),
    };
    let hello = server.get("/hello").await;
    assert_eq!(hello.body, "my app");
    let mut stream = server.subscribe_path("/sse/events", &[]).await;
    assert_eq!(stream.headers["x-app"], "mine");
    let reply = server
        .send(
            Method::POST,
            "/sse/admin/events",
            &[
                ("authorization", &bearer()),
                ("content-type", "application/json"),
            ],
            Bytes::from_static(b"{\"type\":\"nested\"}"),
        )
        .await;
    assert_eq!(reply.status, 200);
    stream.read_until("event: nested").await;
    assert_eq!(server.get("/sse/healthz").await.body, "ok");
}

#[tokio::test]
async fn the_live_page_and_its_feed() {
    let server = start().await;
    let page = server.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.body.contains("EventSource"));
    server.publish_ok(r#"{"type":"a"}"#).await;
    let mut feed = server.stream("/stats/live?interval=100", &[]).await;
    assert_eq!(feed.headers["content-type"], "text/event-stream");
    feed.read_until("\n\n").await;
    let frame = feed.frames()[0].to_owned();
    assert!(frame.starts_with("event: stats\ndata: "), "{frame}");
    let json: serde_json::Value =
        serde_json::from_str(frame.trim_end().trim_start_matches("event: stats\ndata: ")).unwrap();
    assert_eq!(json["published"], 1);
    server.hub.shutdown();
    feed.read_until(": end shutdown").await;
}

#[tokio::test]
async fn an_app_streams_a_subscription_from_its_own_handler() {
    use ssehub::http::SseResponse;
    use ssehub::SubscribeOptions;
    let hub = Hub::with_config(quiet());
    let app: Router = Router::new()
        .route(
            "/orders",
            get(
                |axum::extract::State(hub): axum::extract::State<Hub>| async move {
                    let subscription = hub.subscribe(SubscribeOptions::live().types(["order"]))?;
                    Ok::<_, ssehub::http::ApiError>(SseResponse::new(subscription))
                },
            ),
        )
        .with_state(hub.clone());
    let addr = serve_router(app).await;
    let server = TestServer {
        hub,
        remote: Remote::new(addr),
    };
    let mut stream = server.stream("/orders", &[]).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-cache");
    stream.read_until(": ok\n\n").await;
    server
        .hub
        .publish(Event::new("other", "{}"))
        .expect("publish");
    server
        .hub
        .publish(Event::new("order", "{\"n\":1}"))
        .expect("publish");
    stream.read_until("data: {\"n\":1}\n\n").await;
    assert_eq!(stream.data(), ["{\"n\":1}"]);
    server.hub.reset();
    assert!(stream.read_to_end().await.ends_with(": end reset\n\n"));
}

// ---- hardening (issue 10) ---------------------------------------------------

/// Sends `head` and then `body` on a raw socket, optionally closing the
/// write side after; returns the response text read within `wait`.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: &str,
    body: &[u8],
    close: bool,
    wait: Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("write head");
    socket.write_all(body).await.expect("write body");
    if close {
        socket.shutdown().await.expect("shutdown");
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    // Read until the response's JSON body has arrived (or the socket closed).
    while !String::from_utf8_lossy(&response).contains("\"errorCode\"") {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => response.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

fn publish_head(extra: &str) -> String {
    format!(
        "POST /admin/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn malformed_chunked_framing_is_400_not_413() {
    let server = start().await;
    let response = raw_exchange(
        server.addr,
        &publish_head("Transfer-Encoding: chunked\r\n"),
        b"zz\r\n{\"type\":\"a\"}\r\n0\r\n\r\n",
        false,
        Duration::from_secs(5),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("\"errorCode\":\"bad_request\""),
        "{response}"
    );
    assert_eq!(server.hub.stats().published, 0);
}

#[tokio::test]
async fn a_body_cut_short_is_not_413() {
    let server = start().await;
    let response = raw_exchange(
        server.addr,
        &publish_head("Content-Length: 100\r\n"),
        b"{\"type\":\"a\"",
        true,
        Duration::from_secs(5),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("\"errorCode\":\"bad_request\""),
        "{response}"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let server = start_with(quiet(), |b| b.max_batch(1).max_event_bytes(100)).await;
    // The cap is 64 KiB; the client declares more and sends nothing.
    let started = tokio::time::Instant::now();
    let response = raw_exchange(
        server.addr,
        &publish_head("Content-Length: 1000000000\r\n"),
        b"",
        false,
        Duration::from_secs(5),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("\"errorCode\":\"payload_too_large\""),
        "{response}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_ended_by_the_body_timeout() {
    let server = start_with(quiet(), |b| b.body_timeout(Duration::from_millis(500))).await;
    let started = tokio::time::Instant::now();
    let response = raw_exchange(
        server.addr,
        &publish_head("Content-Length: 100\r\n"),
        b"{\"type\":",
        false,
        Duration::from_secs(5),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.contains("\"errorCode\":\"request_timeout\""),
        "{response}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_live_feed_and_page_need_the_subscriber_token() {
    let server = start_with(quiet(), |b| b.subscriber_token("reader")).await;
    server
        .get("/stats/live")
        .await
        .assert_error(401, "unauthorized");
    server
        .get("/stats/live?token=wrong")
        .await
        .assert_error(401, "unauthorized");
    server.get("/").await.assert_error(401, "unauthorized");
    assert_eq!(server.get("/?token=reader").await.status, 200);
    let mut feed = server
        .stream("/stats/live?interval=100&token=reader", &[])
        .await;
    assert_eq!(feed.status, 200);
    feed.read_until("event: stats").await;
    let mut feed = server
        .stream(
            "/stats/live?interval=100",
            &[("authorization", "Bearer reader")],
        )
        .await;
    assert_eq!(feed.status, 200);
    feed.read_until("event: stats").await;
}

#[tokio::test]
async fn the_live_feed_counts_toward_the_subscriber_limit() {
    let server = start_with(quiet().max_subscribers(1), |b| b).await;
    let mut feed = server.stream("/stats/live?interval=100", &[]).await;
    assert_eq!(feed.status, 200);
    feed.read_until("event: stats").await;
    server
        .get("/events")
        .await
        .assert_error(503, "too_many_subscribers");
    server
        .get("/stats/live")
        .await
        .assert_error(503, "too_many_subscribers");
    drop(feed);
    // The slot frees when the server notices the closed connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stream = server.stream("/events", &[]).await;
        if stream.status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
