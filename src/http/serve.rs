//! The production accept loop: [`serve`] runs a [`HubRouter`] on a TCP
//! listener the way `ssehub serve` does.
//!
//! Accepted sockets get `TCP_NODELAY` (a batch is one write; Nagle would
//! only delay it). Each connection goes through the streaming front
//! (`fast`): a successful `GET /events` is written straight to the socket,
//! one write per batch; every other request is served by hyper with the
//! router. When the `shutdown` future completes, the loop stops accepting,
//! calls [`Hub::shutdown`](crate::Hub::shutdown) — every open stream gets its
//! final `: end shutdown` comment and ends — and waits for connections to
//! close. Whatever is still open 750 ms later (an idle keep-alive
//! connection, a client that never reads) is abandoned, so the caller gets
//! control back within a second.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::fast::{self, FastEvents};
use super::HubRouter;

/// How long open connections get to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_millis(750);

/// Serves `router` on `listener` until `shutdown` completes, then shuts the
/// router's hub down and drains (see the module docs).
///
/// # Examples
///
/// ```no_run
/// use ssehub::http::{serve, HubRouter};
/// use ssehub::Hub;
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let router = HubRouter::new(Hub::new()).admin_token("s3cret");
/// serve(listener, router, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
///
/// # Errors
///
/// Only if the listener's local address cannot be read; accept errors (out
/// of file descriptors and the like) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: HubRouter,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let hub = router.hub().clone();
    let fast = Arc::new(FastEvents::new(&router));
    let app = router.build::<()>();
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        capacity = hub.config().capacity,
        keep_alive = ?hub.config().keep_alive,
        "listening on http://{local}"
    );
    let open_connections = Arc::new(AtomicUsize::new(0));
    let all_closed = Arc::new(Notify::new());
    tokio::pin!(shutdown);
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
            () = &mut shutdown => {
                tracing::info!("shutting down: ending open streams");
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
