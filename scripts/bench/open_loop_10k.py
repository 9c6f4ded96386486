#!/usr/bin/env python3
"""Benchmark 1: open loop at 10k rps against nginx, soakd beside oha (and wrk for max throughput).

Target: nginx, one single-process worker (master_process off), answering POST
/v1/chat/completions with a static non-stream chat completion captured from `soakd mock`
(so soakd classifies it `ok`). nginx is lighter than the mock, which leaves more of the two
cores to the load generator being measured.

Steps, one after the other against the same nginx:
  1. soakd run, constant arrivals at --rate for --duration, stream=false.
  2. oha -q RATE -z DURATION -m POST -d BODY -H 'content-type: application/json' URL.
  3. (optional, --wrk) wrk -t1 -c50 for max throughput, as context.

Reported: achieved rate vs the configured rate (soakd's summary, and requests nginx saw in the
steady window via stub_status), schedule lag p50/p99/max, CPU per request (utime+stime from
/proc/<pid>/stat, whole process lifetime / requests), and the ratio soakd/oha.

    python3 scripts/bench/open_loop_10k.py [--rate 10000] [--duration 30] [--wrk]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402

REQUEST = b.chat_request(False, 16)


def window(proc, t0, t1):
    """CPU seconds and wall seconds between the samples nearest t0 and t1."""
    a, z = proc.sample_at(t0), proc.sample_at(t1)
    return z[1] - a[1], z[0] - a[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--duration", type=int, default=30, help="seconds per tool")
    ap.add_argument("--wrk", action="store_true", help="also run wrk for max throughput")
    ap.add_argument("--scrape-every", type=float, default=1.0,
                    help="seconds between /metrics scrapes of soakd in its steady window (0: none)")
    ap.add_argument("--json", help="write the results here as JSON (for run.sh)")
    args = ap.parse_args()
    rate, dur = args.rate, args.duration

    b.print_machine()
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, REQUEST)
        target = url + "/v1/chat/completions"
        print(f"target: nginx 1 process at {target}, static {len(body)}-byte {ctype} body")

        # 1. soakd
        cfg = b.soakd_config(url, rate, f"{dur}s", "@SUMMARY@",
                             {"stream": False, "max_tokens": 16}, max_in_flight=10000)
        t_start = time.monotonic()
        s = b.Soakd(c, cfg)
        # Steady window: from 3 s in to 1 s before the end, measured at the target too.
        time.sleep(3)
        n0, ng0, t0, th0 = b.nginx_requests(url), nginx.cpu_now(), time.monotonic(), b.thread_stats(s.proc.pid)
        # /metrics scrapes while the load runs (a Prometheus server would do this every 15 s).
        scrapes, steady_end = [], t0 + max(1, dur - 4)
        while args.scrape_every > 0 and time.monotonic() + args.scrape_every < steady_end:
            time.sleep(args.scrape_every)
            scrapes.append(b.scrape_metrics(s.admin))
        time.sleep(max(0.0, steady_end - time.monotonic()))
        n1, ng1, t1, th1 = b.nginx_requests(url), nginx.cpu_now(), time.monotonic(), b.thread_stats(s.proc.pid)
        soakd_threads = b.thread_delta(th0, th1, rate * (t1 - t0), t1 - t0)
        s.wait(dur + 60)
        summ = s.summary()
        cpu_win, wall_win = window(s.proc, t0 - s.proc.t0, t1 - s.proc.t0)
        sent = summ["requests_sent"]
        ok = summ["outcomes"].get("ok", 0)
        lag = summ["latency"]["schedule_lag"]
        soakd = {
            "sent": sent, "ok": ok, "achieved": summ["achieved_rate_avg"],
            "sending_s": summ["sending_seconds"], "dropped": sum(summ["dropped"].values()),
            "target_seen_rps": (n1 - n0 - 1) / (t1 - t0),
            "cpu_total": s.proc.cpu_total, "cpu_per_req": s.proc.cpu_total / max(sent, 1),
            "cpu_win_per_req": cpu_win / (summ["achieved_rate_avg"] * wall_win),
            "cpu_util": cpu_win / wall_win, "nginx_util": (ng1 - ng0) / (t1 - t0),
            "rss": s.proc.peak_rss, "lag": lag, "dur": summ["latency"]["duration"],
        }

        # 2. oha at the same rate
        oha_threads = []

        def oha_window(p):
            time.sleep(3)
            a, ta = b.thread_stats(p.pid), time.monotonic()
            time.sleep(max(1, dur - 4))
            z, tz = b.thread_stats(p.pid), time.monotonic()
            oha_threads.extend(b.thread_delta(a, z, rate * (tz - ta), tz - ta))

        o, rep = b.run_oha(c, ["-q", str(int(rate)), "-z", f"{dur}s", "-m", "POST", "-d", REQUEST,
                               "-H", "content-type: application/json"], target, dur + 60,
                           during=oha_window)
        o_total = b.oha_total_requests(rep)
        o_ok = b.oha_ok_requests(rep)
        oha = {"sent": o_total, "ok": o_ok, "achieved": rep["summary"]["requestsPerSec"],
               "cpu_total": o.cpu_total, "cpu_per_req": o.cpu_total / max(o_total, 1),
               "rss": o.peak_rss, "p99": rep["latencyPercentiles"]["p99"]}

        # 3. wrk max throughput (context only)
        wrk = None
        if args.wrk:
            lua = os.path.join(c.tmp, "post.lua")
            with open(lua, "w") as f:
                f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["content-type"] = "application/json"\n'
                        % json.dumps(REQUEST))
            out = os.path.join(c.tmp, "wrk.txt")
            with open(out, "w") as f:
                w = c.add(b.Proc([b.tool("wrk"), "-t1", "-c50", f"-d{min(dur, 15)}s", "-s", lua, target],
                                 "wrk", stdout=f))
                w.finish(dur + 30)
            text = open(out).read()
            reqs = int(text.split(" requests in ")[0].split()[-1])
            rps = float(text.split("Requests/sec:")[1].split()[0])
            wrk = {"sent": reqs, "rps": rps, "cpu_per_req": w.cpu_total / max(reqs, 1)}

    print()
    print(f"## open loop at {rate:.0f} rps for {dur} s, stream=false, against nginx (1 process)")
    print()
    b.table(["tool", "requests", "ok", "achieved rps", "vs target", "CPU s total", "CPU µs/req",
             "peak RSS MiB"],
            [["soakd", soakd["sent"], soakd["ok"], f"{soakd['achieved']:.1f}",
              f"{(soakd['achieved'] / rate - 1) * 100:+.2f}%", f"{soakd['cpu_total']:.2f}",
              b.us(soakd["cpu_per_req"]), b.mib(soakd["rss"])],
             ["oha", oha["sent"], oha["ok"], f"{oha['achieved']:.1f}",
              f"{(oha['achieved'] / rate - 1) * 100:+.2f}%", f"{oha['cpu_total']:.2f}",
              b.us(oha["cpu_per_req"]), b.mib(oha["rss"])]])
    print()
    print(f"soakd/oha CPU per request: {soakd['cpu_per_req'] / oha['cpu_per_req']:.3f} (goal <= 0.5)")
    print(f"soakd steady window: {soakd['cpu_util'] * 100:.1f}% of one core, "
          f"{b.us(soakd['cpu_win_per_req'])} µs/req; nginx {soakd['nginx_util'] * 100:.1f}% of one core; "
          f"requests seen by nginx {soakd['target_seen_rps']:.1f}/s")
    print(f"soakd sending {soakd['sending_s']:.3f} s, dropped {soakd['dropped']}")
    lag, d = soakd["lag"], soakd["dur"]
    print(f"soakd schedule lag ms: p50 {b.ms(lag['p50'])} p90 {b.ms(lag['p90'])} p99 {b.ms(lag['p99'])} "
          f"p99.9 {b.ms(lag['p999'])} max {b.ms(lag['max'])} (goal p99 < 1 ms)")
    print(f"soakd duration ms: p50 {b.ms(d['p50'])} p99 {b.ms(d['p99'])}; oha p99 {b.ms(oha['p99'])}")
    print()
    print("per thread, steady window (context switches per request):")
    print()
    b.table(["process/thread", "% of one core", "CPU µs/req", "voluntary cs/req", "involuntary cs/req"],
            [["soakd/" + r[0], *r[1:]] for r in soakd_threads] + [["oha/" + r[0], *r[1:]] for r in oha_threads])
    print()
    if wrk:
        print(f"wrk -t1 -c50 max throughput: {wrk['rps']:.0f} rps, {b.us(wrk['cpu_per_req'])} CPU µs/req")
    ok_scrapes = sorted(t for t, _ in scrapes if t is not None)
    if scrapes:
        sz = max(n for _, n in scrapes)
        print(f"/metrics scrapes during the load: {len(ok_scrapes)}/{len(scrapes)} ok, p50 "
              f"{b.ms(ok_scrapes[len(ok_scrapes) // 2] if ok_scrapes else None)} ms, max "
              f"{b.ms(ok_scrapes[-1] if ok_scrapes else None)} ms, {sz} bytes (goal < 100 ms)")
    print(f"loadavg at end: {b.loadavg()}")
    b.write_json(args.json, {
        "bench": "open_loop", "rate": rate, "duration": dur, "soakd": soakd, "oha": oha, "wrk": wrk,
        "soakd_threads": soakd_threads, "oha_threads": oha_threads,
        "scrapes": [t for t, _ in scrapes], "scrape_bytes": max([n for _, n in scrapes] or [0]),
    })


if __name__ == "__main__":
    main()
