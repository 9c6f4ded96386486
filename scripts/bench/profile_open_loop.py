#!/usr/bin/env python3
"""Profiles soakd at a fixed open-loop rate against nginx: `perf record -e cpu-clock -g` on
the running soakd for --seconds from 3 s in, then `perf report --no-children` top entries.

    python3 scripts/bench/profile_open_loop.py [--rate 10000] [--seconds 10] [--stream] [--out DIR]

Needs `perf` (cpu-clock sampling works without hardware counters) and nginx. The report is
printed and kept in DIR (default a temporary directory) as perf.data and report.txt.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--stream", action="store_true", help="64-chunk SSE answers instead of JSON")
    ap.add_argument("--out", default=None)
    ap.add_argument("--top", type=int, default=45)
    args = ap.parse_args()
    out = args.out or os.path.join("/tmp", f"soakd-profile-{os.getpid()}")
    os.makedirs(out, exist_ok=True)
    b.print_machine()
    stream = args.stream
    request = b.chat_request(stream, 64 if stream else 16)
    chunks = "64" if stream else "16"
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, request, chunks=chunks)
        dur = args.seconds + 5
        sc = {"stream": stream, "max_tokens": 64 if stream else 16}
        if stream:
            sc["include_usage"] = True
        s = b.Soakd(c, b.soakd_config(url, args.rate, f"{dur}s", "@SUMMARY@", sc))
        time.sleep(3)
        data = os.path.join(out, "perf.data")
        subprocess.run(["perf", "record", "-e", "cpu-clock", "--call-graph", os.environ.get("PERF_CALLGRAPH", "fp"), "-F", "999", "-p", str(s.proc.pid),
                        "-o", data, "--", "sleep", str(args.seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        s.wait(dur + 60)
        summ = s.summary()
        print(f"soakd: sent {summ['requests_sent']}, outcomes {summ['outcomes']}, CPU "
              f"{s.proc.cpu_total:.2f} s = {s.proc.cpu_total / max(summ['requests_sent'], 1) * 1e6:.1f} µs/req, "
              f"lag p99 {b.ms(summ['latency']['schedule_lag']['p99'])} ms")
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol",
                          "--stdio", "-g", "none", "--percent-limit", "0.4"],
                         capture_output=True, text=True).stdout
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(rep)
    lines = [l for l in rep.splitlines() if l.strip() and not l.startswith("#")]
    print("\n".join(lines[:args.top]))
    comm = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "comm",
                           "--stdio", "-g", "none"], capture_output=True, text=True).stdout
    print("\n".join(l for l in comm.splitlines() if l.strip() and not l.startswith("#")))
    print(f"loadavg at end: {b.loadavg()}; perf data in {data}")


if __name__ == "__main__":
    main()
