//! `ssehub serve`: the router on a TCP listener, with graceful shutdown.
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

use super::config::ServeArgs;
use super::fast::{self, FastEvents};
use super::{cors_layer, HubRouter, JwtKey, Token};
use crate::Hub;

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

    let listener = TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        capacity = hub.config().capacity,
        keep_alive = ?hub.config().keep_alive,
        "listening on http://{local}"
    );
    let fast = Arc::new(FastEvents {
        hub: hub.clone(),
        subscriber_token: args.subscriber_token.as_ref().map(Token::new),
        jwt,
        cors: !args.cors_origin.is_empty(),
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
        let (fast, app) = (fast.clone(), app.clone());
        let (open_connections, all_closed) = (open_connections.clone(), all_closed.clone());
        open_connections.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            fast::serve_connection(stream, peer, &fast, app).await;
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
