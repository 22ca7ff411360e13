//! The HTTP face of a [`Hub`]: an embeddable axum router and `ssehub serve`.
//!
//! [`HubRouter`] builds an [`axum::Router`] with every route of the contract
//! (docs/http-contract.md):
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /events` | subscribers (optional token) | the SSE stream ([`SseResponse`]) |
//! | `POST /admin/events` | admin | publish one event or a batch |
//! | `POST /admin/reset` | admin | new generation, streams end, 204 |
//! | `GET /admin/stats` | admin | stats JSON |
//! | `GET /metrics` | operators | Prometheus text |
//! | `GET /healthz` | anyone | `ok` |
//! | `GET /`, `GET /stats/live` | subscribers (optional token) | the live page and its feed |
//!
//! Every error is the JSON envelope of [`ApiError`]. The router carries its
//! own state and is returned as `Router<S>` for any `S`, so it nests into a
//! user's app whatever that app's state is, under the user's own tower
//! middleware:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use ssehub::http::HubRouter;
//! use ssehub::Hub;
//!
//! # async fn run() -> std::io::Result<()> {
//! #[derive(Clone)]
//! struct MyState;
//!
//! let hub = Hub::new();
//! let app: Router<MyState> = Router::new()
//!     .route("/", get(|| async { "my app" }))
//!     .nest("/sse", HubRouter::new(hub.clone()).admin_token("s3cret").build());
//! let app = app.with_state(MyState);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Design choices: handlers read the raw request (query, headers, body) and
//! parse it themselves, so no axum extractor rejection can escape the
//! envelope; `GET /events` hands hyper the hub's pre-encoded batches as body
//! chunks; limits that belong to the hub (event size, types, subscribers)
//! come from its [`HubConfig`](crate::HubConfig), the rest (batch size) from
//! the builder.
//!
//! One module (`admission`) decides every subscription — credentials,
//! parameters, resume point, subscriber limit, log fields — and maps its
//! deliveries to wire bytes; the router's handler and the streaming front
//! both call it, and [`SseResponse`] carries a subscription out of any axum
//! handler, the user's own included.
//!
//! With the `server` feature, [`serve`] (what `ssehub serve` runs) puts a
//! front before the router: a successful `GET /events` is streamed straight
//! onto the socket (one write per batch, ~2 KB per idle connection) and
//! every other request, and every refusal, is served by this router through
//! hyper — the same responses either way, each request decided once.

mod access;
mod admin;
mod admission;
mod auth;
#[cfg(feature = "cluster")]
mod cluster_events;
mod error;
mod events;
#[cfg(feature = "server")]
mod fast;
#[cfg(feature = "server")]
mod head;
#[cfg(feature = "server")]
mod idle;
pub mod jwt;
mod metrics;
mod page;
mod query;
mod response;
#[cfg(feature = "server")]
mod serve;
mod timestamp;
#[cfg(feature = "server")]
pub mod tls;

/// Internals that the fuzz targets and property tests drive directly.
///
/// Not part of the API: no semver promise, may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use super::admin::parse_events;
    pub use super::query::parse_events_query;
    pub use super::timestamp::parse_rfc3339;
    /// The streaming front's head reading, for the `front_head` fuzz target.
    #[cfg(feature = "server")]
    pub mod head {
        pub use super::super::head::{classify, EventsHead, Head, MAX_HEAD, MAX_HEADERS};
    }
}

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::Token;
pub use error::ApiError;
pub use jwt::JwtKey;
pub use response::SseResponse;
#[cfg(feature = "server")]
pub use serve::{bind, serve};

use crate::error::{ConfigError, Setting};
use crate::Hub;

/// Request limits enforced by the router itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events in one `POST /admin/events`. Default 1,000.
    pub max_batch: usize,
    /// Largest compact JSON of one published event. Default: the hub's
    /// `max_event_bytes`.
    pub max_event_bytes: usize,
}

impl Limits {
    /// Cap on a publish request's body: room for a full batch of full
    /// events with some whitespace, at least 64 KiB, at most 128 MiB.
    pub fn max_body_bytes(&self) -> usize {
        self.max_batch
            .saturating_mul(self.max_event_bytes.saturating_add(1024))
            .clamp(64 << 10, 128 << 20)
    }
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) hub: Hub,
    pub(crate) admin_token: Arc<Token>,
    pub(crate) subscriber_token: Option<Arc<Token>>,
    /// Verifies signed tokens (JWT), when configured.
    pub(crate) jwt: Option<Arc<JwtKey>>,
    pub(crate) limits: Limits,
    /// How long a publish request's body may take to arrive.
    pub(crate) body_timeout: Duration,
    /// Cluster mode: publish, reset, resume and stats go through the
    /// cluster's source (see [`crate::cluster`]).
    #[cfg(feature = "cluster")]
    pub(crate) cluster: Option<crate::cluster::Cluster>,
}

/// Builds the ssehub router for a hub: the routes, their tokens, limits and
/// CORS settings, kept in one place for both the router and [`serve`]'s
/// streaming front (which takes them from here, never a copy of its own).
///
/// # Examples
///
/// ```
/// use ssehub::http::HubRouter;
/// use ssehub::Hub;
///
/// let router: axum::Router = HubRouter::new(Hub::new())
///     .admin_token("admin-secret")
///     .subscriber_token("reader-secret")
///     .max_batch(500)
///     .build();
/// ```
#[derive(Debug, Clone)]
pub struct HubRouter {
    hub: Hub,
    admin_token: Option<Token>,
    subscriber_token: Option<Token>,
    jwt: Option<JwtKey>,
    limits: Limits,
    body_timeout: Duration,
    cors: Option<CorsLayer>,
    live_page: bool,
    #[cfg(feature = "cluster")]
    cluster: Option<crate::cluster::Cluster>,
    server: ServerLimits,
    #[cfg(feature = "server")]
    pub(crate) tls: Option<Tls>,
}

