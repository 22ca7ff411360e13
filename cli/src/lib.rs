//! The `ssehub` binary's library: `ssehub serve` ([`serve`], flags in
//! [`config`]) and `ssehub load` ([`load`]), with the client-side SSE
//! parser the load generator reads streams with ([`parse`]).
//!
//! The engine and the embeddable router live in the `ssehub` crate; this
//! crate adds what only the command line needs (clap, tracing-subscriber,
//! the load generator's HTTP client and histograms).
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]

pub mod config;
pub mod load;
pub mod parse;
pub mod serve;
