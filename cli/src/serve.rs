//! `ssehub serve`: the flags ([`ServeArgs`]) turned into a [`HubRouter`],
//! served by the library's accept loop ([`ssehub::http::serve`]) until
//! SIGINT or SIGTERM; the process exits 0 within a second of the signal.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "cluster")]
use std::time::Duration;

use ssehub::http::tls::CertStore;
use ssehub::http::{cors_layer, HubRouter, JwtKey};
use ssehub::Hub;

use crate::config::ServeArgs;

/// Why `serve` could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// Binding or accepting failed.
    Io(std::io::Error),
    /// A flag's value was unusable.
    Config(ssehub::ConfigError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io(error) => write!(f, "i/o error: {error}"),
            ServeError::Config(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<std::io::Error> for ServeError {
    fn from(error: std::io::Error) -> Self {
        ServeError::Io(error)
    }
}

/// Runs `ssehub serve` until SIGINT or SIGTERM.
///
/// # Errors
///
/// [`ServeError::Config`] for an invalid CORS origin, [`ServeError::Io`] if
/// the address cannot be bound.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let hub = Hub::with_config(args.hub_config());
    let mut router = HubRouter::new(hub.clone())
        .max_batch(args.max_batch)
        .max_event_bytes(args.max_event_bytes)
        .max_connections(args.max_connections())
        .head_timeout(args.head_timeout)
        .write_timeout(args.write_timeout)
        .body_timeout(args.body_timeout);
    if let Some(token) = &args.admin_token {
        router = router.admin_token(token);
    }
    if let Some(token) = &args.subscriber_token {
        router = router.subscriber_token(token);
    }
    if !args.cors_origin.is_empty() {
        router = router.cors(cors_layer(&args.cors_origin).map_err(ServeError::Config)?);
    }
    router = router.http2_max_streams(args.http2_max_streams);
    if let Some(key) = &args.jwt_key {
        let key = JwtKey::new(&args.jwt_alg, key).map_err(ServeError::Config)?;
        router = router.jwt_key(key);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let store = Arc::new(CertStore::load(cert, key).map_err(ServeError::Config)?);
        let acceptor = store.acceptor().map_err(ServeError::Config)?;
        reload_on_sighup(store);
        router = router.tls(acceptor);
    }
    #[cfg(feature = "cluster")]
    if let Some(url) = &args.redis {
        let cluster = start_cluster(&hub, url, &args.redis_prefix)?;
        // Give the tail up to two seconds to join the cluster's generation
        // before serving; serve anyway (publishes get 503 meanwhile).
        if !cluster.wait_synced(Duration::from_secs(2)).await {
            tracing::warn!("Redis not reachable yet; serving, publishes get 503 until it is");
        }
        router = router.cluster(cluster);
    }
    // A backlog for a reconnect storm (TcpListener::bind's is far smaller).
    let listener = ssehub::http::bind(args.listen)?;
    ssehub::http::serve(listener, router, async {
        let signal = wait_for_signal().await;
        tracing::info!(signal, "signal received");
    })
    .await?;
    Ok(())
}

/// Makes `hub` a node of the cluster on the Redis at `url`.
#[cfg(feature = "cluster")]
fn start_cluster(
    hub: &Hub,
    url: &str,
    prefix: &str,
) -> Result<ssehub::cluster::Cluster, ServeError> {
    use ssehub::cluster::{Cluster, RedisSource, Retention};
    let retention = Retention {
        events: hub.config().capacity as u64,
        bytes: hub.config().max_bytes as u64,
    };
    let source = RedisSource::new(url, prefix, retention).map_err(ServeError::Config)?;
    tracing::info!(prefix, "cluster mode: following Redis");
    Cluster::start(hub.clone(), std::sync::Arc::new(source)).map_err(ServeError::Config)
}

/// Re-reads the certificate and key on every SIGHUP, for the life of the
/// process. Open connections keep their sessions; a failed reload keeps the
/// old certificate.
fn reload_on_sighup(store: Arc<CertStore>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; certificates will not reload");
                return;
            }
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match store.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "SIGHUP: TLS certificate not reloaded; keeping the old one")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(store);
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere); returns its name.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
