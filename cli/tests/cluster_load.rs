//! The load generator against a cluster of three in-process nodes on a
//! real `redis-server` (see the engine's `tests/cluster.rs` for the
//! behaviours themselves).

#[path = "../../tests/cluster_support/mod.rs"]
mod cluster_support;
#[path = "../../tests/http_support/mod.rs"]
mod http_support;

use std::time::Duration;

use cluster_support::{Node, RedisServer};

/// Three nodes on `url`, keys under `prefix`, all following the cluster.
async fn three_nodes(url: &str, prefix: &str) -> [Node; 3] {
    let nodes = [
        Node::start(url, prefix).await,
        Node::start(url, prefix).await,
        Node::start(url, prefix).await,
    ];
    for node in &nodes {
        node.wait_ready().await;
    }
    nodes
}

/// The load generator against three nodes (subscribers spread over them,
/// publishing through all): every event reaches every subscriber once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_generator_spreads_over_nodes_and_sees_no_loss() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = three_nodes(&redis.url(), "load").await;
    let urls: Vec<String> = nodes
        .iter()
        .map(|node| format!("http://{}", node.addr))
        .collect();
    let args = ssehub_cli::load::LoadArgs {
        url: urls.join(","),
        publish_all: true,
        token: Some(http_support::ADMIN.into()),
        connections: 30,
        rate: 3000.0,
        batch: 10,
        duration: Duration::from_millis(500),
        drain: Duration::from_secs(3),
        publishers: 3,
        payload: 16,
        event_type: None,
        connect_concurrency: 8,
        connect_timeout: Duration::from_secs(5),
        server_pid: None,
        json: true,
        per_connection: false,
        cacert: None,
        http2_connections: 0,
    };
    let report = ssehub_cli::load::run(args).await.expect("load run");
    assert_eq!(report.established, 30);
    assert!(report.published >= 500, "{report:?}");
    assert_eq!(report.publish_errors, 0, "{report:?}");
    assert_eq!(report.delivered, report.published * 30, "{report:?}");
    assert_eq!(report.lost, 0);
    assert_eq!(report.duplicates, 0);
    // Every node had a third of the subscribers.
    for node in &nodes {
        assert_eq!(node.cluster.hub().stats().total_subscribers, 10);
    }
}