/// A TLS acceptor as the router keeps it (rustls's has no `Debug`).
#[cfg(feature = "server")]
#[derive(Clone)]
pub(crate) struct Tls(pub(crate) tokio_rustls::TlsAcceptor);

#[cfg(feature = "server")]
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

/// Limits of [`serve`]'s connections (the router alone does not use them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerLimits {
    /// Most connections open at once; `None`: the subscriber limit plus
    /// 1,024 for other requests.
    pub(crate) max_connections: Option<usize>,
    /// Budget for one request head.
    pub(crate) head_timeout: Duration,
    /// How long one write may block on a client that does not read.
    pub(crate) write_timeout: Duration,
    /// Most concurrent streams of one HTTP/2 connection.
    pub(crate) http2_max_streams: u32,
}

impl HubRouter {
    /// A builder for `hub` with the default limits, no CORS, the live page on.
    pub fn new(hub: Hub) -> HubRouter {
        let max_event_bytes = hub.config().max_event_bytes;
        HubRouter {
            hub,
            admin_token: None,
            subscriber_token: None,
            jwt: None,
            limits: Limits {
                max_batch: 1000,
                max_event_bytes,
            },
            body_timeout: Duration::from_secs(30),
            cors: None,
            live_page: true,
            server: ServerLimits {
                max_connections: None,
                head_timeout: Duration::from_secs(10),
                write_timeout: Duration::from_secs(30),
                http2_max_streams: 256,
            },
            #[cfg(feature = "server")]
            tls: None,
            #[cfg(feature = "cluster")]
            cluster: None,
        }
    }

    /// Cluster mode: publishes, resets, resume points and stats go through
    /// `cluster` (whose hub should be this router's hub).
    #[cfg(feature = "cluster")]
    pub fn cluster(mut self, cluster: crate::cluster::Cluster) -> HubRouter {
        self.cluster = Some(cluster);
        self
    }

    /// The admin bearer token. Without one, [`HubRouter::build`] generates a
    /// random token and logs it once.
    pub fn admin_token(mut self, token: impl AsRef<str>) -> HubRouter {
        self.admin_token = Some(Token::new(token));
        self
    }

    /// Requires this token for `GET /events`, the live page and its feed
    /// (header or `?token=`).
    pub fn subscriber_token(mut self, token: impl AsRef<str>) -> HubRouter {
        self.subscriber_token = Some(Token::new(token));
        self
    }

    /// Most events in one publish request (default 1,000).
    pub fn max_batch(mut self, max_batch: usize) -> HubRouter {
        self.limits.max_batch = max_batch;
        self
    }

    /// Largest compact JSON of one published event (default: the hub's
    /// `max_event_bytes`).
    pub fn max_event_bytes(mut self, max_event_bytes: usize) -> HubRouter {
        self.limits.max_event_bytes = max_event_bytes;
        self
    }

    /// How long the body of a publish request may take to arrive (default
    /// 30 s); a body still incomplete then is answered 408
    /// `request_timeout`.
    pub fn body_timeout(mut self, timeout: Duration) -> HubRouter {
        self.body_timeout = timeout;
        self
    }

    /// Applies a CORS layer (see [`cors_layer`]) to every route.
    pub fn cors(mut self, layer: CorsLayer) -> HubRouter {
        self.cors = Some(layer);
        self
    }

    /// Serves the live page at `GET /` and its feed (default on).
    pub fn live_page(mut self, on: bool) -> HubRouter {
        self.live_page = on;
        self
    }

