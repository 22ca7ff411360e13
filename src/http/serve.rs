//! `ssehub serve`: the router on a TCP listener, with graceful shutdown.
//!
//! Accepted sockets get `TCP_NODELAY` (a batch is one write; Nagle would
//! only delay it). On SIGINT or SIGTERM the server stops accepting, calls
//! [`Hub::shutdown`](crate::Hub::shutdown) — every open stream gets its final
//! `: end shutdown` comment and ends — and lets axum's graceful shutdown
//! finish the connections. Whatever is still open 750 ms after the signal
//! (a client that never reads, say) is abandoned, so the process exits 0
//! within a second.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::config::ServeArgs;
use super::{cors_layer, HubRouter};
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
    let app = builder.build::<()>();

    let listener = TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        capacity = hub.config().capacity,
        keep_alive = ?hub.config().keep_alive,
        "listening on http://{local}"
    );
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });

    let signalled = Arc::new(Notify::new());
    let shutdown = {
        let hub = hub.clone();
        let signalled = signalled.clone();
        async move {
            let signal = wait_for_signal().await;
            tracing::info!(signal, "shutting down: ending open streams");
            hub.shutdown();
            signalled.notify_one();
        }
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let deadline = async {
        signalled.notified().await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!("connections still open after {DRAIN:?}; exiting anyway"),
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
