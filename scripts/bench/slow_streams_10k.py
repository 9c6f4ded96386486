#!/usr/bin/env python3
"""Benchmark 3: 10,000 concurrent slow SSE streams against the mock; soakd's peak RSS.

The mock answers every stream slowly: --ttft 1s, then --chunks 60 chunks 500 ms apart, so a
stream lasts ~31 s. soakd sends at --rate rps (constant arrivals) for --duration s with
max_in_flight --max-in-flight; with rate 350, about 350 x 31 = 10,850 streams are open at
once from t = 31 s until the sending ends. streams_active is read from soakd's /metrics
(soakd_streams_active) once a second; soakd's peak RSS is VmHWM from /proc/<pid>/status.

    python3 scripts/bench/slow_streams_10k.py [--rate 350] [--duration 40] [--max-in-flight 12000]
"""

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib as b  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=350)
    ap.add_argument("--duration", type=int, default=40)
    ap.add_argument("--max-in-flight", type=int, default=12000)
    ap.add_argument("--json", help="write the results here as JSON (for run.sh)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    b.print_machine()
    print(f"NOFILE soft {soft} hard {hard} (soakd and the mock raise soft to hard)")
    if hard < args.max_in_flight + 1000:
        b.die(f"hard NOFILE limit {hard} is below max_in_flight + 1000; raise it (ulimit -Hn)")
    with b.Cleanup() as c:
        mock, url = b.start_mock(c, ["--ttft", "1s", "--chunk-delay", "500ms", "--chunks", "60",
                                     "--chunk-bytes", "8"])
        cfg = b.soakd_config(url, args.rate, f"{args.duration}s", "@SUMMARY@",
                             {"stream": True, "max_tokens": 64}, max_in_flight=args.max_in_flight,
                             target_extra='stream_timeout = "5m"', grace="60s")
        s = b.Soakd(c, cfg, interval=0.5)
        peak_active, peak_inflight, t_peak = 0, 0, None
        timeline = []
        end = time.monotonic() + args.duration + 45
        while s.proc.running() and time.monotonic() < end:
            active = s.metric("soakd_streams_active")
            inflight = s.metric("soakd_in_flight_requests")
            t = time.monotonic() - s.proc.t0
            if active is not None:
                if active > peak_active:
                    peak_active, t_peak = active, t
                peak_inflight = max(peak_inflight, inflight or 0)
                if int(t) % 5 == 0:
                    timeline.append((int(t), int(active), s.proc.rss_now(), mock.rss_now()))
            time.sleep(1)
        s.wait(120)
        summ = s.summary()
        mock_peak = mock.peak_rss
        mock_cpu = mock.cpu_now()

    print()
    print(f"## {args.rate:.0f} rps of ~31 s SSE streams for {args.duration} s against soakd mock")
    print()
    seen = set()
    b.table(["t (s)", "streams_active", "soakd RSS MiB", "mock RSS MiB"],
            [[t, a, b.mib(r), b.mib(m)] for t, a, r, m in timeline if not (t in seen or seen.add(t))])
    print()
    b.table(["peak streams_active", "at t (s)", "peak in_flight", "soakd peak RSS MiB (VmHWM)",
             "KiB per open stream", "soakd CPU s", "mock peak RSS MiB"],
            [[int(peak_active), f"{t_peak:.0f}", int(peak_inflight), b.mib(s.proc.peak_rss),
              f"{s.proc.peak_rss / 1024 / max(peak_active, 1):.1f}", f"{s.proc.cpu_total:.1f}",
              b.mib(mock_peak)]])
    print()
    print(f"soakd: sent {summ['requests_sent']}, outcomes {summ['outcomes']}, streams {summ['streams']}, "
          f"dropped {summ['dropped']}")
    lat = summ["latency"]
    print(f"ttft p50 {b.ms(lat['ttft']['p50'])} ms p99 {b.ms(lat['ttft']['p99'])} ms; chunk gap p99 "
          f"{b.ms(lat['chunk_gap']['p99'])} ms; schedule lag p99 {b.ms(lat['schedule_lag']['p99'])} ms")
    per_stream = s.proc.peak_rss / max(peak_active, 1)
    print(f"goal (issue 11): <= 16 KiB per open stream (10,000 streams <= 160 MiB peak RSS): "
          f"{'met' if per_stream <= 16 * 1024 and peak_active >= 10000 else 'NOT met'}")
    print(f"loadavg at end: {b.loadavg()}")
    b.write_json(args.json, {"bench": "slow_streams", "rate": args.rate, "peak_active": peak_active,
                             "peak_rss": s.proc.peak_rss, "bytes_per_stream": per_stream,
                             "first_sample_rss": timeline[0][2] if timeline else None,
                             "outcomes": summ["outcomes"], "cpu_total": s.proc.cpu_total})


if __name__ == "__main__":
    main()
