#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need first.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh -p sluice-codec   # extra arguments go to `cargo nextest run`
#
# Needs: Debian's amqp-specs (the spec XML the codec is checked against), python3-qpid-proton (Qpid
# Proton's Python binding, which crates/sluice/tests/serve.rs drives `sluice serve` with, run by
# /usr/bin/python3), Node.js with npm (crates/sluice/tests/rhea.rs drives it with the rhea package,
# installed by `npm ci` from crates/sluice/tests/rhea/package-lock.json), pyamqp (the Azure SDKs'
# pure-Python AMQP 1.0 stack, module azure.servicebus._pyamqp, which crates/sluice/tests/pyamqp.rs
# drives it with: azure-servicebus 7.15.0 and its dependencies, pinned in
# crates/sluice/tests/interop/pyamqp-requirements.txt, installed with pip into the virtualenv
# target/pyamqp-venv made by the machine's `python3 -m venv`, a fixed path the tests run its
# Python from; reused while it holds exactly that file's pins) and cargo-nextest.
# Reads ../shared/fuzz-corpus (Qpid Proton's corpora) beside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -d /usr/share/amqp/specs/1-0 ] || ! /usr/bin/python3 -c "import proton" 2>/dev/null ||
  [ ! -f /usr/share/proton/examples/python/tx_send.py ]; then
  echo "installing amqp-specs (the AMQP 1.0 spec as XML), python3-qpid-proton (the interop client) and libqpid-proton11-dev-examples (Proton's examples the tests run unchanged)" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq amqp-specs python3-qpid-proton libqpid-proton11-dev-examples >/dev/null
fi

if [ ! -d crates/sluice/tests/rhea/node_modules/rhea ]; then
  echo "installing rhea (the second interop client) with npm ci in crates/sluice/tests/rhea" >&2
  npm ci --prefix crates/sluice/tests/rhea --no-audit --no-fund --loglevel=error >/dev/null
fi

PYAMQP_VENV=target/pyamqp-venv
PYAMQP_REQUIREMENTS=crates/sluice/tests/interop/pyamqp-requirements.txt
if ! cmp -s "$PYAMQP_REQUIREMENTS" "$PYAMQP_VENV/installed-requirements.txt" ||
  ! "$PYAMQP_VENV/bin/python" -c "import azure.servicebus._pyamqp" 2>/dev/null; then
  echo "installing azure-servicebus (pyamqp, the third interop client) into $PYAMQP_VENV" >&2
  rm -rf "$PYAMQP_VENV"
  python3 -m venv "$PYAMQP_VENV"
  "$PYAMQP_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PYAMQP_REQUIREMENTS"
  cp "$PYAMQP_REQUIREMENTS" "$PYAMQP_VENV/installed-requirements.txt"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi

cargo test --workspace --doc --quiet
cargo nextest run --workspace --all-targets --no-fail-fast "$@"
