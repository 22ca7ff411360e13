//! The `ssehub` binary: `ssehub serve` runs the HTTP server (see
//! [`ssehub::http`]); configuration comes from flags and `SSEHUB_*`
//! environment variables. Logs go to stderr; `RUST_LOG` filters them
//! (default `info`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ssehub::http::config::ServeArgs;

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
    // LOAD SUBCOMMAND (lead): add `Load(ssehub::load::LoadArgs)` here and its
    // arm in `main` below, calling `ssehub::load::run(args)`.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve(args) => {
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
            match runtime.block_on(ssehub::http::serve::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "serve failed");
                    ExitCode::FAILURE
                }
            }
        } // LOAD SUBCOMMAND (lead): `Command::Load(args) => ...` goes here.
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
