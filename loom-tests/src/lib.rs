//! loom models for ssehub live in `tests/`; run with `RUSTFLAGS="--cfg loom" cargo test -p ssehub-loom-tests --release`.
