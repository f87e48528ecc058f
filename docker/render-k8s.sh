#!/usr/bin/env bash
# Renders docker/k8s/ again: `sluice render config/` and the files of address space
# team-orders/orders. crates/sluice/tests/docker.rs renders the same and compares them byte
# for byte, so run this after changing config/ or the renderer.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run --quiet -p sluice -- render config/ --out "$out" >/dev/null
rm -f docker/k8s/*.yaml
cp "$out"/team-orders/orders/*.yaml docker/k8s/
