#!/usr/bin/env python3
"""The standard programme: one two-sided soak of a gateway, as a `soakd run` config.

Usage:
  programme.py features --soakd BIN            which parts this soakd can run (JSON)
  programme.py config NAME --minutes N --rate R --port P --upstream-port U --run-dir DIR
               --features FILE                  the soakd config (TOML) on stdout

The programme, for a run of N minutes (every time below scales with N; the numbers in
brackets are those of a 30-minute run):
- idle before the load (30 s), then N minutes of load at R requests a second, constant
  arrivals, then a cooldown with no traffic (N/6: 5 min);
- fair weather on every API the gateway serves (each its own scenario, streamed where the API
  streams), plus a unary chat scenario;
- give-ups: a streamed and a unary chat scenario whose every request is cancelled 300 ms after
  its send, while the upstream's answer takes about a second (ttft 150 ms, 40 chunks 20 ms
  apart): the fates (propagated, not propagated with the tokens generated for nobody,
  orphaned) show what the gateway does with a client that leaves;
- storms on the upstream (with a soakd that has [[upstream.storms]]): 429s with
  `Retry-After: 2` on every request from 0.4 N for N/30 (1 min), and a burst of 500s on half
  the requests from 0.6 N for N/90 (20 s); recovery is measured after each;
- the gateway's process tree watched (include_children, PSS, with a soakd that has it), with
  growth windows of N/6 and 0.8 N (5 and 24 min) after a warm-up of N/30 (1 min);
- creep (with a soakd that has it): p99s of the first creep window after the warm-up against
  the last, windows of N/3 (10 min): the first ends before the 429 storm and the last starts
  after the 5xx burst, and each scenario needs 100 samples in a window to be judged (at 3
  requests a second over 8 scenarios, N/3 holds that from N = 18 min; at 5, from N = 11).
Verdicts are recorded, not the point: the gateway's leak verdict does not fail the run, and
error_ratio is 0.5 so that the storms' errors do not either.

A part this soakd cannot run is left out of the config, and `features` says why (which key is
unknown, and the branch it waits for): the run goes on without it and the table says so.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest  # noqa: E402

# The parts of the programme that need a newer soakd: a config snippet only such a soakd
# accepts, and the branch (issue) that brings it.
FEATURES = {
    "storms": {
        "branch": "storms (issue 23)",
        "what": "[[upstream.storms]]: the 429 storm with Retry-After, the 5xx burst, "
                "amplification, ghosts, Retry-After, recovery",
        "toml": '[upstream]\nlisten = "127.0.0.1:1"\n[[upstream.storms]]\nstart = "10s"\n'
                'duration = "5s"\nkind = "status"\nstatus = 429\nretry_after = 2\n',
    },
    "process_tree": {
        "branch": "memory (issue 25)",
        "what": "[[monitor.processes]] include_children: the gateway's process tree, PSS",
        "toml": '[[monitor.processes]]\nname = "probe"\npid = 1\ninclude_children = true\n',
    },
    "memory_arc": {
        "branch": "memory (issue 25)",
        "what": "the memory arc: idle, plateau, recovered, released share",
        "toml": '[run]\nidle = "5s"\ncooldown = "10s"\n[thresholds]\nmin_released_share = 0.0\n',
    },
    "creep": {
        "branch": "creep (issue 26)",
        "what": "creep verdicts: p99 of the first creep window against the last",
        "toml": '[thresholds]\ncreep_window = "20s"\n',
    },
}

BASE = '[run]\nduration = "1m"\n[target]\nurl = "http://127.0.0.1:1"\n'

# What the upstream answers in fair weather: about a second per answer.
MOCK = {"ttft": "150ms", "chunk_delay": "20ms", "chunks": 40}
CANCEL_AFTER = "300ms"
RETRY_AFTER_SECS = 2


def features(soakd):
    """{feature: {"present": bool, "branch", "what", "reason"?}} for this soakd binary (one
    `soakd check-config` per feature, all at once)."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        procs = {}
        for name, f in FEATURES.items():
            path = Path(d) / f"{name}.toml"
            # Merge the snippet's [run] into the base's (TOML forbids a table twice).
            snippet = f["toml"]
            base = BASE
            if snippet.startswith("[run]\n"):
                head, _, rest = snippet.partition("\n[")
                base = base.replace("[run]\n", head + "\n", 1)
                snippet = "[" + rest if rest else ""
            path.write_text(base + snippet)
            procs[name] = subprocess.Popen([soakd, "check-config", str(path)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           text=True)
        for name, f in FEATURES.items():
            _, stderr = procs[name].communicate(timeout=60)
            rc = procs[name].returncode
            entry = {"present": rc == 0, "branch": f["branch"], "what": f["what"]}
            if rc != 0:
                err = (stderr.strip().splitlines() or [f"exit {rc}"])[-1]
                unknown = re.search(r"unknown field `([^`]+)`", err)
                why = f"does not know `{unknown.group(1)}`" if unknown else f"rejects it: {err}"
                entry["reason"] = f"waits for branch {f['branch']}: this soakd {why}"
            out[name] = entry
    return out


def _secs(x):
    return f"{max(1, round(x))}s"


def plan(minutes):
    """The programme's times for a run of `minutes`, in seconds."""
    n = minutes * 60.0
    interval = max(1.0, min(5.0, n / 360))  # a window must hold 16 samples
    return {
        "sample_interval": interval,
        "duration": n,
        "idle": 30.0 if minutes >= 10 else 10.0,
        "cooldown": max(30.0, n / 6),
        "warmup": max(20.0, n / 30),
        "windows": [max(n / 6, 20 * interval), n * 0.8],
        "creep_window": n / 3,
        "storms": [
            {"name": "rate-limited", "start": 0.4 * n, "duration": max(10.0, n / 30),
             "kind": "status", "status": 429, "retry_after": RETRY_AFTER_SECS, "rate": 1.0},
            {"name": "5xx-burst", "start": 0.6 * n, "duration": max(5.0, n / 90),
             "kind": "status", "status": 500, "rate": 0.5},
        ],
    }


def _q(s):
    return json.dumps(s)


def config(m, minutes, rate, port, upstream_port, run_dir, feats):
    p = plan(minutes)
    upstream = f"http://127.0.0.1:{upstream_port}"
    run_dir = Path(run_dir)
    key = m["key"] or ""

    def fill(v):
        return v.replace("{upstream}", upstream).replace("{key}", key)

    lines = [
        f"# The standard programme for {m['name']} ({m['title']}): scripts/gateways/programme.py",
        "# wrote this for one run of scripts/gateways/run.sh; see its docstring.",
        "[run]",
        f'duration = "{_secs(p["duration"])}"',
        f'idle = "{_secs(p["idle"])}"',
        f'cooldown = "{_secs(p["cooldown"])}"',
        'grace = "10s"',
        f"summary_json = {_q(str(run_dir / 'summary.json'))}",
        f"report_html = {_q(str(run_dir / 'report.html'))}",
        "seed = 29",
        "",
        "[target]",
        f'url = "http://127.0.0.1:{port}"',
        'request_timeout = "30s"',
        'stream_timeout = "60s"',
    ]
    if m["key"]:
        lines.append('api_key_env = "SOAKD_GATEWAY_KEY"')
    lines += [
        "",
        "[load]",
        f"rate = {float(rate)}",
        'arrivals = "constant"',
        "",
    ]

    def scenario(name, a, stream, cancel=False):
        out = ["[[scenarios]]", f'name = "{name}"', f'api = "{a["api"]}"',
               f'path = "{a["path"]}"', f'model = "{a["model"]}"', "max_tokens = 64"]
        if not stream:
            out.append("stream = false")
        if a["headers"]:
            hs = ", ".join(f"{_q(k)} = {_q(fill(v))}" for k, v in sorted(a["headers"].items()))
            out.append(f"headers = {{ {hs} }}")
        if cancel:
            out.append(f'cancel = {{ fraction = 1.0, after = "{CANCEL_AFTER}" }}')
        return out + [""]

    short = {"openai": "chat", "openai-responses": "responses",
             "openai-completions": "completions", "openai-embeddings": "embeddings",
             "anthropic": "anthropic"}
    for a in m["apis"]:
        lines += scenario(short[a["api"]], a, manifest.STREAMS[a["api"]])
    chat = m["apis"][0]
    lines += scenario("chat-unary", chat, False)
    lines += scenario("cancel-stream", chat, True, cancel=True)
    lines += scenario("cancel-unary", chat, False, cancel=True)

    lines += ["[mock]"] + [f"{k} = {_q(v)}" for k, v in MOCK.items()] + [""]
    lines += ["[upstream]", f'listen = "127.0.0.1:{upstream_port}"', 'orphan_after = "5s"']
    if m["overhead_header"]:
        lines += [f'overhead_header = "{m["overhead_header"]}"',
                  f'overhead_header_unit = "{m["overhead_header_unit"]}"']
    lines.append("")
    if feats["storms"]["present"]:
        for s in p["storms"]:
            lines += ["[[upstream.storms]]", f'name = "{s["name"]}"',
                      f'start = "{_secs(s["start"])}"', f'duration = "{_secs(s["duration"])}"',
                      f'kind = "{s["kind"]}"', f'status = {s["status"]}', f'rate = {s["rate"]}']
            if "retry_after" in s:
                lines.append(f'retry_after = {s["retry_after"]}')
            lines.append("")

    lines += [
        "[monitor]",
        f'sample_interval = "{_secs(p["sample_interval"])}"',
        f'warmup = "{_secs(p["warmup"])}"',
        "windows = [" + ", ".join(_q(_secs(w)) for w in p["windows"]) + "]",
        "",
        "[[monitor.processes]]",
        f'name = "{m["name"]}"',
        f"pid_file = {_q(str(run_dir / 'gateway.pid'))}",
        "fail_on_leak = false",
    ]
    if m["watch"]["include_children"] and feats["process_tree"]["present"]:
        lines.append("include_children = true")
    lines += ["", "[thresholds]", "error_ratio = 0.5"]
    if feats["creep"]["present"]:
        lines += [f'creep_window = "{_secs(p["creep_window"])}"', "max_creep_ratio = 1.5",
                  'min_creep = "50ms"']
    lines += ["", "[admin]", 'listen = "127.0.0.1:0"', "", "[log]", 'progress_interval = "60s"']
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features")
    f.add_argument("--soakd", required=True)
    c = sub.add_parser("config")
    c.add_argument("name")
    c.add_argument("--minutes", type=float, required=True)
    c.add_argument("--rate", type=float, required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--upstream-port", type=int, required=True)
    c.add_argument("--run-dir", required=True)
    c.add_argument("--features", required=True)
    a = ap.parse_args()
    if a.cmd == "features":
        print(json.dumps(features(a.soakd), indent=2))
        return 0
    try:
        m = manifest.load(a.name)
    except manifest.ManifestError as e:
        print(f"programme: {e}", file=sys.stderr)
        return 1
    feats = json.loads(Path(a.features).read_text())
    sys.stdout.write(config(m, a.minutes, a.rate, a.port, a.upstream_port, a.run_dir, feats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
