#!/usr/bin/env bash
# Builds the release binary, target/release/sluice: the build docker/Dockerfile runs (the same
# line; crates/sluice/tests/docker.rs checks that the two do not drift apart).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sluice
