//! `ssehub serve`'s flags as the router sees them: the defaults admit
//! exactly what the HTTP contract promises.

#[path = "../../tests/http_support/mod.rs"]
mod http_support;

use http_support::start_with;

#[tokio::test]
async fn the_default_event_limit_admits_a_full_64_kib_event() {
    // As `ssehub serve` configures it: the hub's frame limit has room for
    // the id/event lines around 64 KiB of JSON.
    let args = <ServeCli as clap::Parser>::parse_from(["serve"]).serve;
    let server = start_with(args.hub_config().keep_alive(None), |b| {
        b.max_event_bytes(args.max_event_bytes)
    })
    .await;
    let limit = 64 << 10;
    let body = format!(
        r#"{{"type":"a","id":"custom","p":"{}"}}"#,
        "x".repeat(limit - 33)
    );
    assert_eq!(body.len(), limit);
    assert_eq!(server.publish(&body).await.status, 200);
}

#[derive(clap::Parser)]
struct ServeCli {
    #[command(flatten)]
    serve: ssehub_cli::config::ServeArgs,
}
