//! The soak and fault harness against a running `ssehub serve`
//! (see `ssehub_cli::load::soak`); `scripts/soak.sh` starts the server and
//! runs this. Exits 1 if any check fails.
//!
//! Run: `cargo run --release -p ssehub-perf --bin soak -- --url http://127.0.0.1:8080 --token T --server-pid PID --max-subscribers N`
use std::process::ExitCode;

use clap::Parser;
use ssehub_cli::load::soak::{run, SoakArgs};

/// Soak and fault harness for `ssehub serve`.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    soak: SoakArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.soak).await {
        Ok(report) if report.failed() == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: {error}");
            ExitCode::from(2)
        }
    }
}
