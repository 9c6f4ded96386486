#!/usr/bin/env bash
# The standard programme against one gateway: install it, start it in front of soakd's upstream,
# run one two-sided soak through it, stop it, and record the results.
#
# Usage: scripts/gateways/run.sh NAME [--minutes N] [--rate RPS]
#   NAME        a folder of gateways/ (gateways/NAME/gateway.toml; `ls gateways`)
#   --minutes   minutes of load (default 30; idle, drain and cooldown come on top: about +20 %)
#   --rate      requests a second (default 3: what LiteLLM keeps up with on a shared 2-core VM)
# Env:
#   SOAKD_GATEWAY_VERSION  install this version instead of the manifest's pin (PyPI, npm)
#   SOAKD_BIN              the soakd binary to use (default: cargo build --release, then
#                          target/release/soakd)
#   SOAKD_GATEWAYS_RESULTS write the results there instead of results/gateways (GATEWAYS.md is
#                          then left alone: scripts/test.sh's SOAKD_GATEWAYS runs do this)
#
# What the soak is: scripts/gateways/programme.py. What a gateway folder holds:
# scripts/gateways/manifest.py. Everything listens on and talks to 127.0.0.1 only; the
# gateway's sockets are watched for any other address (scripts/gateways/netwatch.py).
#
# Writes results/gateways/NAME/{summary.json,summary.txt,run.json} (committed) and
# report.html (git-ignored), then regenerates GATEWAYS.md (scripts/gateways/table.py).
# Scratch (the generated configs, logs, pid files) is in target/gateways/NAME/.
# Exit: 0 when the soak ran and measured the gateway (whatever its verdict: soakd's exit code
# is in run.json), 1 when it could not (install, start, soakd failing to run, or a gateway that
# never reached the upstream or answered nothing), 2 on bad usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# All of it in one function, read whole before it runs: editing this file during a 30-minute
# soak cannot change what the running soak does next.
main() {

usage() { sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'scripts/gateways/run.sh: %s\n' "$*" >&2; exit 1; }

name="" minutes=30 rate=3
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) [ $# -ge 2 ] || usage; minutes=$2; shift 2 ;;
    --rate) [ $# -ge 2 ] || usage; rate=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [ -z "$name" ] || usage; name=$1; shift ;;
  esac
done
[ -n "$name" ] || usage
python3 -c 'import sys; n = float(sys.argv[1]); sys.exit(0 if n >= 1 else 1)' "$minutes" 2>/dev/null \
  || die "--minutes $minutes: a number of minutes, at least 1"
python3 -c 'import sys; n = float(sys.argv[1]); sys.exit(0 if 0 < n <= 1000 else 1)' "$rate" 2>/dev/null \
  || die "--rate $rate: requests a second, above 0 and at most 1000"

py=scripts/gateways
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "python3 3.11 or later is needed (tomllib): $(python3 --version 2>&1)"
python3 $py/manifest.py check "$name" >/dev/null || exit 1
eval "$(python3 $py/manifest.py shell "$name")"
version=${SOAKD_GATEWAY_VERSION:-$GW_VERSION}
gw=$root/gateways/$name
install_dir=$gw/installed
run_dir=$root/target/gateways/$name
results_base=${SOAKD_GATEWAYS_RESULTS:-$root/results/gateways}
results=$results_base/$name
running=$root/target/gateways/.running

# The commit the soak runs from, read now: commits made during a 30-minute soak are not it.
# Modified means a tracked file differs from it, other than the harness's outputs (the results
# and GATEWAYS.md, which a run of another gateway just finished may have rewritten).
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$([ -z "$(git status --porcelain --untracked-files=no -- . ':!results/gateways' \
  ':!GATEWAYS.md' 2>/dev/null)" ] && echo false || echo true)
if [ -n "${SOAKD_BIN:-}" ]; then
  soakd=$SOAKD_BIN
  built=given
else
  log "building soakd (cargo build --release)"
  cargo build --release --locked --quiet
  soakd=$root/target/release/soakd
  built=release
fi
[ -x "$soakd" ] || die "soakd binary $soakd not found"

log "installing $name ($GW_SOURCE $GW_PACKAGE${version:+ $version})"
installed=$(env INSTALL_DIR="$install_dir" VERSION="$version" "${GW_PINS[@]}" "$gw/install" | tail -n 1) \
  || die "gateways/$name/install failed"
[ -n "$installed" ] || die "gateways/$name/install printed no version"
log "installed: $name $installed"

rm -rf "$run_dir"
mkdir -p "$run_dir" "$results" "$running"
python3 $py/programme.py features --soakd "$soakd" >"$run_dir/features.json"
python3 - "$run_dir/features.json" <<'EOF' >&2
import json, sys
for name, f in json.load(open(sys.argv[1])).items():
    if not f["present"]:
        print(f"==> left out: {f['what']}: {f['reason']}")
EOF

read -r port upstream_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
upstream=http://127.0.0.1:$upstream_port
python3 $py/programme.py config "$name" --minutes "$minutes" --rate "$rate" --port "$port" \
  --upstream-port "$upstream_port" --run-dir "$run_dir" --features "$run_dir/features.json" \
  >"$run_dir/soakd.toml"
check=$(SOAKD_GATEWAY_KEY=$GW_KEY "$soakd" check-config "$run_dir/soakd.toml" 2>&1) \
  || die "the generated config $run_dir/soakd.toml is not valid: $check"

pid_file=$run_dir/gateway.pid
netwatch_pid=""
cleanup() {
  if [ -f "$pid_file" ]; then
    PID_FILE=$pid_file RUN_DIR=$run_dir "$gw/stop" || true
  fi
  if [ -n "$netwatch_pid" ]; then
    kill -TERM "$netwatch_pid" 2>/dev/null || true
    wait "$netwatch_pid" 2>/dev/null || true
    netwatch_pid=""
  fi
  rm -f "$running/$name"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Other runs of this script at the same time (their markers, with a live pid).
others() {
  local f
  for f in "$running"/*; do
    [ -e "$f" ] || continue
    [ "$(basename "$f")" = "$name" ] && continue
    kill -0 "$(cat "$f")" 2>/dev/null && basename "$f"
  done
  return 0
}
echo $$ >"$running/$name"
concurrent=$(others)

log "starting $name on 127.0.0.1:$port, provider $upstream"
env "${GW_ENV[@]}" INSTALL_DIR="$install_dir" RUN_DIR="$run_dir" PORT="$port" \
  UPSTREAM_URL="$upstream" PID_FILE="$pid_file" KEY="$GW_KEY" "$gw/start" \
  || die "gateways/$name/start failed: $(tail -n 20 "$run_dir/gateway.log" 2>/dev/null)"
# The gateway's sockets, from its start (a fetch at start-up counts too) to its stop.
python3 $py/netwatch.py "$pid_file" "$run_dir/network.json" &
netwatch_pid=$!
python3 - "$pid_file" "$port" "$GW_READY_PATH" "$run_dir/gateway.log" <<'EOF' || die "$name did not become ready"
import os, socket, sys, time, urllib.request, urllib.error
pid_file, port, path, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    pid = open(pid_file).read().strip()
    if not os.path.exists(f"/proc/{pid}"):
        sys.exit("the gateway exited:\n" + "".join(open(log).readlines()[-20:]))
    try:
        if path:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                if r.status < 500:
                    sys.exit(0)
        else:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            sys.exit(0)
    except (OSError, urllib.error.URLError):
        pass
    time.sleep(0.5)
sys.exit("not ready within 180 s:\n" + "".join(open(log).readlines()[-20:]))
EOF
log "$name is ready"

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "soaking $name: $minutes min at $rate rps (soakd config: $run_dir/soakd.toml, log: $run_dir/soakd.log)"
set +e
SOAKD_GATEWAY_KEY=$GW_KEY NO_COLOR=1 "$soakd" run --config "$run_dir/soakd.toml" \
  >"$run_dir/summary.txt" 2>"$run_dir/soakd.log"
soakd_rc=$?
set -e
ended=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
concurrent=$(printf '%s\n%s\n' "$concurrent" "$(others)" | sort -u | sed '/^$/d')
cleanup
trap - EXIT

case $soakd_rc in
  0 | 1) ;;
  *) tail -n 30 "$run_dir/soakd.log" >&2; die "soakd run exited $soakd_rc (not a verdict)" ;;
esac
[ -s "$run_dir/summary.json" ] || die "soakd wrote no summary JSON"
# A soak that measured nothing is a failed run, not a result.
python3 - "$run_dir/summary.json" <<'EOF' || die "the soak measured nothing: $run_dir/summary.txt"
import json, sys
s = json.load(open(sys.argv[1]))
joined = sum(x["joined"] for x in s["proxy"]["scenarios"] if x["name"] != "untagged")
ok = s["outcomes"].get("ok", 0)
if joined == 0 or ok == 0:
    sys.exit(f"requests joined on both sides: {joined}, answered ok: {ok}")
EOF

cp "$run_dir/summary.json" "$run_dir/summary.txt" "$results/"
cp "$run_dir/report.html" "$results/report.html" 2>/dev/null || true
python3 $py/record.py --name "$name" --installed "$installed" --minutes "$minutes" --rate "$rate" \
  --started "$started" --ended "$ended" --load-start "$load_start" --load-end "$load_end" \
  --soakd-exit "$soakd_rc" --features "$run_dir/features.json" --network "$run_dir/network.json" \
  --concurrent "$(echo $concurrent)" --config "$run_dir/soakd.toml" --commit "$commit" \
  --dirty "$dirty" --binary "$built" >"$results/run.json"
if [ "$results_base" = "$root/results/gateways" ]; then
  python3 $py/table.py
  log "results in results/gateways/$name/ (report.html beside them); GATEWAYS.md regenerated"
else
  log "results in $results (GATEWAYS.md left alone)"
fi
cat "$results/summary.txt"
}

# One line: bash reads a script as it runs it, so after main it would read on from where this
# line ended, in whatever the file holds by then (an edit during a soak gave a syntax error).
main "$@"; exit $?
