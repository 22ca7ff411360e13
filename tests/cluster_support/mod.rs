//! Shared by the cluster tests: a real `redis-server` on a free loopback
//! port (installed by `scripts/redis-server.sh` when missing), a TCP proxy
//! that can cut a node off from it, and in-process cluster nodes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssehub::cluster::{Cluster, RedisSource, Retention};
use ssehub::http::HubRouter;
use ssehub::{Hub, HubConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::http_support::{Remote, ADMIN};

/// A `redis-server` child process without persistence; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one, or returns `None` (test skipped, with a note) when it
    /// cannot — except with `CI=true`, where that fails the test.
    pub fn start() -> Option<RedisServer> {
        match RedisServer::try_start() {
            Ok(server) => Some(server),
            Err(message) => {
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("CI=true and redis-server cannot start: {message}");
                }
                eprintln!("skipping: redis-server cannot start: {message}");
                None
            }
        }
    }

    fn try_start() -> Result<RedisServer, String> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            // The workspace's script, from the engine's tests or the cli's.
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|dir| dir.join("scripts/redis-server.sh"))
                .find(|script| script.exists())
                .ok_or("scripts/redis-server.sh not found")?;
            let script = script.display().to_string();
            let status = Command::new("bash")
                .args([script.as_str(), "install"])
                .status()
                .map_err(|error| format!("cannot run {script}: {error}"))?;
            if !status.success() {
                return Err(format!("{script} install failed ({status})"));
            }
        }
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer { port, child: None };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot spawn redis-server: {error}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if ping(self.port) {
                return Ok(());
            }
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("redis-server exited: {status}"));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err("redis-server did not answer PING within 5 s".to_owned())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts an empty one on the same port.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn().expect("redis-server restarts on its port");
    }

    /// Runs one command with `redis-cli`; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A TCP proxy to Redis that can cut every connection and refuse new ones
/// (a node cut off from Redis by the network).
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (accept_open, accept_generation) = (open.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !accept_open.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                let mut cut = accept_generation.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = pipe(client, server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            open,
            generation,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    /// Drops every proxied connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::Release);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::Release);
    }
}

async fn pipe(mut a: TcpStream, mut b: TcpStream) {
    let (mut ar, mut aw) = a.split();
    let (mut br, mut bw) = b.split();
    let one = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match ar.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if bw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let two = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match br.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if aw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = one => {}
        () = two => {}
    }
}

/// One in-process cluster node: hub + Redis source + router on a loopback
/// port.
pub struct Node {
    pub cluster: Cluster,
    pub remote: Remote,
    server: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for Node {
    type Target = Remote;

    fn deref(&self) -> &Remote {
        &self.remote
    }
}

impl Node {
    /// A node with the default ring (4096 events) retaining the same in
    /// Redis, keys under `prefix`.
    pub async fn start(url: &str, prefix: &str) -> Node {
        Node::start_with(url, prefix, 4096, 4096).await
    }

    /// A node whose ring holds `ring` events while Redis retains `retained`.
    pub async fn start_with(url: &str, prefix: &str, ring: usize, retained: u64) -> Node {
        Node::start_bounded(url, prefix, ring, retained, 64 << 20).await
    }

    /// A node whose ring holds `ring` events while Redis retains
    /// `retained` events and `bytes` bytes.
    pub async fn start_bounded(
        url: &str,
        prefix: &str,
        ring: usize,
        retained: u64,
        bytes: u64,
    ) -> Node {
        let hub = Hub::with_config(HubConfig::default().capacity(ring).keep_alive(None));
        let retention = Retention {
            events: retained,
            bytes,
        };
        let source = RedisSource::new(url, prefix, retention).expect("redis source");
        let cluster = Cluster::start(hub.clone(), Arc::new(source)).expect("cluster starts");
        let router = HubRouter::new(hub)
            .admin_token(ADMIN)
            .cluster(cluster.clone())
            .build();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Node {
            cluster,
            remote: Remote::new(addr),
            server,
        }
    }

    /// Waits until the node follows the cluster's current generation.
    pub async fn wait_ready(&self) {
        let cluster = self.cluster.clone();
        wait_until("node follows the cluster", move || {
            let stats = cluster.stats();
            stats.connected
                && stats.generation_token == format!("{:016x}", cluster.hub().position().token)
        })
        .await;
    }

    /// Waits until the node's ring holds event number `n` of the
    /// generation `token`.
    pub async fn wait_for(&self, token: u64, n: u64) {
        let hub = self.cluster.hub().clone();
        wait_until("node catches up", move || {
            let position = hub.position();
            position.token == token && position.head >= n
        })
        .await;
    }

    /// Stops the node: its server, its tail, its hub.
    pub fn stop(&self) {
        self.server.abort();
        self.cluster.stop();
        self.cluster.hub().shutdown();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `condition` every 5 ms; panics after 5 s.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The generation token and number of an auto id.
pub fn parse_id(id: &str) -> (u64, u64) {
    let (token, number) = id.split_once('-').expect("auto id");
    (
        u64::from_str_radix(token, 16).expect("hex token"),
        number.parse().expect("number"),
    )
}
