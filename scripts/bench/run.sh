#!/usr/bin/env bash
# Runs soakd's benchmarks and prints one summary table (issue 11).
#
#   scripts/bench/run.sh [--install] [--quick] [--repeat N] [--only LIST] [--no-build] [--save]
#
# Side by side (python scripts in this directory, each starting its own nginx or mock on
# 127.0.0.1; soakd and the reference tool back to back in the same script run):
#   open_loop    open_loop_10k.py: CPU per request, rate and schedule lag at 10k rps vs oha,
#                and /metrics scrape times during the load (needs nginx, oha)
#   closed_loop  closed_loop.py: 64 users, no think time, vs oha -c 64 and wrk -c 64
#                (needs nginx, oha, wrk)
#   sse          sse_streams_per_sec.py --rates 10000: CPU per parsed 64-chunk stream vs oha
#                moving the same body (needs nginx, oha)
#   slow         slow_streams_10k.py: memory per open slow stream (soakd's mock only)
#   rss          rss_flat.py: RSS over 10 minutes at 2k rps, soakd and oha side by side
#                (needs nginx, oha; not in the default list: --only "... rss")
# and the Criterion suite (`cargo bench --bench sse --bench hotpath`):
#   criterion
#
# A missing oha, wrk or nginx skips the benchmarks that need it, with a message saying so;
# --install installs them first (apt-get for wrk and nginx-light, `cargo install oha --locked`).
# --quick shortens every run (for a smoke check, not for numbers). --repeat N runs each
# side-by-side benchmark N times; the table shows the range. Results stay in $BENCH_OUT
# (default: a new directory under /tmp), printed at the end, with meta.json (date, machine,
# load, commit, versions) and criterion.json. --save copies them to
# docs/bench/results/<UTC date and time>/ and regenerates BENCHMARKS.md's headline from them
# (`summary.py --headline --write`); commit both.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
install=0 quick=0 repeat=1 build=1 save=0
only="open_loop closed_loop sse slow criterion"
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --quick) quick=1 ;;
    --repeat) repeat="$2"; shift ;;
    --only) only="${2//,/ }"; shift ;;
    --no-build) build=0 ;;
    --save) save=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done

tools_dir="${BENCH_TOOLS:-/work/tools/bin}"
export PATH="$PATH:$tools_dir:$HOME/.cargo/bin:/usr/sbin"
have() { command -v "$1" >/dev/null 2>&1; }

if [ "$install" = 1 ]; then
  missing_apt=()
  have wrk || missing_apt+=(wrk)
  have nginx || missing_apt+=(nginx-light)
  if [ ${#missing_apt[@]} -gt 0 ]; then
    echo "run.sh: installing ${missing_apt[*]} with apt-get"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing_apt[@]}"
  fi
  if ! have oha; then
    echo "run.sh: installing oha with cargo install oha --locked"
    cargo install oha --locked
  fi
fi

out="${BENCH_OUT:-$(mktemp -d /tmp/soakd-bench-results-XXXXXX)}"
mkdir -p "$out"
echo "run.sh: results in $out; load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$build" = 1 ]; then
  (cd "$repo" && cargo build --release --quiet)
fi

skip() { echo "run.sh: SKIPPED $1: $2 not found (PATH, $tools_dir); run with --install to install it"; }
needs() { # needs NAME TOOL...
  local name="$1"; shift
  for t in "$@"; do
    if ! have "$t"; then skip "$name" "$t"; return 1; fi
  done
}
wants() { case " $only " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if [ "$quick" = 1 ]; then
  ol_args=(--rate 10000 --duration 8) cl_args=(--duration 5) sse_args=(--rates 10000 --duration 8)
  slow_args=(--rate 100 --duration 10 --max-in-flight 2000)
  rss_args=(--minutes 2)
else
  ol_args=(--rate 10000 --duration 20) cl_args=(--duration 15) sse_args=(--rates 10000 --duration 20)
  slow_args=(--rate 350 --duration 40)
  rss_args=(--minutes 10)
fi

for i in $(seq 1 "$repeat"); do
  if wants open_loop && needs open_loop nginx oha; then
    python3 "$here/open_loop_10k.py" "${ol_args[@]}" --json "$out/open_loop.$i.json" | tee "$out/open_loop.$i.txt"
  fi
  if wants closed_loop && needs closed_loop nginx oha wrk; then
    python3 "$here/closed_loop.py" "${cl_args[@]}" --json "$out/closed_loop.$i.json" | tee "$out/closed_loop.$i.txt"
  fi
  if wants sse && needs sse nginx oha; then
    python3 "$here/sse_streams_per_sec.py" "${sse_args[@]}" --no-oha-max --json "$out/sse_streams.$i.json" \
      | tee "$out/sse_streams.$i.txt"
  fi
  if wants slow; then
    python3 "$here/slow_streams_10k.py" "${slow_args[@]}" --json "$out/slow_streams.$i.json" | tee "$out/slow_streams.$i.txt"
  fi
  if wants rss && needs rss nginx oha; then
    python3 "$here/rss_flat.py" "${rss_args[@]}" --json "$out/rss_flat.$i.json" | tee "$out/rss_flat.$i.txt"
  fi
done

crit=""
if wants criterion; then
  if [ "$quick" = 1 ]; then
    cargo_args=(-- --warm-up-time 1 --measurement-time 2)
  else
    cargo_args=()
  fi
  (cd "$repo" && cargo bench --bench sse --bench hotpath "${cargo_args[@]}") | tee "$out/criterion.txt"
  crit="$repo/target/criterion"
fi

echo
echo "## summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cpus, load average now $(cut -d' ' -f1-3 /proc/loadavg))"
echo
python3 "$here/summary.py" --record "$out" ${crit:+--criterion "$crit"}
python3 "$here/summary.py" "$out"
echo
echo "run.sh: every script's full output is in $out"
if [ "$save" = 1 ]; then
  if [ "$quick" = 1 ]; then
    echo "run.sh: --quick results are a smoke check, not saved" >&2
  else
    dest="$repo/docs/bench/results/$(date -u +%Y-%m-%dT%H%MZ)"
    mkdir -p "$dest"
    cp "$out"/*.json "$dest"/
    python3 "$here/summary.py" --headline --write
    echo "run.sh: saved to $dest and BENCHMARKS.md's headline regenerated; commit both"
  fi
fi
