#!/usr/bin/env python3
"""Benchmark 4: SSE streams per second with full parsing, against a stream answered at once.

Target: nginx, one single-process worker, answering POST /v1/chat/completions with a static
text/event-stream body captured from `soakd mock --chunks 64 --ttft 0ms --chunk-delay 0ms`
(role chunk, 64 content chunks, finish chunk, usage chunk, `data: [DONE]`). nginx sends the
whole body at once, so the true time to first token is the response time: well under 1 ms.

For each --rates value: soakd open loop (constant arrivals, stream=true, max_tokens 64) for
--duration s, reporting achieved streams/s, completed streams, CPU µs per stream (steady window,
utime+stime from /proc/<pid>/stat), TTFT p50/p99, duration p50/p99, schedule lag p99. Then oha
moves the same body: at the same rate (-q) for CPU per request, and at max throughput (-z only,
-c 50) as a reference; oha reads the body but parses nothing.

    python3 scripts/bench/sse_streams_per_sec.py [--rates 5000,10000,15000] [--duration 20]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402

REQUEST = b.chat_request(True, 64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="5000,10000,15000")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--no-oha-rated", action="store_true", help="skip oha at the same rates")
    ap.add_argument("--no-oha-max", action="store_true", help="skip oha at max throughput")
    ap.add_argument("--json", help="write the results here as JSON (for run.sh)")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    dur = args.duration

    b.print_machine()
    rows, oha_rows = [], []
    with b.Cleanup() as c:
        nginx, url, ctype, body = b.nginx_with_mock_answer(c, REQUEST, chunks=64)
        frames = body.count(b"data: ")
        target = url + "/v1/chat/completions"
        print(f"target: nginx 1 process, static {len(body)}-byte {ctype} body, {frames} SSE frames")
        for i, rate in enumerate(rates):
            cfg = b.soakd_config(url, rate, f"{dur}s", "@SUMMARY@",
                                 {"stream": True, "max_tokens": 64, "include_usage": True},
                                 max_in_flight=10000)
            s = b.Soakd(c, cfg, name=f"soakd-{i}")
            time.sleep(3)
            c0, ng0, t0 = s.proc.cpu_now(), nginx.cpu_now(), time.monotonic()
            n0 = s.metric("soakd_requests_total")
            time.sleep(max(1, dur - 4))
            c1, ng1, t1 = s.proc.cpu_now(), nginx.cpu_now(), time.monotonic()
            n1 = s.metric("soakd_requests_total")
            s.wait(dur + 60)
            summ = s.summary()
            lat = summ["latency"]
            rows.append({
                "rate": rate, "sent": summ["requests_sent"], "achieved": summ["achieved_rate_avg"],
                "completed": summ["streams"].get("completed", 0), "ok": summ["outcomes"].get("ok", 0),
                "outcomes": summ["outcomes"], "dropped": sum(summ["dropped"].values()),
                "finished_rps": (n1 - n0) / (t1 - t0),
                "cpu_per_stream": (c1 - c0) / max(n1 - n0, 1), "cpu_util": (c1 - c0) / (t1 - t0),
                "cpu_total_per_stream": s.proc.cpu_total / max(summ["requests_sent"], 1),
                "nginx_util": (ng1 - ng0) / (t1 - t0), "rss": s.proc.peak_rss,
                "ttft": lat["ttft"], "dur": lat["duration"], "lag": lat["schedule_lag"],
                "gap": lat["chunk_gap"],
            })
            r = rows[-1]
            print(f"  soakd {rate:.0f}: {r['achieved']:.0f}/s, ok {r['ok']}/{r['sent']}, "
                  f"{b.us(r['cpu_per_stream'])} µs/stream, loadavg {b.loadavg()}", flush=True)
            if not args.no_oha_rated:
                o, rep = b.run_oha(c, ["-q", str(int(rate)), "-z", f"{dur}s", "-m", "POST", "-d", REQUEST,
                                       "-H", "content-type: application/json"], target, dur + 60,
                                   name=f"oha-{i}")
                n = b.oha_total_requests(rep)
                oha_rows.append({"mode": f"-q {rate:.0f}", "n": n, "ok": b.oha_ok_requests(rep),
                                 "rps": rep["summary"]["requestsPerSec"],
                                 "cpu_per": o.cpu_total / max(n, 1),
                                 "p50": rep["latencyPercentiles"]["p50"],
                                 "p99": rep["latencyPercentiles"]["p99"],
                                 "fb50": rep["firstBytePercentiles"]["p50"]})
        if not args.no_oha_max:
            o, rep = b.run_oha(c, ["-z", f"{dur}s", "-m", "POST", "-d", REQUEST,
                                   "-H", "content-type: application/json"], target, dur + 60,
                               name="oha-max")
            n = b.oha_total_requests(rep)
            oha_rows.append({"mode": "max (-c 50)", "n": n, "ok": b.oha_ok_requests(rep),
                             "rps": rep["summary"]["requestsPerSec"], "cpu_per": o.cpu_total / max(n, 1),
                             "p50": rep["latencyPercentiles"]["p50"],
                             "p99": rep["latencyPercentiles"]["p99"],
                             "fb50": rep["firstBytePercentiles"]["p50"]})

    print()
    print(f"## SSE streams/s, 64-chunk OpenAI stream answered at once by nginx (1 process), {dur} s per rate")
    print()
    b.table(["target rps", "sent", "achieved/s", "completed", "non-ok", "dropped", "CPU µs/stream",
             "soakd % core", "nginx % core", "TTFT p50 ms", "TTFT p99 ms", "dur p50 ms", "dur p99 ms",
             "lag p99 ms", "peak RSS MiB"],
            [[f"{r['rate']:.0f}", r["sent"], f"{r['achieved']:.0f}", r["completed"], r["sent"] - r["ok"],
              r["dropped"], b.us(r["cpu_per_stream"]), f"{r['cpu_util'] * 100:.0f}",
              f"{r['nginx_util'] * 100:.0f}", b.ms(r["ttft"]["p50"]), b.ms(r["ttft"]["p99"]),
              b.ms(r["dur"]["p50"]), b.ms(r["dur"]["p99"]), b.ms(r["lag"]["p99"]), b.mib(r["rss"])]
             for r in rows])
    print()
    b.table(["oha", "requests", "2xx", "rps", "CPU µs/req", "first byte p50 ms", "p50 ms", "p99 ms"],
            [[r["mode"], r["n"], r["ok"], f"{r['rps']:.0f}", b.us(r["cpu_per"]), b.ms(r["fb50"]), b.ms(r["p50"]),
              b.ms(r["p99"])] for r in oha_rows])
    print()
    for r in rows:
        print(f"soakd {r['rate']:.0f}: outcomes {r['outcomes']}; TTFT p50 - lag p50 = "
              f"{b.ms(r['ttft']['p50'] - r['lag']['p50'])} ms; dur p50 - TTFT p50 = "
              f"{b.ms(r['dur']['p50'] - r['ttft']['p50'])} ms; whole-run CPU {b.us(r['cpu_total_per_stream'])} µs/stream")
    for r, o in zip(rows, oha_rows):
        print(f"CPU per request soakd/oha at {r['rate']:.0f}: {r['cpu_per_stream'] / o['cpu_per']:.3f}")
    print(f"loadavg at end: {b.loadavg()}")
    b.write_json(args.json, {"bench": "sse_streams", "duration": dur, "soakd": rows, "oha": oha_rows})


if __name__ == "__main__":
    main()
