//! Adapter for the `rmcp` crate (work in progress).
