#!/usr/bin/env bash
# Runs one cargo-fuzz target of fuzz/ for SECONDS and prints how many inputs it ran.
#
#   scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh h1_diff 600
#
# Targets (differential: any disagreement is a crash, saved under fuzz/artifacts/TARGET/):
#   h1_diff    the fast path's HTTP/1.1 response reading against hyper's client connection
#   sse_diff   the incremental SSE reader against a whole-body reference reader
#   expo_diff  the Prometheus exposition parser against a grammar-first reference
#
# Needs a nightly toolchain (cargo-fuzz builds with sanitizers) and cargo-fuzz, which it
# installs with `cargo install cargo-fuzz` when missing. Without nightly, or when cargo-fuzz
# cannot be installed, it says so and exits 2: never a silent skip. The corpus grows in
# fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET holds the committed seeds. Extra
# arguments after SECONDS go to libFuzzer (e.g. -jobs=2). Every crash becomes a case of the
# corpus tests (src/client/corpus_tests.rs, or the parser's own unit tests).
set -euo pipefail

TARGETS="h1_diff sse_diff expo_diff"
die() { echo "fuzz.sh: $*" >&2; exit 2; }

[[ $# -ge 2 ]] || die "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer args...] (targets: $TARGETS)"
target=$1 seconds=$2
shift 2
[[ " $TARGETS " == *" $target "* ]] || die "unknown target '$target' (targets: $TARGETS)"
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive whole number, not '$seconds'"

cargo +nightly --version >/dev/null 2>&1 \
  || die "no nightly toolchain: cargo-fuzz needs one (rustup toolchain install nightly)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked >&2 || die "cargo-fuzz is missing and could not be installed"
fi

cd "$(dirname "$0")/../fuzz"
mkdir -p "corpus/$target" "artifacts/$target"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$seconds" -print_final_stats=1 "$@" 2>&1 | tee "$log" || status=$?
runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
# libFuzzer prints "Done N runs in S second(s)" only when the time ran out; a crash stops it
# earlier, and then the elapsed time is not the time asked for.
took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{s += $5} END {print s + 0}')
if [ "$status" = 0 ]; then
  echo "fuzz.sh: $target ran $runs inputs in ${took}s (asked ${seconds}s), no crash"
else
  echo "fuzz.sh: $target stopped (exit $status) after $runs inputs, before ${seconds}s: see the crash in fuzz/artifacts/$target/"
fi
exit "$status"
