#!/usr/bin/env python3
"""Benchmark 7: the cost of the two-sided soak to soakd itself.

Two runs, one after the other, of --minutes each at --rate rps (constant arrivals, streamed
chat answers of 8 chunks 20 ms apart), through the same nginx reverse proxy (one worker,
HTTP/1.1 keep-alive to its upstream, buffering off):

  one-sided:  soakd ──▶ nginx ──▶ `soakd mock` (a separate process)
  two-sided:  soakd ──▶ nginx ──▶ soakd's own upstream ([upstream] listen, in-process)

For each run: soakd's RSS at checkpoints (10 s, 1 min, 5 min, end), and its CPU per request
from the per-thread counters (/proc/<pid>/task/*/stat) over the steady window (3 s after the
start to 1 s before the end). In the two-sided run the threads named `soakd-upstream` (the
upstream's runtime, which does the mock's work the one-sided run pays in another process)
are excluded, so the two numbers compare what soakd's client side costs with and without the
tagging, marker scanning and joining. Goal (issue 8): RSS flat, and CPU per request at most
20 % above the one-sided run.

    python3 scripts/bench/two_sided.py [--rate 2000] [--minutes 10]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402


def nginx_proxy(cleanup, upstream_port, name):
    def servers(root, port):
        return f"""    upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{port} backlog=8192 reuseport;
        location /v1/ {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}"""

    p, port = b.run_nginx(cleanup, name, servers)
    return p, f"http://127.0.0.1:{port}"


MOCK = ["--ttft", "20ms", "--chunk-delay", "20ms", "--chunks", "8"]
MOCK_TOML = '[mock]\nttft = "20ms"\nchunk_delay = "20ms"\nchunks = 8\n'


def soak(cleanup, name, target, rate, secs, extra):
    cfg = b.soakd_config(target, rate, f"{secs}s", "@SUMMARY@", {"stream": True, "max_tokens": 8},
                         extra=extra)
    s = b.Soakd(cleanup, cfg, name=name)
    pid = s.proc.popen.pid
    checkpoints = [t for t in (10, 60, 300) if t < secs - 2] + [secs - 2]
    rss, start = {}, time.monotonic()
    first = last = None
    for t in sorted(set(checkpoints + [3, secs - 1])):
        time.sleep(max(0.0, start + t - time.monotonic()))
        if t == 3:
            first = (time.monotonic(), b.thread_stats(pid), s.metric("soakd_requests_total"))
        if t == secs - 1:
            last = (time.monotonic(), b.thread_stats(pid), s.metric("soakd_requests_total"))
        if t in checkpoints:
            rss[t] = b.status_bytes(pid, "VmRSS")
    s.wait(secs + 60)
    summary = s.summary()
    (t0, a, r0), (t1, z, r1) = first, last
    reqs = (r1 or 0) - (r0 or 0)
    cpu = {c: z[c][0] - a.get(c, [0.0])[0] for c in z}
    return {
        "summary": summary,
        "rss": rss,
        "requests": reqs,
        "secs": t1 - t0,
        "cpu_all": sum(cpu.values()),
        "cpu_client": sum(v for c, v in cpu.items() if c != "soakd-upstream"),
        "cpu_upstream": cpu.get("soakd-upstream", 0.0),
        "threads": b.thread_delta(a, z, max(reqs, 1), t1 - t0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--minutes", type=float, default=10)
    args = ap.parse_args()
    secs = int(args.minutes * 60)
    b.print_machine()
    with b.Cleanup() as cleanup:
        mock, mock_url = b.start_mock(cleanup, MOCK)
        _, one_url = nginx_proxy(cleanup, int(mock_url.rsplit(":", 1)[1]), "nginx-one")
        one = soak(cleanup, "one-sided", one_url, args.rate, secs, "")
        mock.stop()
        up = b.free_port()
        _, two_url = nginx_proxy(cleanup, up, "nginx-two")
        two = soak(cleanup, "two-sided", two_url, args.rate, secs,
                   f'[upstream]\nlisten = "127.0.0.1:{up}"\n{MOCK_TOML}')
    rows = []
    for name, r in (("one-sided", one), ("two-sided", two)):
        s = r["summary"]
        per = r["requests"] or 1
        rows.append([
            name,
            f"{s['achieved_rate_avg']:.1f}",
            " / ".join(b.mib(r["rss"][t]) for t in sorted(r["rss"])),
            b.us(r["cpu_client"] / per),
            b.us(r["cpu_upstream"] / per),
            str(s["outcomes"].get("ok", 0)),
        ])
    b.table(["run", "achieved rps", "soakd RSS MiB at " + "/".join(f"{t}s" for t in sorted(one["rss"])),
             "CPU µs/req (client side)", "CPU µs/req (soakd-upstream)", "ok"], rows)
    ratio = (two["cpu_client"] / max(two["requests"], 1)) / (one["cpu_client"] / max(one["requests"], 1))
    print(f"two-sided / one-sided CPU per request (client side): {ratio:.2f} (goal ≤ 1.20)")
    for name, r in (("one-sided", one), ("two-sided", two)):
        print(f"\n{name} threads:")
        b.table(["thread", "% core", "CPU µs/req", "vol cs/req", "invol cs/req"], r["threads"])
    p = two["summary"].get("proxy", {})
    if p:
        print("\ntwo-sided proxy measures (nginx): added p50 request {} ms, first token {} ms, chunk {} ms; joined {}".format(
            b.ms(p["added"]["request"]["p50"]), b.ms(p["added"]["first_token"]["p50"]),
            b.ms(p["added"]["chunk"]["p50"]), sum(s["joined"] for s in p["scenarios"])))
    b.print_machine()


if __name__ == "__main__":
    main()
