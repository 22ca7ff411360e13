//! Cluster mode against a real `redis-server` (DESIGN.md §6, issue 11): three
//! in-process nodes share one Redis; each numbered behaviour of the issue is
//! one test. Each test starts its own Redis (no persistence, free loopback
//! port) and stops it at the end; with `CI=true` a Redis that cannot start
//! fails the test instead of skipping it.

mod cluster_support;
mod http_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use cluster_support::{parse_id, wait_until, Node, Proxy, RedisServer};
use http_support::{bearer, encode};

/// Three nodes on `redis`, keys under `prefix`, all following the cluster.
async fn three_nodes(url: &str, prefix: &str) -> [Node; 3] {
    let nodes = [
        Node::start(url, prefix).await,
        Node::start(url, prefix).await,
        Node::start(url, prefix).await,
    ];
    for node in &nodes {
        node.wait_ready().await;
    }
    // They agree on one generation.
    let tokens: HashSet<u64> = nodes
        .iter()
        .map(|node| node.cluster.hub().position().token)
        .collect();
    assert_eq!(tokens.len(), 1, "one generation for all nodes");
    nodes
}

fn event(event_type: &str, n: usize) -> String {
    format!(r#"{{"type":"{event_type}","n":{n}}}"#)
}

/// Behaviour 1: any node accepts a publish; ids and order come from Redis;
/// every node serves the same id for the same event in the same order, also
/// when all nodes publish at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ids_and_order_are_decided_in_redis_whichever_node_publishes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = three_nodes(&redis.url(), "b1").await;
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(node.subscribe("", &[]).await);
    }
    // 3 nodes × 4 concurrent publishers × 10 batches of 5 events.
    let mut publishers = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        for publisher in 0..4 {
            let remote = http_support::Remote::new(node.addr);
            publishers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for batch in 0..10 {
                    let events: Vec<String> = (0..5)
                        .map(|i| event(&format!("n{index}"), publisher * 1000 + batch * 10 + i))
                        .collect();
                    let posted = remote.publish_ok(&format!("[{}]", events.join(","))).await;
                    assert_eq!(posted.len(), 5);
                    ids.extend(posted);
                }
                ids
            }));
        }
    }
    let mut posted = Vec::new();
    for publisher in publishers {
        posted.extend(publisher.await.expect("publisher"));
    }
    assert_eq!(posted.len(), 600);
    // Every POST got a distinct auto id of one generation; numbers 1..=600.
    let token = parse_id(&posted[0]).0;
    let mut numbers: Vec<u64> = posted
        .iter()
        .map(|id| {
            let (t, n) = parse_id(id);
            assert_eq!(t, token, "one generation");
            n
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=600).collect::<Vec<_>>());
    // Every node delivers the same frames, byte for byte, in number order.
    let last = format!("id: {:016x}-600\n", token);
    let mut texts = Vec::new();
    for stream in &mut streams {
        stream.read_until(&last).await;
        let ids = stream.ids();
        assert_eq!(ids.len(), 600, "every event once");
        let order: Vec<u64> = ids.iter().map(|id| parse_id(id).1).collect();
        assert_eq!(order, (1..=600).collect::<Vec<_>>(), "in Redis's order");
        texts.push(stream.text.clone());
    }
    assert_eq!(texts[0], texts[1], "node 1 and 2 serve identical bytes");
    assert_eq!(texts[0], texts[2], "node 1 and 3 serve identical bytes");
    // The POST answered with the ids the streams carry for the same event.
    let by_data: std::collections::HashMap<String, String> = streams[0]
        .frames()
        .iter()
        .filter_map(|frame| {
            let id = frame.lines().find_map(|l| l.strip_prefix("id: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((data.to_owned(), id.to_owned()))
        })
        .collect();
    assert_eq!(by_data.len(), 600);
    let posted: HashSet<String> = posted.into_iter().collect();
    let streamed: HashSet<String> = by_data.values().cloned().collect();
    assert_eq!(posted, streamed);
}

/// Behaviour 2: each node follows the stream into its own ring; subscribers
/// on any node get every event exactly once, in order; filters work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_on_every_node_get_each_event_once_in_order_with_filters() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = three_nodes(&redis.url(), "b2").await;
    let mut all = Vec::new();
    let mut only_a = Vec::new();
    for node in &nodes {
        all.push(node.subscribe("", &[]).await);
        only_a.push(node.subscribe("?event_type=a", &[]).await);
    }
    let mut expected_a = Vec::new();
    for i in 0..90 {
        let kind = ["a", "b", "c"][i % 3];
        if kind == "a" {
            expected_a.push(event("a", i));
        }
        // Single events, each through another node.
        nodes[i % 3].publish_ok(&event(kind, i)).await;
    }
    let expected: Vec<String> = (0..90).map(|i| event(["a", "b", "c"][i % 3], i)).collect();
    for stream in &mut all {
        stream.read_until(&event("c", 89)).await;
        assert_eq!(stream.data(), expected);
    }
    for stream in &mut only_a {
        stream.read_until(&event("a", 87)).await;
        assert_eq!(stream.data(), expected_a);
        assert!(stream.frames().iter().all(|f| f.contains("event: a\n")));
    }
    // The ring has one writer: the tail task holds it, so a local publish
    // that bypasses Redis is refused rather than numbered locally.
    assert!(nodes[0]
        .cluster
        .hub()
        .publish(ssehub::Event::new("x", "y"))
        .is_err());
}

