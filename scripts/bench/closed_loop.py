#!/usr/bin/env python3
"""Closed loop, 64 connections, no think time: soakd beside oha and wrk, against nginx.

Target: nginx, one single-process worker, answering POST /v1/chat/completions with a static
non-stream chat completion captured from `soakd mock` (as in open_loop_10k.py).

Steps, one after the other against the same nginx, each for --duration s:
  1. soakd run, `[load] model = "closed"`, `users` = --connections, `think_time = "0s"`,
     `ramp_up = "0s"`, stream=false (each user is one request at a time on one connection).
  2. oha --no-tui -c CONNECTIONS -z DURATION -m POST -d BODY (no rate limit).
  3. wrk -t2 -c CONNECTIONS -d DURATION with a POST Lua script.

Reported: requests per second over the whole run (soakd: requests_sent / sending_seconds from
its summary; oha: its requestsPerSec; wrk: its Requests/sec), CPU µs per request (wait4 rusage
at exit / requests), nginx's CPU µs per request while each tool ran (/proc/<pid>/stat before
and after), and soakd's rps as a ratio of oha's and wrk's. --repeat N runs the three N
times, interleaved, and prints each run and the range.

    python3 scripts/bench/closed_loop.py [--connections 64] [--duration 15] [--repeat 1] [--json OUT]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402

REQUEST = b.chat_request(False, 16)


def run_soakd(c, url, conns, dur, name):
    cfg = b.soakd_config(url, 1, f"{dur}s", "@SUMMARY@", {"stream": False, "max_tokens": 16},
                         max_in_flight=conns * 2)
    cfg = cfg.replace('model = "open"\nrate = 1\narrivals = "constant"\n',
                      f'model = "closed"\nusers = {conns}\nthink_time = "0s"\nramp_up = "0s"\n')
    s = b.Soakd(c, cfg, name=name)
    s.wait(dur + 60)
    summ = s.summary()
    sent = summ["requests_sent"]
    return {"requests": sent, "ok": summ["outcomes"].get("ok", 0),
            "rps": sent / max(summ["sending_seconds"], 1e-9),
            "cpu_per_req": s.proc.cpu_total / max(sent, 1), "rss": s.proc.peak_rss}


def run_oha(c, target, conns, dur, name):
    o, rep = b.run_oha(c, ["-c", str(conns), "-z", f"{dur}s", "-m", "POST", "-d", REQUEST,
                           "-H", "content-type: application/json"], target, dur + 60, name=name)
    n = b.oha_total_requests(rep)
    return {"requests": n, "ok": b.oha_ok_requests(rep), "rps": rep["summary"]["requestsPerSec"],
            "cpu_per_req": o.cpu_total / max(n, 1), "rss": o.peak_rss}


def run_wrk(c, target, conns, dur, name):
    lua = os.path.join(c.tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["content-type"] = "application/json"\n'
                % json.dumps(REQUEST))
    out = os.path.join(c.tmp, f"{name}.txt")
    with open(out, "w") as f:
        w = c.add(b.Proc([b.tool("wrk"), "-t2", f"-c{conns}", f"-d{dur}s", "-s", lua, target],
                         name, stdout=f))
        w.finish(dur + 30)
    text = open(out).read()
    reqs = int(text.split(" requests in ")[0].split()[-1])
    rps = float(text.split("Requests/sec:")[1].split()[0])
    non2xx = 0
    if "Non-2xx" in text:
        non2xx = int(text.split("Non-2xx or 3xx responses:")[1].split()[0])
    return {"requests": reqs, "ok": reqs - non2xx, "rps": rps,
            "cpu_per_req": w.cpu_total / max(reqs, 1), "rss": w.peak_rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=int, default=15, help="seconds per tool")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--json", help="write the results here as JSON")
    args = ap.parse_args()
    conns, dur = args.connections, args.duration

    b.print_machine()
    load = [b.loadavg()]
    runs = []
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, REQUEST)
        target = url + "/v1/chat/completions"
        print(f"target: nginx 1 process at {target}, static {len(body)}-byte {ctype} body")
        def nginx_cpu(run):
            # nginx's CPU per request while this tool ran: the shared target's cost of its traffic.
            before = b.cpu_seconds(nginx.pid)
            t = run()
            after = b.cpu_seconds(nginx.pid)
            t["nginx_cpu_per_req"] = (after - before) / t["requests"] if t["requests"] else None
            return t

        for i in range(args.repeat):
            r = {"soakd": nginx_cpu(lambda: run_soakd(c, url, conns, dur, f"soakd-{i}"))}
            r["oha"] = nginx_cpu(lambda: run_oha(c, target, conns, dur, f"oha-{i}"))
            if not args.no_wrk:
                r["wrk"] = nginx_cpu(lambda: run_wrk(c, target, conns, dur, f"wrk-{i}"))
            r["loadavg"] = b.loadavg()
            runs.append(r)
            print(f"  run {i + 1}: soakd {r['soakd']['rps']:.0f} rps, oha {r['oha']['rps']:.0f}"
                  + (f", wrk {r['wrk']['rps']:.0f}" if "wrk" in r else "")
                  + f"; loadavg {r['loadavg']}", flush=True)
    load.append(b.loadavg())

    print()
    print(f"## closed loop, {conns} connections, no think time, {dur} s per tool, nginx (1 process)")
    print()
    rows = []
    for i, r in enumerate(runs):
        for tool in ("soakd", "oha", "wrk"):
            if tool in r:
                t = r[tool]
                rows.append([i + 1, tool, t["requests"], t["ok"], f"{t['rps']:.0f}",
                             b.us(t["cpu_per_req"]), b.us(t["nginx_cpu_per_req"]),
                             b.mib(t["rss"])])
    b.table(["run", "tool", "requests", "ok", "rps", "CPU µs/req", "nginx CPU µs/req",
             "peak RSS MiB"], rows)
    print()
    vs_oha = [r["soakd"]["rps"] / r["oha"]["rps"] for r in runs]
    print(f"soakd/oha rps: {', '.join(f'{x:.3f}' for x in vs_oha)} (goal >= 1.0)")
    if not args.no_wrk:
        vs_wrk = [r["soakd"]["rps"] / r["wrk"]["rps"] for r in runs]
        print(f"soakd/wrk rps: {', '.join(f'{x:.3f}' for x in vs_wrk)}")
    print(f"loadavg start {load[0]}, end {load[1]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bench": "closed_loop", "connections": conns, "duration": dur,
                       "runs": runs, "loadavg": load}, f, indent=1)


if __name__ == "__main__":
    main()
