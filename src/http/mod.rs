//! The HTTP face of a [`Hub`]: an embeddable axum router and `ssehub serve`.
//!
//! [`HubRouter`] builds an [`axum::Router`] with every route of the contract
//! (DESIGN.md §3):
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /events` | subscribers (optional token) | the SSE stream ([`events`]) |
//! | `POST /admin/events` | admin | publish one event or a batch |
//! | `POST /admin/reset` | admin | new generation, streams end, 204 |
//! | `GET /admin/stats` | admin | stats JSON |
//! | `GET /metrics` | operators | Prometheus text |
//! | `GET /healthz` | anyone | `ok` |
//! | `GET /`, `GET /stats/live` | anyone | the live page and its feed ([`page`]) |
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
//! `ssehub serve` ([`serve`]) puts a front before the router: a successful
//! `GET /events` is streamed straight onto the socket (one write per batch,
//! ~2 KB per idle connection) and every other request, and every refusal, is
//! served by this router through hyper — the same responses either way.

mod access;
pub mod admin;
pub mod auth;
pub mod config;
pub mod error;
pub mod events;
mod fast;
pub mod jwt;
pub mod metrics;
pub mod page;
pub mod query;
pub mod serve;
pub mod timestamp;
pub mod tls;

use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::Token;
pub use error::ApiError;
pub use jwt::JwtKey;

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
    pub(crate) jwt: Option<Arc<JwtKey>>,
    pub(crate) limits: Limits,
}

/// Builds the ssehub router for a hub.
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
    cors: Option<CorsLayer>,
    live_page: bool,
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
            cors: None,
            live_page: true,
        }
    }

    /// The admin bearer token. Without one, [`HubRouter::build`] generates a
    /// random token and logs it once.
    pub fn admin_token(mut self, token: impl AsRef<str>) -> HubRouter {
        self.admin_token = Some(Token::new(token));
        self
    }

    /// Requires this token for `GET /events` (header or `?token=`).
    pub fn subscriber_token(mut self, token: impl AsRef<str>) -> HubRouter {
        self.subscriber_token = Some(Token::new(token));
        self
    }

    /// Accepts signed tokens (see [`jwt`]) for `GET /events` and
    /// `POST /admin/events`, beside the subscriber and admin tokens.
    pub fn jwt_key(mut self, key: JwtKey) -> HubRouter {
        self.jwt = Some(key);
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

    /// The router, ready to serve or to nest into an app with state `S`.
    pub fn build<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
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
            .with_state(state);
        if let Some(cors) = self.cors {
            router = router.layer(cors);
        }
        router
    }
}

/// A CORS layer for browser clients on other origins: `*` allows any origin,
/// otherwise the listed ones. Allows GET and POST with the `Authorization`,
/// `Content-Type` and `Last-Event-ID` headers.
///
/// # Errors
///
/// The first origin that is not a valid header value.
pub fn cors_layer<I, S>(origins: I) -> Result<CorsLayer, String>
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
            list.push(
                HeaderValue::from_str(origin)
                    .map_err(|_| format!("invalid CORS origin {origin:?}"))?,
            );
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
