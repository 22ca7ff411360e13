//! `ssehub serve` as a process: configuration, the generated admin token,
//! and graceful shutdown on SIGTERM/SIGINT.

fn main() {}
