#!/usr/bin/env bash
# Seeds and runs the sluice-codec fuzz targets.
#
#   bash fuzz/run.sh                      # every target, FUZZ_SECONDS (default 20) each
#   FUZZ_SECONDS=300 bash fuzz/run.sh roundtrip frame_decoder
#
# Seeds fuzz/corpus/<target>/ from Proton's corpora (../shared/fuzz-corpus/proton beside the
# repository, or $PROTON_CORPUS) and from crates/codec/tests/regressions/, then runs each target
# with libFuzzer. Crashes land in fuzz/artifacts/<target>/; see fuzz/README.md for what to do.
# Exits non-zero if any target found a crash.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
proton="${PROTON_CORPUS:-$repo/../shared/fuzz-corpus/proton}"
regressions="$repo/crates/codec/tests/regressions"
seconds="${FUZZ_SECONDS:-20}"
all_targets=(frame_decoder type_decoder message_scan roundtrip engine_server core_commands sasl_exchange selector)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

# cargo-fuzz drives nightly-only rustc flags (sanitizers, coverage); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

if [ ! -d "$proton" ]; then
    echo "run.sh: Proton's corpus is not at $proton: seeding from regressions only" >&2
fi

# Copies every regular file under the given folders into a target's corpus (libFuzzer reads a
# flat folder; names are kept, prefixed by their origin so equal names cannot collide).
seed() {
    local target="$1"
    shift
    local dest="$here/corpus/$target"
    mkdir -p "$dest"
    local src
    for src in "$@"; do
        [ -d "$src" ] || continue
        local tag
        tag="$(basename "$(dirname "$src")")-$(basename "$src")"
        find "$src" -type f ! -name '*.md' -print0 |
            while IFS= read -r -d '' f; do
                cp -f "$f" "$dest/$tag-$(basename "$f")"
            done
    done
}

# Writes a few selectors, alone and each before one of Proton's messages, into a corpus.
seed_selectors() {
    local dest="$1" msgs="$2" i=0 text
    local selectors=("colour = 'green' AND weight > 5" "a LIKE 'x\\_%' ESCAPE '\\'"
        "n BETWEEN 1 AND 10 OR s IN ('a', 'b')" "JMSPriority > 4 AND x IS NOT NULL"
        "NOT (a + b * 2 <> c / 3)" "0x1F = 31 AND 017 = 15 AND 1.5e1 = 15")
    for text in "${selectors[@]}"; do
        i=$((i + 1))
        printf '%s' "$text" >"$dest/seed-$i"
        local m
        m="$(find "$msgs" -type f -print -quit 2>/dev/null)"
        if [ -n "$m" ]; then
            { printf '%s\0' "$text"; cat "$m"; } >"$dest/seed-$i-message"
        fi
    done
}

messages=("$proton/message-decode/corpus" "$proton/message-decode/crash")
cd "$here"
status=0
for target in "${targets[@]}"; do
    case "$target" in
        frame_decoder | engine_server)
            seed "$target" "$proton/connection-driver/corpus" "$proton/connection-driver/crash" "$regressions"
            ;;
        type_decoder | message_scan | roundtrip)
            seed "$target" "${messages[@]}" "$regressions"
            # The minimized-* files sit directly in message-decode/.
            if [ -d "$proton/message-decode" ]; then
                find "$proton/message-decode" -maxdepth 1 -type f -name 'minimized-*' \
                    -exec cp -f {} "corpus/$target/" \;
            fi
            ;;
        selector)
            # A selector's text, a zero byte, then a message: seeded with a few selectors,
            # alone and before one of Proton's messages.
            mkdir -p "corpus/$target"
            seed_selectors "corpus/$target" "${messages[0]}"
            ;;
        core_commands | sasl_exchange)
            # Commands or SASL messages, not AMQP wire bytes: it starts from nothing and grows
            # its own corpus.
            mkdir -p "corpus/$target"
            ;;
        *)
            echo "run.sh: unknown target $target (known: ${all_targets[*]})" >&2
            exit 2
            ;;
    esac
    echo "=== $target: $(find "corpus/$target" -type f | wc -l) seeds, ${seconds}s"
    if ! cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1; then
        echo "=== $target: FAILED, see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
