//! Nesting the ssehub router into your own axum app.
//!
//! Run it:
//!
//! ```sh
//! cargo run -p ssehub --features axum --example embed
//! # in another terminal:
//! curl -N localhost:3000/sse/events                      # subscribe
//! curl -H 'Authorization: Bearer change-me' -H 'Content-Type: application/json' \
//!      -d '{"type":"greeting","text":"hi"}' localhost:3000/sse/admin/events
//! curl localhost:3000/orders/42                          # your own route, publishes too
//! ```
//!
//! The app has its own state (`AppState`) and its own tower middleware (a
//! request timer here); the hub's routes live under `/sse` and keep their
//! own state inside. Your handlers publish through the same `Hub`.

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ssehub::http::HubRouter;
use ssehub::{Event, Hub};

#[derive(Clone)]
struct AppState {
    hub: Hub,
    name: &'static str,
}

async fn order(State(state): State<AppState>, Path(id): Path<u32>) -> String {
    // Your own handler publishes to the same hub the /sse routes serve.
    let data = format!(r#"{{"type":"order","id":{id}}}"#);
    match state.hub.publish(Event::new("order", data)) {
        Ok(published) => format!(
            "{}: order {id} published as {}\n",
            state.name,
            published.auto_id()
        ),
        Err(error) => format!("{}: could not publish: {error}\n", state.name),
    }
}

/// Your own middleware: logs how long each request took to answer.
async fn timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    println!("{path} -> {} in {:?}", response.status(), started.elapsed());
    response
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hub = Hub::new();
    let sse = HubRouter::new(hub.clone())
        .admin_token("change-me")
        .live_page(true)
        .build();
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .nest("/sse", sse)
        .layer(middleware::from_fn(timing))
        .with_state(AppState {
            hub: hub.clone(),
            name: "shop",
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "listening on http://{}/ (live page at /sse)",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            hub.shutdown(); // ends every open stream with `: end shutdown`
        })
        .await
}
