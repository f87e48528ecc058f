# benches/lib.sh: what the bench scripts share (sourced, not run). Expects ROOT, OUT, SLUICE
# and CONFIG set; starts at most one broker at a time (BROKER_PID), which stop_broker stops.

log() { echo "$(date +%T) $*" >&2; }
die() { log "error: $*"; exit 1; }

BROKER_PID=""
stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

# build_sluice: the release build the scripts measure.
build_sluice() {
  log "building Sluice (cargo build --release -p sluice)"
  cargo build --release -p sluice --manifest-path "$ROOT/Cargo.toml" >"$OUT/build.log" 2>&1 \
    || die "the build failed (see $OUT/build.log)"
}

# start_sluice DATA_DIR [ARGS...]: starts Sluice on a free loopback port; sets BROKER_PID, ADDR.
# DATA_DIR "-": no data directory (every message in memory, no journal).
start_sluice() {
  local data=$1; shift
  local dir=(--data-dir "$data")
  [ "$data" = - ] && dir=()
  mkdir -p "$OUT/tmp"
  : >"$OUT/tmp/sluice.out"
  "$SLUICE" serve --config "$CONFIG" --amqp 127.0.0.1:0 --no-http "${dir[@]}" --log-format json "$@" \
    >"$OUT/tmp/sluice.out" 2>>"$OUT/sluice.log" &
  BROKER_PID=$!
  ADDR=""
  for _ in $(seq 600); do
    ADDR=$(sed -n 's/^listening on //p' "$OUT/tmp/sluice.out")
    [ -n "$ADDR" ] && return 0
    kill -0 "$BROKER_PID" 2>/dev/null || die "sluice stopped (see $OUT/sluice.log)"
    sleep 0.05
  done
  die "sluice did not listen within 30 s"
}

# bench NAME URL ARGS...: one `sluice bench` run against the running broker, with BENCH_ARGS
# (if set) before ARGS; its JSON goes to runs/NAME.json.
bench() {
  local name=$1 url=$2; shift 2
  mkdir -p "$OUT/runs"
  "$SLUICE" bench "$url" ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} --pid "$BROKER_PID" --json "$@" \
    >"$OUT/runs/$name.json" 2>"$OUT/runs/$name.err" || true
  jq -e . "$OUT/runs/$name.json" >/dev/null 2>&1 || die "run $name gave no JSON (see $OUT/runs/$name.err)"
}
