//! The `ssehub` binary: `ssehub serve` runs the HTTP server (see
//! [`ssehub::http`]); `ssehub load` load-tests any server speaking the same
//! contract (see [`ssehub_cli::load`]). Serve's configuration comes from flags
//! and `SSEHUB_*` environment variables. Logs go to stderr; `RUST_LOG` filters them
//! (default `info`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ssehub_cli::config::ServeArgs;

/// A lock-free Server-Sent Events fan-out server.
#[derive(Debug, Parser)]
#[command(name = "ssehub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SSE server (listens on 127.0.0.1:8080 by default).
    Serve(ServeArgs),
    /// Load-test any server speaking the ssehub HTTP contract: N SSE
    /// connections, publishes through the admin API, delivery rate,
    /// publish-to-receive latency, loss and duplicates.
    Load(ssehub_cli::load::LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Serve(args) => runtime
            .block_on(ssehub_cli::serve::run(args))
            .map_err(|error| format!("serve failed: {error}")),
        Command::Load(args) => runtime
            .block_on(ssehub_cli::load::run(args))
            .map(drop)
            .map_err(|error| format!("load: {error}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