    /// [`serve`] only: most connections open at once; one more is answered
    /// 503 `too_many_connections` and closed. Default: the hub's subscriber
    /// limit plus 1,024.
    pub fn max_connections(mut self, max: usize) -> HubRouter {
        self.server.max_connections = Some(max);
        self
    }

    /// [`serve`] only: the time a client has to send a request head, from
    /// accept to its blank line, on either path (default 10 s). A client
    /// that takes longer is disconnected. The same budget closes a
    /// connection with no request in progress (an idle keep-alive or
    /// HTTP/2 connection; HTTP/2 gets a `GOAWAY`).
    pub fn head_timeout(mut self, timeout: Duration) -> HubRouter {
        self.server.head_timeout = timeout;
        self
    }

    /// [`serve`] only: how long one write may block on a client that does
    /// not read before the connection is dropped (default 30 s).
    pub fn write_timeout(mut self, timeout: Duration) -> HubRouter {
        self.server.write_timeout = timeout;
        self
    }

    /// [`serve`] only: most concurrent streams (subscriptions) on one
    /// HTTP/2 connection (default 256).
    pub fn http2_max_streams(mut self, max: u32) -> HubRouter {
        self.server.http2_max_streams = max.max(1);
        self
    }

    /// [`serve`] only: speak TLS with this acceptor (see [`tls::CertStore`]:
    /// ALPN `h2` and `http/1.1`, certificates re-read on demand).
    #[cfg(feature = "server")]
    pub fn tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> HubRouter {
        self.tls = Some(Tls(acceptor));
        self
    }

    /// Accepts signed tokens (JWT, see [`jwt`]) for `GET /events` (their
    /// `subscribe` claim fixes the stream's types) and for
    /// `POST /admin/events` (their `publish` claim), beside the shared
    /// subscriber token and the admin token.
    pub fn jwt_key(mut self, key: JwtKey) -> HubRouter {
        self.jwt = Some(key);
        self
    }

    /// The hub this router serves.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The router, ready to serve or to nest into an app with state `S`.
    pub fn build<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.into_parts().1
    }

    /// The router and the parts [`serve`]'s front shares with it: the
    /// state its handlers see, whether CORS is on, and the server limits.
    pub(crate) fn into_parts<S>(self) -> (AppState, Router<S>, bool, ServerLimits)
    where
        S: Clone + Send + Sync + 'static,
    {
        let server = self.server;
        let cors_on = self.cors.is_some();
        let admin_token = match self.admin_token {
            Some(token) => token,
            None => match Token::random() {
                Ok((token, text)) => {
                    tracing::warn!(
                        admin_token = %text,
                        "no admin token configured; generated one (shown once)"
                    );
                    token
                }
                Err(error) => {
                    // Without randomness there is no safe token: lock the
                    // admin routes rather than open them.
                    tracing::error!(%error, "cannot generate an admin token; admin routes are locked");
                    Token::locked()
                }
            },
        };
        let state = AppState {
            hub: self.hub,
            admin_token: Arc::new(admin_token),
            subscriber_token: self.subscriber_token.map(Arc::new),
            jwt: self.jwt.map(Arc::new),
            limits: self.limits,
            body_timeout: self.body_timeout,
            #[cfg(feature = "cluster")]
            cluster: self.cluster,
        };
        let mut router = Router::new()
            .route("/events", get(events::subscribe))
            .route("/admin/events", post(admin::publish))
            .route("/admin/reset", post(admin::reset))
            .route("/admin/stats", get(admin::stats))
            .route("/metrics", get(metrics::metrics))
            .route("/healthz", get(metrics::healthz));
        if self.live_page {
            router = router
                .route("/", get(page::page))
                .route("/stats/live", get(page::live_stats));
        }
        let mut router = router
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .with_state(state.clone());
        if let Some(cors) = self.cors {
            router = router.layer(cors);
        }
        (state, router, cors_on, server)
    }
}

/// A CORS layer for browser clients on other origins: `*` allows any origin,
/// otherwise the listed ones. Allows GET and POST with the `Authorization`,
/// `Content-Type` and `Last-Event-ID` headers.
///
/// # Errors
///
/// The first origin that is not a valid header value.
pub fn cors_layer<I, S>(origins: I) -> Result<CorsLayer, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut any = false;
    let mut list = Vec::new();
    for origin in origins {
        let origin = origin.as_ref().trim();
        if origin == "*" {
            any = true;
        } else {
            list.push(HeaderValue::from_str(origin).map_err(|_| {
                ConfigError::new(Setting::CorsOrigin, format!("invalid origin {origin:?}"))
            })?);
        }
    }
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ]))
}