/// Behaviour 3: resume on any node from an auto id, a caller id or a
/// timestamp published through another node; a point older than the
/// node's ring but still in Redis is replayed from Redis and joined to the
/// live tail with no gap and no duplicate; 410 only when Redis no longer
/// holds the point or it belongs to another generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resume_on_any_node_replays_from_redis_and_joins_the_ring() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // Node 0 and 1: rings as large as the history. Node 2: a ring of 8
    // events, so most resume points are older than its ring.
    let first = Node::start_with(&url, "b3", 1024, 1000).await;
    let second = Node::start_with(&url, "b3", 1024, 1000).await;
    let small = Node::start_with(&url, "b3", 8, 1000).await;
    for node in [&first, &second, &small] {
        node.wait_ready().await;
    }
    let mut ids = Vec::new();
    for i in 0..100 {
        let body = if i == 9 {
            r#"{"type":"t","id":"order-9","n":9}"#.to_owned()
        } else {
            event("t", i)
        };
        ids.extend(first.publish_ok(&body).await);
    }
    let token = parse_id(&ids[0]).0;
    small.wait_for(token, 100).await;
    assert!(
        small.cluster.hub().position().tail >= 90,
        "small ring holds the last 8 only"
    );

    // Auto id 10 (number 11) on the small node: 89 events, 81 of them replayed.
    let mut stream = small
        .subscribe("", &[("last-event-id", ids[10].as_str())])
        .await;
    stream.read_until(&event("t", 99)).await;
    let expected: Vec<String> = (11..100).map(|i| event("t", i)).collect();
    assert_eq!(
        stream.data(),
        expected,
        "replayed and joined, no gap, no duplicate"
    );
    // It keeps following live events.
    second.publish_ok(&event("t", 100)).await;
    stream.read_until(&event("t", 100)).await;
    assert_eq!(stream.data().len(), 90);

    // A caller id published through node 0, resumed on node 1 and on the
    // small node.
    for node in [&second, &small] {
        let mut stream = node
            .subscribe(&format!("?from={}", encode("order-9")), &[])
            .await;
        stream.read_until(&event("t", 100)).await;
        assert_eq!(stream.data().len(), 91, "events 10..=100 after order-9");
        assert_eq!(stream.data()[0], event("t", 10));
    }

    // A timestamp: Redis's times are the same on every node. From event
    // number 50's time (read from Redis), the small node replays 50.. .
    let stream_key = format!("b3:s:{token:016x}");
    let entry = redis.cli(&["XRANGE", &stream_key, "50-0", "50-0"]);
    let micros: u64 = entry
        .lines()
        .skip_while(|line| *line != "ts")
        .nth(1)
        .expect("ts field")
        .parse()
        .expect("micros");
    let at = rfc3339_micros(micros);
    for node in [&first, &small] {
        let mut from_time = node
            .subscribe(&format!("?from_timestamp={}", encode(&at)), &[])
            .await;
        from_time.read_until(&event("t", 100)).await;
        assert_eq!(from_time.data()[0], event("t", 49), "from {at}");
        assert_eq!(from_time.data().len(), 52, "events 50..=101 by number");
    }
    let mut whole = small
        .subscribe(
            &format!("?from_timestamp={}", encode("1970-01-01T00:00:00Z")),
            &[],
        )
        .await;
    whole.read_until(&event("t", 100)).await;
    assert_eq!(whole.data().len(), 101, "the whole generation, from Redis");
    let future = "2999-01-01T00:00:00Z";
    let mut live = small
        .subscribe(&format!("?from_timestamp={}", encode(future)), &[])
        .await;
    second.publish_ok(&event("t", 101)).await;
    live.read_until(&event("t", 101)).await;
    assert_eq!(
        live.data(),
        vec![event("t", 101)],
        "a future timestamp is live"
    );

    // Another generation's id → 410 on every node.
    let foreign = format!("{:016x}-5", token ^ 1);
    for node in [&first, &second, &small] {
        let reply = node
            .send(
                hyper::Method::GET,
                "/events",
                &[("last-event-id", &foreign)],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
    }
}

