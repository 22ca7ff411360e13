#!/usr/bin/env bash
# The test command: every unit, integration and doc test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
cargo test --workspace --doc
if grep -q '^rmcp = \[' Cargo.toml; then
  cargo test --all-features --all-targets
fi
