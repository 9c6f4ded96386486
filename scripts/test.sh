#!/usr/bin/env bash
# Runs soakd's checks and tests, in two tiers (from anywhere in the repository):
#
#   scripts/test.sh --quick   the import graph, cargo fmt, clippy and the unit tests
#                             (cargo test --lib --bins): installs nothing, needs no root and
#                             starts no server; cargo and python3 are enough.
#   scripts/test.sh           the full suite, which CI runs (.ci/run): the quick tier's checks,
#                             every test (cargo nextest, scheduled by .config/nextest.toml;
#                             cargo test when cargo-nextest is missing), then each Criterion
#                             bench once as a smoke check. It installs what the tests need
#                             when it is missing:
#     Debian: prometheus (promtool), prometheus-alertmanager (amtool), nginx-light (nginx),
#             chromium (the live page and report tests, tests/page.rs); kubectl must be present
#     PyPI:   kubernetes-validate, grafana-foundation-sdk (the version
#             grafana/generate_dashboards.py pins)
#
#   SOAKD_GATEWAYS=litellm,portkey scripts/test.sh
#                             also soak those real gateways (gateways/NAME: installed from
#                             PyPI, npm or Debian), SOAKD_GATEWAYS_MINUTES each (default 3),
#                             results in target/gateways/results
#
# SOAKD_TEST_THREADS sets how many tests run at once (nextest: 5, see .config/nextest.toml;
# cargo test: 2). Everything the tests start listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) die "usage: scripts/test.sh [--quick]" ;;
esac

checks() {
  command -v python3 >/dev/null || die "python3 not found (scripts/import-graph.py needs it)"
  log "import graph (no cycle between modules)"
  python3 scripts/import-graph.py --self-test
  python3 scripts/import-graph.py
  log "BENCHMARKS.md's headline is what docs/bench/results gives"
  python3 scripts/bench/summary.py --headline --check
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy --all-targets -- -D warnings"
  cargo clippy --all-targets --locked -- -D warnings
}

if [ "$quick" = 1 ]; then
  checks
  log "unit tests (cargo test --lib --bins)"
  RUST_TEST_THREADS="${SOAKD_TEST_THREADS:-2}" cargo test --lib --bins --locked
  exit 0
fi

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

checks
if cargo nextest --version >/dev/null 2>&1; then
  log "tests (cargo nextest run: unit and integration tests, scheduled by .config/nextest.toml)"
  cargo nextest run --lib --bins --tests --locked \
    ${SOAKD_TEST_THREADS:+--test-threads "$SOAKD_TEST_THREADS"}
  log "benches, each once as a smoke check (cargo test --benches)"
  cargo test --benches --locked
else
  log "tests (cargo test; install cargo-nextest to run them concurrently in a third of the time)"
  # Through the environment rather than `-- --test-threads`: the Criterion benches
  # (harness = false, run once each as a smoke check) reject libtest's flags.
  RUST_TEST_THREADS="${SOAKD_TEST_THREADS:-2}" cargo test --all-targets --locked
fi

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
