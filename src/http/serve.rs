//! `ssehub serve`: the router on a TCP listener, with graceful shutdown.
//!
//! With `--tls-cert`/`--tls-key` the listener speaks TLS ([`super::tls`]):
//! ALPN `h2` goes to hyper's HTTP/2 server, `http/1.1` to the same front as
//! plain connections; SIGHUP re-reads the certificate. The plain listener
//! also serves HTTP/2 with prior knowledge (h2c). `--http2-max-streams`
//! bounds the streams of one HTTP/2 connection.
//!
//! Accepted sockets get `TCP_NODELAY` (a batch is one write; Nagle would
//! only delay it). Each connection goes through the `fast` front: streams
//! are written straight to the socket, every other request is served by
//! hyper with the router. On SIGINT or SIGTERM the server stops accepting,
//! calls [`Hub::shutdown`](crate::Hub::shutdown) — every open stream gets its
//! final `: end shutdown` comment and ends — and waits for connections to
//! close. Whatever is still open 750 ms after the signal (an idle keep-alive
//! connection, a client that never reads) is abandoned, so the process exits
//! 0 within a second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use super::config::ServeArgs;
use super::fast::{self, FastEvents};
use super::tls::{CertStore, ALPN_H2};
use super::{cors_layer, HubRouter, JwtKey, Token};
use crate::Hub;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_millis(750);

/// Why `serve` could not run.
#[derive(Debug)]
pub enum ServeError {
    /// Binding or accepting failed.
    Io(std::io::Error),
    /// A flag's value was unusable.
    Config(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Io(error) => write!(f, "i/o error: {error}"),
            ServeError::Config(message) => f.write_str(message),
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
    let mut builder = HubRouter::new(hub.clone())
        .max_batch(args.max_batch)
        .max_event_bytes(args.max_event_bytes);
    if let Some(token) = &args.admin_token {
        builder = builder.admin_token(token);
    }
    if let Some(token) = &args.subscriber_token {
        builder = builder.subscriber_token(token);
    }
    if !args.cors_origin.is_empty() {
        builder = builder.cors(cors_layer(&args.cors_origin).map_err(ServeError::Config)?);
    }
    let jwt = match &args.jwt_key {
        Some(key) => Some(JwtKey::new(&args.jwt_alg, key).map_err(ServeError::Config)?),
        None => None,
    };
    if let Some(jwt) = &jwt {
        builder = builder.jwt_key(jwt.clone());
    }
    let app = builder.build::<()>();

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let store = Arc::new(CertStore::load(cert, key).map_err(ServeError::Config)?);
            let acceptor = store.acceptor().map_err(ServeError::Config)?;
            reload_on_sighup(store);
            Some(acceptor)
        }
        _ => None,
    };
    let listener = TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %local,
        capacity = hub.config().capacity,
        keep_alive = ?hub.config().keep_alive,
        http2_max_streams = args.http2_max_streams,
        "listening on {scheme}://{local}"
    );
    let fast = Arc::new(FastEvents {
        hub: hub.clone(),
        subscriber_token: args.subscriber_token.as_ref().map(Token::new),
        jwt,
        cors: !args.cors_origin.is_empty(),
        http2_max_streams: args.http2_max_streams,
    });
    let open_connections = Arc::new(AtomicUsize::new(0));
    let all_closed = Arc::new(Notify::new());
    let signal = wait_for_signal();
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            signal = &mut signal => {
                tracing::info!(signal, "shutting down: ending open streams");
                break;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let (fast, app, tls) = (fast.clone(), app.clone(), tls.clone());
        let (open_connections, all_closed) = (open_connections.clone(), all_closed.clone());
        open_connections.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            match tls {
                None => fast::serve_connection(stream, peer, &fast, app).await,
                // Boxed: the TLS state would otherwise enlarge every
                // plain connection's task too.
                Some(acceptor) => Box::pin(serve_tls(&acceptor, stream, peer, &fast, app)).await,
            }
            if open_connections.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_closed.notify_one();
            }
        });
    }
    drop(listener);
    hub.shutdown();
    let drained = async {
        while open_connections.load(Ordering::Acquire) > 0 {
            tokio::select! {
                () = all_closed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        tracing::warn!(
            open = open_connections.load(Ordering::Acquire),
            "connections still open after {DRAIN:?}; exiting anyway"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// The TLS handshake (10 s at most), then HTTP/2 through hyper if ALPN chose
/// `h2`, else the same front as plain connections.
async fn serve_tls(
    acceptor: &TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    fast: &FastEvents,
    app: axum::Router,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    if stream.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        Box::pin(fast::serve_hyper(stream, peer, fast, app, true)).await;
    } else {
        fast::serve_connection(stream, peer, fast, app).await;
    }
}

/// Re-reads the certificate and key on every SIGHUP, for the life of the
/// process. Open connections keep their sessions.
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
