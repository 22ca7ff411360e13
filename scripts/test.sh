#!/usr/bin/env bash
# The test command: every unit, integration, bench-smoke and doc test of the
# workspace, with every feature on (the rmcp adapter included).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
