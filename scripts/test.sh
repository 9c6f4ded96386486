#!/usr/bin/env bash
# Runs every check and test of soakd, installing what the tests need when it is missing:
#   Debian: prometheus (promtool), prometheus-alertmanager (amtool), nginx-light (nginx),
#           chromium (the live page and report tests, tests/page.rs); kubectl must be present
#   PyPI:   kubernetes-validate, grafana-foundation-sdk (the version grafana/generate_dashboards.py
#           pins)
# Usage: scripts/test.sh            (from anywhere in the repository)
#        SOAKD_GATEWAYS=litellm,portkey scripts/test.sh
#                                    also soak those real gateways (gateways/NAME: installed
#                                    from PyPI, npm or Debian), SOAKD_GATEWAYS_MINUTES each
#                                    (default 3), results in target/gateways/results
# Everything the tests start listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found; install Debian packages $* by hand"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

need_cmd() { # need_cmd COMMAND DEBIAN-PACKAGE
  if ! command -v "$1" >/dev/null; then
    log "installing $2 (for $1)"
    apt_install "$2"
  fi
  command -v "$1" >/dev/null || die "$1 still not found after installing $2"
}

need_cmd promtool prometheus
need_cmd prometheus prometheus
need_cmd amtool prometheus-alertmanager
need_cmd prometheus-alertmanager prometheus-alertmanager
need_cmd kubectl kubectl
need_cmd python3 python3
# nginx (tests/transport.rs: TLS and HTTP/2 against a real server). Debian puts it in
# /usr/sbin, which need not be on PATH; the tests look on PATH, then at /usr/sbin/nginx.
# Every test starts its own nginx on free loopback ports with its own config, so a packaged
# nginx service, if one starts, is left alone (as are prometheus' and alertmanager's).
have_nginx() { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }
if ! have_nginx; then
  log "installing nginx-light (for nginx)"
  apt_install nginx-light
fi
have_nginx || die "nginx still not found (PATH, /usr/sbin/nginx) after installing nginx-light"
need_cmd chromium chromium
if ! command -v kubernetes-validate >/dev/null; then
  log "installing kubernetes-validate (pip)"
  python3 -m pip install -q kubernetes-validate || die "pip install kubernetes-validate failed"
fi
command -v kubernetes-validate >/dev/null || die "kubernetes-validate not on PATH after pip install"
# Grafana's SDK, at the version the dashboard generator pins (tests/dashboards.rs runs it).
sdk_req=$(python3 grafana/generate_dashboards.py --requirement)
sdk_have() {
  [ "grafana-foundation-sdk==$(python3 -c 'import importlib.metadata as m
print(m.version("grafana-foundation-sdk"))' 2>/dev/null)" = "$sdk_req" ]
}
if ! sdk_have; then
  log "installing $sdk_req (pip)"
  python3 -m pip install -q "$sdk_req" || die "pip install $sdk_req failed"
fi
sdk_have || die "$sdk_req not importable after pip install"

log "import graph (no cycle between modules)"
python3 scripts/import-graph.py --self-test
python3 scripts/import-graph.py
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
log "cargo test"
# Two tests at a time, through the environment rather than `-- --test-threads`: the Criterion
# benches (harness = false, run once each as a smoke check) reject libtest's flags.
RUST_TEST_THREADS="${SOAKD_TEST_THREADS:-2}" cargo test --all-targets --locked

# The real gateways, only when asked: installing them is heavy (tests/gateways.rs checks their
# manifests and GATEWAYS.md in every run). The test build of soakd drives them (5 rps is light).
if [ -n "${SOAKD_GATEWAYS:-}" ]; then
  for gateway in ${SOAKD_GATEWAYS//,/ }; do
    log "gateway $gateway: scripts/gateways/run.sh $gateway --minutes ${SOAKD_GATEWAYS_MINUTES:-3}"
    SOAKD_BIN="${SOAKD_BIN:-$PWD/target/debug/soakd}" \
      SOAKD_GATEWAYS_RESULTS="$PWD/target/gateways/results" \
      scripts/gateways/run.sh "$gateway" --minutes "${SOAKD_GATEWAYS_MINUTES:-3}"
  done
fi
