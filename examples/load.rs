//! The load generator as a standalone program, until `ssehub load` exists.
//!
//! ```text
//! cargo run --release --example load -- --url http://127.0.0.1:8080 \
//!     --token T --connections 1000 --rate 10000 --batch 10 --duration 10s
//! ```
//!
//! `--help` lists every flag; `--json` prints the report as JSON;
//! `--server-pid PID` adds the server's memory per connection.
use clap::Parser;
use ssehub::load::{run, LoadArgs};

/// Opens N SSE connections to an ssehub-compatible server, publishes through
/// its admin API and reports delivery rate, latency and loss.
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli.load).await {
        eprintln!("load: {error}");
        std::process::exit(1);
    }
}
