//! The production accept loop: [`serve`] runs a [`HubRouter`] on a TCP
//! listener the way `ssehub serve` does; [`bind`] makes a listener whose
//! backlog survives a reconnect storm.
//!
//! At most [`HubRouter::max_connections`] connections are served at once;
//! one more gets a 503 `too_many_connections` envelope (with `Retry-After:
//! 1` and `Connection: close`) and is closed, so a flood of connections
//! costs a bounded amount of memory. Accepted sockets get `TCP_NODELAY` (a
//! batch is one write; Nagle would only delay it). Each connection goes through the streaming front
//! (`fast`): a successful `GET /events` is written straight to the socket,
//! one write per batch; every other request is served by hyper with the
//! router. When the `shutdown` future completes, the loop stops accepting,
//! calls [`Hub::shutdown`](crate::Hub::shutdown) — every open stream gets its
//! final `: end shutdown` comment and ends — and waits for connections to
//! close. Whatever is still open 750 ms later (an idle keep-alive
//! connection, a client that never reads) is abandoned, so the caller gets
//! control back within a second.
//!
//! With [`HubRouter::tls`] the listener speaks TLS: ALPN `h2` goes to
//! hyper's HTTP/2 server, `http/1.1` to the same front as plain
//! connections. The plain listener also serves HTTP/2 with prior knowledge
//! (h2c). [`HubRouter::http2_max_streams`] bounds the streams of one HTTP/2
//! connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use super::error::ApiError;
use super::fast::{self, Front, FrontLimits};
use super::tls::ALPN_H2;
use super::HubRouter;

/// How long open connections get to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_millis(750);
/// The listen backlog [`bind`] asks for: room for thousands of clients
/// reconnecting at once after a reset (the kernel caps it at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;
/// How long a refused connection is given to take its 503.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Binds a listener on `addr` with `SO_REUSEADDR` and a backlog of
/// 4,096 (a plain `TcpListener::bind` gets the standard
/// library's 128, which a burst of reconnects overflows into SYN retries).
///
/// # Errors
///
/// When the socket cannot be created, bound or put to listen.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

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
    let tls = router.tls.clone();
    let (state, app, cors, limits) = router.into_parts::<()>();
    let max_connections = limits
        .max_connections
        .unwrap_or_else(|| hub.config().max_subscribers.saturating_add(1024));
    let front = Arc::new(Front {
        state,
        app,
        cors,
        limits: FrontLimits {
            head_timeout: limits.head_timeout,
            write_timeout: limits.write_timeout,
            http2_max_streams: limits.http2_max_streams,
        },
    });
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        capacity = hub.config().capacity,
        keep_alive = ?hub.config().keep_alive,
        max_connections,
        http2_max_streams = limits.http2_max_streams,
        "listening on {}://{local}",
        if tls.is_some() { "https" } else { "http" }
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
        if open_connections.load(Ordering::Acquire) >= max_connections {
            tracing::debug!(%peer, max_connections, "connection refused: too many connections");
            tokio::spawn(refuse(stream));
            continue;
        }
        let (front, tls) = (front.clone(), tls.clone());
        let (open_connections, all_closed) = (open_connections.clone(), all_closed.clone());
        open_connections.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            match tls {
                None => fast::serve_connection(stream, peer, &front).await,
                // Boxed: the TLS state would otherwise enlarge every plain
                // connection's task too.
                Some(tls) => Box::pin(serve_tls(&tls.0, stream, peer, &front)).await,
            }
            if open_connections.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_closed.notify_one();
            }
        });
    }
    drop(listener);
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &front.state.cluster {
        cluster.stop();
    }
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

/// The TLS handshake (within the head budget), then HTTP/2 through hyper if
/// ALPN chose `h2`, else the same front as plain connections.
async fn serve_tls(acceptor: &TlsAcceptor, stream: TcpStream, peer: SocketAddr, front: &Front) {
    let handshake = acceptor.accept(stream);
    let stream = match tokio::time::timeout(front.limits.head_timeout, handshake).await {
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
        fast::serve_h2(stream, peer, front).await;
    } else {
        fast::serve_connection(stream, peer, front).await;
    }
}

/// Answers a connection over the limit with a 503 envelope and closes it,
/// reading (and discarding) what the client sends meanwhile so the close
/// does not reset the connection before the answer is read.
async fn refuse(mut stream: TcpStream) {
    let error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "the server has too many open connections; retry shortly",
    );
    let body = error.to_json();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}
