#!/usr/bin/env python3
"""Benchmark 6: the live page's answer time while soakd runs a high rate against nginx.

Target: nginx (one process, static non-stream chat completion captured from `soakd mock`, as in
benchmark 1). soakd runs open loop, constant arrivals, at --rate for --duration, watching the
nginx process too (so `/series` carries two processes with fits), and writes the HTML report.

From 5 s in until 2 s before the end, a client GETs `/series`, `/`, `/status`,
`/assets/uPlot.iife.min.js` and `/healthz` (a constant answer: the control, showing what the
machine's scheduling alone costs) in turn, one request every --every seconds, each on a new
connection, and records the time from connect to the last byte. Reported per path: count,
p50 / p90 / p99 / max in ms and the body size; plus soakd's achieved rate and schedule lag (to
show the page did not disturb the load) and the size of the report written at the end.

    python3 scripts/bench/page_latency.py [--rate 10000] [--duration 40] [--every 0.1]
"""

import argparse
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402

REQUEST = b.chat_request(False, 16)
PATHS = ["/series", "/", "/status", "/assets/uPlot.iife.min.js", "/healthz"]


def timed_get(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
        status = r.status
    return time.perf_counter() - t, status, len(body)


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--duration", type=int, default=40)
    ap.add_argument("--every", type=float, default=0.1, help="seconds between page requests")
    args = ap.parse_args()

    b.print_machine()
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, REQUEST)
        report = os.path.join(c.tmp, "report.html")
        extra = f"""
[monitor]
sample_interval = "1s"
warmup = "0s"
windows = ["16s", "30s"]

[[monitor.processes]]
name = "nginx"
pid = {nginx.pid}
"""
        cfg = b.soakd_config(url, args.rate, f"{args.duration}s", "@SUMMARY@",
                             {"stream": False, "max_tokens": 16}, max_in_flight=10000, extra=extra)
        cfg = cfg.replace('summary_json = "@SUMMARY@"',
                          f'summary_json = "@SUMMARY@"\nreport_html = "{report}"')
        s = b.Soakd(c, cfg)
        time.sleep(5)
        times = {p: [] for p in PATHS}
        sizes = {}
        end = time.monotonic() + args.duration - 7
        i = 0
        while time.monotonic() < end:
            path = PATHS[i % len(PATHS)]
            i += 1
            dt, status, n = timed_get(s.admin + path)
            if status != 200:
                b.die(f"GET {path}: {status}")
            times[path].append(dt)
            sizes[path] = n
            time.sleep(args.every)
        s.wait(args.duration + 60)
        summ = s.summary()
        report_bytes = os.path.getsize(report) if os.path.exists(report) else None

    print(f"\nloadavg at end {b.loadavg()}")
    print(f"soakd: {summ['requests_sent']} sent, achieved {summ['achieved_rate_avg']:.1f} rps "
          f"(target {args.rate:.0f}), dropped {sum(summ['dropped'].values())}, "
          f"schedule lag p99 {summ['latency']['schedule_lag']['p99'] * 1e3:.2f} ms")
    print("\n| path | requests | p50 ms | p90 ms | p99 ms | max ms | body bytes |")
    print("|---|---|---|---|---|---|---|")
    for p in PATHS:
        t = [x * 1e3 for x in times[p]]
        print(f"| `{p}` | {len(t)} | {pct(t, .5):.2f} | {pct(t, .9):.2f} | {pct(t, .99):.2f} | "
              f"{max(t):.2f} | {sizes[p]} |")
    print(f"\nreport: {report_bytes} bytes")


if __name__ == "__main__":
    main()