/// Behaviour 3, the 410 half: a point Redis trimmed is gone on every node,
/// even on a node whose ring could not have told.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resume_point_trimmed_from_redis_is_410_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // Redis retains 16 events; the rings 16 too.
    let nodes = [
        Node::start_with(&url, "b3g", 16, 16).await,
        Node::start_with(&url, "b3g", 16, 16).await,
    ];
    for node in &nodes {
        node.wait_ready().await;
    }
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.extend(nodes[i % 2].publish_ok(&event("t", i)).await);
    }
    assert_eq!(
        redis.cli(&["XLEN", &format!("b3g:s:{:016x}", parse_id(&ids[0]).0)]),
        "16"
    );
    for node in &nodes {
        // Number 24 is the newest trimmed (25..=40 retained): after 24 is
        // still whole, after 23 is gone.
        let reply = node
            .send(
                hyper::Method::GET,
                "/events",
                &[("last-event-id", &ids[22])],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
        let mut stream = node
            .subscribe("", &[("last-event-id", ids[23].as_str())])
            .await;
        stream.read_until(&event("t", 39)).await;
        assert_eq!(stream.data().len(), 16);
    }
    // A caller id resumes while retained, is 410 once trimmed, and Redis
    // forgets it then.
    nodes[0].publish_ok(r#"{"type":"t","id":"late"}"#).await;
    let token = parse_id(&ids[0]).0;
    let mut stream = nodes[1].subscribe("?from=late", &[]).await;
    nodes[1].publish_ok(&event("t", 40)).await;
    stream.read_until(&event("t", 40)).await;
    assert_eq!(stream.data(), vec![event("t", 40)]);
    for i in 41..60 {
        nodes[0].publish_ok(&event("t", i)).await;
    }
    for node in &nodes {
        let reply = node
            .send(
                hyper::Method::GET,
                "/events?from=late",
                &[],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
    }
    assert_eq!(
        redis.cli(&["HEXISTS", &format!("b3g:i:{token:016x}"), "late"]),
        "0"
    );
    assert_eq!(redis.cli(&["LLEN", &format!("b3g:l:{token:016x}")]), "0");
}

/// Behaviour 3, the byte bound: `--max-bytes` bounds the history in Redis
/// too; what it trimmed is 410, what it kept resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_trimmed_by_bytes_is_410_and_the_rest_resumes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    // Each event counts about 100 bytes in Redis: 1,000 bytes keep ~10.
    let nodes = [
        Node::start_bounded(&url, "b3b", 64, 1000, 1000).await,
        Node::start_bounded(&url, "b3b", 64, 1000, 1000).await,
    ];
    for node in &nodes {
        node.wait_ready().await;
    }
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.extend(nodes[i % 2].publish_ok(&event("t", i)).await);
    }
    let token = parse_id(&ids[0]).0;
    let key = format!("b3b:s:{token:016x}");
    let retained: usize = redis.cli(&["XLEN", &key]).parse().unwrap();
    assert!((5..20).contains(&retained), "{retained} retained");
    let oldest = 40 - retained; // index of the oldest retained event
    for node in &nodes {
        let reply = node
            .send(
                hyper::Method::GET,
                "/events",
                &[("last-event-id", &ids[oldest - 2])],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
        let mut stream = node
            .subscribe("", &[("last-event-id", ids[oldest - 1].as_str())])
            .await;
        stream.read_until(&event("t", 39)).await;
        assert_eq!(
            stream.data(),
            (oldest..40).map(|i| event("t", i)).collect::<Vec<_>>()
        );
    }
    let stats = nodes[0].cluster.clone();
    wait_until("stats see the trim", move || {
        stats.stats().retained == retained as u64
    })
    .await;
    let json = nodes[0].admin_get("/admin/stats").await.json();
    let bytes = json["cluster"]["retained_bytes"].as_u64().unwrap();
    assert!(bytes <= 1000 && bytes > 1000 - 200, "{json}");
}

/// Behaviour 4: a reset on any node starts a new generation for the whole
/// cluster: open streams on every node end within a second; old ids get 410
/// everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_on_one_node_ends_streams_everywhere_and_old_ids_are_gone() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = three_nodes(&redis.url(), "b4").await;
    let old = nodes[0].publish_ok(&event("t", 1)).await;
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(node.subscribe("", &[]).await);
    }
    let started = Instant::now();
    let reply = nodes[1]
        .send(
            hyper::Method::POST,
            "/admin/reset",
            &[("authorization", &bearer())],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 204);
    for stream in &mut streams {
        stream.read_to_end().await;
        assert!(
            stream.text.ends_with(": end reset\n\n"),
            "{}",
            stream.tail()
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "streams ended after {elapsed:?}"
    );
    for node in &nodes {
        let reply = node
            .send(
                hyper::Method::GET,
                "/events",
                &[("last-event-id", &old[0])],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
    }
    let new = nodes[2].publish_ok(&event("t", 2)).await;
    let (new_token, number) = parse_id(&new[0]);
    assert_ne!(new_token, parse_id(&old[0]).0);
    assert_eq!(number, 1, "the new generation numbers from 1");
    for node in &nodes {
        node.wait_for(new_token, 1).await;
    }
}

/// Behaviour 5: a node cut off from Redis refuses publishes with 503
/// `backend_unavailable`, and catches up when Redis is back; a node that
/// restarts catches up too. A subscriber that resumes on either gets exactly
/// what was published meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_off_or_restarted_node_catches_up_from_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let proxy = Proxy::start(redis.addr()).await;
    let publisher = Node::start(&url, "b5").await;
    let cut_off = Node::start(&proxy.url(), "b5").await;
    publisher.wait_ready().await;
    cut_off.wait_ready().await;
    let before = publisher.publish_ok(&event("t", 0)).await;
    let token = parse_id(&before[0]).0;
    cut_off.wait_for(token, 1).await;
    let mut live = cut_off.subscribe("", &[]).await;

    proxy.cut();
    let reply = cut_off.publish(&event("t", 9999)).await;
    reply.assert_error(503, "backend_unavailable");
    assert_eq!(reply.header("retry-after"), "1");
    // A resume point needs Redis to be judged: 503 too, never a guess.
    let reply = cut_off
        .send(
            hyper::Method::GET,
            "/events",
            &[("last-event-id", before[0].as_str())],
            bytes::Bytes::new(),
        )
        .await;
    reply.assert_error(503, "backend_unavailable");
    for i in 1..=50 {
        publisher.publish_ok(&event("t", i)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        cut_off.cluster.hub().position().head,
        1,
        "cut off: nothing new"
    );
    assert!(!cut_off.cluster.stats().connected);

    proxy.restore();
    cut_off.wait_for(token, 51).await;
    // A live stream on the cut-off node stayed open and got everything.
    live.read_until(&event("t", 50)).await;
    assert_eq!(
        live.data(),
        (1..=50).map(|i| event("t", i)).collect::<Vec<_>>()
    );
    assert!(!live.done);
    let mut stream = cut_off
        .subscribe("", &[("last-event-id", before[0].as_str())])
        .await;
    stream.read_until(&event("t", 50)).await;
    assert_eq!(
        stream.data(),
        (1..=50).map(|i| event("t", i)).collect::<Vec<_>>()
    );

    // A node that restarts (a fresh process: a new hub) catches up too.
    cut_off.stop();
    drop(cut_off);
    for i in 51..=60 {
        publisher.publish_ok(&event("t", i)).await;
    }
    let restarted = Node::start(&url, "b5").await;
    restarted.wait_ready().await;
    let mut stream = restarted
        .subscribe("", &[("last-event-id", before[0].as_str())])
        .await;
    stream.read_until(&event("t", 60)).await;
    assert_eq!(
        stream.data(),
        (1..=60).map(|i| event("t", i)).collect::<Vec<_>>()
    );
}

/// Behaviour 6: Redis restarted empty, or holding fewer events than a node
/// saw (a failover to a replica that missed the newest writes): the cluster
/// moves to a new generation, old ids get 410, and no id is handed out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_redis_state_moves_the_cluster_to_a_new_generation() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let nodes = three_nodes(&url, "b6").await;
    let mut handed_out: HashSet<String> = HashSet::new();
    let first: Vec<String> = nodes[0]
        .publish_ok(&format!(
            "[{},{},{}]",
            event("t", 1),
            event("t", 2),
            event("t", 3)
        ))
        .await;
    handed_out.extend(first.iter().cloned());
    let token = parse_id(&first[0]).0;
    for node in &nodes {
        node.wait_for(token, 3).await;
    }

    // Redis restarts empty.
    redis.restart_empty();
    let second = nodes[1].publish_ok(&event("t", 4)).await;
    let second_token = parse_id(&second[0]).0;
    assert_ne!(
        second_token, token,
        "a new generation after Redis lost everything"
    );
    assert!(
        handed_out.insert(second[0].clone()),
        "no id handed out twice"
    );
    for node in &nodes {
        node.wait_for(second_token, 1).await;
        let reply = node
            .send(
                hyper::Method::GET,
                "/events",
                &[("last-event-id", &first[2])],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
    }

    // A failover to a replica that missed the newest writes: Redis keeps the
    // generation but holds fewer events than the nodes saw.
    let more = nodes[2]
        .publish_ok(&format!(
            "[{},{},{}]",
            event("t", 5),
            event("t", 6),
            event("t", 7)
        ))
        .await;
    handed_out.extend(more.iter().cloned());
    for node in &nodes {
        node.wait_for(second_token, 4).await;
    }
    // What such a replica holds: numbers 1..=2 of the generation (its
    // stream's last id 2-0 too), the counter at 2.
    let stream_key = format!("b6:s:{second_token:016x}");
    redis.cli(&["XDEL", &stream_key, "3-0", "4-0"]);
    redis.cli(&["XSETID", &stream_key, "2-0"]);
    redis.cli(&["HSET", "b6:meta", "n", "2"]);
    // The next publish (any node) must not number events 3 and 4 again.
    let after = nodes[0].publish_ok(&event("t", 8)).await;
    let (after_token, _) = parse_id(&after[0]);
    assert_ne!(
        after_token, second_token,
        "lost entries start a new generation"
    );
    assert!(
        handed_out.insert(after[0].clone()),
        "no id handed out twice"
    );
    for node in &nodes {
        node.wait_for(after_token, 1).await;
        let reply = node
            .send(
                hyper::Method::GET,
                "/events",
                &[("last-event-id", &more[2])],
                bytes::Bytes::new(),
            )
            .await;
        reply.assert_error(410, "resume_point_expired");
    }

    // Also without a publish: the tails notice on their own.
    for node in &nodes {
        node.wait_for(after_token, 1).await;
    }
    let stream_key = format!("b6:s:{after_token:016x}");
    redis.cli(&["XDEL", &stream_key, "1-0"]);
    redis.cli(&["XSETID", &stream_key, "0-0"]);
    redis.cli(&["HSET", "b6:meta", "n", "0"]);
    let cluster = nodes[1].cluster.clone();
    wait_until("a tail moves the cluster on", move || {
        cluster.hub().position().token != after_token
    })
    .await;
}

/// Behaviour 7: stats and metrics report the node's own figures plus the
/// cluster's (generation, published, retained history, lag).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_and_metrics_report_the_cluster() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = three_nodes(&redis.url(), "b7").await;
    let ids = nodes[0]
        .publish_ok(&format!(
            "[{}]",
            (0..25).map(|i| event("t", i)).collect::<Vec<_>>().join(",")
        ))
        .await;
    let token = parse_id(&ids[0]).0;
    for node in &nodes {
        node.wait_for(token, 25).await;
    }
    let mut tokens = HashSet::new();
    for node in &nodes {
        let cluster_stats = node.cluster.clone();
        // The figures come from the tail's syncs; wait for one after the publish.
        wait_until("stats see the publish", move || {
            cluster_stats.stats().retained == 25
        })
        .await;
        let stats = node.admin_get("/admin/stats").await;
        assert_eq!(stats.status, 200);
        let json = stats.json();
        assert_eq!(json["published"], 25, "the node's own ring: {json}");
        let cluster = &json["cluster"];
        assert_eq!(cluster["connected"], true, "{json}");
        assert_eq!(cluster["published"], 25, "{json}");
        assert_eq!(cluster["retained"], 25, "{json}");
        assert!(
            cluster["retained_bytes"].as_u64().unwrap() > 25 * 20,
            "{json}"
        );
        assert_eq!(cluster["lag"], 0, "{json}");
        assert_eq!(cluster["generation"], 1, "{json}");
        tokens.insert(cluster["generation_token"].as_str().unwrap().to_owned());
        let metrics = node.get("/metrics").await;
        for line in [
            "ssehub_cluster_connected 1\n",
            "ssehub_cluster_generation 1\n",
            "ssehub_cluster_published_events_total 25\n",
            "ssehub_cluster_retained_events 25\n",
            "ssehub_cluster_lag_events 0\n",
            "ssehub_published_events_total 25\n",
        ] {
            assert!(metrics.body.contains(line), "{line:?} in {}", metrics.body);
        }
    }
    assert_eq!(tokens, HashSet::from([format!("{token:016x}")]));

    // Lag: a node whose tail stopped falls behind what it publishes itself.
    nodes[2].cluster.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    nodes[2]
        .publish_ok(&format!(
            "[{}]",
            (25..30)
                .map(|i| event("t", i))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .await;
    let json = nodes[2].admin_get("/admin/stats").await.json();
    assert_eq!(
        json["published"], 25,
        "the node's ring did not move: {json}"
    );
    assert_eq!(json["cluster"]["published"], 30, "{json}");
    assert_eq!(json["cluster"]["lag"], 5, "{json}");
    let metrics = nodes[2].get("/metrics").await;
    assert!(
        metrics.body.contains("ssehub_cluster_lag_events 5\n"),
        "{}",
        metrics.body
    );
}

/// RFC 3339 UTC text of a Unix time in microseconds.
fn rfc3339_micros(micros: u64) -> String {
    let seconds = micros / 1_000_000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        micros % 1_000_000
    )
}
